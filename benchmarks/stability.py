"""Does a fit's answer hold when its input barely changes? On each development panel set, a
fit on the series and a fit on the same series with relative noise of 1e-6 added (the same
seed), and the NMI between the two partitions (1: the same partition).

    python -m benchmarks.stability --variant "per-set training (default)" --out build/s.md

The variants are those of :mod:`benchmarks.pretrained`. Run alone (CPU-bound).
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import normalized_mutual_info_score

from .common import REPO, set_threads, to_markdown
from .comparison import command_line
from .panel import PANEL, group, load
from .pretrained import VARIANTS
from .report import cpu_count, cpu_model, load_average

#: Relative size of the perturbation.
NOISE = 1e-6
#: A partition is stable when the perturbed fit's agrees with it at least this much.
STABLE = 0.95


def perturbed(X: np.ndarray, seed: int = 0) -> np.ndarray:
    """``X`` times ``1 + NOISE * N(0, 1)`` per value (NaN stay NaN)."""
    rng = np.random.default_rng(seed)
    return (X * (1.0 + NOISE * rng.standard_normal(X.shape))).astype(np.float32)


def run(datasets, variants, seed: int = 0, log=print) -> pd.DataFrame:
    from tsc_toolkit import CNNKMeans

    rows = []
    for name in datasets:
        X, y = load(name)
        k = len(np.unique(y))
        Xp = perturbed(X)
        for variant in variants:
            tic = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                a = CNNKMeans(clusters=k, random_state=seed, device="cpu",
                              **VARIANTS[variant]).fit(X).labels_
                b = CNNKMeans(clusters=k, random_state=seed, device="cpu",
                              **VARIANTS[variant]).fit(Xp).labels_
            rows.append({"dataset": name, "group": group(name), "variant": variant,
                         "agreement": normalized_mutual_info_score(a, b),
                         "nmi": normalized_mutual_info_score(y, a),
                         "seconds": time.perf_counter() - tic})
        log(f"[stability] {name}: " + ", ".join(f"{r['variant']} {r['agreement']:.3f}"
                                                for r in rows[-len(variants):]))
    return pd.DataFrame(rows)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", default=";".join(VARIANTS), help="separated by ;")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=str(REPO / "docs" / "benchmarks_stability.md"))
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    variants = [v.strip() for v in args.variants.split(";") if v.strip()]
    set_threads(args.threads)
    load_start, tic = load_average(), time.perf_counter()
    runs = run(PANEL, variants, args.seed)
    path = Path(args.out)
    runs.to_csv(path.with_suffix(".csv"), index=False)
    summary = runs.groupby("variant", sort=False).agg(
        sets=("agreement", "size"),
        stable=("agreement", lambda a: int((a >= STABLE).sum())),
        mean_agreement=("agreement", "mean"), min_agreement=("agreement", "min")).reset_index()
    summary["stable share"] = summary["stable"] / summary["sets"]
    command = command_line("benchmarks.stability", argv)
    path.write_text("\n".join([
        "# Stability of a fit under a perturbation of 1e-6 (development panel)",
        "",
        "Written by `python -m benchmarks.stability`; do not edit by hand. Each set is fitted "
        f"twice with seed {args.seed}: on its series, and on the same series times "
        f"(1 + {NOISE:g} x N(0, 1)); agreement is the NMI between the two partitions, and a "
        f"set is stable when it is at least {STABLE}.",
        "",
        f"Command: `{command.strip()}`. Machine: {cpu_model()}, {cpu_count()} cores; load "
        f"average at start {load_start}, at end {load_average()}. Run time: "
        f"{time.perf_counter() - tic:.0f} s.",
        "",
        "## Panel", "", to_markdown(summary), "",
        "## Sets", "",
        to_markdown(runs.pivot(index="dataset", columns="variant", values="agreement")
                    .reindex(list(dict.fromkeys(runs.dataset))).reset_index()), "",
    ]))
    print(f"[stability] wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
