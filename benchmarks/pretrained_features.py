"""What the clustering stage is given from a pretrained encoder, on the development panel.

The encoder starts from pretrained weights (the shipped ones, or ``--weights DIR``) and is not
trained on the set; each variant is a different set of features built from it and the
random-kernel view, clustered by the estimator's own clustering stage (``make_clusterer``)
with each seed. The embeddings of each set do not depend on the seed (no training) and are
computed once; the view is fitted per seed as ``CNNKMeans`` fits it. Both are cached in
``--cache`` so that a rerun with more variants only reclusters. Run alone (CPU-bound):

    python -m benchmarks.pretrained_features --seeds 0,1,2 --cache build/pretrained_features

Feature sets (``E`` an embedding, ``V`` the view, each row of unit norm):

- ``joint``: one network reads every channel, its first layer shared out over them;
- ``separate``: each channel embedded by the univariate encoder, side by side / sqrt(C)
  (``channel_mode="separate"``; the same as ``joint`` on univariate sets);
- ``separate, gaps interpolated``: the same, gaps filled linearly before the encoder (as the
  view fills them) instead of zeros beside an "observed" mask;
- ``derivative``: the embedding of the first differences of each channel;
- ``PCA-50``: the embedding reduced to 50 principal components (rows rescaled to unit mean
  norm), ``whitened`` with every component at unit variance;
- ``before the last layer``: the max-pooled output of the final block (``reduced_size``
  values), the input of the linear layer that makes the embedding, rows of unit norm;
- ``every block``: the maximum and the mean over observed steps of every block's output;
  ``per-block norm``: each block's values of unit norm, side by side / sqrt(blocks);
  ``standardised``: each value standardised over the set, then rows of unit norm.
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
from .panel import group, load
from .report import load_average

#: Variant -> (embedding part or None, weight of the embedding, view beside it).
VARIANTS = {
    "view alone": (None, 0.0, True),
    "joint (first layer shared out) | embedding alone": ("joint", 1.0, False),
    "joint (first layer shared out) + view": ("joint", 1.0, True),
    "separate | embedding alone": ("separate", 1.0, False),
    "separate + view": ("separate", 1.0, True),
    "separate, gaps interpolated | embedding alone": ("interpolated", 1.0, False),
    "separate, gaps interpolated + view": ("interpolated", 1.0, True),
    **{f"separate, gaps interpolated x {w} + view": ("interpolated", w, True)
       for w in (0.5, 0.7, 1.4, 2.0)},
    "derivative | embedding alone": ("derivative", 1.0, False),
    "separate and derivative | embedding alone": ("both", 1.0, False),
    "separate and derivative + view": ("both", 1.0, True),
    "separate, PCA-50 | embedding alone": ("pca", 1.0, False),
    "separate, PCA-50 + view": ("pca", 1.0, True),
    "separate, PCA-50 whitened + view": ("pcaw", 1.0, True),
    "before the last layer | embedding alone": ("prehead", 1.0, False),
    "before the last layer + view": ("prehead", 1.0, True),
    "every block, per-block norm | embedding alone": ("blocks", 1.0, False),
    "every block, per-block norm + view": ("blocks", 1.0, True),
    "every block, standardised | embedding alone": ("blocks_std", 1.0, False),
    "every block, standardised + view": ("blocks_std", 1.0, True),
}
#: What every variant is compared with ("vs default" in the report).
DEFAULT = "view alone"


def interpolated(S: np.ndarray) -> np.ndarray:
    """Scaled series with interior gaps filled linearly; padding after a series stays NaN."""
    from tsc_toolkit.views.random_kernels import interpolate_gaps

    filled, lengths = interpolate_gaps(S)
    for i, end in enumerate(lengths):
        filled[i, :, end:] = np.nan
    return filled


def pca(Z: np.ndarray, d: int = 50, whiten: bool = False) -> np.ndarray:
    """``Z`` on its first ``d`` principal components, rows of unit root-mean-square norm."""
    U, s, _ = np.linalg.svd(Z - Z.mean(axis=0), full_matrices=False)
    d = min(d, len(s))
    P = U[:, :d] * (1.0 if whiten else s[:d])
    return (P / (np.sqrt((P ** 2).sum(axis=1).mean()) or 1.0)).astype(np.float32)


def pooled_blocks(enc, S: np.ndarray, batch_size: int = 64) -> list[np.ndarray]:
    """The maximum and the mean over observed steps of each block's output, for each row the
    encoder embeds (one per channel of each series here): a list, one ``(rows, 2 x channels)``
    array per block."""
    import torch

    from tsc_toolkit.embedding.encoder import inference_network

    inputs, lengths = enc._rows(S)
    network = inference_network(enc.module_)
    order = np.argsort(lengths, kind="stable")
    out = None
    with torch.no_grad():
        for start in range(0, len(order), batch_size):
            idx = order[start:start + batch_size]
            length = int(lengths[idx].max())
            x = torch.from_numpy(np.ascontiguousarray(inputs[idx, :, :length]))
            lens = torch.from_numpy(lengths[idx].astype(np.int64))
            valid = (torch.arange(length)[None, :] < lens[:, None])[:, None, :]
            h = x
            pooled = []
            for block in network.network:
                h = block(h)
                top = h.masked_fill(~valid, float("-inf")).max(dim=2).values
                mean = (h * valid).sum(dim=2) / lens[:, None]
                pooled.append(torch.cat([top, mean], dim=1).numpy())
            if out is None:
                out = [np.empty((len(order), p.shape[1]), np.float32) for p in pooled]
            for o, p in zip(out, pooled):
                o[idx] = p
    return out


def embeddings(X: np.ndarray, weights, parts=("joint", "separate", "interpolated",
                                             "derivative"), **architecture) -> dict:
    """The embeddings ``parts`` names, from the pretrained encoder without training
    (``architecture``: the encoder's, when not the default one)."""
    from tsc_toolkit.embedding import TLossEncoder
    from tsc_toolkit.embedding.training import normalize_embeddings

    n, c, length = X.shape

    def per_series(Z):  # one row per series: its channels' rows side by side / sqrt(C)
        return Z.reshape(n, -1) / np.sqrt(c)

    def univariate(series):
        return TLossEncoder(pretrained=weights, epochs=0, random_state=0, device="cpu",
                            **architecture).fit(series[:50])

    out = {}
    if "joint" in parts:
        out["joint"] = TLossEncoder(pretrained=weights, epochs=0, channel_mode="joint",
                                    random_state=0, device="cpu", **architecture).fit(X).transform(X)
    rows = X.reshape(n * c, 1, length)
    enc = univariate(rows)
    S = enc.scale(rows)
    if "separate" in parts:
        out["separate"] = per_series(enc.embed_scaled(S))
    if "interpolated" in parts:
        out["interpolated"] = per_series(enc.embed_scaled(interpolated(S)))
    if {"prehead", "blocks", "blocks_std"} & set(parts):
        pooled = pooled_blocks(enc, S)
        last = pooled[-1][:, :pooled[-1].shape[1] // 2]  # the max of the final block
        if "prehead" in parts:
            out["prehead"] = per_series(normalize_embeddings(last, "l2"))
        if "blocks" in parts:
            out["blocks"] = per_series(np.hstack([normalize_embeddings(p, "l2") for p in pooled])
                                       / np.sqrt(len(pooled)))
        if "blocks_std" in parts:
            Z = np.hstack(pooled).reshape(n, -1)
            std = Z.std(axis=0)
            out["blocks_std"] = normalize_embeddings(
                (Z - Z.mean(axis=0)) / np.where(std > 1e-8, std, 1.0), "l2")
    if "derivative" in parts:
        diffs = np.diff(X, axis=2).reshape(n * c, 1, length - 1)
        denc = univariate(diffs)
        out["derivative"] = per_series(denc.embed_scaled(interpolated(denc.scale(diffs))))
    return {k: v.astype(np.float32) for k, v in out.items()}


def view(X: np.ndarray, seed: int, weights) -> np.ndarray:
    """The random-kernel view as ``CNNKMeans(random_state=seed)`` fits it."""
    from tsc_toolkit.embedding import TLossEncoder
    from tsc_toolkit.seeding import fit_seed
    from tsc_toolkit.views.random_kernels import RandomKernelFeatures

    s = fit_seed(seed)
    scaler = TLossEncoder(pretrained=weights, epochs=0, random_state=s, device="cpu").fit(X[:5])
    return RandomKernelFeatures(10000, random_state=s).fit_transform(scaler.scale(X))


def cached(path: Path, keys, make, *args) -> dict[str, np.ndarray]:
    """The arrays ``keys`` stored at ``path``; those missing are made by ``make(*args)`` and
    stored beside the others."""
    out = {}
    if path.exists():
        with np.load(path) as f:
            out = dict(f)
    if not set(keys) <= set(out):
        out.update(make(*args))
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(path, **out)
    return out


def needed_parts(variants) -> tuple[str, ...]:
    """The embeddings the ``variants`` are built from."""
    base = {"pca": ("separate",), "pcaw": ("separate",), "both": ("separate", "derivative")}
    return tuple(sorted({p for v in variants if VARIANTS[v][0] is not None
                         for p in base.get(VARIANTS[v][0], (VARIANTS[v][0],))}))


def features(E: dict, V: np.ndarray, variant: str) -> np.ndarray:
    part, weight, with_view = VARIANTS[variant]
    if part is None:
        return V
    Z = {"pca": lambda: pca(E["separate"]), "pcaw": lambda: pca(E["separate"], whiten=True),
         "both": lambda: np.hstack([E["separate"], E["derivative"]]) / np.sqrt(2)}.get(
        part, lambda: E[part])()
    return np.hstack([weight * Z, V]) if with_view else Z


def label(weights: str) -> str:
    """The name of a pretrained encoder in a report: "shipped" for "auto", else its folder's."""
    return "shipped" if weights == "auto" else Path(weights).name


def run(datasets, seeds, variants, cache: Path, weights="auto", log=print) -> pd.DataFrame:
    """Each variant's NMI per set and seed. ``weights``: one encoder, or a list of several;
    with several, each variant's name starts with the encoder's :func:`label` and each
    encoder's embeddings are cached in a folder of that name (the views are shared)."""
    from tsc_toolkit import CNNKMeans
    from tsc_toolkit.seeding import fit_seed

    several = not isinstance(weights, str)
    encoders = list(weights) if several else [weights]
    names = [label(w) for w in encoders]
    if len(set(names)) < len(names):
        raise ValueError(f"two encoders share a name: {names}")
    rows = []
    for name in datasets:
        X, y = load(name)
        k = len(np.unique(y))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            parts = needed_parts(variants)
            E = {w: cached((cache / label(w) if several else cache) / f"{name}-embeddings.npz",
                           parts, embeddings, X, w, parts) for w in encoders}
            for seed in seeds:
                V = cached(cache / f"{name}-view-seed{seed}.npz", ["view"],
                           lambda *a: {"view": view(*a)}, X, seed, encoders[0])["view"]
                for w in encoders:
                    for variant in variants:
                        F = np.ascontiguousarray(features(E[w], V, variant), dtype=np.float32)
                        tic = time.perf_counter()
                        labels = CNNKMeans().make_clusterer(k, fit_seed(seed)).fit(F).labels_
                        rows.append({"dataset": name, "group": group(name), "seed": seed,
                                     "variant": f"{label(w)}: {variant}" if several else variant,
                                     "nmi": normalized_mutual_info_score(y, labels),
                                     "seconds": time.perf_counter() - tic})
        log(f"[pretrained_features] {name}: " + ", ".join(
            f"{r['variant']} {r['nmi']:.3f}" for r in rows
            if r["dataset"] == name and r["seed"] == seeds[0]))
    return pd.DataFrame(rows)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    comparison.variant_arguments(parser, VARIANTS, seeds="0,1,2")
    parser.add_argument("--weights", default="auto",
                        help="the pretrained encoder: 'auto' (shipped) or a folder; several "
                             "separated by ',' to compare encoders in one report")
    parser.add_argument("--cache", default=str(REPO / "build" / "pretrained_features"))
    parser.add_argument("--out", default=str(REPO / "docs" / "benchmarks_pretrained_features.md"))
    args = parser.parse_args(argv)
    datasets, seeds, variants = comparison.chosen(parser, args, VARIANTS)
    started = load_average(), time.perf_counter()
    weights = [w.strip() for w in args.weights.split(",") if w.strip()]
    runs = run(datasets, seeds, variants, Path(args.cache),
               weights if len(weights) > 1 else weights[0])
    path = Path(args.out)
    runs.to_csv(path.with_suffix(".csv"), index=False)
    names = list(dict.fromkeys(runs.variant))
    t = comparison.tables(runs, "variant", DEFAULT if DEFAULT in names else names[0])
    comparison.write_report(
        path, t, module="benchmarks.pretrained_features", argv=argv, started=started,
        seeds=seeds, run_note=" (with the cache as it was)",
        title="Features from the pretrained encoder, without training",
        intro=f"The encoder starts from `{args.weights}` weights (\"auto\": the ones shipped "
        "with the package) and is not trained; each variant clusters a different set of "
        "features built from it and the random-kernel view with the estimator's clustering "
        "stage (see the module's docstring). \"vs default\" is each variant's difference from "
        f"\"{DEFAULT}\" (from the first variant when that one was not run).")
    print(f"[pretrained_features] wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
