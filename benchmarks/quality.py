"""Clustering quality on the bundled UCR/UEA sets: CNN-KMeans against four peers.

Protocol: train and test splits merged, k = number of classes, labels used only for scoring
(NMI, arithmetic normalisation, and ARI). Every method sees the same series. Peers that need
equal lengths get every series z-normalised per channel and linearly resampled to the longest
length; tslearn's DTW k-means gets the NaN-padded z-normalised array (its own variable-length
path); CNN-KMeans gets the raw NaN-padded array and scales it itself. The wall time is the time
of ``fit`` + labels for one seed (pre-processing excluded; numba kernels compiled beforehand).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable

import numpy as np
import pandas as pd
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

from .common import Config, Section, Timer, fmt_seconds, resample_to_max, to_markdown, znormalize

CNN = "CNN-KMeans"
RAW = "K-Means, z-norm raw"
KSHAPE = "tslearn KShape"
DTW = "tslearn DTW k-means, 10% band"
ROCKET = "MiniRocket + PCA + K-Means"
METHODS = (CNN, RAW, KSHAPE, DTW, ROCKET)

#: Published NMI (Lafabregue et al., DMKD 2022, per-dataset means over 5 seeds; test split only,
#: encoder trained on the train split; TensorFlow port). Copied from the project's algorithm notes.
PUBLISHED_NMI = {
    "GunPoint": (0.005, 0.058, 0.008, 0.004, 0.002),
    "ItalyPowerDemand": (0.004, 0.165, 0.002, 0.011, 0.043),
    "ArrowHead": (0.013, 0.232, 0.272, 0.210, 0.129),
    "BasicMotions": (0.523, 0.627, 0.120, 0.786, 0.231),
    "JapaneseVowels": (0.035, 0.568, 0.691, 0.779, 0.207),
}
PUBLISHED_COLUMNS = ("T-Loss (K=10) + K-Means", "T-Loss (K=10) + UMAP + K-Means",
                     "k-means (ED) raw", "k-means (DTW) raw", "k-Shape")


def estimated_seconds(method: str, n: int, k: int, length: int) -> float:
    """Rough single-core cost of one fit, to skip cells that would run too long.

    Calibrated on the reference 2-core baseline (peers.md section 3: banded DTW k-means 9.8 s on
    GunPoint and 34 s on ArrowHead; tslearn KShape 3.7 s on OSULeaf and 117 s on PLAID).
    """
    if method == DTW:
        return 1e-6 * n * k * length ** 2
    if method == KSHAPE:
        return 7e-7 * n * k * length * math.log2(max(length, 2))
    return 0.0


def _views(X: np.ndarray) -> dict[str, np.ndarray]:
    z = znormalize(X)
    equal = resample_to_max(z)
    return {"raw": X, "equal": equal, "padded": z}


def _fit_cnn(views, k, seed, cfg) -> tuple[np.ndarray, dict]:
    from tsc_toolkit import CNNKMeans

    model = CNNKMeans(clusters=k, random_state=seed, device="cpu", max_steps=cfg.cnn_max_steps,
                      score_sample_size=0)
    model.fit(views["raw"])
    return model.labels_, {"steps": model.n_steps_}


def _fit_raw(views, k, seed, cfg) -> tuple[np.ndarray, dict]:
    from sklearn.cluster import KMeans

    X = views["equal"].reshape(len(views["equal"]), -1)
    return KMeans(n_clusters=k, n_init=10, random_state=seed).fit_predict(X), {}


def _fit_kshape(views, k, seed, cfg) -> tuple[np.ndarray, dict]:
    from tslearn.clustering import KShape

    X = np.ascontiguousarray(views["equal"].transpose(0, 2, 1))
    return KShape(n_clusters=k, n_init=1, random_state=seed).fit_predict(X), {}


def _fit_dtw(views, k, seed, cfg) -> tuple[np.ndarray, dict]:
    from tslearn.clustering import TimeSeriesKMeans

    X = np.ascontiguousarray(views["padded"].transpose(0, 2, 1))
    radius = max(1, int(round(0.1 * X.shape[1])))
    model = TimeSeriesKMeans(n_clusters=k, metric="dtw", n_init=1, max_iter=10,
                             max_iter_barycenter=10, random_state=seed,
                             metric_params={"global_constraint": "sakoe_chiba",
                                            "sakoe_chiba_radius": radius})
    return model.fit_predict(X), {}


def _fit_rocket(views, k, seed, cfg) -> tuple[np.ndarray, dict]:
    from aeon.transformations.collection.convolution_based import MiniRocket
    from sklearn.cluster import KMeans
    from sklearn.decomposition import PCA
    from sklearn.preprocessing import StandardScaler

    X = views["equal"].astype(np.float64)
    features = MiniRocket(random_state=seed, n_jobs=1).fit_transform(X)
    features = StandardScaler().fit_transform(features)
    pcs = PCA(n_components=min(50, *features.shape), random_state=seed).fit_transform(features)
    return KMeans(n_clusters=k, n_init=10, random_state=seed).fit_predict(pcs), {}


FITTERS: dict[str, Callable] = {CNN: _fit_cnn, RAW: _fit_raw, KSHAPE: _fit_kshape, DTW: _fit_dtw,
                                ROCKET: _fit_rocket}


def warm_up() -> None:
    """Compile the peers' numba kernels on tiny inputs, so JIT time is not counted."""
    rng = np.random.default_rng(0)
    for shape in ((12, 1, 20), (12, 3, 20)):
        X = rng.standard_normal(shape).astype(np.float32)
        X[:4, :, 15:] = np.nan
        views = _views(X)
        for method in (KSHAPE, DTW, ROCKET):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                try:
                    FITTERS[method](views, 2, 0, None)
                except ImportError:  # reported per cell by run()
                    pass


