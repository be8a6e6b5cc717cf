"""Choose k with a slider: re-cluster the stored embeddings, no retraining."""

from __future__ import annotations

import copy
from collections.abc import Callable

import numpy as np

from ._base import (
    FigureView,
    WidgetBase,
    cluster_colors,
    escape,
    fmt,
    pca2,
    require_ipywidgets,
)
from .explorer import projection_figure, sample_points

_SCORES = (("silhouette", "higher is better"), ("calinski_harabasz", "higher is better"),
           ("davies_bouldin", "lower is better"))


def cluster_scores(z: np.ndarray, labels: np.ndarray, sample_size: int = 2000,
                   random_state: int = 0) -> dict:
    """Silhouette (sampled), Calinski-Harabasz and Davies-Bouldin of ``labels`` on ``z``.

    NaN where a score is undefined (one cluster, or as many clusters as points).
    """
    from sklearn.metrics import calinski_harabasz_score, davies_bouldin_score, silhouette_score

    n_labels = len(np.unique(labels))
    if not 2 <= n_labels <= len(z) - 1:
        return {name: float("nan") for name, _ in _SCORES}
    size = sample_size if len(z) > sample_size else None
    return {
        "silhouette": float(silhouette_score(z, labels, sample_size=size,
                                             random_state=random_state)),
        "calinski_harabasz": float(calinski_harabasz_score(z, labels)),
        "davies_bouldin": float(davies_bouldin_score(z, labels)),
    }


def centroids_overview(X: np.ndarray, labels: np.ndarray, max_members: int = 10):
    """Small multiples: each cluster's members (a few), mean series and quantile band."""
    from tsc_toolkit import plots

    return plots.centroids(X, labels, max_members=max_members, col_wrap=5,
                           title=f"centroids, k = {len(np.unique(labels))}")


