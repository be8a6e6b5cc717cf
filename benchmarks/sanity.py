"""Sanity suite: easy data, where the right clusters are plain to see.

The bundled sample files (``data/train.csv`` with its labels, three kinds of series) and
``make_series`` across sizes (50 to 2,000 series), k (2 to 10), lengths, channels, gaps and
varying lengths, each at several seeds (the seed makes the data and seeds the fit). For every
case the default :class:`tsc_toolkit.CNNKMeans` is fitted and K-Means (10 restarts, the fit's
seed) clusters the same ``features_``. The rule: **wherever K-Means on the features reaches NMI
>= 0.95, the default must too** — a clustering stage may win on hard data, but it must not lose
what any simple method finds. Each fit also scans k as ``scan_k(model)`` does (spectral,
silhouette: the recommended k) and counts the cases where it recommends the true k::

    python -m benchmarks.sanity                         # docs/benchmarks_sanity.md, ~12 min
    python -m benchmarks.sanity --features-dir build/sanity_features
    python -m benchmarks.clustering_stages --features build/sanity_features --out ...

``--features-dir`` keeps what each fit clustered, in the quality benchmark's format, so other
clustering stages can be compared on the same features without training again.
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
from .report import cpu_count, cpu_model, load_average, versions

#: NMI that counts as "found the clusters".
FOUND = 0.95
#: The cases: ``make_series`` arguments, or ``"sample"`` for the bundled sample files.
CASES: dict[str, dict | str] = {
    "sample": "sample",
    "n50-k2": dict(n_series=50, n_clusters=2, length=50),
    "n100-k3-gaps": dict(n_series=100, n_clusters=3, length=100, missing_rate=0.1),
    "n160-k3-short": dict(n_series=160, n_clusters=3, length=50, missing_rate=0.02,
                          short_fraction=0.3),
    "n200-k2-len500": dict(n_series=200, n_clusters=2, length=500),
    "n300-k4": dict(n_series=300, n_clusters=4, length=150),
    "n300-k5-short": dict(n_series=300, n_clusters=5, length=100, short_fraction=0.5),
    "n500-k6-3ch": dict(n_series=500, n_clusters=6, length=64, n_channels=3),
    "n500-k8-gaps": dict(n_series=500, n_clusters=8, length=128, missing_rate=0.2),
    "n1000-k10": dict(n_series=1000, n_clusters=10, length=100),
    "n1000-k3-mixed": dict(n_series=1000, n_clusters=3, length=300, missing_rate=0.05,
                           short_fraction=0.5),
    "n2000-k5": dict(n_series=2000, n_clusters=5, length=150),
}
SEEDS = (0, 1, 2)
#: A few small cases for the unit tests (tests/test_sanity.py).
FAST = ("sample", "n50-k2", "n300-k4")


def sample_file(split: str) -> tuple[np.ndarray, np.ndarray]:
    """The bundled sample's ``split`` ("train", "valid" or "test") and its true kinds."""
    from tsc_toolkit import read_csv
    from tsc_toolkit.io.datasets import data_dir

    folder = data_dir()
    return (read_csv(folder / f"{split}.csv"),
            np.loadtxt(folder / f"{split}_labels.csv", dtype=np.int64))


