"""The pretrained encoder against per-set training, on the development panel.

Each variant is a ``CNNKMeans`` fit at the defaults but for the settings named; for each fit the
same clustering stage also clusters the embedding alone and the random-kernel view alone (the
two parts of ``features_``), so the report says what each part carries. MiniRocket + PCA +
K-Means runs in the same process as the peer. Run alone (CPU-bound):

    python -m benchmarks.pretrained --seeds 0 --out build/pretrained.md

Decide on the development panel only; ``--datasets holdout`` is the once-at-the-end check.
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import normalized_mutual_info_score

from . import comparison
from .common import REPO
from .panel import HOLDOUT, group, load
from .report import load_average

#: name -> CNNKMeans settings (beside clusters, random_state and device).
VARIANTS = {
    "per-set training (default)": {},
    "pretrained, no training": {"pretrained": "auto", "epochs": 0},
    "pretrained, 20 steps": {"pretrained": "auto", "max_steps": 20},
    "pretrained, 100 steps": {"pretrained": "auto", "max_steps": 100},
    "random weights, no training": {"epochs": 0},
}
DEFAULT = "per-set training (default)"
ROCKET = "MiniRocket + PCA + K-Means"
EMBEDDING, VIEW = " | embedding alone", " | view alone"


def fit_variant(X, k: int, seed: int, settings: dict) -> list[dict]:
    """One fit: its rows for the whole model, the embedding alone and the view alone."""
    from tsc_toolkit import CNNKMeans
    from tsc_toolkit.seeding import fit_seed

    tic = time.perf_counter()
    model = CNNKMeans(clusters=k, random_state=seed, device="cpu", **settings).fit(X)
    seconds = time.perf_counter() - tic
    rows = [("", model.labels_, seconds)]
    width = model.embeddings_.shape[1]
    parts = {EMBEDDING: model.embeddings_}
    if model.features_.shape[1] > width:
        parts[VIEW] = model.features_[:, width:]
    for suffix, F in parts.items():
        tic = time.perf_counter()
        labels = model.make_clusterer(k, fit_seed(seed)).fit(np.ascontiguousarray(F)).labels_
        rows.append((suffix, labels, time.perf_counter() - tic))
    return [{"suffix": s, "labels": lab, "seconds": sec} for s, lab, sec in rows]


def saved_default(folder, name: str, seed: int, k: int) -> list[dict] | None:
    """The default's rows for one fit from the features the quality benchmark saved
    (``--features-dir``), reclustered by the current clustering stage: the default fit is not
    repeated (its features do not depend on the stage)."""
    from tsc_toolkit import CNNKMeans
    from tsc_toolkit.seeding import fit_seed

    from .quality import embedding_width, load_features

    path = Path(folder) / f"{name}-seed{seed}.npz"
    if not path.exists():
        return None
    F, _ = load_features(path)
    width = embedding_width(path)
    rows = []
    for suffix, part in (("", F), (EMBEDDING, F[:, :width]), (VIEW, F[:, width:])):
        labels = CNNKMeans().make_clusterer(k, fit_seed(seed)).fit(
            np.ascontiguousarray(part)).labels_
        rows.append({"suffix": suffix, "labels": labels, "seconds": np.nan})
    return rows


def run(datasets, seeds, variants, log=print, default_features=None) -> pd.DataFrame:
    from .quality import _fit_rocket, _views

    rows = []
    for name in datasets:
        X, y = load(name)
        k = len(np.unique(y))
        for seed in seeds:
            if default_features is not None:
                for r in saved_default(default_features, name, seed, k) or []:
                    rows.append({"dataset": name, "group": group(name), "seed": seed,
                                 "variant": DEFAULT + r["suffix"],
                                 "nmi": normalized_mutual_info_score(y, r["labels"]),
                                 "seconds": r["seconds"]})
            for variant in variants:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    for r in fit_variant(X, k, seed, VARIANTS[variant]):
                        rows.append({"dataset": name, "group": group(name), "seed": seed,
                                     "variant": variant + r["suffix"],
                                     "nmi": normalized_mutual_info_score(y, r["labels"]),
                                     "seconds": r["seconds"]})
            tic = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                labels, _ = _fit_rocket(_views(X), k, seed, None)
            rows.append({"dataset": name, "group": group(name), "seed": seed, "variant": ROCKET,
                         "nmi": normalized_mutual_info_score(y, labels),
                         "seconds": time.perf_counter() - tic})
            log(f"[pretrained] {name} seed {seed}: " + ", ".join(
                f"{r['variant']} {r['nmi']:.3f}" for r in rows
                if r["dataset"] == name and r["seed"] == seed and "|" not in r["variant"]))
    return pd.DataFrame(rows)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    comparison.variant_arguments(parser, VARIANTS, seeds="0")
    parser.add_argument("--out", default=str(REPO / "docs" / "benchmarks_pretrained.md"))
    parser.add_argument("--default-features", default=None,
                        help="take the default's fits from the features the quality benchmark "
                             "saved there (--features-dir), reclustered, instead of refitting")
    args = parser.parse_args(argv)
    datasets, seeds, variants = comparison.chosen(parser, args, VARIANTS)
    started = load_average(), time.perf_counter()
    runs = run(datasets, seeds, variants, default_features=args.default_features)
    path = Path(args.out)
    runs.to_csv(path.with_suffix(".csv"), index=False)
    t = comparison.tables(runs, "variant", DEFAULT, seconds="median seconds per fit")
    where = "the held-out sets" if set(datasets) <= set(HOLDOUT) else "the development panel"
    comparison.write_report(
        path, t, module="benchmarks.pretrained", argv=argv, started=started, seeds=seeds,
        title=f"The pretrained encoder on {where}",
        intro="Each variant is "
        "`CNNKMeans(clusters=classes, random_state=seed, device=\"cpu\")` with the settings its "
        "name says; `| embedding alone` and `| view alone` cluster one part of the same fit's "
        "`features_` with the same clustering stage. The pretrained encoder is the one shipped "
        "with the package (docs/pretrained_encoder.md)."
        + (f" The default's fits are those the quality benchmark saved in "
           f"`{args.default_features}` (on this processor; the fits are reproduced bit for bit "
           "since, tests/test_golden.py), reclustered by the current stage; their seconds are "
           "not measured here." if args.default_features else ""))
    print(f"[pretrained] wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
