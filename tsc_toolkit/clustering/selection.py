"""Choosing k: cluster the embeddings for a range of k and score each clustering.

:func:`scan_k` clusters once per k, with the same settings and seed for every k: with the
clustering stage of :class:`tsc_toolkit.CNNKMeans` (spectral clustering of the
nearest-neighbour graph) when it is given a fitted model, with K-Means when it is given an
array. It scores each clustering with the usual internal criteria:

- ``inertia``: the within-cluster sum of squared distances. It always falls as k grows; the
  suggested k is the *elbow* of the curve, found with the Kneedle method (``kneed``), or,
  when Kneedle finds none, the point farthest from the chord joining the curve's ends.
- ``silhouette``: mean silhouette coefficient, in [-1, 1], higher is better (argmax).
  Computed on a random sample of ``sample_size`` points when there are more.
- ``calinski_harabasz``: between- over within-cluster dispersion, higher is better (argmax).
- ``davies_bouldin``: mean similarity of each cluster with its closest one, lower is better
  (argmin).
- ``gap``: the gap statistic of Tibshirani, Walther & Hastie (2001): how much lower
  ``log(inertia)`` is on the data than on reference data with no cluster structure. The
  suggested k follows their one-standard-error rule: the smallest k with
  ``gap(k) >= gap(k') - s(k')``, where ``k'`` is the next k scanned.

The result, :class:`KScan`, keeps the labels and centers of every k, so a chart or a k
selector can show any of them without clustering again.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from numbers import Integral

import numpy as np
import pandas as pd

from .stage import inertia

__all__ = ["KScan", "scan_k", "METRICS", "RECOMMENDED", "RECOMMENDED_SPECTRAL", "recommended_order"]

METRICS = ("inertia", "silhouette", "calinski_harabasz", "davies_bouldin", "gap")
_COLUMNS = ["k", "inertia", "silhouette", "calinski_harabasz", "davies_bouldin", "gap", "gap_se"]
#: The criteria whose suggestion is the recommended k (:attr:`KScan.best_k_`) of a K-Means
#: scan, the first one computed wins. The order comes from the 31 sets of the development
#: panel (k scanned from 2 to max(12, classes + 2) on the features of a default model, seed 0;
#: docs/benchmarks_k.md): the suggested k was within one of the number of classes for
#: Calinski-Harabasz 15 times (11 exactly), silhouette 15 (9), Davies-Bouldin 13 (6), the
#: inertia elbow 5 (0), the gap statistic 3 (2).
RECOMMENDED = ("calinski_harabasz", "silhouette", "davies_bouldin", "inertia", "gap")
#: The same for a scan with ``clustering="spectral"`` (the clustering of a default CNNKMeans,
#: and what :func:`scan_k` does with a fitted model). On the same panel and features the
#: silhouette of the spectral partitions was within one of the number of classes on 16 of
#: the 31 sets at each of the three seeds (9, 10, 10 exactly), Calinski-Harabasz on 15, 16, 16,
#: Davies-Bouldin on 15, 16, 16; on the 18 held-out sets silhouette 9, Calinski-Harabasz 8,
#: Davies-Bouldin 6 (seed 0). Always answering 2 scores 17 on the panel, 6 held out.
RECOMMENDED_SPECTRAL = ("silhouette", "calinski_harabasz", "davies_bouldin", "inertia", "gap")


def recommended_order(algorithm: str) -> tuple[str, ...]:
    """The criteria, in order, whose first computed one gives the recommended k of a scan made
    with ``algorithm``: :data:`RECOMMENDED_SPECTRAL` for ``"spectral"``, else
    :data:`RECOMMENDED`."""
    return RECOMMENDED_SPECTRAL if algorithm == "spectral" else RECOMMENDED
_REFERENCES = ("pca", "box")


@dataclass(frozen=True)
class KScan:
    """What :func:`scan_k` found: the scores of every k and the k each criterion suggests.

    Attributes
    ----------
    scores : pandas.DataFrame
        One row per k, in increasing k, with the columns ``k, inertia, silhouette,
        calinski_harabasz, davies_bouldin, gap, gap_se``. A criterion that was not asked
        for is NaN (``inertia`` is always filled: it comes with the clustering).
    suggested : dict of str to int
        The k each requested criterion suggests, keyed by criterion name (``"inertia"`` is
        the elbow of the inertia curve).
    labels : dict of int to ndarray of shape (n_samples,)
        Cluster index of every point, for each k.
    centers : dict of int to ndarray of shape (k, n_features)
        Cluster centers for each k.
    elbow_method : str or None
        ``"kneedle"`` or ``"chord"`` (the fallback), None when inertia was not requested.
    gap_reference : str
        ``"pca"`` or ``"box"``: where the gap statistic's reference points were drawn.
    algorithm : str
        What clustered each k: ``"spectral"`` (spectral clustering), or K-Means with
        ``"lloyd"``, ``"elkan"`` or ``"webscale"``. ``centers`` of a spectral scan are the
        means of each cluster's points.
    """

    scores: pd.DataFrame
    suggested: dict[str, int]
    labels: dict[int, np.ndarray] = field(repr=False)
    centers: dict[int, np.ndarray] = field(repr=False)
    elbow_method: str | None = None
    gap_reference: str = "pca"
    algorithm: str = "lloyd"

    @property
    def clustering(self) -> str:
        """``"spectral"`` or ``"kmeans"``, as ``CNNKMeans(clustering=...)`` names it."""
        return "spectral" if self.algorithm == "spectral" else "kmeans"

    @property
    def k_values(self) -> list[int]:
        """The ks scanned, in increasing order."""
        return [int(k) for k in self.scores["k"]]

    @property
    def best_k_(self) -> int | None:
        """The one recommended k: the suggestion of the first criterion of :data:`RECOMMENDED`
        (:data:`RECOMMENDED_SPECTRAL` for a spectral scan) that was computed (see
        :attr:`recommended_by`)."""
        name = self.recommended_by
        return None if name is None else self.suggested[name]

    @property
    def recommended_by(self) -> str | None:
        """The criterion behind :attr:`best_k_`, None when no criterion was computed."""
        order = recommended_order(self.algorithm)
        return next((m for m in order if self.suggested.get(m) is not None), None)

    @property
    def elbow(self) -> int | None:
        """The elbow of the inertia curve (``suggested["inertia"]``), None if not computed."""
        return self.suggested.get("inertia")

    # The names used by sklearn-style fitted objects, for code written against them.
    @property
    def scores_(self) -> pd.DataFrame:
        """Same as :attr:`scores`."""
        return self.scores

    @property
    def suggested_(self) -> dict[str, int]:
        """Same as :attr:`suggested`."""
        return self.suggested

    @property
    def elbow_(self) -> int | None:
        """Same as :attr:`elbow`."""
        return self.elbow

    def __repr__(self) -> str:
        ks = self.k_values
        return (f"KScan(k={ks[0]}..{ks[-1]} ({len(ks)} values), algorithm={self.algorithm!r}, "
                f"best_k_={self.best_k_}, suggested={self.suggested})")


def scan_k(X, k_range: Iterable[int] = range(2, 11), *,
           metrics: Iterable[str] = METRICS,
           clustering: str | None = None,
           algorithm: str | None = None,
           n_init: int = 10,
           n_neighbors: int | str | None = None,
           graph_weights: str | None = None,
           sample_size: int | None = 2000,
           n_refs: int = 10,
           gap_reference: str = "pca",
           random_state=None) -> KScan:
    """Cluster ``X`` for each k of ``k_range`` and report which k each criterion suggests.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features) or fitted CNNKMeans
        Embeddings, or a fitted model, whose ``features_`` (what its clustering stage saw:
        the embedding and the random-kernel view; ``embeddings_`` for older models) are
        used.
    k_range : iterable of int, default=range(2, 11)
        The ks to try; each must be at least 2 and less than ``n_samples``. Duplicates
        are dropped and the ks are sorted.
    metrics : iterable of str, default=all of them
        Any of ``"inertia"`` (elbow), ``"silhouette"``, ``"calinski_harabasz"``,
        ``"davies_bouldin"``, ``"gap"``. The gap statistic is the costly one: it clusters
        ``n_refs`` reference sets for every k.
    clustering : {"spectral", "kmeans"} or None, default=None
        What clusters each k, in the words of :class:`tsc_toolkit.CNNKMeans` (its
        clustering stage, :class:`tsc_toolkit.clustering.FeatureClusterer`): ``"spectral"``,
        spectral clustering of the ``n_neighbors``-nearest neighbour graph (each k clustered
        the way ``refit_clusters(k)`` would cluster it), or ``"kmeans"``. None: the model's
        own when ``X`` is a fitted CNNKMeans (its ``clustering``, ``algorithm``,
        ``n_neighbors`` and ``graph_weights``), ``"kmeans"`` for an array or when
        ``algorithm`` is given. The same stage clusters the gap's reference sets.
    algorithm : {"lloyd", "elkan", "webscale"} or None, default=None
        The K-Means variant of ``"kmeans"``: scikit-learn's ``KMeans`` with this algorithm,
        or :class:`tsc_toolkit.clustering.kmeans.WebScaleKMeans` (SageMaker's built-in K-Means). None:
        the model's, else ``"lloyd"``. ``algorithm="spectral"``, the former way to ask for
        spectral clustering, still works (with a FutureWarning).
    n_init : int, default=10
        Restarts of each K-Means fit, the best kept (``num_trials`` for ``"webscale"``; the
        restarts of the K-Means step on the spectral embedding for ``"spectral"``).
    n_neighbors : int, "auto" or None, default=None
        Neighbours per point in the graph of ``"spectral"``: the model's, else ``"auto"``.
        ``"auto"``: for each k, the count among 5, 7 and 10 whose graph shows k groups most
        clearly, as ``refit_clusters(k)`` chooses it for a model with ``n_neighbors="auto"``
        (:func:`tsc_toolkit.clustering.graph_clustering.choose_neighbors`).
    graph_weights : {"local-scaling", "unit"} or None, default=None
        Edge weights of that graph (see :func:`tsc_toolkit.clustering.graph_clustering.neighbour_graph`):
        the model's, else ``"local-scaling"``.
    sample_size : int or None, default=2000
        The silhouette is computed on this many randomly drawn points when there are more
        (it costs ``O(n^2)``); None uses every point.
    n_refs : int, default=10
        Reference sets per k for the gap statistic (``B`` in the paper).
    gap_reference : {"pca", "box"}, default="pca"
        Reference distribution of the gap statistic, uniform over a box that bounds the
        data: ``"pca"`` aligns the box with the data's principal axes (Tibshirani et al.'s
        recommended choice, and R's ``clusGap`` default), ``"box"`` uses each feature's
        range.
    random_state : int, RandomState instance or None, default=None
        Seeds K-Means (an int is passed as is to every fit, so the same seed serves every
        k), the reference sets and the silhouette sample.

    Returns
    -------
    KScan
        ``scores`` (one row per k), ``suggested`` (criterion -> k), the ``labels`` and
        ``centers`` of every k, and ``best_k_``, the one recommended k.

    Raises
    ------
    ValueError
        For a k below 2 or not below ``n_samples``, fewer than three ks when the elbow is
        asked for (two when it is not), non-finite values, an unknown metric or algorithm.

    Notes
    -----
    The gap statistic follows Tibshirani et al. (2001) with ``W_k`` the inertia:
    ``gap(k) = mean_b log W*_kb - log W_k`` and ``s(k) = sd_b(log W*_kb) * sqrt(1 + 1/B)``.
    The scan starts at k = 2, so it cannot answer "no clusters at all" (k = 1). When no
    k satisfies the one-standard-error rule (the gap still grows at the end of the
    range), the largest k is suggested and a warning says so.

    Examples
    --------
    >>> from sklearn.datasets import make_blobs
    >>> from tsc_toolkit.clustering.selection import scan_k
    >>> X, _ = make_blobs(n_samples=200, centers=4, n_features=4, cluster_std=0.6,
    ...                   random_state=1)
    >>> scan = scan_k(X, range(2, 8), n_init=2, n_refs=4, random_state=0)
    >>> scan.suggested
    {'inertia': 4, 'silhouette': 4, 'calinski_harabasz': 4, 'davies_bouldin': 4, 'gap': 4}
    >>> scan.algorithm, scan.best_k_, scan.recommended_by
    ('lloyd', 4, 'calinski_harabasz')
    >>> spectral = scan_k(X, range(2, 8), metrics=["silhouette"], clustering="spectral",
    ...                   random_state=0)
    >>> spectral.best_k_, spectral.recommended_by
    (4, 'silhouette')
    >>> scan.scores.columns.tolist()
    ['k', 'inertia', 'silhouette', 'calinski_harabasz', 'davies_bouldin', 'gap', 'gap_se']
    >>> scan.labels[4].shape, scan.centers[4].shape
    ((200,), (4, 4))
    """
    from sklearn.utils import check_random_state

    Z = _embeddings(X)
    n = len(Z)
    metrics = _check_metrics(metrics)
    ks = _check_ks(k_range, n, elbow="inertia" in metrics)
    if not isinstance(n_init, Integral) or n_init < 1:
        raise ValueError(f"n_init must be a positive integer, got {n_init!r}.")
    stage = _stage(X, clustering, algorithm, n_neighbors, graph_weights, n_init)
    algorithm = "spectral" if stage.clustering == "spectral" else stage.algorithm
    if gap_reference not in _REFERENCES:
        raise ValueError(f"gap_reference must be one of {_REFERENCES}, got {gap_reference!r}.")
    if not isinstance(n_refs, Integral) or n_refs < 1:
        raise ValueError(f"n_refs must be a positive integer, got {n_refs!r}.")
    if sample_size is not None and (not isinstance(sample_size, Integral) or sample_size < 2):
        raise ValueError(f"sample_size must be an integer >= 2 or None, got {sample_size!r}.")

    if isinstance(random_state, Integral):
        seed = int(random_state)
    else:
        seed = int(check_random_state(random_state).randint(np.iinfo(np.int32).max))
    rng = np.random.default_rng(seed)
    stage.set_params(random_state=seed)

    rows, labels, centers = [], {}, {}
    references = (_reference_sets(Z, n_refs, gap_reference, rng) if "gap" in metrics else [])
    for k in ks:
        lab, cen = _cluster(Z, k, stage)
        labels[k], centers[k] = lab, cen
        row = dict.fromkeys(_COLUMNS, np.nan)
        row["k"] = k
        row["inertia"] = inertia(Z, lab, cen)
        row.update(_criteria(Z, lab, metrics, sample_size, seed))
        if "gap" in metrics:
            ref_logw = np.array([
                np.log(inertia(R, *_cluster(R, k, stage)))
                for R in references])
            row["gap"] = float(ref_logw.mean() - np.log(row["inertia"]))
            row["gap_se"] = float(ref_logw.std() * np.sqrt(1.0 + 1.0 / n_refs))
        rows.append(row)
    scores = pd.DataFrame(rows, columns=_COLUMNS).astype({"k": np.int64})

    suggested: dict[str, int] = {}
    elbow_method = None
    for name in metrics:
        if name == "inertia":
            suggested[name], elbow_method = _elbow(scores["k"].to_numpy(),
                                                   scores["inertia"].to_numpy())
        elif name in ("silhouette", "calinski_harabasz"):
            suggested[name] = _arg(scores, name, np.nanargmax)
        elif name == "davies_bouldin":
            suggested[name] = _arg(scores, name, np.nanargmin)
        elif name == "gap":
            suggested[name] = _one_se_rule(scores["k"].to_numpy(), scores["gap"].to_numpy(),
                                           scores["gap_se"].to_numpy())
    return KScan(scores=scores, suggested=suggested, labels=labels, centers=centers,
                 elbow_method=elbow_method, gap_reference=gap_reference, algorithm=algorithm)


# ----------------------------------------------------------------------- validation


def _is_model(X) -> bool:
    """Whether ``X`` is a fitted model (rather than an array of embeddings)."""
    return hasattr(X, "embeddings_") or hasattr(X, "encoder_")


def _embeddings(X) -> np.ndarray:
    if _is_model(X):
        Z = getattr(X, "features_", None)
        if Z is None:
            Z = getattr(X, "embeddings_", None)
        if Z is None:
            raise ValueError("The model has no embeddings_ (it was saved without them); pass "
                             "model.transform(X) instead.")
    elif hasattr(X, "fit") and hasattr(X, "get_params"):
        raise ValueError(f"{type(X).__name__} is not fitted: fit it first, or pass an array "
                         "of embeddings.")
    else:
        Z = X
    Z = np.asarray(Z)
    if Z.dtype.kind not in "fiu":
        raise ValueError(f"X must hold numbers, got dtype {Z.dtype}.")
    if Z.ndim != 2:
        hint = (" For series (n_series, n_channels, length), pass model.transform(X) or a "
                "fitted CNNKMeans." if Z.ndim == 3 else "")
        raise ValueError(f"X must be a 2-D array (n_samples, n_features), got shape "
                         f"{Z.shape}.{hint}")
    if not np.isfinite(Z).all():
        raise ValueError("X contains NaN or infinite values; embeddings must be finite.")
    if Z.dtype not in (np.float32, np.float64):
        Z = Z.astype(np.float64)
    if len(Z) < 3:
        raise ValueError(f"X has {len(Z)} samples; choosing k needs at least 3.")
    return Z


def _stage(X, clustering, algorithm, n_neighbors, graph_weights, n_init):
    """The clustering stage of a scan (unfitted): the model's, with what the call overrides."""
    from .graph_clustering import GRAPH_WEIGHTS
    from .stage import CLUSTERINGS, KMEANS_ALGORITHMS, FeatureClusterer

    if algorithm == "spectral":
        warnings.warn("scan_k(algorithm='spectral') is now clustering='spectral'.",
                      FutureWarning, stacklevel=3)
        clustering, algorithm = "spectral", None
    model = X if _is_model(X) else None
    if clustering is None:  # naming a K-Means variant asks for K-Means
        clustering = "kmeans" if algorithm is not None else getattr(model, "clustering",
                                                                     "kmeans")
    if clustering not in CLUSTERINGS:
        raise ValueError(f"clustering must be one of {CLUSTERINGS} or None, got "
                         f"{clustering!r}.")
    if algorithm is None:
        algorithm = getattr(model, "algorithm", "lloyd")
    if algorithm not in KMEANS_ALGORITHMS:
        raise ValueError(f"algorithm must be one of {KMEANS_ALGORITHMS} or None, got "
                         f"{algorithm!r}.")
    if n_neighbors is None:
        n_neighbors = getattr(model, "n_neighbors", "auto")
    if graph_weights is None:
        graph_weights = getattr(model, "graph_weights", "local-scaling")
    if n_neighbors != "auto" and (isinstance(n_neighbors, bool)
                                  or not isinstance(n_neighbors, Integral) or n_neighbors < 1):
        raise ValueError(f"n_neighbors must be a positive integer or 'auto', got "
                         f"{n_neighbors!r}.")
    if graph_weights not in GRAPH_WEIGHTS:
        raise ValueError(f"graph_weights must be one of {GRAPH_WEIGHTS}, got "
                         f"{graph_weights!r}.")
    return FeatureClusterer(2, clustering, algorithm, int(n_init),
                            n_neighbors if n_neighbors == "auto" else int(n_neighbors),
                            graph_weights, device="cpu")


def _check_metrics(metrics) -> tuple[str, ...]:
    if isinstance(metrics, str):
        metrics = (metrics,)
    metrics = tuple(dict.fromkeys(metrics))
    unknown = [m for m in metrics if m not in METRICS]
    if unknown:
        raise ValueError(f"Unknown metric(s) {unknown}; choose from {list(METRICS)}.")
    if not metrics:
        raise ValueError("metrics is empty.")
    # Report in the canonical order whatever order they were given in.
    return tuple(m for m in METRICS if m in metrics)


def _check_ks(k_range, n: int, elbow: bool) -> list[int]:
    if isinstance(k_range, Integral):
        raise ValueError(f"k_range must be an iterable of ints such as range(2, 11), got "
                         f"{k_range!r}.")
    ks = []
    for k in k_range:
        if isinstance(k, bool) or not isinstance(k, Integral):
            raise ValueError(f"k_range must hold integers, got {k!r}.")
        ks.append(int(k))
    ks = sorted(set(ks))
    bad = [k for k in ks if k < 2 or k >= n]
    if bad:
        raise ValueError(f"Every k must be at least 2 and less than the number of samples "
                         f"({n}); got {bad}.")
    need = 3 if elbow else 2
    if len(ks) < need:
        why = "an elbow needs at least three" if elbow else "a scan needs at least two"
        raise ValueError(f"k_range has {len(ks)} value(s) {ks}; {why}.")
    return ks


# ----------------------------------------------------------------------- computation


def _cluster(Z: np.ndarray, k: int, stage) -> tuple[np.ndarray, np.ndarray]:
    """Labels and centers of ``Z`` in ``k`` clusters by the scan's clustering stage."""
    from sklearn.base import clone

    fitted = clone(stage).set_params(n_clusters=k).fit(Z)
    return fitted.labels_, fitted.cluster_centers_.astype(Z.dtype)


def _criteria(Z, labels, metrics, sample_size, seed) -> dict[str, float]:
    from sklearn import metrics as skm

    out = {}
    n_labels = len(np.unique(labels))
    if n_labels < 2:  # a degenerate fit (duplicate points): no criterion is defined
        return {m: np.nan for m in ("silhouette", "calinski_harabasz", "davies_bouldin")}
    if "silhouette" in metrics:
        size = sample_size if sample_size is not None and sample_size < len(Z) else None
        out["silhouette"] = float(skm.silhouette_score(Z, labels, sample_size=size,
                                                       random_state=seed))
    if "calinski_harabasz" in metrics:
        out["calinski_harabasz"] = float(skm.calinski_harabasz_score(Z, labels))
    if "davies_bouldin" in metrics:
        out["davies_bouldin"] = float(skm.davies_bouldin_score(Z, labels))
    return out


def _reference_sets(Z: np.ndarray, count: int, kind: str, rng: np.random.Generator):
    """Uniform points in a box bounding the data, as many as the data, ``count`` times."""
    Z64 = Z.astype(np.float64)
    if kind == "pca":
        mean = Z64.mean(axis=0)
        # Rows of vt are the principal axes; the box is drawn in their coordinates.
        _, _, vt = np.linalg.svd(Z64 - mean, full_matrices=False)
        proj = (Z64 - mean) @ vt.T
        low, high = proj.min(axis=0), proj.max(axis=0)
        return [(rng.uniform(low, high, size=proj.shape) @ vt + mean).astype(Z.dtype)
                for _ in range(count)]
    low, high = Z64.min(axis=0), Z64.max(axis=0)
    return [rng.uniform(low, high, size=Z.shape).astype(Z.dtype) for _ in range(count)]


# ----------------------------------------------------------------------- rules


def _arg(scores: pd.DataFrame, column: str, pick) -> int | None:
    values = scores[column].to_numpy()
    if np.isnan(values).all():
        return None
    return int(scores["k"].iloc[int(pick(values))])


def _elbow(ks: np.ndarray, inertia: np.ndarray) -> tuple[int, str]:
    """Kneedle's elbow (convex, decreasing); else the point farthest from the chord."""
    from kneed import KneeLocator

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # kneed warns when it finds no knee; we fall back
        knee = KneeLocator(ks, inertia, curve="convex", direction="decreasing").knee
    if knee is not None:
        return int(knee), "kneedle"
    return _chord_elbow(ks, inertia), "chord"


def _chord_elbow(ks: np.ndarray, values: np.ndarray) -> int:
    """The k whose point lies farthest below the straight line joining the curve's ends.

    Both axes are first scaled to [0, 1], so the answer does not depend on their units.
    A curve with no point below the chord (straight or concave) gives the first k.
    """
    x = (ks - ks[0]) / (ks[-1] - ks[0])
    span = values.max() - values.min()
    y = (values - values.min()) / span if span > 0 else np.zeros_like(values, dtype=float)
    chord = y[0] + (y[-1] - y[0]) * x
    below = chord - y
    if below.max() <= 1e-12:  # rounding noise on a straight line
        return int(ks[0])
    return int(ks[int(np.argmax(below))])


def _one_se_rule(ks: np.ndarray, gap: np.ndarray, se: np.ndarray) -> int:
    """Smallest k with ``gap(k) >= gap(next k) - se(next k)`` (Tibshirani et al., 2001)."""
    for i in range(len(ks) - 1):
        if gap[i] >= gap[i + 1] - se[i + 1]:
            return int(ks[i])
    warnings.warn(f"The gap statistic still grows at k={int(ks[-1])}, the end of the range; "
                  "scan larger k to find where it levels off.", UserWarning, stacklevel=3)
    return int(ks[-1])
