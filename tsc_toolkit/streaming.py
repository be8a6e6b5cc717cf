"""CNN-KMeans on series that do not fit in memory: chunk in, chunk out.

``transform``, ``predict`` and ``assign`` read a source (see :mod:`tsc_toolkit.sources`) one
chunk at a time, embed the chunk, and either append the results to a file (``.npy``, Parquet,
fg's CSV; see :mod:`tsc_toolkit.sinks`) or gather them. With an output file, memory is bounded
by the chunk size whatever the number of series. ``fit`` trains the encoder on series drawn
from the source (the triplet windows are cut from those), then clusters either that sample's
embeddings (``clustering="sample"``) or the embeddings of every series, streamed to a
``.npy`` file and clustered from there by :class:`~tsc_toolkit.kmeans.WebScaleKMeans`
(``clustering="webscale"``).

:class:`~tsc_toolkit.CNNKMeans` sends a source or a path given to its own ``fit``,
``transform``, ``predict`` or ``assign`` here, with the defaults below.

Examples
--------
>>> import numpy as np, tempfile, os
>>> from tsc_toolkit import CNNKMeans
>>> from tsc_toolkit.datasets import make_series
>>> from tsc_toolkit import streaming
>>> tmp = tempfile.mkdtemp()
>>> X, _ = make_series(40, length=30, missing_rate=0.05, short_fraction=0.3)
>>> np.save(os.path.join(tmp, "series.npy"), X)
>>> model = CNNKMeans(clusters=2, epochs=1, blocks=1, filters=8, reduced_size=8,
...                   output_size=4, n_init=1, random_state=0, verbose=0)
>>> _ = streaming.fit(model, os.path.join(tmp, "series.npy"), sample_size=30, progress=False)
>>> out = streaming.assign(model, os.path.join(tmp, "series.npy"),
...                        os.path.join(tmp, "labels.parquet"), chunk_size=16, progress=False)
>>> import pandas as pd
>>> pd.read_parquet(out).shape
(40, 7)
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from .sinks import open_writer
from .sources import SeriesSource, open_series
from .training import nearest_centers

__all__ = ["transform", "predict", "assign", "fit", "embed_chunks", "CHUNK_SIZE",
           "SAMPLE_SIZE"]

#: Series per chunk: 4096 series of length 500 are 8 MiB of float32 (16 MiB as network input).
CHUNK_SIZE = 4096
#: Series drawn from the source to train the encoder on.
SAMPLE_SIZE = 20_000


def embed_chunks(model, source, *, chunk_size: int = CHUNK_SIZE, progress: bool = False,
                 **open_options) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """``(ids, embeddings)`` of each chunk of ``source``, in the source's order.

    The embeddings are those of ``model.transform`` (normalised as the model normalises).
    """
    source = open_series(source, **_open_defaults(model, open_options))
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=source.n_series, desc="embedding", unit="series", smoothing=0.1)
    try:
        for chunk in source.chunks(chunk_size):
            z = model.transform(chunk.X)
            if bar is not None:
                bar.update(len(z))
            yield chunk.ids, z
    finally:
        if bar is not None:
            bar.close()


def _run(model, source, output, kind: str, chunk_size: int, progress: bool, open_options):
    from .cnn_kmeans import Assignment

    writer = open_writer(output, kind) if output is not None else None
    parts: list[tuple] = []
    try:
        for ids, z in embed_chunks(model, source, chunk_size=chunk_size, progress=progress,
                                   **open_options):
            labels, dist = (nearest_centers(z, model.cluster_centers_) if kind != "transform"
                            else (None, None))
            if writer is not None:
                writer.write(ids, labels, dist, z)
            else:
                parts.append((labels, dist, z))
    finally:
        if writer is not None:
            writer.close()
    if writer is not None:
        return writer.path if writer.path is not None else output
    if not parts:
        raise ValueError("The source holds no series.")
    if kind == "transform":
        return np.concatenate([p[2] for p in parts])
    result = Assignment(np.concatenate([p[0] for p in parts]),
                        np.concatenate([p[1] for p in parts]),
                        np.concatenate([p[2] for p in parts]))
    return result.closest_cluster if kind == "predict" else result


def transform(model, source, output=None, *, chunk_size: int = CHUNK_SIZE,
              progress: bool = True, **open_options):
    """Embeddings of every series of ``source``, streamed.

    Parameters
    ----------
    model : CNNKMeans
        A fitted model.
    source : path, array, SeriesSource or iterable of chunks
        Anything :func:`tsc_toolkit.sources.open_series` opens.
    output : path or text stream, optional
        Write the results there a chunk at a time (``.npy``, ``.parquet``, else CSV) and
        return the path; without it the results are gathered in memory and returned.
    chunk_size : int, default=4096
        Series per chunk: what bounds the memory.
    progress : bool, default=True
        Show a tqdm bar.
    **open_options
        For :func:`~tsc_toolkit.sources.open_series` (``channels`` defaults to the model's).

    Returns
    -------
    ndarray of shape (n_series, output_size), or the output's path
    """
    return _run(model, source, output, "transform", chunk_size, progress, open_options)


def predict(model, source, output=None, *, chunk_size: int = CHUNK_SIZE,
            progress: bool = True, **open_options):
    """Cluster of every series of ``source``, streamed (parameters as :func:`transform`).

    Returns
    -------
    ndarray of shape (n_series,), int64, or the output's path
    """
    return _run(model, source, output, "predict", chunk_size, progress, open_options)


def assign(model, source, output=None, *, chunk_size: int = CHUNK_SIZE,
           progress: bool = True, **open_options):
    """Cluster, distance and embedding of every series, streamed (as :func:`transform`).

    Returns
    -------
    Assignment, or the output's path
    """
    return _run(model, source, output, "assign", chunk_size, progress, open_options)


def fit(model, source, *, sample_size: int = SAMPLE_SIZE, clustering: str = "auto",
        embeddings: str | os.PathLike | None = None, X_valid=None, callbacks=None,
        chunk_size: int = CHUNK_SIZE, progress: bool = True, random_state: int | None = 0,
        **open_options):
    """Train ``model`` on series drawn from ``source`` and cluster without loading it whole.

    Parameters
    ----------
    model : CNNKMeans
        Its hyperparameters are used as given; ``model.fit`` runs on the drawn series.
    source : path, array, SeriesSource or iterable of chunks
    sample_size : int, default=20000
        Series drawn uniformly (random rows of a ``.npy``, one reservoir pass otherwise); the
        encoder trains on windows of these, and only these are in memory.
    clustering : {"auto", "sample", "webscale"}, default="auto"
        ``"sample"``: the centers are K-Means on the drawn series' embeddings (what
        ``model.fit`` computes); stream :func:`predict` afterwards to label every series.
        ``"webscale"``: every series is embedded (streamed into ``embeddings``, a ``.npy``)
        and :class:`~tsc_toolkit.kmeans.WebScaleKMeans` clusters that file from disk; its
        centers become ``cluster_centers_``. ``"auto"``: ``"webscale"`` when the source holds
        more series than ``sample_size`` (or does not say), else ``"sample"``.
    embeddings : path, optional
        Where ``"webscale"`` keeps the embeddings of every series (a temporary file, removed
        at the end, by default).
    X_valid, callbacks
        As for :meth:`CNNKMeans.fit`.
    chunk_size, progress, **open_options
        As for :func:`transform`.
    random_state : int or None, default=0
        Seed of the draw.

    Returns
    -------
    model
        Fitted: ``embeddings_`` and ``labels_`` are those of the drawn series;
        ``n_series_streamed_`` counts the series clustered (the sample's size for
        ``"sample"``).
    """
    if clustering not in ("auto", "sample", "webscale"):
        raise ValueError(f"clustering must be 'auto', 'sample' or 'webscale', got "
                         f"{clustering!r}.")
    source = open_series(source, **_open_defaults(model, open_options, fitted=False))
    drawn = source.sample(int(sample_size), random_state)
    model.fit(drawn.X, X_valid=X_valid, callbacks=callbacks)
    if clustering == "auto":
        total = source.n_series
        clustering = "webscale" if total is None or total > len(drawn.ids) else "sample"
    model.n_series_streamed_ = len(drawn.ids)
    if clustering == "sample":
        return model
    with tempfile.TemporaryDirectory(prefix="tsc-embeddings-") as tmp:
        path = Path(embeddings) if embeddings is not None else Path(tmp) / "embeddings.npy"
        transform(model, source, path, chunk_size=chunk_size, progress=progress)
        from .kmeans import WebScaleKMeans

        z = np.load(path, mmap_mode="r")
        seed = None if random_state is None else int(random_state)
        km = WebScaleKMeans(k=model.clusters, random_state=seed, device=model.device).fit(z)
        model.n_series_streamed_ = int(len(z))
        del z
    model.cluster_centers_ = np.asarray(km.cluster_centers_, dtype=np.float32)
    model.labels_, dist = nearest_centers(model.embeddings_, model.cluster_centers_)
    model.inertia_ = float((dist.astype(np.float64) ** 2).sum())
    return model


def _open_defaults(model, options: dict, fitted: bool = True) -> dict:
    """Options for ``open_series``: CSV and wide files hold the model's channels per series."""
    options = dict(options)
    if fitted and "channels" not in options and hasattr(model, "n_channels_"):
        options["channels"] = int(model.n_channels_)
    return options


def is_streamed(obj) -> bool:
    """Whether CNNKMeans should hand ``obj`` to this module (a source or a path)."""
    return isinstance(obj, (SeriesSource, str, os.PathLike))
