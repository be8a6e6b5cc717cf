"""Settings, result containers and small helpers shared by the benchmark sections."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parent.parent

#: The seven labelled UCR/UEA sets bundled in ``data/`` (taken from the aeon and sktime wheels).
DATASETS = ("GunPoint", "ArrowHead", "OSULeaf", "ItalyPowerDemand", "BasicMotions",
            "JapaneseVowels", "PLAID")


@dataclass
class Config:
    """Sizes and budgets of one benchmark run; :meth:`full_size` and :meth:`fast_size` are the presets."""

    fast: bool = False
    threads: int = 2
    isolate: bool = True  # scaling points in fresh processes
    verbose: bool = False  # one progress line per fit
    # quality
    datasets: Sequence[str] = ()  # empty: the development panel (benchmarks.panel.PANEL)
    seeds: Sequence[int] = (0, 1, 2)
    methods: Sequence[str] = ()  # empty: every method of benchmarks.quality.METHODS
    cnn_max_steps: int | None = None  # None: CNNKMeans at its defaults
    peer_budget_s: float = 120.0
    # peers' runs are stored here and reused while the peers' versions stay the same
    peer_cache: str | None = str(REPO / "docs" / "peer_runs.csv")
    # training speed
    speed_series: int = 100
    speed_length: int = 100
    speed_steps: int = 300
    speed_warmup_steps: int = 30
    # scaling
    encode_n: Sequence[int] = (1_000, 10_000, 100_000, 1_000_000)
    encode_length_n: int = 128
    encode_lengths: Sequence[int] = (100, 300, 1000, 3000, 10000)
    cluster_n: Sequence[int] = (1_000, 10_000, 100_000, 1_000_000)
    webscale_n: Sequence[int] = (10_000, 100_000, 1_000_000)
    kscan_n: Sequence[int] = (1_000, 10_000, 100_000)
    projection_n: Sequence[int] = (1_000, 10_000, 100_000, 1_000_000)
    embedding_dim: int = 320
    # K-Means
    kmeans_n: int = 1_000_000
    kmeans_dim: int = 32
    kmeans_k: int = 20
    memmap_n: int = 8_000_000
    memmap_bound_mib: int = 384
    extra: dict = field(default_factory=dict)

    @classmethod
    def full_size(cls) -> Config:
        return cls()

    @classmethod
    def fast_size(cls) -> Config:
        """A run of every section small enough for CI (well under two minutes on 2 cores)."""
        return cls(fast=True, isolate=False, datasets=("BasicMotions", "Chinatown",
                                                        "PowerCons-gaps30"), seeds=(0,),
                   cnn_max_steps=2, peer_budget_s=4.0, peer_cache=None,
                   speed_series=20, speed_length=30, speed_steps=2, speed_warmup_steps=1,
                   encode_n=(10, 20), encode_length_n=4, encode_lengths=(30, 60),
                   cluster_n=(500, 1000), webscale_n=(1000, 2000), kscan_n=(100, 200),
                   projection_n=(500, 1000), embedding_dim=32,
                   kmeans_n=20_000, memmap_n=1_000_000, memmap_bound_mib=96)


@dataclass
class Section:
    """One part of the report: tables (tidy DataFrames) plus the text that explains them."""

    key: str
    title: str
    intro: str = ""
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    markdown: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0


def set_threads(threads: int) -> None:
    """Use ``threads`` CPU threads in torch and in the BLAS/OpenMP libraries."""
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, str(threads))
    # numba's OpenMP layer (used by aeon's MiniRocket and tslearn's KShape) leaves its threads
    # spinning after a parallel region, next to torch's own OpenMP threads: measured, every
    # later CNN-KMeans fit in the same process ran 1.5x slower. Its workqueue layer sleeps
    # between regions and ran the peers' fits in the same time.
    os.environ.setdefault("NUMBA_THREADING_LAYER", "workqueue")
    import torch

    torch.set_num_threads(threads)


class Timer:
    """Wall-clock timer used as a context manager: ``with Timer() as t: ...; t.seconds``."""

    def __enter__(self) -> Timer:
        self.start = time.perf_counter()
        self.seconds = float("nan")
        return self

    def __exit__(self, *exc) -> None:
        self.seconds = time.perf_counter() - self.start


def znormalize(X: np.ndarray) -> np.ndarray:
    """z-normalise each series and channel over its observed values (NaN stays NaN)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.nanmean(X, axis=2, keepdims=True)
        std = np.nanstd(X, axis=2, keepdims=True)
    std = np.where(np.isfinite(std) & (std > 1e-8), std, 1.0)
    return ((X - np.nan_to_num(mean)) / std).astype(np.float32)


