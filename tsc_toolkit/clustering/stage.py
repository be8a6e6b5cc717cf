"""FeatureClusterer: spectral clustering of the nearest-neighbour graph, or K-Means, behind
one scikit-learn interface."""

from __future__ import annotations

import threading
import weakref
from numbers import Integral

import numpy as np
from sklearn.base import BaseEstimator, ClusterMixin
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from ..seeding import stage_seed
from ..threads import inference_threads
from .graph_clustering import (
    GRAPH_WEIGHTS,
    member_means,
    neighbour_index,
    neighbour_vote,
    resolve_neighbors,
)

__all__ = ["FeatureClusterer", "CLUSTERINGS", "KMEANS_ALGORITHMS", "inertia"]

#: The values of ``clustering``: how the training points are grouped.
CLUSTERINGS = ("spectral", "kmeans")
#: The values of ``algorithm``: the K-Means variant (of ``clustering="kmeans"``).
KMEANS_ALGORITHMS = ("lloyd", "elkan", "webscale")
_KIND = "tsc_toolkit.FeatureClusterer"
#: Rows labelled at a time by :meth:`FeatureClusterer.predict` (bounds its memory).
_CHUNK = 65536
# The nearest-neighbour search of each fitted spectral stage (see _neighbour_index).
_INDEXES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_INDEX_LOCK = threading.Lock()


