"""Pretraining: fitting the encoder stage on a corpus of series, once, to start many fits from.

An organisation with many segments of similar data pretrains once on its collection, then each
:class:`~tsc_toolkit.CNNKMeans` fit starts from those weights (``pretrained=path``) and needs
few or no training steps of its own. :func:`pretrain` draws windows evenly from each data set
of the corpus (labels are never read), fits a :class:`~tsc_toolkit.embedding.TLossEncoder` on
them with the triplet loss, and saves it. ``tsc-toolkit pretrain DATA... --output DIR`` runs it
from a shell.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..data import as_dataset, series_lengths
from ..seeding import stage_seed
from .tloss import TLossEncoder

__all__ = ["pretrain", "draw_windows", "punch_gaps"]


def draw_windows(sets, n_windows: int, window_length: int, random_state=0, *,
                 short_fraction: float = 0.0, gap_fraction: float = 0.0,
                 gap_rates: tuple[float, float] = (0.05, 0.3)) -> np.ndarray:
    """``n_windows`` windows of at most ``window_length`` steps, the same number from each set.

    Each window is a random stretch of a random series of its set (the whole series when it is
    shorter); the result is NaN-padded to the longest window, ``(n_windows, n_channels,
    length)`` float32. So that an encoder meets what users' data has, ``short_fraction`` of the
    windows are cut to a random length between 16 steps and their own, and ``gap_fraction``
    lose a random share (in ``gap_rates``) of their values, half as single values and half in
    blocks (:func:`punch_gaps`).

    Examples
    --------
    >>> import numpy as np
    >>> from tsc_toolkit.embedding.pretrain import draw_windows
    >>> a, b = np.random.default_rng(0).normal(size=(2, 30, 1, 100))
    >>> draw_windows([a, b[:, :, :40]], 10, 64).shape
    (10, 1, 64)
    """
    rng = np.random.default_rng(stage_seed(random_state))
    sets = [as_dataset(s) for s in sets]
    if not sets:
        raise ValueError("pretrain needs at least one data set.")
    channels = {s.shape[1] for s in sets}
    if len(channels) > 1:
        raise ValueError(f"The data sets have different numbers of channels: {sorted(channels)}.")
    per_set = np.full(len(sets), n_windows // len(sets))
    per_set[: n_windows % len(sets)] += 1
    windows = []
    for data, count in zip(sets, per_set):
        lengths = series_lengths(data)
        for i in rng.integers(len(data), size=int(count)):
            size = int(min(window_length, lengths[i]))
            if short_fraction > 0 and rng.random() < short_fraction and size > 16:
                size = int(rng.integers(16, size + 1))
            start = int(rng.integers(int(lengths[i]) - size + 1))
            window = np.array(data[i, :, start:start + size], dtype=np.float32)
            if gap_fraction > 0 and rng.random() < gap_fraction:
                window = punch_gaps(window, float(rng.uniform(*gap_rates)), rng)
            windows.append(window)
    out = np.full((len(windows), sets[0].shape[1], max(w.shape[1] for w in windows)), np.nan,
                  dtype=np.float32)
    for j, w in enumerate(windows):
        out[j, :, : w.shape[1]] = w
    return out


def punch_gaps(window: np.ndarray, rate: float, rng: np.random.Generator) -> np.ndarray:
    """``window`` (channels x steps) with about ``rate`` of its values set to NaN, half in
    blocks of 5-20 % of its length and half as single values; the first and last steps and at
    least half of each channel are kept.

    Examples
    --------
    >>> import numpy as np
    >>> from tsc_toolkit.embedding.pretrain import punch_gaps
    >>> w = punch_gaps(np.ones((1, 100)), 0.2, np.random.default_rng(0))
    >>> 10 <= int(np.isnan(w).sum()) <= 30, bool(np.isfinite(w[0, [0, -1]]).all())
    (True, True)
    """
    out = window.copy()
    for row in out:
        observed = np.flatnonzero(~np.isnan(row))
        if observed.size < 8:
            continue
        target = int(round(rate * observed.size))
        hole = np.zeros(row.shape, bool)
        while hole.sum() < target // 2:
            width = min(max(1, int(rng.uniform(0.05, 0.2) * observed.size)),
                        target // 2 - int(hole.sum()))
            start = int(rng.integers(1, max(2, observed.size - width - 1)))
            hole[observed[start:start + width]] = True
        inner = observed[1:-1]
        free = inner[~hole[inner]]
        hole[rng.choice(free, size=min(max(0, target - int(hole.sum())), free.size),
                        replace=False)] = True
        hole[observed[0]] = hole[observed[-1]] = False
        if hole.sum() > observed.size // 2:
            keep = rng.choice(np.flatnonzero(hole), size=int(hole.sum()) - observed.size // 2,
                              replace=False)
            hole[keep] = False
        row[hole] = np.nan
    return out


def pretrain(sets, output: str | os.PathLike | None = None, *, steps: int = 4000,
             n_windows: int = 3000, window_length: int = 512, short_fraction: float = 0.0,
             gap_fraction: float = 0.0, random_state=0, callbacks=None,
             **encoder_params) -> TLossEncoder:
    """Fit the T-Loss encoder on windows of a corpus of series and save it.

    Parameters
    ----------
    sets : list of array-like or paths
        The corpus, one entry per data set (anything :func:`tsc_toolkit.as_dataset` reads, or
        a path to a ``.npy`` or fg-research CSV file). Windows are drawn evenly from the sets,
        so a large set does not drown the others.
    output : path, optional
        Folder to save the encoder in (:meth:`TLossEncoder.save`); ``CNNKMeans(pretrained=
        output)`` then starts from it.
    steps : int, default=4000
        Optimisation steps.
    n_windows : int, default=3000
        Windows drawn from the corpus (:func:`draw_windows`); the triplets are cut from them.
    window_length : int, default=512
        Longest window.
    short_fraction, gap_fraction : float, default=0.0
        Shares of the windows cut shorter and given missing values (:func:`draw_windows`), so
        the encoder meets both. On the development panel, 0.3 of each made the shipped
        encoder's clusters worse, not better (docs/pretrained_encoder.md).
    random_state : int, default=0
        Seed of the draw, the weights and the triplet sampling.
    callbacks : callable or list, optional
        Called at the end of each pass over the windows, as :meth:`TLossEncoder.fit` calls
        them (``callback(encoder, record)``): to follow the loss, or to save the encoder
        part way (``encoder.save(...)``).
    **encoder_params
        Other :class:`TLossEncoder` parameters (the architecture, ``batch_size``,
        ``negative_samples``, ``device``, ``verbose``, ...); the defaults are those of
        :class:`~tsc_toolkit.CNNKMeans`.

    Returns
    -------
    TLossEncoder
        Fitted on the windows.

    Examples
    --------
    >>> import tempfile, os
    >>> from tsc_toolkit.datasets import make_series
    >>> from tsc_toolkit.embedding.pretrain import pretrain
    >>> corpus = [make_series(30, length=80, random_state=s)[0] for s in (0, 1)]
    >>> folder = os.path.join(tempfile.mkdtemp(), "encoder")
    >>> enc = pretrain(corpus, folder, steps=3, n_windows=20, window_length=64, blocks=1,
    ...                filters=4, reduced_size=4, output_size=4, device="cpu")
    >>> enc.n_steps_, os.path.isfile(os.path.join(folder, "config.json"))
    (3, True)
    """
    data = [_read(s) for s in sets]
    windows = draw_windows(data, int(n_windows), int(window_length), random_state,
                           short_fraction=short_fraction, gap_fraction=gap_fraction)
    # no per-epoch silhouette unless asked for: the windows of a corpus have no clusters to score
    encoder = TLossEncoder(**{"random_state": stage_seed(random_state), "score_sample_size": 0,
                              **encoder_params, "max_steps": int(steps), "epochs": None})
    encoder.fit(windows, callbacks=callbacks)
    if output is not None:
        encoder.save(output)
    return encoder


def _read(source):
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if path.suffix == ".npy":
            return np.load(path, allow_pickle=False)
        from ..io.csvio import read_csv

        return read_csv(path)
    return source