def run(cfg: Config) -> Section:
    from tsc_toolkit.datasets import load_dataset

    with Timer() as total:
        warm_up()
        rows, info = [], []
        for name in cfg.datasets:
            X, y = load_dataset(name)
            k = len(np.unique(y))
            n, c, length = X.shape
            lengths = (~np.isnan(X).all(axis=1)).sum(axis=1)
            info.append({"dataset": name, "series": n, "channels": c,
                         "length": (f"{lengths.min()}-{lengths.max()}" if lengths.min() < length
                                    else str(length)), "classes": k})
            views = _views(X)
            for method in METHODS:
                est = estimated_seconds(method, n, k, length)
                if est > cfg.peer_budget_s:
                    rows.append({"dataset": name, "method": method, "seed": -1, "nmi": np.nan,
                                 "ari": np.nan, "seconds": np.nan,
                                 "status": f"skipped: estimated {fmt_seconds(est)} per fit"})
                    continue
                for seed in cfg.seeds:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        try:
                            with Timer() as t:
                                labels, extra = FITTERS[method](views, k, seed, cfg)
                        except ImportError as exc:
                            rows.append({"dataset": name, "method": method, "seed": seed,
                                         "nmi": np.nan, "ari": np.nan, "seconds": np.nan,
                                         "status": f"not installed: {exc.name} (install the "
                                                   "`bench` extra)"})
                            continue
                        except Exception as exc:  # a peer failing is a result, not a crash
                            rows.append({"dataset": name, "method": method, "seed": seed,
                                         "nmi": np.nan, "ari": np.nan, "seconds": np.nan,
                                         "status": f"error: {type(exc).__name__}: {exc}"[:160]})
                            continue
                    if cfg.verbose:
                        print(f"[bench]   {name} {method} seed {seed}: {t.seconds:.1f} s",
                              flush=True)
                    rows.append({"dataset": name, "method": method, "seed": seed,
                                 "nmi": normalized_mutual_info_score(y, labels),
                                 "ari": adjusted_rand_score(y, labels),
                                 "seconds": t.seconds, "status": "ok", **extra})
    return section_from_runs(pd.DataFrame(rows), pd.DataFrame(info), cfg, total.seconds)


def section_from_runs(runs: pd.DataFrame, info: pd.DataFrame, cfg: Config,
                      seconds: float) -> Section:
    """Build the quality section from the per-fit table (also used to join saved runs)."""
    section = Section("quality", "Clustering quality on real labelled data")
    section.seconds = seconds
    section.tables["runs"] = runs
    section.tables["datasets"] = info
    section.tables["nmi"] = summary_table(runs, "nmi", cfg)
    section.tables["ari"] = summary_table(runs, "ari", cfg)
    section.tables["seconds"] = summary_table(runs, "seconds", cfg)
    section.tables["published"] = published_table(cfg.datasets)
    section.markdown = {key: to_markdown(section.tables[key])
                        for key in ("datasets", "nmi", "ari", "seconds", "published")}
    section.intro = _intro(cfg)
    section.notes = _notes(runs)
    return section


