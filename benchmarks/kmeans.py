"""WebScaleKMeans against scikit-learn's KMeans and MiniBatchKMeans, and fitting from a file.

1. Speed and quality on Gaussian blobs (``sklearn.datasets.make_blobs``, float32): wall time of
   ``fit`` and the mean squared distance (msd) of every point to its nearest center, computed
   the same way for all three, with the ratio to KMeans(n_init=10).
2. Memory: WebScaleKMeans fits a memory-mapped ``.npy`` file in a separate process whose
   private memory is capped with ``RLIMIT_DATA`` below the file size. The file's pages
   are shared, read-only and dropped by the kernel under pressure, so they do not count
   against the cap; every array the process allocates does. The child also checks that the
   cap is real: allocating one array the size of the file must fail.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from .common import (
    Config,
    Section,
    Timer,
    peak_rss_mib,
    reset_peak_rss,
    rss_mib,
    run_child,
    set_threads,
    to_markdown,
)

WEBSCALE = "tsc_toolkit WebScaleKMeans"
KMEANS = "sklearn KMeans(n_init=10)"
MINIBATCH = "sklearn MiniBatchKMeans"


def msd(X: np.ndarray, centers: np.ndarray, chunk: int = 200_000) -> float:
    """Mean squared Euclidean distance of each point to its nearest center."""
    centers = np.asarray(centers, dtype=np.float64)
    c2 = (centers ** 2).sum(1)
    total = 0.0
    for start in range(0, len(X), chunk):
        x = np.asarray(X[start:start + chunk], dtype=np.float64)
        d2 = (x ** 2).sum(1)[:, None] - 2 * x @ centers.T + c2[None, :]
        total += np.maximum(d2.min(1), 0).sum()
    return total / len(X)


def blobs(n: int, dim: int, k: int, seed: int = 0) -> np.ndarray:
    from sklearn.datasets import make_blobs

    X, _ = make_blobs(n_samples=n, n_features=dim, centers=k, random_state=seed)
    return X.astype(np.float32)


def compare(cfg: Config) -> pd.DataFrame:
    from sklearn.cluster import KMeans, MiniBatchKMeans

    from tsc_toolkit.clustering.kmeans import WebScaleKMeans

    X = blobs(cfg.kmeans_n, cfg.kmeans_dim, cfg.kmeans_k)
    k = cfg.kmeans_k
    models = {
        WEBSCALE: lambda: WebScaleKMeans(k=k, random_state=0, device="cpu"),
        KMEANS: lambda: KMeans(n_clusters=k, n_init=10, random_state=0),
        MINIBATCH: lambda: MiniBatchKMeans(n_clusters=k, random_state=0),
    }
    rows = []
    for name, make in models.items():
        model = make()
        with Timer() as t:
            model.fit(X)
        rows.append({"method": name, "seconds": t.seconds,
                     "msd": msd(X, model.cluster_centers_)})
    table = pd.DataFrame(rows)
    ref = table.loc[table.method == KMEANS, "msd"].iloc[0]
    table["msd_ratio"] = table.msd / ref
    ref_t = table.loc[table.method == KMEANS, "seconds"].iloc[0]
    table["speedup_vs_kmeans"] = ref_t / table.seconds
    return table


def _vm_data_mib() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmData:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _memmap_child(path: str, bound_mib: int, k: int, threads: int) -> dict:
    import resource

    set_threads(threads)
    from tsc_toolkit.clustering.kmeans import WebScaleKMeans

    X = np.load(path, mmap_mode="r")
    file_mib = os.path.getsize(path) / 2 ** 20
    # Warm up torch's kernels on a small slice, so one-off allocations happen before the cap.
    WebScaleKMeans(k=k, random_state=0, device="cpu").fit(np.array(X[:20_000]))
    base = _vm_data_mib()
    limit = int((base + bound_mib) * 2 ** 20) if bound_mib else resource.RLIM_INFINITY
    resource.setrlimit(resource.RLIMIT_DATA, (limit, resource.getrlimit(resource.RLIMIT_DATA)[1]))
    reset_peak_rss()
    rss0 = rss_mib()
    with Timer() as t:
        model = WebScaleKMeans(k=k, random_state=0, device="cpu").fit(X)
    fit_msd = model.msd_
    enforced = False
    if bound_mib:
        try:
            np.ones(int(file_mib * 2 ** 20) // 8)
        except MemoryError:
            enforced = True
    return {"file_mib": file_mib, "points": int(X.shape[0]), "vmdata_before_mib": base,
            "bound_mib": bound_mib, "seconds": t.seconds,
            "msd": fit_msd, "rss_before_mib": rss0, "peak_rss_mib": peak_rss_mib(),
            "vmdata_after_mib": _vm_data_mib(), "cap_enforced": enforced}


def memmap_run(cfg: Config) -> dict:
    from numpy.lib.format import open_memmap

    with tempfile.TemporaryDirectory(prefix="tsc-bench-") as tmp:
        path = Path(tmp) / "points.npy"
        out = open_memmap(path, mode="w+", dtype=np.float32,
                          shape=(cfg.memmap_n, cfg.kmeans_dim))
        rng = np.random.default_rng(1)
        centres = rng.uniform(-10, 10, size=(cfg.kmeans_k, cfg.kmeans_dim)).astype(np.float32)
        step = 500_000
        for start in range(0, cfg.memmap_n, step):
            stop = min(cfg.memmap_n, start + step)
            lab = rng.integers(0, cfg.kmeans_k, stop - start)
            out[start:stop] = centres[lab] + rng.standard_normal((stop - start, cfg.kmeans_dim),
                                                                 dtype=np.float32)
        out.flush()
        del out
        return run_child("benchmarks.kmeans", {"path": str(path), "k": cfg.kmeans_k,
                                               "threads": cfg.threads,
                                               "bound_mib": cfg.memmap_bound_mib})


def run(cfg: Config) -> Section:
    section = Section("kmeans", "K-Means: web-scale mini-batch against scikit-learn")
    with Timer() as total:
        table = compare(cfg)
        section.tables["compare"] = table
        try:
            mem = memmap_run(cfg)
        except Exception as exc:  # report the comparison even if the capped fit fails
            mem = None
            section.notes.append(f"The memory-mapped fit failed: {exc}"[:600])
    section.seconds = total.seconds
    section.markdown["compare"] = to_markdown(pd.DataFrame({
        "method": table.method, "fit time": [f"{s:.2f} s" for s in table.seconds],
        "msd": [f"{m:.4f}" for m in table.msd],
        "msd / KMeans msd": [f"{r:.4f}" for r in table.msd_ratio],
        "speed-up vs KMeans": [f"{s:.1f}x" for s in table.speedup_vs_kmeans],
    }))
    section.intro = _intro(cfg)
    if mem is None:
        section.markdown["memmap"] = "(not measured: see the note below)"
        return section
    section.tables["memmap"] = pd.DataFrame([mem])
    mem_rows = [
        ("points in the file", f"{mem['points']:,} x {cfg.kmeans_dim} float32"),
        ("file size", f"{mem['file_mib']:.0f} MiB"),
        ("cap on new private memory (RLIMIT_DATA above VmData)", f"**{mem['bound_mib']} MiB**"),
        ("malloc", "glibc default (no tuning variables)"),
        ("private memory before the fit (VmData)", f"{mem['vmdata_before_mib']:.0f} MiB"),
        ("private memory after the fit (VmData)", f"{mem['vmdata_after_mib']:.0f} MiB"),
        ("growth of private memory",
         f"{mem['vmdata_after_mib'] - mem['vmdata_before_mib']:.0f} MiB"),
        ("of which labels_ and distances (12 bytes per point)",
         f"{mem['points'] * 12 / 2 ** 20:.0f} MiB"),
        ("resident memory before / peak (includes the file's cached pages)",
         f"{mem['rss_before_mib']:.0f} / {mem['peak_rss_mib']:.0f} MiB"),
        ("fit time (includes labelling every point)", f"{mem['seconds']:.1f} s"),
        ("msd", f"{mem['msd']:.4f}"),
        ("cap enforced (an array the size of the file cannot be allocated)",
         "yes" if mem["cap_enforced"] else "NO"),
    ]
    section.markdown["memmap"] = to_markdown(pd.DataFrame(
        mem_rows, columns=["", "capped run"]))
    return section


def _intro(cfg: Config) -> str:
    return (
        f"{cfg.kmeans_n:,} points x {cfg.kmeans_dim} features, {cfg.kmeans_k} Gaussian blobs "
        f"(`make_blobs(random_state=0)`, unit spread), float32, {cfg.threads} CPU threads. "
        f"`WebScaleKMeans(k={cfg.kmeans_k}, random_state=0, device=\"cpu\")` at SageMaker's "
        "defaults (mini-batch 5000, 1 epoch, center_factor auto = 10, 10 shrink trials); "
        f"`KMeans(n_clusters={cfg.kmeans_k}, n_init=10, random_state=0)` (Lloyd); "
        f"`MiniBatchKMeans(n_clusters={cfg.kmeans_k}, random_state=0)` at its defaults "
        "(batch 1024). Times are one fit each; `fit` of WebScaleKMeans includes labelling every "
        "point (`labels_`), scikit-learn's fits also compute `labels_`.\n\n"
        + __doc__.split("2. ", 1)[1].replace("\n   ", " ").strip()
        + " The allocator runs with glibc's defaults. `fit` keeps `labels_` for every point "
        "(8 bytes each, plus 4 for the distances, both allocated once at their final size), "
        "so private memory grows with the number of points by about a tenth of the file size "
        "for 32 features; the streaming part itself is constant in memory."
    )


def _child_main(argv) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--child", required=True)
    p = json.loads(parser.parse_args(argv).child)
    print(json.dumps(_memmap_child(p["path"], int(p["bound_mib"]), int(p["k"]),
                                   int(p["threads"]))))


if __name__ == "__main__":
    _child_main(sys.argv[1:])
