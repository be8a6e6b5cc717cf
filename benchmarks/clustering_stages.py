"""Clustering stages compared on the features the default CNN-KMeans fits clustered.

The quality benchmark run with ``--features-dir`` keeps, for every set and seed, what the
default model clustered (``features_``: the 320-d T-Loss embedding, then the 50-d random-kernel
view). This script reclusters those features with other stages, so a change of the clustering
stage is measured on the whole panel and every seed without training again::

    python -m benchmarks.run --only quality --features-dir build/panel_features
    python -m benchmarks.clustering_stages --features build/panel_features

``spectral10`` is the default stage and reproduces the quality table's CNN-KMeans numbers
(same features, same seed); the others change one thing each. It writes
docs/benchmarks_stages.md and the per-fit table next to it (.csv).
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import normalized_mutual_info_score

from .common import REPO, set_threads, to_markdown
from .panel import group
from .quality import load_features, saved_features
from .report import cpu_count, cpu_model, load_average

#: Width of the embedding at the front of ``features_`` (the default encoder's output).
EMBEDDING = 320


def _spectral(n_neighbors=10, view=slice(None), kernel_weight=1.0):
    def fit(Z, k, seed):
        from tsc_toolkit.graph_clustering import spectral_labels

        Z = Z.copy()
        Z[:, EMBEDDING:] *= kernel_weight
        return spectral_labels(Z[:, view], k, n_neighbors, seed)
    return fit


def _kmeans(Z, k, seed):
    from sklearn.cluster import KMeans

    return KMeans(k, n_init=10, random_state=seed).fit_predict(Z)


def _ward(Z, k, seed):
    from sklearn.cluster import AgglomerativeClustering

    return AgglomerativeClustering(k).fit_predict(Z)


def _self_tuning(Z, k, seed, n_neighbors=10, scale_neighbor=7):
    """Spectral clustering of the kNN graph with Zelnik-Manor and Perona's local scaling."""
    from scipy.sparse import csr_matrix
    from sklearn.cluster import SpectralClustering
    from sklearn.neighbors import NearestNeighbors

    n = len(Z)
    nn = min(n_neighbors, n - 1)
    dist, idx = NearestNeighbors(n_neighbors=nn + 1).fit(Z).kneighbors(Z)
    sigma = dist[:, min(scale_neighbor, nn)] + 1e-12
    rows, cols = np.repeat(np.arange(n), nn), idx[:, 1:].ravel()
    weights = np.exp(-dist[:, 1:].ravel() ** 2 / (sigma[rows] * sigma[cols]))
    A = csr_matrix((weights, (rows, cols)), shape=(n, n))
    return SpectralClustering(k, affinity="precomputed", random_state=seed,
                              n_init=10).fit_predict(A.maximum(A.T))


STAGES = {
    "spectral10": _spectral(),
    "kmeans": _kmeans,
    "ward": _ward,
    "spectral7": _spectral(7),
    "spectral15": _spectral(15),
    "self-tuning10": _self_tuning,
    "kernel view x0.5": _spectral(kernel_weight=0.5),
    "kernel view x2": _spectral(kernel_weight=2.0),
    "embedding only": _spectral(view=slice(0, EMBEDDING)),
    "kernel view only": _spectral(view=slice(EMBEDDING, None)),
}
DEFAULT = "spectral10"


def run(folder: Path, stages=tuple(STAGES), log=print) -> pd.DataFrame:
    rows = []
    for name, seed, path in saved_features(folder):
        Z, y = load_features(path)
        k = len(np.unique(y))
        for stage in stages:
            tic = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                labels = STAGES[stage](Z, k, seed)
            rows.append({"dataset": name, "group": group(name), "seed": seed, "stage": stage,
                         "nmi": normalized_mutual_info_score(y, labels),
                         "seconds": time.perf_counter() - tic})
        log(f"[stages] {name} seed {seed}")
    if not rows:
        raise SystemExit(f"no saved fits in {folder}: run `python -m benchmarks.run --only "
                         f"quality --features-dir {folder}` first")
    return pd.DataFrame(rows)


def tables(runs: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Panel means, group means and per-set means (over seeds) of every stage's NMI."""
    stages = list(dict.fromkeys(runs.stage))
    per_set = (runs.groupby(["dataset", "stage"], sort=False).nmi.mean().unstack()[stages]
               .reset_index())
    panel = runs.groupby(["dataset", "stage"], sort=False).nmi.mean().unstack()[stages].mean()
    by_group = (runs.groupby(["group", "stage"], sort=False).nmi.mean().unstack()[stages]
                .reset_index())
    summary = pd.DataFrame({"stage": stages, "panel mean NMI": panel.to_numpy(),
                            "vs default": (panel - panel.get(DEFAULT, np.nan)).to_numpy()})
    return {"summary": summary, "groups": by_group, "sets": per_set}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--features", default=str(REPO / "build" / "panel_features"))
    parser.add_argument("--out", default=str(REPO / "docs" / "benchmarks_stages.md"))
    parser.add_argument("--stages", default=",".join(STAGES))
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    stages = [s.strip() for s in args.stages.split(",") if s.strip()]
    unknown = set(stages) - set(STAGES)
    if unknown:
        parser.error(f"unknown stage(s): {', '.join(sorted(unknown))}")
    set_threads(args.threads)
    load_start, tic = load_average(), time.perf_counter()
    runs = run(Path(args.features), stages)
    out = Path(args.out)
    runs.to_csv(out.with_suffix(".csv"), index=False)
    t = tables(runs)
    command = "python -m benchmarks.clustering_stages " + " ".join(
        argv if argv is not None else sys.argv[1:])
    out.write_text("\n".join([
        "# Clustering stages on the saved features of the development panel",
        "",
        "Written by `python -m benchmarks.clustering_stages`; do not edit by hand. The "
        "features that every default CNN-KMeans fit of the quality benchmark clustered "
        "(320-d T-Loss embedding, then the 50-d random-kernel view) are reclustered by each "
        f"stage with the fit's seed; `{DEFAULT}` is the default stage (spectral clustering of "
        "the 10-nearest-neighbour graph) and reproduces the quality table. NMI against the "
        "classes, mean over seeds, then over sets.",
        "",
        f"Command: `{command.strip()}`. Machine: {cpu_model()}, {cpu_count()} cores; load "
        f"average at start {load_start}, at end {load_average()}. Fits: "
        f"{runs[['dataset', 'seed']].drop_duplicates().shape[0]}. Run time: "
        f"{time.perf_counter() - tic:.0f} s.",
        "",
        "## Panel", "", to_markdown(t["summary"]), "",
        "## Groups", "", to_markdown(t["groups"]), "",
        "## Sets", "", to_markdown(t["sets"]), "",
    ]))
    print(f"[stages] wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