def case_data(name: str, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The series and their true kinds for case ``name`` at ``seed``. The sample files are
    the same at every seed (the seed still seeds the fit)."""
    spec = CASES[name]
    if spec == "sample":
        return sample_file("train")
    from tsc_toolkit.io.datasets import make_series

    return make_series(**spec, random_state=seed)


def kmeans_labels(features: np.ndarray, k: int, seed: int) -> np.ndarray:
    """K-Means on the features, as the suite's reference: the estimator's clustering stage
    with ``clustering="kmeans"`` (Lloyd, 10 restarts), the fit's seed."""
    from tsc_toolkit.clustering import FeatureClusterer

    return FeatureClusterer(k, clustering="kmeans", random_state=seed).fit(features).labels_


def recommended_k(model_or_features, k: int, seed: int) -> int:
    """The k ``scan_k`` recommends (the silhouette of the estimator's own stage), scanned over
    the same range as the k benchmark (2 to max(12, k + 2))."""
    from tsc_toolkit.clustering.selection import scan_k

    from .choose_k import k_range

    n = len(getattr(model_or_features, "features_", model_or_features))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scan = scan_k(model_or_features, k_range(k, n), metrics=("silhouette",),
                      random_state=seed)
    return int(scan.best_k_)


def fit_case(name: str, seed: int, features_dir=None, scan: bool = True,
             **params) -> dict:
    """Fit the default model on one case and score it against K-Means on its features.

    ``params`` change the model's settings (none by default: the suite checks the defaults)."""
    from tsc_toolkit import CNNKMeans
    from tsc_toolkit.cnn_kmeans import fit_seed

    X, y = case_data(name, seed)
    k = len(np.unique(y))
    tic = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = CNNKMeans(clusters=k, random_state=seed, **params).fit(X)
    seconds = time.perf_counter() - tic
    reference = kmeans_labels(model.features_, k, fit_seed(seed))
    row = {"case": name, "seed": seed, "n": len(X), "k": k,
           "default": normalized_mutual_info_score(y, model.labels_),
           "kmeans": normalized_mutual_info_score(y, reference),
           "neighbours": getattr(model, "n_neighbors_", np.nan),
           "seconds": seconds}
    row["passes"] = bool(row["kmeans"] < FOUND or row["default"] >= FOUND)
    if CASES[name] == "sample":  # the demo's second promise: new series get the right kind
        X_test, y_test = sample_file("test")
        row["test NMI"] = normalized_mutual_info_score(y_test, model.predict(X_test))
    if scan:
        row["recommended k"] = recommended_k(model, k, fit_seed(seed))
    if features_dir is not None:
        from .quality import save_features

        save_features(features_dir, name, seed, model.features_, y)
    return row


def run(cases=tuple(CASES), seeds=SEEDS, features_dir=None, scan: bool = True,
        log=print, **params) -> pd.DataFrame:
    rows = []
    for name in cases:
        for seed in seeds:
            row = fit_case(name, seed, features_dir, scan, **params)
            rows.append(row)
            log(f"[sanity] {name} seed {seed}: default {row['default']:.3f}, K-Means "
                f"{row['kmeans']:.3f}, {row['seconds']:.1f} s")
    return pd.DataFrame(rows)


def failures(runs: pd.DataFrame) -> pd.DataFrame:
    """The fits that break the rule: K-Means found the clusters and the default did not."""
    return runs[~runs.passes]


def summary(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per case: mean NMI of the default and of K-Means over seeds, fits passing,
    and (when scanned) fits whose recommended k is the true k."""
    g = runs.groupby("case", sort=False)
    out = pd.DataFrame({
        "series": g.n.first(), "k": g.k.first(),
        "default NMI": g["default"].mean(), "K-Means NMI": g["kmeans"].mean(),
        "lowest default": g["default"].min(),
        "pass": g.passes.sum().astype(int).astype(str) + " of " + g.size().astype(str),
        "median s": g.seconds.median(),
    })
    if "recommended k" in runs:
        right = (runs["recommended k"] == runs.k).groupby(runs.case, sort=False)
        out["k right"] = right.sum().astype(int).astype(str) + " of " + right.size().astype(str)
        out["recommended k"] = g["recommended k"].agg(lambda s: ", ".join(map(str, s)))
    return out.reset_index()


def report(runs: pd.DataFrame, command: str, load: tuple, seconds: float) -> str:
    failed = failures(runs)
    eligible = runs[runs.kmeans >= FOUND]
    lines = [
        "# Sanity suite: easy data",
        "",
        "Written by `python -m benchmarks.sanity`; do not edit by hand. " + __doc__.split(
            "\n\n")[1].replace("\n", " "),
        "",
        f"Command: `{command.strip()}`. Machine: {cpu_model()}, {cpu_count()} cores; load "
        f"average at start {load[0]}, at end {load[1]}. Fits: {len(runs)}. Run time: "
        f"{seconds:.0f} s. Versions: "
        + ", ".join(f"{k} {v}" for k, v in versions().items()) + ".",
        "",
        f"**{len(eligible) - len(failed)} of {len(eligible)} fits where K-Means "
        f"on the features reaches NMI >= {FOUND} reach it with the default too** "
        f"({len(failed)} fail the rule).",
    ]
    if "recommended k" in runs:
        right = int((runs["recommended k"] == runs.k).sum())
        lines.append(f"Recommended k (`scan_k(model)`) is the true k on {right} of "
                     f"{len(runs)} fits.")
    lines += ["", "## Cases", "", to_markdown(summary(runs)), ""]
    if len(failed):
        lines += ["## Fits that fail the rule", "", to_markdown(failed), ""]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.sanity",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", default=",".join(CASES),
                        help="comma-separated cases (default: all)")
    parser.add_argument("--seeds", default=",".join(map(str, SEEDS)))
    parser.add_argument("--out", default=str(REPO / "docs" / "benchmarks_sanity.md"))
    parser.add_argument("--features-dir", default=None,
                        help="keep what each fit clustered (for benchmarks.clustering_stages)")
    parser.add_argument("--no-scan", action="store_true", help="skip the recommended k")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    unknown = set(cases) - set(CASES)
    if unknown:
        parser.error(f"unknown case(s): {', '.join(sorted(unknown))}")
    seeds = tuple(int(s) for s in args.seeds.split(","))
    set_threads(args.threads)
    load_start, tic = load_average(), time.perf_counter()
    runs = run(cases, seeds, args.features_dir, scan=not args.no_scan)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    runs.to_csv(out.with_suffix(".csv"), index=False)
    command = "python -m benchmarks.sanity " + " ".join(argv if argv is not None
                                                         else sys.argv[1:])
    out.write_text(report(runs, command, (load_start, load_average()),
                          time.perf_counter() - tic))
    print(f"[sanity] wrote {out}")
    return 1 if len(failures(runs)) else 0


if __name__ == "__main__":
    sys.exit(main())
