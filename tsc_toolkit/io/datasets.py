"""Datasets that work offline: a seeded generator and small copies of UCR/UEA sets.

The generator makes series with real cluster structure (each cluster has its own shape),
missing values and different lengths. The real datasets are copies of a few UCR/UEA
archive problems kept in the repository's ``data/`` folder (see ``data/README.md``).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..resources import bundled_dir
from .csvio import write_csv

__all__ = ["make_series", "write_sample_files", "load_dataset", "list_datasets", "data_dir",
           "REAL_DATASETS"]

#: Real labelled datasets bundled in ``data/``: name -> short description.
REAL_DATASETS = {
    "GunPoint": "UCR, univariate, 200 series of length 150, 2 classes",
    "ArrowHead": "UCR, univariate, 211 series of length 251, 3 classes",
    "OSULeaf": "UCR, univariate, 442 series of length 427, 6 classes",
    "ItalyPowerDemand": "UCR, univariate, 1096 series of length 24, 2 classes",
    "BasicMotions": "UEA, 6 channels, 80 series of length 100, 4 classes",
    "JapaneseVowels": "UEA, 12 channels, 640 series of lengths 7-29, 9 classes",
    "PLAID": "UCR, univariate, 1074 series of lengths 100-1344, 11 classes",
}


def make_series(n_series: int = 300, n_clusters: int = 3, length: int = 50, *,
                n_channels: int = 1, noise: float = 0.15, missing_rate: float = 0.0,
                short_fraction: float = 0.0, min_length: int | None = None,
                random_state: int | None = 0) -> tuple[np.ndarray, np.ndarray]:
    """Generate labelled series whose clusters differ by shape.

    Each cluster has a prototype per channel (two Gaussian bumps plus a sine of its own
    frequency). A member is its prototype with a small random shift in time, amplitude
    and level, plus Gaussian noise. A shorter series is the same curve sampled on fewer
    steps, so its shape is kept.

    Parameters
    ----------
    n_series, n_clusters, length, n_channels : int
        Size of the data; members are spread evenly over clusters.
    noise : float, default=0.15
        Standard deviation of the added noise.
    missing_rate : float, default=0.0
        Fraction of values (inside series) replaced by NaN.
    short_fraction : float, default=0.0
        Fraction of series that are shorter than ``length``.
    min_length : int, optional
        Shortest length of a shorter series (default: half of ``length``).
    random_state : int or None, default=0

    Returns
    -------
    X : ndarray of shape (n_series, n_channels, length), float32
    y : ndarray of shape (n_series,), int64

    Examples
    --------
    >>> from tsc_toolkit.io.datasets import make_series
    >>> X, y = make_series(60, n_clusters=3, missing_rate=0.1, short_fraction=0.2)
    >>> X.shape, sorted(set(y.tolist()))
    ((60, 1, 50), [0, 1, 2])
    """
    rng = np.random.default_rng(random_state)
    min_length = max(2, length // 2 if min_length is None else min_length)
    # Prototype parameters: bump centres, widths, heights, sine frequency and phase.
    centres = rng.uniform(0.1, 0.9, size=(n_clusters, n_channels, 2))
    widths = rng.uniform(0.04, 0.12, size=(n_clusters, n_channels, 2))
    heights = rng.choice([-1.0, 1.0], size=(n_clusters, n_channels, 2)) * rng.uniform(
        1.0, 2.0, size=(n_clusters, n_channels, 2))
    freqs = rng.permutation(np.arange(1, 1 + max(n_clusters, 4)))[:n_clusters]
    phases = rng.uniform(0, 2 * np.pi, size=(n_clusters, n_channels))

    y = np.arange(n_series) % n_clusters
    rng.shuffle(y)
    lengths = np.full(n_series, length)
    short = rng.random(n_series) < short_fraction
    lengths[short] = rng.integers(min_length, length, size=int(short.sum()), endpoint=False) \
        if length > min_length else length
    X = np.full((n_series, n_channels, length), np.nan, dtype=np.float32)
    for i in range(n_series):
        c, n_i = y[i], lengths[i]
        t = np.linspace(0.0, 1.0, n_i) + rng.normal(0, 0.02)
        amp = rng.uniform(0.8, 1.2)
        level = rng.normal(0, 0.2)
        for ch in range(n_channels):
            bumps = (heights[c, ch, :, None] * np.exp(
                -0.5 * ((t[None, :] - centres[c, ch, :, None]) / widths[c, ch, :, None]) ** 2
            )).sum(axis=0)
            wave = 0.6 * np.sin(2 * np.pi * freqs[c] * t + phases[c, ch])
            X[i, ch, :n_i] = amp * (bumps + wave) + level + rng.normal(0, noise, n_i)
    if missing_rate > 0:
        inside = np.arange(length)[None, None, :] < lengths[:, None, None]
        drop = (rng.random(X.shape) < missing_rate) & inside
        # Keep the first and last step of every series, so lengths stay as drawn.
        drop[np.arange(n_series), :, 0] = False
        drop[np.arange(n_series), :, lengths - 1] = False
        X[drop] = np.nan
    return X, y.astype(np.int64)


def write_sample_files(directory: str | os.PathLike, *, random_state: int = 0) -> dict[str, Path]:
    """Write fg-research-style train/valid/test CSVs of generated series.

    Three clusters of series of length 50 (160 train, 100 valid, 100 test), with a few
    missing values and a few shorter series, plus ``*_labels.csv`` with the true cluster
    of each row. Returns the paths written.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    X, y = make_series(360, n_clusters=3, length=50, missing_rate=0.01, short_fraction=0.03,
                       min_length=40, random_state=random_state)
    splits = {"train": slice(0, 160), "valid": slice(160, 260), "test": slice(260, 360)}
    paths = {}
    for name, part in splits.items():
        paths[name] = directory / f"{name}.csv"
        write_csv(X[part], paths[name])
        labels = directory / f"{name}_labels.csv"
        labels.write_text("".join(f"{v}\n" for v in y[part]), encoding="utf-8")
        paths[f"{name}_labels"] = labels
    return paths


