"""CNN-KMeans on series that do not fit in memory: chunk in, chunk out.

``transform``, ``predict`` and ``assign`` read a source (see :mod:`tsc_toolkit.io.sources`) one
chunk at a time, embed the chunk, and either append the results to a file (``.npy``, Parquet,
fg's CSV; see :mod:`tsc_toolkit.io.sinks`) or gather them. With an output file, memory is bounded
by the chunk size whatever the number of series. ``fit`` trains the encoder on series drawn
from the source (the triplet windows are cut from those), then clusters either that sample's
embeddings (``cluster_on="sample"``) or the embeddings of every series, streamed to a
``.npy`` file and clustered from there by :class:`~tsc_toolkit.clustering.kmeans.WebScaleKMeans`
(``cluster_on="all"``).

:class:`~tsc_toolkit.CNNKMeans` sends a source or a path given to its own ``fit``,
``transform``, ``predict`` or ``assign`` here, with the defaults below.

Examples
--------
>>> import numpy as np, tempfile, os
>>> from tsc_toolkit import CNNKMeans
>>> from tsc_toolkit.io.datasets import make_series
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

from .assignment import Assignment
from .io.sinks import open_writer
from .io.sources import (
    CHUNK_SIZE,
    ArraySource,
    SeriesSource,
    is_chunked_array,
    is_lazy_array,
    open_series,
)

__all__ = ["transform", "predict", "assign", "fit", "embed_chunks", "is_chunked",
           "CHUNK_SIZE", "SAMPLE_SIZE"]

#: Series drawn from the source to train the encoder on.
SAMPLE_SIZE = 20_000


def _chunks(model, source, chunk_size: int, progress: bool, open_options: dict):
    """The chunks of ``source``, with a tqdm bar over the series when asked."""
    source = open_series(source, **_open_defaults(model, open_options))
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=source.n_series, desc="embedding", unit="series", smoothing=0.1)
    try:
        for chunk in source.chunks(chunk_size):
            yield chunk
            if bar is not None:
                bar.update(len(chunk.ids))
    finally:
        if bar is not None:
            bar.close()


def embed_chunks(model, source, *, chunk_size: int = CHUNK_SIZE, progress: bool = False,
                 **open_options) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """``(ids, embeddings)`` of each chunk of ``source``, in the source's order.

    The embeddings are those of ``model.transform`` (normalised as the model normalises).
    """
    for chunk in _chunks(model, source, chunk_size, progress, open_options):
        yield chunk.ids, model.transform(chunk.X)


def _run(model, source, output, kind: str, chunk_size: int, progress: bool, open_options):
    writer = open_writer(output, kind) if output is not None else None
    source = open_series(source, **_open_defaults(model, open_options))
    # Results gathered in memory go straight into arrays of the final size when the source
    # knows its length exactly (an array): no list of parts, no concatenated copy at the end.
    total = source.n_series if isinstance(source, ArraySource) else None
    parts: list[tuple] = []
    gathered: list[np.ndarray] | None = None
    done = 0
    try:
        for chunk in _chunks(model, source, chunk_size, progress, {}):
            # the model labels each series on its own, so a chunk gets what the whole would
            if kind == "transform":
                result = (None, None, model.transform(chunk.X))
            else:
                result = tuple(model.assign(chunk.X))
            if writer is not None:
                writer.write(chunk.ids, *result)
            elif total is not None:
                arrays = [np.asarray(r) for r in result if r is not None]
                if gathered is None:
                    gathered = [np.empty((total,) + a.shape[1:], dtype=a.dtype) for a in arrays]
                for buf, a in zip(gathered, arrays):
                    buf[done:done + len(a)] = a
                done += len(chunk.ids)
            else:
                parts.append(result)
    finally:
        if writer is not None:
            writer.close()
    if writer is not None:
        return writer.path if writer.path is not None else output
    if gathered is not None:
        if kind == "transform":
            return gathered[0]
        result = Assignment(*gathered)
        return result.closest_cluster if kind == "predict" else result
    if not parts:
        raise ValueError("The source holds no series.")
    if kind == "transform":
        return np.concatenate([p[2] for p in parts])
    result = Assignment(*(np.concatenate([p[i] for p in parts]) for i in range(3)))
    return result.closest_cluster if kind == "predict" else result


def transform(model, source, output=None, *, chunk_size: int = CHUNK_SIZE,
              progress: bool = True, **open_options):
    """Embeddings of every series of ``source``, streamed.

    Parameters
    ----------
    model : CNNKMeans
        A fitted model.
    source : path, array, SeriesSource or iterable of chunks
        Anything :func:`tsc_toolkit.io.sources.open_series` opens.
    output : path or text stream, optional
        Write the results there a chunk at a time (``.npy``, ``.parquet``, else CSV) and
        return the path; without it the results are gathered in memory and returned.
    chunk_size : int, default=1024
        Series per chunk: what bounds the memory.
    progress : bool, default=True
        Show a tqdm bar.
    **open_options
        For :func:`~tsc_toolkit.io.sources.open_series` (``channels`` defaults to the model's).

    Returns
    -------
    ndarray of shape (n_series, embedding width), or the output's path
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


def fit(model, source, *, sample_size: int = SAMPLE_SIZE, cluster_on: str = "auto",
        embeddings: str | os.PathLike | None = None, X_valid=None, callbacks=None,
        chunk_size: int = CHUNK_SIZE, progress: bool = True, random_state=None,
        clustering: str | None = None, **open_options):
    """Train ``model`` on series drawn from ``source`` and cluster without loading it whole.

    Parameters
    ----------
    model : CNNKMeans
        Its hyperparameters are used as given; ``model.fit`` runs on the drawn series.
    source : path, array, SeriesSource or iterable of chunks
    sample_size : int, default=20000
        Series drawn uniformly (random rows of a ``.npy``, one reservoir pass otherwise); the
        encoder trains on windows of these, and only these are in memory.
    cluster_on : {"auto", "sample", "all"}, default="auto"
        Which series the clustering stage is fitted on. ``"sample"``: the drawn series (what
        ``model.fit`` does); stream :func:`predict` afterwards to label every series.
        ``"all"`` (models with ``clustering="kmeans"`` only): what the model clusters (the
        embedding, beside its random-kernel view when it has one) is streamed for every
        series into ``embeddings``, a ``.npy``, and the model's clustering stage
        (:meth:`CNNKMeans.make_clusterer` with ``algorithm="webscale"``, whichever K-Means
        variant the model names: only that one reads a file a chunk at a time) clusters that
        file from disk; ``cluster_centers_`` are then the members' mean embeddings.
        ``"auto"``: ``"all"`` when the model clusters with K-Means and the source holds more
        series than ``sample_size`` (or does not say), else ``"sample"`` (spectral clustering
        labels new series by their neighbours in the sample).
    embeddings : path, optional
        Where ``"all"`` keeps the clustered features of every series (a temporary file,
        removed at the end, by default).
    X_valid, callbacks
        As for :meth:`CNNKMeans.fit`.
    chunk_size, progress, **open_options
        As for :func:`transform`.
    random_state : int, RandomState or None, default=None
        Seed of the draw and of the clustering of every series (an int is used as it is);
        None: the model's own seed, derived from its ``random_state`` as its fit derives it.
    clustering : {"sample", "webscale"}, optional
        The former name of ``cluster_on`` (``"webscale"`` is ``"all"``); deprecated.

    Returns
    -------
    model
        Fitted: ``embeddings_`` and ``labels_`` are those of the drawn series;
        ``n_series_streamed_`` (``n_series_clustered_``) counts the series clustered (the
        sample's size for ``"sample"``).
    """
    from .seeding import fit_seed, stage_seed

    if clustering is not None:
        import warnings

        warnings.warn("streaming.fit(clustering=...) is now cluster_on= ('webscale' is "
                      "'all').", FutureWarning, stacklevel=2)
        cluster_on = {"webscale": "all"}.get(clustering, clustering)
    if cluster_on not in ("auto", "sample", "all"):
        raise ValueError(f"cluster_on must be 'auto', 'sample' or 'all', got {cluster_on!r}.")
    graph = getattr(model, "clustering", "kmeans") == "spectral"
    if cluster_on == "all" and graph:
        raise ValueError("cluster_on='all' needs CNNKMeans(clustering='kmeans'): spectral "
                         "clustering labels new series by their neighbours in the sample.")
    seed = fit_seed(model.random_state) if random_state is None else stage_seed(random_state)
    source = open_series(source, **_open_defaults(model, open_options, fitted=False))
    drawn = source.sample(int(sample_size), seed)
    model.fit(drawn.X, X_valid=X_valid, callbacks=callbacks)
    if cluster_on == "auto":
        total = source.n_series
        larger = total is None or total > len(drawn.ids)
        cluster_on = "all" if larger and not graph else "sample"
    if cluster_on == "sample":
        return model
    with tempfile.TemporaryDirectory(prefix="tsc-embeddings-") as tmp:
        path = Path(embeddings) if embeddings is not None else Path(tmp) / "embeddings.npy"
        emb_path = Path(tmp) / "model-embeddings.npy"
        width = model.embeddings_.shape[1]
        with open_writer(path, "transform") as features, \
                open_writer(emb_path, "transform") as plain:
            for chunk in _chunks(model, source, chunk_size, progress, {}):
                f = model.cluster_features(chunk.X)  # the embedding comes first
                features.write(chunk.ids, embeddings=f)
                plain.write(chunk.ids, embeddings=f[:, :width])
        clusterer = model.make_clusterer(model.n_clusters_, seed).set_params(
            algorithm="webscale").fit(np.load(path, mmap_mode="r"))
        model.set_clusterer(clusterer, embeddings=np.load(emb_path, mmap_mode="r"))
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


def is_chunked(obj) -> bool:
    """Whether ``transform``, ``predict`` and ``assign`` should read ``obj`` a chunk at a time.

    True for a source or a path (:func:`is_streamed`); a memory-mapped array (``np.memmap``,
    as ``np.load(..., mmap_mode="r")`` returns); an array-like of shape ``(n_series, length)``
    or ``(n_series, n_channels, length)`` that is not a NumPy array but slices into one (an
    h5py or zarr dataset: anything with ``shape``, ``dtype`` and slicing), so only the slice
    being embedded is read; and a NumPy array of more series than one chunk
    (:data:`CHUNK_SIZE`), so the scaled, masked and padded copies the encoder needs exist for
    one chunk at a time. The results are those of the whole array at once.

    Examples
    --------
    >>> import numpy as np
    >>> from tsc_toolkit.streaming import is_chunked
    >>> is_chunked(np.zeros((10, 1, 20))), is_chunked(np.zeros((5000, 1, 20)))
    (False, True)
    """
    return is_streamed(obj) or is_chunked_array(obj, CHUNK_SIZE)


def is_fitted_streamed(obj) -> bool:
    """Whether :meth:`CNNKMeans.fit` should hand ``obj`` to :func:`fit`: series on disk (a
    path or a source) or an array read where it is sliced (a memmap, an h5py or zarr
    dataset), trained on a sample like the file it maps. An array in memory, however large,
    is fitted whole."""
    return is_streamed(obj) or is_lazy_array(obj)