def resample_to_max(X: np.ndarray) -> np.ndarray:
    """Linearly resample every (trailing-NaN padded) series to the full length of ``X``.

    Interior NaN are filled by linear interpolation first. Equal-length input is returned
    unchanged.
    """
    if not np.isnan(X).any():
        return X
    n, c, length = X.shape
    out = np.empty_like(X)
    grid = np.linspace(0.0, 1.0, length)
    for i in range(n):
        for ch in range(c):
            row = X[i, ch]
            observed = np.flatnonzero(~np.isnan(row))
            if observed.size == 0:
                out[i, ch] = 0.0
                continue
            last = observed[-1] + 1
            seg = row[:last]
            if observed.size < last:
                seg = np.interp(np.arange(last), observed, row[observed])
            out[i, ch] = np.interp(grid, np.linspace(0.0, 1.0, last), seg) if last > 1 else seg[0]
    return out


def fit_exponent(x: Sequence[float], y: Sequence[float]) -> float:
    """Slope of log(y) against log(x): the exponent b of y ~ a * x**b (NaN if < 2 points)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    keep = np.isfinite(x) & np.isfinite(y) & (x > 0) & (y > 0)
    if keep.sum() < 2:
        return float("nan")
    return float(np.polyfit(np.log(x[keep]), np.log(y[keep]), 1)[0])


def mean_std(values: Sequence[float], digits: int = 3) -> str:
    """``mean ± std`` of finite values (std over seeds, ddof=0), or "–" when there are none."""
    v = np.asarray([x for x in values if x is not None and np.isfinite(x)], float)
    if v.size == 0:
        return "–"
    if v.size == 1:
        return f"{v[0]:.{digits}f}"
    return f"{v.mean():.{digits}f} ± {v.std():.{digits}f}"


def fmt_seconds(s: float) -> str:
    if s is None or not np.isfinite(s):
        return "–"
    if s < 10:
        return f"{s:.2f} s"
    if s < 600:
        return f"{s:.0f} s"
    return f"{s / 60:.1f} min"


def fmt_number(x: float, digits: int = 3) -> str:
    if x is None or not np.isfinite(x):
        return "–"
    if x == 0:
        return "0"
    magnitude = math.floor(math.log10(abs(x)))
    if magnitude >= 5:
        return f"{x:.3g}"
    decimals = max(0, digits - 1 - magnitude)
    return f"{x:,.{decimals}f}"


def auto_neighbour_counts() -> str:
    """The neighbour counts that ``n_neighbors="auto"`` chooses among, as prose ("5, 7 or 10")."""
    from tsc_toolkit.clustering.graph_clustering import AUTO_NEIGHBORS

    return ", ".join(str(c) for c in AUTO_NEIGHBORS[:-1]) + f" or {AUTO_NEIGHBORS[-1]}"


def to_markdown(df: pd.DataFrame) -> str:
    """A GitHub markdown table of ``df`` (cells are written as they are, strings or numbers;
    a ``|`` inside a cell is escaped, so that a name such as "x | embedding alone" stays one
    cell)."""
    cols = [str(c).replace("|", "\\|") for c in df.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for row in df.itertuples(index=False):
        cells = []
        for value in row:
            if isinstance(value, float):
                cells.append(fmt_number(value))
            else:
                cells.append(str(value).replace("|", "\\|"))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def run_child(module: str, payload: dict, timeout: float = 1800,
              env_extra: dict | None = None) -> dict:
    """Run ``python -m module --child JSON`` in a fresh interpreter and return its JSON answer.

    A fresh process per measurement keeps memory held by the allocator from earlier
    measurements out of its peak.
    """
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.update(env_extra or {})
    if "threads" in payload:  # before numpy loads its BLAS in the child
        for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            env[var] = str(payload["threads"])
    proc = subprocess.run([sys.executable, "-m", module, "--child", json.dumps(payload)],
                          capture_output=True, text=True, timeout=timeout, env=env, cwd=REPO)
    if proc.returncode != 0:
        raise RuntimeError(f"{module} child failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _status_mib(field_name: str) -> float:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(field_name + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def rss_mib() -> float:
    """Resident memory of this process now, in MiB (Linux ``VmRSS``)."""
    return _status_mib("VmRSS")


def peak_rss_mib() -> float:
    """Peak resident memory of this process since start or :func:`reset_peak_rss` (``VmHWM``).

    Not ``ru_maxrss``: a child process inherits its parent's ``ru_maxrss`` across fork and exec.
    """
    return _status_mib("VmHWM")


def reset_peak_rss() -> bool:
    """Reset ``VmHWM`` to the current resident size (Linux >= 4.0); False if not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


class PeakMemory:
    """Context manager: extra peak resident memory (MiB) of the block over the memory before it.

    ``with PeakMemory() as m: ...; m.extra_mib``. Memory freed earlier but kept by the
    allocator is reused without raising the peak, so run each measurement in a fresh process
    for a clean number.
    """

    def __enter__(self) -> PeakMemory:
        self.exact = reset_peak_rss()
        self.before = rss_mib() if self.exact else peak_rss_mib()
        return self

    def __exit__(self, *exc) -> None:
        self.peak = peak_rss_mib()
        self.extra_mib = max(0.0, self.peak - self.before)
