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
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

from .common import (
    Config,
    Section,
    Timer,
    auto_neighbour_counts,
    fmt_seconds,
    resample_to_max,
    to_markdown,
    znormalize,
)

CNN = "CNN-KMeans"
RAW = "K-Means, z-norm raw"
KSHAPE = "tslearn KShape"
DTW = "tslearn DTW k-means, 10% band"
ROCKET = "MiniRocket + PCA + K-Means"
KASBA = "aeon KASBA (MSM)"
METHODS = (CNN, RAW, KSHAPE, DTW, ROCKET, KASBA)

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


#: KASBA's cost per series x cluster x step² (MSM is quadratic in the length, unbanded).
KASBA_SECONDS_PER_CELL = 4e-8
KASBA_CALIBRATION = ("calibrated on GunPoint, 0.3 s, and ArrowHead, 0.9 s, on 2 cores of an "
                     "AMD EPYC, 2026-12-07")


def estimated_seconds(method: str, n: int, k: int, length: int) -> float:
    """Rough single-core cost of one fit, to skip cells that would run too long.

    Calibrated on the reference 2-core baseline (peers.md section 3: banded DTW k-means 9.8 s on
    GunPoint and 34 s on ArrowHead; tslearn KShape 3.7 s on OSULeaf and 117 s on PLAID).
    """
    if method == DTW:
        return 1e-6 * n * k * length ** 2
    if method == KSHAPE:
        return 7e-7 * n * k * length * math.log2(max(length, 2))
    if method == KASBA:
        return KASBA_SECONDS_PER_CELL * n * k * length ** 2
    return 0.0


def _views(X: np.ndarray) -> dict[str, np.ndarray]:
    z = znormalize(X)
    equal = resample_to_max(z)
    return {"raw": X, "equal": equal, "padded": z}


def _fit_cnn(views, k, seed, cfg) -> tuple[np.ndarray, dict]:
    from tsc_toolkit import CNNKMeans

    budget = {} if cfg.cnn_max_steps is None else {"max_steps": cfg.cnn_max_steps}
    model = CNNKMeans(clusters=k, random_state=seed, device="cpu", **budget)
    model.fit(views["raw"])
    # "_features" is not a column: the loop stores it for the k benchmark and drops it
    return model.labels_, {"steps": model.n_steps_, "_features": model.features_,
                           "_embedding_width": model.embeddings_.shape[1]}


#: Width of the embedding at the front of features saved before the width was kept with them
#: (the default encoder's ``output_size`` then).
OLD_EMBEDDING_WIDTH = 320


def save_features(folder, dataset: str, seed: int, features: np.ndarray, y,
                  embedding_width: int | None = None) -> Path:
    """Keep what a default model clustered, so the k benchmark scans it without refitting;
    ``embedding_width``: how many of the first columns are the encoder's embedding (the rest
    is the random-kernel view)."""
    path = Path(folder) / f"{dataset}-seed{seed}.npz"
    path.parent.mkdir(parents=True, exist_ok=True)
    features = np.asarray(features, dtype=np.float32)
    width = features.shape[1] if embedding_width is None else int(embedding_width)
    np.savez_compressed(path, features=features, labels=np.asarray(y),
                        embedding_width=np.asarray(width))
    return path


def saved_features(folder) -> list[tuple[str, int, Path]]:
    """``(dataset, seed, file)`` of every fit :func:`save_features` kept in ``folder``, panel
    sets first in panel order, then by name and seed."""
    from .panel import PANEL

    found = []
    for path in Path(folder).glob("*-seed*.npz"):
        name, _, seed = path.stem.rpartition("-seed")
        found.append((name, int(seed), path))
    rank = {d: i for i, d in enumerate(PANEL)}
    return sorted(found, key=lambda t: (rank.get(t[0], len(rank)), t[0], t[1]))


def load_features(path) -> tuple[np.ndarray, np.ndarray]:
    """The features and true labels that :func:`save_features` wrote (no pickles)."""
    data = np.load(path, allow_pickle=False)
    return data["features"], data["labels"]


