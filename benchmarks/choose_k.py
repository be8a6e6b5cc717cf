"""How often each criterion of ``scan_k`` finds the number of classes on the development panel.

The quality benchmark keeps what every default CNN-KMeans fit clustered (``features_``) when it
is run with ``--features-dir``; this script scans k on those features, one set at a time, with
``tsc_toolkit.clustering.selection.scan_k`` at its defaults (every criterion, the gap statistic with 10
reference sets), clustering each k with ``--algorithm``: ``spectral`` (the default: the
estimator's own stage, which ``scan_k(model)`` uses) or K-Means (``lloyd``, 10 restarts per k),
and counts, per criterion, the sets where the suggested k equals the number of classes and
where it is within one of it::

    python -m benchmarks.run --only quality --features-dir build/panel_features
    python -m benchmarks.choose_k --features build/panel_features   # docs/benchmarks_k.md
    python -m benchmarks.choose_k --algorithm lloyd --out docs/benchmarks_k_kmeans.md

k is scanned from 2 to ``max(12, classes + 2)``, so every set's number of classes is in range
and every scan offers at least 11 choices. The labels only score the suggestions.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from .common import REPO, auto_neighbour_counts, set_threads, to_markdown
from .panel import group
from .quality import load_features, saved_features
from .report import cpu_count, cpu_model, load_average, versions

SEED = 0
MIN_TOP = 12


def k_range(classes: int, n: int) -> range:
    """The ks scanned for a set with ``classes`` classes and ``n`` series."""
    return range(2, min(max(MIN_TOP, classes + 2), n - 1) + 1)


#: What clusters each k: the estimator's spectral stage (its defaults: the neighbour count
#: among 5, 7 and 10 chosen per k by the eigengap, local-scaling weights), or K-Means.
ALGORITHMS = ("spectral", "lloyd")
ALGORITHM = "spectral"


def scan_set(path: Path, seed: int = SEED, algorithm: str = ALGORITHM,
             metrics=None) -> dict:
    """Scan k on one saved set; the row holds every criterion's suggestion and the classes."""
    from tsc_toolkit.clustering.selection import METRICS, scan_k

    Z, y = load_features(path)
    classes = len(np.unique(y))
    ks = k_range(classes, len(Z))
    tic = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the gap's "still growing" warning is in the table
        stage = ({"clustering": "spectral"} if algorithm == "spectral" else
                 {"clustering": "kmeans", "algorithm": algorithm})
        scan = scan_k(Z, ks, metrics=METRICS if metrics is None else metrics,
                      random_state=seed, **stage)
    row = {"series": len(Z), "classes": classes, "k scanned": f"{ks.start}-{ks.stop - 1}"}
    row.update({m: scan.suggested.get(m) for m in METRICS})
    row["recommended"] = scan.best_k_
    row["seconds"] = time.perf_counter() - tic
    return row


#: A criterion that always answers 2: what a hit rate must beat on a panel with many 2-class
#: sets.
BASELINE = "always 2 (baseline)"


def summary(rows: pd.DataFrame, criteria) -> pd.DataFrame:
    """Per criterion: sets where it found the classes exactly, within one, and its mean miss."""
    out = []
    for name in [*criteria, BASELINE]:
        guess = 2 if name == BASELINE else rows[name]
        miss = (guess - rows["classes"]).abs()
        out.append({"criterion": name, "sets": len(rows),
                    "k = classes": int((miss == 0).sum()),
                    "within one": int((miss <= 1).sum()),
                    "within one (share)": f"{(miss <= 1).mean():.0%}",
                    "median abs. miss": float(miss.median())})
    return pd.DataFrame(out)


def run(folder: Path, seed: int = SEED, threads: int = 2, log=print,
        algorithm: str = ALGORITHM, metrics=None) -> pd.DataFrame:
    set_threads(threads)
    rows = []
    for name, _, path in (f for f in saved_features(folder) if f[1] == seed):
        log(f"[choose_k] {name} ...")
        rows.append({"dataset": name, "group": group(name),
                     **scan_set(path, seed, algorithm, metrics)})
    if not rows:
        raise SystemExit(f"no *-seed{seed}.npz files in {folder}: run `python -m benchmarks.run "
                         f"--only quality --features-dir {folder}` first")
    return pd.DataFrame(rows)


def _clustering(algorithm: str) -> str:
    if algorithm == "spectral":
        return ("clustered as the estimator clusters: spectral clustering of the kNN graph "
                f"with local-scaling weights, the neighbour count ({auto_neighbour_counts()}) "
                "chosen for each k by the eigengap (`n_neighbors=\"auto\"`), 10 restarts of "
                "its K-Means step, which is what `scan_k(model)` does")
    return f"clustered by K-Means (`algorithm=\"{algorithm}\"`, 10 restarts per k)"


def machine() -> tuple[str, str]:
    """The machine and the versions a scan runs with, as the report states them."""
    return (f"{cpu_model()}, {cpu_count()} cores", ", ".join(
        f"{k} {v}" for k, v in versions().items()))