class FeatureClusterer(ClusterMixin, BaseEstimator):
    """Group feature vectors (embeddings, or embeddings beside a second view) into clusters.

    The clustering stage of :class:`~tsc_toolkit.CNNKMeans`, usable on its own on any
    ``(n_samples, n_features)`` array.

    Parameters
    ----------
    n_clusters : int, default=8
        Number of clusters.
    clustering : {"spectral", "kmeans"}, default="spectral"
        "spectral": spectral clustering of the k-nearest-neighbour graph of the points
        (:func:`tsc_toolkit.clustering.graph_clustering.spectral_labels`; a graph in more pieces than
        ``n_clusters`` has its pieces grouped whole); new points take the cluster of most of
        their ``n_neighbors_`` nearest training points. "kmeans": K-Means (``algorithm``);
        new points go to the nearest center.
    algorithm : {"lloyd", "elkan", "webscale"}, default="lloyd"
        The K-Means variant: scikit-learn's Lloyd or Elkan, or the web-scale mini-batch
        K-Means of SageMaker's built-in algorithm (:class:`tsc_toolkit.WebScaleKMeans`, which
        also reads a memory-mapped array a chunk at a time). Only for ``clustering="kmeans"``.
    n_init : int, default=10
        Restarts of K-Means (``num_trials`` of the web-scale variant; of the K-Means step in
        the spectral embedding for "spectral"), the best kept.
    n_neighbors : int or "auto", default="auto"
        Neighbours per point in the graph; "auto": the count among 5, 7 and 10 whose graph
        shows ``n_clusters`` groups most clearly
        (:func:`tsc_toolkit.clustering.graph_clustering.choose_neighbors`).
    graph_weights : {"local-scaling", "unit"}, default="local-scaling"
        Edge weights of the graph (:func:`tsc_toolkit.clustering.graph_clustering.neighbour_graph`).
    random_state : int, RandomState or None, default=None
        Seed of K-Means; an int is used as it is.
    device : str, default="cpu"
        Torch device of the web-scale K-Means.

    Attributes
    ----------
    labels_ : ndarray of shape (n_samples,), int64
        Cluster of each training point.
    cluster_centers_ : ndarray of shape (n_clusters, n_features)
        K-Means' centers; for "spectral", the mean of each cluster's points (in the dtype of
        the training points, float32 or float64).
    inertia_ : float
        Sum of squared distances of the training points to their cluster's center.
    n_neighbors_ : int
        Neighbours per point of the graph that clustered the training points ("spectral").
    train_features_ : ndarray of shape (n_samples, n_features)
        The training points, which label new points by their neighbours ("spectral").
    n_features_in_ : int

    Examples
    --------
    >>> import numpy as np
    >>> from tsc_toolkit.clustering import FeatureClusterer
    >>> rng = np.random.default_rng(0)
    >>> F = np.vstack([rng.normal(0, 0.1, (20, 2)), rng.normal(3, 0.1, (20, 2))])
    >>> stage = FeatureClusterer(n_clusters=2, random_state=0).fit(F)
    >>> len(set(stage.labels_[:20])), len(set(stage.labels_[20:])), stage.n_neighbors_
    (1, 1, 10)
    >>> stage.predict([[3.0, 3.0]]) == stage.labels_[-1]
    array([ True])
    >>> FeatureClusterer(2, clustering="kmeans", random_state=0).fit(F).cluster_centers_.shape
    (2, 2)
    """

    _parameter_constraints: dict = {
        "n_clusters": [Interval(Integral, 1, None, closed="left")],
        "clustering": [StrOptions(set(CLUSTERINGS))],
        "algorithm": [StrOptions(set(KMEANS_ALGORITHMS))],
        "n_init": [Interval(Integral, 1, None, closed="left")],
        "n_neighbors": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "graph_weights": [StrOptions(set(GRAPH_WEIGHTS))],
        "random_state": ["random_state"],
        "device": [str, object],
    }

    def __init__(self, n_clusters=8, clustering="spectral", algorithm="lloyd", n_init=10,
                 n_neighbors="auto", graph_weights="local-scaling", random_state=None,
                 device="cpu"):
        self.n_clusters = n_clusters
        self.clustering = clustering
        self.algorithm = algorithm
        self.n_init = n_init
        self.n_neighbors = n_neighbors
        self.graph_weights = graph_weights
        self.random_state = random_state
        self.device = device

    def fit(self, X, y=None):
        """Cluster the rows of ``X`` (an array, or a memory-mapped one for ``"webscale"``)."""
        self._validate_params()
        F = X if isinstance(X, np.memmap) else validate_data(
            self, X, dtype=[np.float32, np.float64], ensure_min_samples=1)
        if isinstance(X, np.memmap):
            self.n_features_in_ = int(F.shape[1])
        k, seed = int(self.n_clusters), stage_seed(self.random_state)
        if k > len(F):
            raise ValueError(f"n_clusters={k} is more than the {len(F)} training points "
                             f"(n_samples={len(F)}).")
        if self.clustering == "spectral":
            from .graph_clustering import spectral_labels

            self.n_neighbors_ = resolve_neighbors(F, k, self.n_neighbors, self.graph_weights)
            labels = spectral_labels(F, k, self.n_neighbors_, seed, self.n_init,
                                     self.graph_weights)
            self.cluster_centers_ = member_means(F, labels, k).astype(F.dtype)
            self.train_features_ = F
        else:
            km = self._kmeans(k, seed).fit(F)
            self.cluster_centers_ = np.asarray(km.cluster_centers_, dtype=F.dtype)
            labels = self._nearest(F)[0]
        self.labels_ = np.asarray(labels, dtype=np.int64)
        self.inertia_ = inertia(F, self.labels_, self.cluster_centers_)
        return self

    def predict(self, X) -> np.ndarray:
        """Cluster of each row of ``X``: the vote of its nearest training points
        ("spectral") or its nearest center ("kmeans")."""
        check_is_fitted(self, "labels_")
        F = validate_data(self, X, dtype=[np.float32, np.float64], reset=False,
                          ensure_min_samples=0)
        with inference_threads():
            if self.clustering == "spectral":
                return neighbour_vote(self.train_features_, self.labels_, F,
                                      self.n_neighbors_, len(self.cluster_centers_),
                                      index=self._neighbour_index())
            return self._nearest(F)[0]

    def _neighbour_index(self):
        # Built once per fitted state, not per call: a server labels one series at a time,
        # and refitting the search copied and checked every training row for each request.
        # Kept beside the stage, not on it: predict leaves the estimator as it was.
        with _INDEX_LOCK:
            cached = _INDEXES.get(self)
        if cached is None or cached[0] is not self.train_features_ \
                or cached[1] != self.n_neighbors_:
            cached = (self.train_features_, self.n_neighbors_,
                      neighbour_index(self.train_features_, self.n_neighbors_))
            with _INDEX_LOCK:
                _INDEXES[self] = cached
        return cached[2]

    def _nearest(self, F) -> tuple[np.ndarray, np.ndarray]:
        from ..embedding.training import nearest_centers

        parts = [nearest_centers(np.asarray(F[i:i + _CHUNK]), self.cluster_centers_)
                 for i in range(0, max(len(F), 1), _CHUNK)]
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])

    def _kmeans(self, k: int, seed: int):
        if self.algorithm == "webscale":
            from .kmeans import WebScaleKMeans

            return WebScaleKMeans(k=k, num_trials=self.n_init, random_state=seed,
                                  device=self.device)
        from sklearn.cluster import KMeans

        return KMeans(n_clusters=k, algorithm=self.algorithm, n_init=self.n_init,
                      random_state=seed)

    # -------------------------------------------------------------- persistence

    @classmethod
    def from_fitted(cls, params: dict, cluster_centers, labels=None, train_features=None,
                    graph_neighbors=None) -> FeatureClusterer:
        """A fitted stage with the parameters ``params`` from what it keeps: its centers, and
        for ``"spectral"`` the training points, their labels and the graph's neighbour count
        (``n_neighbors_``), which label new points."""
        self = cls(**params)
        self.cluster_centers_ = np.asarray(cluster_centers)
        self.n_features_in_ = int(self.cluster_centers_.shape[1])
        if labels is not None:
            self.labels_ = np.asarray(labels, dtype=np.int64)
        if self.clustering == "spectral":
            if train_features is None or labels is None or graph_neighbors is None:
                raise ValueError("spectral clustering labels new points by their training "
                                 "neighbours: it needs the training points, their labels and "
                                 "the neighbour count")
            if int(graph_neighbors) < 1:
                raise ValueError(f"the neighbour count must be positive, got "
                                 f"{graph_neighbors!r}")
            self.train_features_ = np.asarray(train_features)
            self.n_neighbors_ = int(graph_neighbors)
        return self

    def save(self, path):
        """Save the fitted stage to the folder ``path`` (JSON config + safetensors)."""
        from .. import __version__
        from ..persistence import json_params, write_bundle

        check_is_fitted(self, "cluster_centers_")
        tensors = {"cluster_centers": self.cluster_centers_}
        state = {}
        if hasattr(self, "labels_"):
            tensors["labels"] = self.labels_
        if self.clustering == "spectral":
            tensors["train_features"] = self.train_features_
            state["n_neighbors"] = int(self.n_neighbors_)
        if hasattr(self, "inertia_"):
            state["inertia"] = float(self.inertia_)
        return write_bundle(path, _KIND, {"library_version": __version__,
                                          "params": json_params(self.get_params()),
                                          "state": state}, tensors)

    @classmethod
    def load(cls, path) -> FeatureClusterer:
        """Open a stage saved with :meth:`save`. Nothing is unpickled or executed."""
        from ..persistence import ModelFormatError, read_bundle

        meta, tensors = read_bundle(path, _KIND)
        params, state = dict(meta.get("params", {})), dict(meta.get("state", {}))
        unknown = set(params) - set(cls._get_param_names())
        if unknown:
            raise ModelFormatError(f"{path}: unknown parameters {sorted(unknown)}.")
        arrays = {k: v.numpy() for k, v in tensors.items()}
        try:
            self = cls.from_fitted(params, arrays["cluster_centers"], arrays.get("labels"),
                                   arrays.get("train_features"), state.get("n_neighbors"))
        except (KeyError, TypeError, ValueError) as err:
            raise ModelFormatError(f"{path}: {err}.") from None
        if "inertia" in state:
            self.inertia_ = float(state["inertia"])
        return self

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.non_deterministic = self.random_state is None
        return tags


def inertia(F, labels: np.ndarray, centers: np.ndarray) -> float:
    """Sum of squared Euclidean distances of the rows of ``F`` to their centers (float64)."""
    total = 0.0
    for i in range(0, len(F), _CHUNK):
        d = np.linalg.norm(np.asarray(F[i:i + _CHUNK]) - centers[labels[i:i + _CHUNK]], axis=1)
        total += float((d.astype(np.float64) ** 2).sum())
    return total