def data_dir() -> Path:
    """Folder holding the bundled datasets.

    ``TSC_TOOLKIT_DATA`` overrides it; otherwise the copy inside an installed wheel, or the
    ``data/`` folder of the source checkout (:func:`tsc_toolkit.resources.bundled_dir`).
    """
    env = os.environ.get("TSC_TOOLKIT_DATA")
    if env:
        return Path(env)
    return bundled_dir("data")


def list_datasets() -> list[str]:
    """Names accepted by :func:`load_dataset`."""
    return list(REAL_DATASETS)


def load_dataset(name: str, split: str = "all") -> tuple[np.ndarray, np.ndarray]:
    """Load a bundled UCR/UEA dataset as ``(X, y)``, offline.

    Parameters
    ----------
    name : str
        One of :func:`list_datasets` (case-insensitive).
    split : {"all", "train", "test"}, default="all"
        The archive's train or test split, or both merged (train first).

    Returns
    -------
    X : ndarray of shape (n_series, n_channels, length), float32
        NaN-padded where series have different lengths.
    y : ndarray of shape (n_series,), str
        Class labels as given by the archive.

    Examples
    --------
    >>> from tsc_toolkit.io.datasets import load_dataset
    >>> X, y = load_dataset("BasicMotions")
    >>> X.shape
    (80, 6, 100)
    """
    lookup = {k.lower(): k for k in REAL_DATASETS}
    key = lookup.get(str(name).lower())
    if key is None:
        raise ValueError(f"Unknown dataset {name!r}; choose one of {list(REAL_DATASETS)}.")
    if split not in ("all", "train", "test"):
        raise ValueError(f"split must be 'all', 'train' or 'test', got {split!r}.")
    path = data_dir() / f"{key}.npz"
    if not path.exists():
        raise FileNotFoundError(
            f"{path} is missing. The real datasets ship inside the wheel and in the data/ "
            "folder of the source checkout; reinstall tsc_toolkit from a wheel or a git URL, "
            "or set TSC_TOOLKIT_DATA to the folder that holds them.")
    with np.load(path, allow_pickle=False) as f:
        parts = ["train", "test"] if split == "all" else [split]
        Xs = [f[f"X_{p}"] for p in parts]
        ys = [f[f"y_{p}"] for p in parts]
    length = max(x.shape[2] for x in Xs)
    Xs = [np.pad(x, ((0, 0), (0, 0), (0, length - x.shape[2])), constant_values=np.nan)
          for x in Xs]
    return np.concatenate(Xs).astype(np.float32), np.concatenate(ys)