def render(rows: pd.DataFrame, command: str, load_start: str, load_end: str,
           seconds: float, algorithm: str = ALGORITHM, ran_on: tuple | None = None) -> str:
    """The report of a scan; ``ran_on`` is the (machine, versions) it ran with, this machine's
    where None."""
    from tsc_toolkit.clustering.selection import METRICS, RECOMMENDED, recommended_order

    cpu, package_versions = ran_on or machine()

    order = recommended_order(algorithm)
    order_name = "RECOMMENDED" if order is RECOMMENDED else "RECOMMENDED_SPECTRAL"
    computed = [m for m in METRICS if m in rows and rows[m].notna().any()]
    skipped = [m for m in METRICS if m not in computed]
    rows = rows.drop(columns=[m for m in skipped if m in rows])
    criteria = [*computed, "recommended"]
    rows = rows.astype({m: "int64" for m in criteria})
    table = rows.copy()
    for name in criteria:
        table[name] = [f"**{v}**" if v == c else str(v)
                       for v, c in zip(table[name], table["classes"])]
    table["seconds"] = [f"{s:.1f}" for s in rows["seconds"]]
    by_group = (rows.assign(hit=(rows["recommended"] - rows["classes"]).abs() <= 1)
                .groupby("group", sort=False)["hit"].agg(["size", "sum"])
                .reset_index().rename(columns={"size": "sets", "sum": "recommended within one"}))
    from .panel import HOLDOUT

    # An independent check on sets nothing was tuned on is titled as such.
    held_out = set(rows["dataset"]) <= set(HOLDOUT)
    where, each = (("the held-out sets", "held-out set") if held_out
                   else ("the development panel", "panel set"))
    return "\n".join([
        f"# Choosing k on {where}",
        "",
        f"Written by `python -m benchmarks.choose_k`; do not edit by hand. For every {each}, "
        "the features that the default `CNNKMeans(clusters=classes, random_state=0)` clustered "
        "in the quality benchmark (`features_`: the T-Loss embedding and the random-kernel "
        f"view) are scanned with `scan_k`, each k {_clustering(algorithm)} (silhouette on "
        "2,000 sampled points; gap statistic with 10 PCA-aligned reference sets clustered the "
        "same way), k from 2 to max(12, classes + 2). A suggestion equal to the number of "
        "classes is bold. `recommended` is `KScan.best_k_`: the first criterion of "
        f"`selection.{order_name}` = {', '.join(order)}."
        + (f" Not computed in this run: {', '.join(skipped)} (`--metrics`)." if skipped else ""),
        "",
        f"Command: `{command}`. Machine: {cpu}; load average at start {load_start}, at end "
        f"{load_end}. Versions: {package_versions}. Run time: {seconds:.0f} s.",
        "",
        "## Per criterion",
        "",
        f"`{BASELINE}` answers 2 whatever the data: {int((rows['classes'] == 2).sum())} of "
        f"these {len(rows)} sets have two classes and "
        f"{int((rows['classes'] <= 3).sum())} at most three, so a criterion is only useful "
        "where it does better than that row.",
        "",
        to_markdown(summary(rows, criteria)),
        "",
        "## Recommended k by group",
        "",
        to_markdown(by_group),
        "",
        "## Per set",
        "",
        to_markdown(table),
        "",
    ])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--features", default=str(REPO / "build" / "panel_features"),
                        help="folder written by `benchmarks.run --features-dir`")
    parser.add_argument("--out", default=str(REPO / "docs" / "benchmarks_k.md"))
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--algorithm", choices=ALGORITHMS, default=ALGORITHM,
                        help="what clusters each k (default: the estimator's spectral stage)")
    parser.add_argument("--metrics", nargs="+", metavar="CRITERION",
                        help="criteria to compute (default: all; the gap statistic of a "
                             "spectral scan clusters 10 reference sets per k spectrally, "
                             "the costly part)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--render", metavar="CSV",
                        help="write the report from a per-set table this script saved")
    args = parser.parse_args(argv)
    out = Path(args.out)
    if args.render:  # the run's own command, load, time and machine are in the saved table
        rows = pd.read_csv(args.render)
        meta = {k: rows.pop(k).iloc[0]
                for k in ("command", "load_start", "load_end", "run_seconds")}
        # a table saved before --algorithm existed was a K-Means scan
        algorithm = rows.pop("algorithm").iloc[0] if "algorithm" in rows else "lloyd"
        ran_on = tuple(rows.pop(k).iloc[0] if k in rows else "not recorded"
                       for k in ("machine", "versions"))
        out.write_text(render(rows, meta["command"], meta["load_start"], meta["load_end"],
                              float(meta["run_seconds"]), algorithm, ran_on))
        print(f"[choose_k] wrote {out}")
        return 0
    load_start, tic = load_average(), time.perf_counter()
    rows = run(Path(args.features), args.seed, args.threads, algorithm=args.algorithm,
               metrics=args.metrics)
    command = ("python -m benchmarks.choose_k " + " ".join(
        argv if argv is not None else sys.argv[1:])).strip()
    load_end, seconds = load_average(), time.perf_counter() - tic
    ran_on = machine()
    rows.assign(command=command, load_start=load_start, load_end=load_end, run_seconds=seconds,
                algorithm=args.algorithm, machine=ran_on[0], versions=ran_on[1]).to_csv(
        out.with_suffix(".csv"), index=False)
    out.write_text(render(rows, command, load_start, load_end, seconds, args.algorithm, ran_on))
    print(f"[choose_k] wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