class KSelector(WidgetBase):
    """A slider over k that re-clusters stored embeddings and shows projection, centroids, scores.

    Moving the slider runs ``refit_clusters(k)`` on a shallow copy of the model, so the model
    you passed keeps its clusters and the encoder is never retrained. With a k scan (from
    :func:`tsc_toolkit.clustering.selection.scan_k`) its labels and scores are used where it has them.

    Parameters
    ----------
    model_or_scan : fitted CNNKMeans, or a k scan
        A model (``embeddings_``, ``labels_``, ``refit_clusters``), or the result of
        :func:`tsc_toolkit.clustering.selection.scan_k` (``scores_``, one row per k, and ``labels``, a
        dict k -> labels); a scan needs ``embeddings`` too.
    X : array-like, optional
        The training series; when given, the centroids of each k are drawn.
    k_range : sequence of int, optional
        The slider's values; default the scan's k values, else 2..10 (at most n_series - 1).
    scan : k scan, optional
        A scan to take labels and scores from, next to a model. With a scan, an elbow chart
        (:func:`tsc_toolkit.plots.elbow`) marks the k chosen.
    embeddings : array of shape (n_series, n_features), optional
        The embeddings the scan clustered (default: the model's ``embeddings_``).
    live : {"auto", "figurewidget", "output"}, default "auto"
    sample_size : int, default 2000
        Series used for the silhouette score (it costs O(n^2)).
    max_points : int, default 5000
        Points drawn in the projection; above that a seeded random sample.

    Attributes
    ----------
    model_ : CNNKMeans or None
        The re-clustered copy.
    labels_ : ndarray
        Labels for the current k.
    scores_ : dict
        silhouette, calinski_harabasz, davies_bouldin (and inertia when known) for the current k.

    Examples
    --------
    >>> import numpy as np
    >>> from tsc_toolkit.widgets import KSelector
    >>> from tsc_toolkit.widgets.kselector import EmbeddingsModel
    >>> z = np.random.default_rng(0).normal(size=(30, 4))
    >>> sel = KSelector(EmbeddingsModel(z, clusters=3), k_range=range(2, 6), live="output")
    >>> sel.set_k(4)
    >>> sel.k, len(np.unique(sel.labels_))
    (4, 4)
    """

    def __init__(self, model_or_scan, X=None, *, k_range=None, scan=None, embeddings=None,
                 live: str = "auto", sample_size: int = 2000, max_points: int = 5000):
        widgets = require_ipywidgets()
        obj = model_or_scan
        if hasattr(obj, "refit_clusters") and hasattr(obj, "embeddings_"):
            self.source_model = obj
            self.model_ = copy.copy(obj)
            self.scan = scan
        elif hasattr(obj, "scores_"):
            self.source_model, self.model_, self.scan = None, None, obj
        else:
            raise TypeError("KSelector needs a fitted model (embeddings_, refit_clusters) or a k "
                            f"scan (scores_); got {type(obj).__name__}.")
        z = embeddings
        if z is None:
            z = getattr(self.model_, "embeddings_", None)
        if z is None:
            z = getattr(self.scan, "embeddings_", None)
        if z is None:
            raise ValueError("A k scan holds no embeddings; pass them, or the model: "
                             "KSelector(scan, embeddings=model.embeddings_) or "
                             "KSelector(model, X, scan=scan).")
        self.embeddings = np.asarray(z)
        n = len(self.embeddings)
        if X is not None:
            from tsc_toolkit.data import as_dataset

            X = as_dataset(X)
            if len(X) != n:
                raise ValueError(f"X has {len(X)} series but there are {n} embeddings.")
        self.X = X
        self.sample_size = sample_size
        if k_range is None:
            scan_ks = self._scan_ks()
            k_range = scan_ks if scan_ks else range(2, min(10, n - 1) + 1)
        self.k_range = sorted(int(k) for k in k_range)
        if not self.k_range:
            raise ValueError("k_range is empty.")
        self._cache: dict[int, tuple[np.ndarray, dict]] = {}
        self._callbacks: list[Callable] = []
        self._displayed = False
        start = getattr(self.source_model, "clusters", None)
        if start not in self.k_range:
            start = self.k_range[0]
        self.labels_, self.scores_ = self._labels_and_scores(int(start))
        self._k = int(start)

        self.xy = pca2(self.embeddings)
        self.shown = sample_points(n, max_points)  # series index of each point
        self.projection = FigureView(
            projection_figure(self.xy[self.shown], self.labels_[self.shown],
                              [f"series {i}" for i in self.shown], n_total=n), live=live)
        self.projection.figure.update_layout(title=f"embeddings (PCA), k = {self._k}")
        self.centroids = (FigureView(centroids_overview(self.X, self.labels_), live=live)
                          if self.X is not None else None)
        self.elbow = (FigureView(self._elbow_figure(), live=live)
                      if self.scan is not None else None)
        self.slider = widgets.SelectionSlider(options=self.k_range, value=self._k,
                                              description="k", continuous_update=False)
        self.slider.observe(lambda change: self.set_k(change["new"]), names="value")
        self.scores_html = widgets.HTML(value=self._scores_html())
        plots = [view.widget for view in (self.elbow, self.projection, self.centroids) if view]
        self.container = widgets.VBox([widgets.HBox([self.slider, self.scores_html]), *plots])
        self.container.add_class("tsc-k-selector")

    # ------------------------------------------------------------------ public API

    @property
    def k(self) -> int:
        """The number of clusters shown."""
        return self._k

    @property
    def value(self) -> int:
        """Same as :attr:`k` (the slider's value)."""
        return self._k

    def set_k(self, k: int) -> None:
        """Re-cluster into ``k`` clusters and update the views (what the slider does)."""
        k = int(k)
        if k not in self.k_range:
            raise ValueError(f"k={k} is not one of the slider's values {self.k_range}.")
        if self.slider.value != k:
            self.slider.value = k  # the observer comes back here
            return
        if k == self._k:
            return
        self.labels_, self.scores_ = self._labels_and_scores(k)
        self._k = k
        with self.projection.batch() as fig:
            fig.data[0].marker.color = cluster_colors(self.labels_[self.shown])
            fig.layout.title.text = f"embeddings (PCA), k = {k}"
        if self.centroids is not None:
            self.centroids.replace(centroids_overview(self.X, self.labels_))
        if self.elbow is not None:
            self.elbow.replace(self._elbow_figure())
        self.scores_html.value = self._scores_html()
        for callback in self._callbacks:
            callback(k, self.labels_)

    def on_change(self, callback: Callable) -> None:
        """Call ``callback(k, labels)`` after each change of k."""
        self._callbacks.append(callback)

    # ------------------------------------------------------------------ internals

    def _scan_ks(self) -> list[int]:
        scores = getattr(self.scan, "scores_", None)
        if scores is None or "k" not in getattr(scores, "columns", ()):
            return []
        return [int(k) for k in scores["k"]]

    def _scan_labels(self, k: int):
        for name in ("labels_", "labels"):
            table = getattr(self.scan, name, None)
            if table is not None:
                try:
                    return np.asarray(table[k])
                except (KeyError, IndexError, TypeError):
                    return None
        return None

    def _labels_and_scores(self, k: int) -> tuple[np.ndarray, dict]:
        if k in self._cache:
            return self._cache[k]
        labels = self._scan_labels(k) if self.scan is not None else None
        inertia = None
        if labels is None:
            if self.model_ is None:
                raise ValueError(f"The k scan has no labels for k={k}; pass the model too.")
            self.model_.refit_clusters(k)
            labels, inertia = np.asarray(self.model_.labels_), self.model_.inertia_
        scores = self._scan_scores(k) or {}
        if any(not np.isfinite(scores.get(name, np.nan)) for name, _ in _SCORES):
            # criteria the scan did not compute
            for name, value in cluster_scores(self.embeddings, labels, self.sample_size).items():
                if not np.isfinite(scores.get(name, np.nan)):
                    scores[name] = value
        if inertia is not None:
            scores.setdefault("inertia", float(inertia))
        self._cache[k] = (labels, scores)
        return labels, scores

    def _scan_scores(self, k: int) -> dict | None:
        table = getattr(self.scan, "scores_", None) if self.scan is not None else None
        if table is None or "k" not in getattr(table, "columns", ()):
            return None
        rows = table[table["k"] == k]
        if rows.empty:
            return None
        row = rows.iloc[0]
        return {name: float(row[name]) for name in
                ("inertia", "silhouette", "calinski_harabasz", "davies_bouldin")
                if name in row.index}

    def _elbow_figure(self):
        from tsc_toolkit import plots

        return plots.elbow(self.scan, selected=self._k, height=320)

    def _suggested(self) -> dict:
        found = getattr(self.scan, "suggested_", None) or getattr(self.scan, "suggested", None)
        return dict(found or {})

    def _summary(self) -> str:
        parts = [f"k = {self._k}"] + [f"{name} {fmt(self.scores_.get(name))}"
                                       for name, _ in _SCORES]
        return ", ".join(parts)

    def _scores_html(self) -> str:
        cells = "".join(f"<td title='{hint}'>{name.replace('_', '-')}: <b>"
                        f"{escape(fmt(self.scores_.get(name)))}</b></td>"
                        for name, hint in _SCORES)
        table = f"<table style='font-family:monospace'><tr>{cells}</tr></table>"
        suggested = self._suggested()
        best = getattr(self.scan, "best_k_", None)
        if best is not None:
            by = escape(str(getattr(self.scan, "recommended_by", "")))
            table += (f"<div style='font-family:monospace'><b>recommended k: {escape(best)}</b>"
                      f" ({by})</div>")
        if suggested:
            table += ("<div style='font-family:monospace'>suggested k: " + ", ".join(
                f"{escape(name)} {escape(k)}" for name, k in suggested.items()) + "</div>")
        return table

    def __repr__(self) -> str:
        return f"KSelector: {self._summary()}"


class EmbeddingsModel:
    """Stand-in for a fitted model over given embeddings, clustered by K-Means (the clustering
    stage :class:`tsc_toolkit.clustering.FeatureClusterer` with ``clustering="kmeans"``).

    Lets :class:`KSelector` and :class:`ClusterExplorer` work on any embeddings.

    Parameters
    ----------
    embeddings : array of shape (n_series, n_features)
    clusters : int, default 8
    random_state : int, default 0
    """

    def __init__(self, embeddings, clusters: int = 8, random_state: int = 0):
        self.embeddings_ = np.asarray(embeddings, dtype=np.float32)
        self.random_state = random_state
        self.refit_clusters(clusters)

    def refit_clusters(self, k: int) -> EmbeddingsModel:
        """Cluster the embeddings into ``k`` clusters."""
        from ..clustering import FeatureClusterer

        stage = FeatureClusterer(int(k), clustering="kmeans", random_state=self.random_state)
        stage.fit(self.embeddings_)
        self.labels_ = stage.labels_
        self.cluster_centers_ = stage.cluster_centers_
        self.inertia_ = stage.inertia_
        self.n_clusters_ = int(k)
        return self