def embedding_width(path) -> int:
    """How many of the first columns of saved features are the encoder's embedding."""
    data = np.load(path, allow_pickle=False)
    if "embedding_width" in data.files:
        return int(data["embedding_width"])
    return min(OLD_EMBEDDING_WIDTH, data["features"].shape[1])


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


def _fit_kasba(views, k, seed, cfg) -> tuple[np.ndarray, dict]:
    from aeon.clustering import KASBA as Kasba

    X = views["equal"].astype(np.float64)  # z-normalised, resampled to one length
    return np.asarray(Kasba(n_clusters=k, random_state=seed).fit_predict(X)), {}


FITTERS: dict[str, Callable] = {CNN: _fit_cnn, RAW: _fit_raw, KSHAPE: _fit_kshape, DTW: _fit_dtw,
                                ROCKET: _fit_rocket, KASBA: _fit_kasba}


def chosen_methods(cfg: Config) -> tuple[str, ...]:
    """The methods a run fits: ``cfg.methods`` in the order of :data:`METHODS`, all by default;
    an unknown name is an error."""
    unknown = set(cfg.methods) - set(METHODS)
    if unknown:
        raise ValueError(f"unknown method(s) {sorted(unknown)}; known: {list(METHODS)}")
    return tuple(m for m in METHODS if not cfg.methods or m in cfg.methods)


def warm_up() -> None:
    """Compile the peers' numba kernels on tiny inputs, so JIT time is not counted."""
    rng = np.random.default_rng(0)
    for shape in ((12, 1, 20), (12, 3, 20)):
        X = rng.standard_normal(shape).astype(np.float32)
        X[:4, :, 15:] = np.nan
        views = _views(X)
        for method in (KSHAPE, DTW, ROCKET, KASBA):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                try:
                    FITTERS[method](views, 2, 0, None)
                except ImportError:  # reported per cell by run()
                    pass


PEERS = (RAW, KSHAPE, DTW, ROCKET, KASBA)


def peer_versions() -> str:
    """The peers' package versions, as stored with their cached runs."""
    from importlib.metadata import PackageNotFoundError, version

    out = []
    for package in ("scikit-learn", "tslearn", "aeon", "numpy"):
        try:
            out.append(f"{package}=={version(package)}")
        except PackageNotFoundError:
            out.append(f"{package} missing")
    return " ".join(out)


def _load_peer_cache(cfg: Config) -> dict:
    """Stored peer runs keyed by (dataset, method, seed), if their versions are today's."""
    from pathlib import Path

    if not cfg.peer_cache or not Path(cfg.peer_cache).exists():
        return {}
    stored = pd.read_csv(cfg.peer_cache)
    stored = stored[stored.versions == peer_versions()]
    return {(r["dataset"], r["method"], int(r["seed"])): r for r in stored.to_dict("records")}


def _save_peer_cache(cfg: Config, rows: list[dict], cache: dict | None = None) -> None:
    """Store the peers' runs: this run's rows, and every stored row it did not measure again
    (other sets, other seeds), so a run on a subset never drops the others' results."""
    if not cfg.peer_cache:
        return
    merged = dict(cache or {})
    for r in rows:
        if r["method"] in PEERS and not str(r.get("status", "")).startswith("not installed"):
            merged[(r["dataset"], r["method"], int(r["seed"]))] = r
    if not merged:
        return
    columns = ("dataset", "method", "seed", "nmi", "ari", "seconds", "status", "versions", "date")
    peers = pd.DataFrame(list(merged.values()))
    peers[[c for c in columns if c in peers.columns]].to_csv(cfg.peer_cache, index=False)


def _skipped_row(cache: dict, dataset: str, method: str, estimate: float, versions: str,
                 today: str) -> dict:
    """The row of a peer skipped for its estimated cost: the stored one where it says the same
    (so its date stays the day it was first skipped and a rerun leaves the stored file as it
    was), a new one dated today otherwise."""
    status = f"skipped: estimated {fmt_seconds(estimate)} per fit"
    stored = cache.get((dataset, method, -1))
    if stored is not None and stored.get("status") == status:
        return {**stored, "reused": True}
    return {"dataset": dataset, "method": method, "seed": -1, "nmi": np.nan, "ari": np.nan,
            "seconds": np.nan, "status": status, "versions": versions, "date": today}