def summary_table(runs: pd.DataFrame, metric: str, cfg: Config) -> pd.DataFrame:
    """One row per dataset, one column per method: ``mean ± std`` over seeds, best in bold.

    For NMI and ARI the highest mean is bold, for time the lowest; a skipped or failed cell
    says so.
    """
    table = []
    for name in cfg.datasets:
        cells, means = {"dataset": name}, {}
        for method in METHODS:
            sub = runs[(runs.dataset == name) & (runs.method == method)]
            ok = sub[sub.status == "ok"]
            if ok.empty:
                status = sub.status.iloc[0] if len(sub) else "not run"
                cells[method] = status.split(":")[0]
                continue
            values = ok[metric].to_numpy(float)
            means[method] = values.mean()
            if metric == "seconds":
                cells[method] = fmt_seconds(values.mean())
            else:
                cells[method] = (f"{values.mean():.3f} ± {values.std():.3f}" if len(values) > 1
                                 else f"{values.mean():.3f}")
        if means:
            pick = min if metric == "seconds" else max
            best = pick(means.values())
            for method, value in means.items():
                if abs(value - best) < 5e-4 or (metric == "seconds" and value == best):
                    cells[method] = f"**{cells[method]}**"
        table.append(cells)
    return pd.DataFrame(table, columns=["dataset", *METHODS])


def published_table(datasets) -> pd.DataFrame:
    rows = []
    for name in datasets:
        values = PUBLISHED_NMI.get(name)
        rows.append({"dataset": name, **{col: (f"{v:.3f}" if values else "–")
                                         for col, v in zip(PUBLISHED_COLUMNS,
                                                           values or [None] * 5)}})
    return pd.DataFrame(rows, columns=["dataset", *PUBLISHED_COLUMNS])


def wins(runs: pd.DataFrame) -> dict[str, list[str]]:
    """For each method, the datasets where its mean NMI is the best (ties count for all)."""
    ok = runs[runs.status == "ok"]
    means = ok.groupby(["dataset", "method"]).nmi.mean().unstack()
    out: dict[str, list[str]] = {m: [] for m in METHODS}
    for name, row in means.iterrows():
        best = row.max()
        for method, value in row.items():
            if np.isfinite(value) and abs(value - best) < 5e-4:
                out[method].append(name)
    return out


def _intro(cfg: Config) -> str:
    seeds = ", ".join(str(s) for s in cfg.seeds)
    return (
        f"Train and test splits merged, k = number of classes, seeds {seeds}; NMI "
        "(arithmetic normalisation) and ARI against the true classes, mean ± standard deviation "
        "over seeds; the best mean in each row is bold, whichever method it is. Methods:\n\n"
        f"- **{CNN}**: `CNNKMeans(clusters=k, random_state=seed, device=\"cpu\", "
        f"max_steps={cfg.cnn_max_steps}, score_sample_size=0)`; everything else at its default "
        "(fg-research's architecture: 10 blocks, 40 filters, 320-d embedding, 10 negatives, "
        "batch 10, lr 0.001; L2-normalised embeddings, K-Means with n_init=10). "
        f"**Training budget: {cfg.cnn_max_steps} optimisation steps** "
        f"({cfg.cnn_max_steps * 10} anchor series) instead of fg-research's 100 epochs (2,000 to "
        "11,000 steps on these sets), so that `make bench` finishes within an hour on 2 CPU "
        "cores; `score_sample_size=0` only turns off the "
        "per-epoch silhouette log. The series go in raw (NaN-padded); the model scales them.\n"
        f"- **{RAW}**: scikit-learn `KMeans(n_clusters=k, n_init=10)` on the flattened series, "
        "z-normalised per series and channel; variable-length series (JapaneseVowels, PLAID) "
        "linearly resampled to the longest length.\n"
        f"- **{KSHAPE}**: `tslearn.clustering.KShape(n_init=1)` on the same resampled series.\n"
        f"- **{DTW}**: `tslearn.clustering.TimeSeriesKMeans(metric=\"dtw\", n_init=1, "
        "max_iter=10, max_iter_barycenter=10)` with a Sakoe-Chiba radius of 10 % of the length, "
        "on the NaN-padded z-normalised series (tslearn's own variable-length path).\n"
        f"- **{ROCKET}**: aeon `MiniRocket` (10,000 kernels) -> `StandardScaler` -> "
        "`PCA(50)` -> `KMeans(n_init=10)`, on the resampled series.\n\n"
        "DTW k-means and KShape are skipped where their estimated cost per fit exceeds "
        f"{fmt_seconds(cfg.peer_budget_s)} (estimate calibrated on the 2-core reference "
        "baseline: banded DTW k-means ~1e-6 s x n x k x T², KShape ~7e-7 s x n x k x T log2 T); "
        "the cell then says `skipped`. Wall time counts `fit` and the labels only (not loading "
        "or z-normalising); numba kernels are compiled on tiny inputs first."
    )


def _notes(runs: pd.DataFrame) -> list[str]:
    notes = []
    for row in runs[runs.status != "ok"].drop_duplicates(["dataset", "method"]).itertuples():
        notes.append(f"{row.dataset}, {row.method}: {row.status}.")
    return notes