def run(cfg: Config) -> Section:
    import datetime

    from . import panel

    if not cfg.datasets:
        cfg.datasets = panel.PANEL
    cache = _load_peer_cache(cfg)
    versions, today = peer_versions(), datetime.date.today().isoformat()
    with Timer() as total:
        warm_up()
        rows, info = [], []
        for name in cfg.datasets:
            try:
                X, y = panel.load(name)
            except ImportError as exc:
                for method in chosen_methods(cfg):
                    rows.append({"dataset": name, "method": method, "seed": -1, "nmi": np.nan,
                                 "ari": np.nan, "seconds": np.nan,
                                 "status": f"not installed: {exc.name} (install the `bench` "
                                           "extra)"})
                info.append({"dataset": name, "group": panel.group(name), "series": 0,
                             "channels": 0, "length": "–", "classes": 0})
                continue
            k = len(np.unique(y))
            n, c, length = X.shape
            lengths = (~np.isnan(X).all(axis=1)).sum(axis=1)
            info.append({"dataset": name, "group": panel.group(name), "series": n,
                         "channels": c,
                         "length": (f"{lengths.min()}-{lengths.max()}" if lengths.min() < length
                                    else str(length)), "classes": k})
            views = _views(X)
            for method in chosen_methods(cfg):
                est = estimated_seconds(method, n, k, length)
                if est > cfg.peer_budget_s:
                    rows.append(_skipped_row(cache, name, method, est, versions, today))
                    continue
                for seed in cfg.seeds:
                    stored = cache.get((name, method, seed))
                    if method in PEERS and stored is not None:
                        rows.append({**stored, "reused": True})
                        continue
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
                    features = extra.pop("_features", None)
                    width = extra.pop("_embedding_width", None)
                    if features is not None and cfg.extra.get("features_dir"):
                        save_features(cfg.extra["features_dir"], name, seed, features, y,
                                      width)
                    if cfg.verbose:
                        print(f"[bench]   {name} {method} seed {seed}: {t.seconds:.1f} s",
                              flush=True)
                    rows.append({"dataset": name, "method": method, "seed": seed,
                                 "nmi": normalized_mutual_info_score(y, labels),
                                 "ari": adjusted_rand_score(y, labels),
                                 "seconds": t.seconds, "status": "ok", "versions": versions,
                                 "date": today, **extra})
                    if method in PEERS:
                        _save_peer_cache(cfg, rows, cache)
            if cfg.extra.get("runs_path"):  # what a run measured survives its interruption
                pd.DataFrame(rows).merge(pd.DataFrame(info), on="dataset", how="left").assign(
                    section_seconds=time.perf_counter() - total.start).to_csv(
                    cfg.extra["runs_path"], index=False)
    _save_peer_cache(cfg, rows, cache)
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
    section.tables["panel"], section.tables["groups"] = panel_tables(runs, info)
    section.tables["targets"] = targets_table(runs)
    section.markdown = {key: to_markdown(section.tables[key])
                        for key in ("datasets", "nmi", "ari", "seconds", "published", "panel",
                                    "groups", "targets")}
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


def _means(runs: pd.DataFrame, metric: str = "nmi") -> pd.DataFrame:
    ok = runs[runs.status == "ok"]
    return ok.groupby(["dataset", "method"])[metric].mean().unstack()


def panel_tables(runs: pd.DataFrame, info: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per method over the panel: mean NMI/ARI, sets won, fit times; and the mean per group.

    Means are over the sets where the method ran; "sets run" says how many that is (a peer
    skipped for its cost is missing from its own mean, which flatters it). Fit times are read
    as the targets read them: the median of the sets' mean fit times, and the longest single
    fit.
    """
    nmi, ari, sec = _means(runs, "nmi"), _means(runs, "ari"), _means(runs, "seconds")
    longest = runs[runs.status == "ok"].groupby("method").seconds.max()
    best = nmi.max(axis=1)
    rows = []
    for method in METHODS:
        if method not in nmi:
            continue
        col = nmi[method].dropna()
        won = int(((nmi[method] - best).abs() < 5e-4).sum())
        rows.append({"method": method, "sets run": len(col), "mean NMI": col.mean(),
                     "mean ARI": ari[method].dropna().mean(), "best on": won,
                     "median s per fit": sec[method].median(), "max s per fit": longest[method]})
    groups = info.set_index("dataset").group if "group" in info else pd.Series(dtype=str)
    grow = []
    for g in sorted(set(groups)):
        members = [d for d in groups.index[groups == g] if d in nmi.index]
        if not members:
            continue
        grow.append({"group": g, "sets": len(members),
                     **{m: nmi.loc[members, m].mean() for m in METHODS if m in nmi}})
    return pd.DataFrame(rows), pd.DataFrame(grow)


def targets_table(runs: pd.DataFrame) -> pd.DataFrame:
    """The quality and time targets of CNN-KMeans at its defaults, measured against the panel."""
    nmi = _means(runs, "nmi")
    if CNN not in nmi or nmi.empty:
        return pd.DataFrame(columns=["target", "measured", "met"])
    ok = runs[(runs.status == "ok") & (runs.method == CNN)]
    cnn, best = nmi[CNN], nmi.max(axis=1)
    both = nmi[[CNN, ROCKET]].dropna() if ROCKET in nmi else pd.DataFrame()
    ratio = both[CNN].mean() / both[ROCKET].mean() if len(both) else np.nan
    share = float(((cnn - best).abs() < 5e-4).mean())
    secs = ok.groupby("dataset").seconds.mean()
    spread = ok.groupby("dataset").nmi.std(ddof=0)
    seeds = ok.groupby("dataset").seed.nunique()
    calm = float((spread[seeds >= 2] <= 0.05).mean()) if (seeds >= 2).any() else np.nan
    # GunPoint flipped between 0 and 0.34 from one seed to the next: every seed must clear it
    gun_runs = ok[ok.dataset == "GunPoint"].nmi
    gun = float(gun_runs.min()) if len(gun_runs) else np.nan
    def shown(value, fmt):
        return "–" if value is None or not np.isfinite(value) else fmt.format(value)

    rows = [
        ("mean NMI >= 1.15 x MiniRocket + PCA + K-Means (same sets)", shown(ratio, "{:.2f} x"),
         ratio >= 1.15),
        ("best method on >= 60 % of the sets", f"{share:.0%}", share >= 0.6),
        ("median fit time <= 60 s", shown(secs.median(), "{:.0f} s"), secs.median() <= 60),
        ("no fit over 5 minutes", shown(ok.seconds.max(), "max {:.0f} s"),
         ok.seconds.max() <= 300),
        ("NMI std over seeds <= 0.05 on >= 80 % of the sets",
         "–" if np.isnan(calm) else f"{calm:.0%}", bool(calm >= 0.8) if calm == calm else False),
        ("GunPoint clearly above 0 (NMI > 0.05 on every seed)", shown(gun, "lowest {:.3f}"),
         bool(gun > 0.05)),
    ]
    if not len(gun_runs):  # a run without GunPoint (the held-out sets) cannot tell
        rows[-1] = (rows[-1][0], "GunPoint not in this run", None)
    return pd.DataFrame([{"target": t, "measured": m,
                          "met": "–" if ok_ is None else "yes" if ok_ else "no"}
                         for t, m, ok_ in rows])


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
    from tsc_toolkit import CNNKMeans

    seeds = ", ".join(str(s) for s in cfg.seeds)
    defaults = CNNKMeans()
    kernels, weights = defaults.kernel_features, defaults.graph_weights
    if defaults.n_neighbors == "auto":
        graph = (f"the nearest-neighbour graph with {auto_neighbour_counts()} neighbours, "
                 "whichever has the largest eigengap at k (`n_neighbors=\"auto\"`; "
                 f"{weights} edge weights)")
    else:
        graph = f"the {defaults.n_neighbors}-nearest-neighbour graph ({weights} edge weights)"
    from .panel import HOLDOUT

    held_out = bool(cfg.datasets) and set(cfg.datasets) <= set(HOLDOUT)
    return (
        ("Held-out sets (`benchmarks.panel.HOLDOUT`): no default was tuned on them, so they "
         "check whether what the development panel chose carries over. " if held_out else "")
        + f"Train and test splits merged, k = number of classes, seeds {seeds}; NMI "
        "(arithmetic normalisation) and ARI against the true classes, mean ± standard deviation "
        "over seeds; the best mean in each row is bold, whichever method it is. Methods:\n\n"
        f"- **{CNN}**: `CNNKMeans(clusters=k, random_state=seed, device=\"cpu\""
        + ("" if cfg.cnn_max_steps is None else f", max_steps={cfg.cnn_max_steps}")
        + ")`, everything else at its defaults: fg-research's architecture (10 blocks, 40 "
        "filters, 320-d embedding, 10 negatives, batch 10, lr 0.001) trained for "
        + ("the default budget of 100 optimisation steps" if cfg.cnn_max_steps is None
           else f"{cfg.cnn_max_steps} optimisation steps")
        + " on windows of at most 128 steps, the L2-normalised embedding next to a 50-d "
        f"random-kernel view ({kernels:,} features), spectral clustering of {graph}. "
        "The series go in raw "
        "(NaN-padded); the model scales them.\n"
        f"- **{RAW}**: scikit-learn `KMeans(n_clusters=k, n_init=10)` on the flattened series, "
        "z-normalised per series and channel; variable-length series (JapaneseVowels, PLAID) "
        "linearly resampled to the longest length.\n"
        f"- **{KSHAPE}**: `tslearn.clustering.KShape(n_init=1)` on the same resampled series.\n"
        f"- **{DTW}**: `tslearn.clustering.TimeSeriesKMeans(metric=\"dtw\", n_init=1, "
        "max_iter=10, max_iter_barycenter=10)` with a Sakoe-Chiba radius of 10 % of the length, "
        "on the NaN-padded z-normalised series (tslearn's own variable-length path).\n"
        f"- **{ROCKET}**: aeon `MiniRocket` (10,000 kernels) -> `StandardScaler` -> "
        "`PCA(50)` -> `KMeans(n_init=10)`, on the resampled series.\n"
        f"- **{KASBA}**: aeon `KASBA(n_clusters=k)` at its defaults (MSM distance; Holder and "
        "Bagnall, DMKD 2026), on the resampled series.\n\n"
        "DTW k-means, KShape and KASBA are skipped where their estimated cost per fit exceeds "
        f"{fmt_seconds(cfg.peer_budget_s)} (estimate calibrated on the 2-core reference "
        "baseline: banded DTW k-means ~1e-6 s x n x k x T², KShape ~7e-7 s x n x k x T log2 T; "
        f"KASBA ~{KASBA_SECONDS_PER_CELL:g} s x n x k x T², {KASBA_CALIBRATION}); "
        "the cell then says `skipped`. Wall time counts `fit` and the labels only (not loading "
        "or z-normalising); numba kernels are compiled on tiny inputs first."
    )


def _notes(runs: pd.DataFrame) -> list[str]:
    notes = []
    if "reused" in runs:
        reused = runs[runs["reused"].fillna(False).astype(bool) & (runs.status == "ok")]
        if len(reused):
            dates = ", ".join(sorted({str(d) for d in reused["date"]}))
            notes.append(
                f"{len(reused)} peer fits were not run again: their results come from the "
                f"stored peer runs (docs/peer_runs.csv, stored {dates}, same package versions). "
                "Their wall times were measured then, on the machine of that run; the machine "
                "table above describes this run, so compare those times with CNN-KMeans' only "
                "where the two machines are the same.")
    for row in runs[runs.status != "ok"].drop_duplicates(["dataset", "method"]).itertuples():
        notes.append(f"{row.dataset}, {row.method}: {row.status}.")
    return notes
