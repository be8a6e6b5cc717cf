"""2-D projections of embeddings: a reusable :class:`Projector` and the :func:`projection` scatter."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import plotly.graph_objects as go
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from ._common import (
    WEBGL_THRESHOLD,
    as_labels,
    finish,
    is_model,
    label_text,
    palette,
    sample_note,
    sorted_unique,
    stratified_sample,
    with_note,
)

METHODS = ("pca", "umap", "tsne")
_AXIS_NAMES = {"pca": "PC", "umap": "UMAP ", "tsne": "t-SNE "}
_TITLES = {"pca": "PCA", "umap": "UMAP", "tsne": "t-SNE"}


class Projector(TransformerMixin, BaseEstimator):
    """Project embeddings to 2-D with PCA, UMAP or t-SNE, and reuse the fit on new points.

    Parameters
    ----------
    method : {"pca", "umap", "tsne"}, default="pca"
        ``"pca"`` (scikit-learn, fast, the default), ``"umap"`` (umap-learn, from the
        ``umap`` extra: ``pip install 'tsc_toolkit[umap]'``; its first fit in a process
        spends 20-40 s compiling) or ``"tsne"`` (scikit-learn; cannot place new points,
        so :meth:`transform` raises).
    n_components : int, default=2
    random_state : int or None, default=0
    params : dict, optional
        Extra keyword arguments for the underlying estimator (for example
        ``{"n_neighbors": 30}`` for UMAP or ``{"perplexity": 50}`` for t-SNE).
        UMAP's ``n_neighbors`` and t-SNE's ``perplexity`` are lowered for tiny inputs.

    Attributes
    ----------
    estimator_ : object
        The fitted PCA, UMAP or TSNE.
    embedding_ : ndarray of shape (n_samples, n_components)
        The projection of the points given to :meth:`fit`.
    n_features_in_ : int

    Examples
    --------
    >>> import numpy as np
    >>> from tsc_toolkit.plots import Projector
    >>> z = np.random.default_rng(0).normal(size=(50, 8))
    >>> p = Projector().fit(z)
    >>> p.transform(z[:3]).shape
    (3, 2)
    >>> Projector("tsne").fit(z).transform(z[:3])
    Traceback (most recent call last):
    ...
    NotImplementedError: t-SNE cannot place new points; ...
    """

    def __init__(self, method: str = "pca", n_components: int = 2,
                 random_state: int | None = 0, params: dict[str, Any] | None = None) -> None:
        self.method = method
        self.n_components = n_components
        self.random_state = random_state
        self.params = params

    def _make(self, n_samples: int) -> Any:
        params = dict(self.params or {})
        if self.method == "pca":
            from sklearn.decomposition import PCA

            return PCA(n_components=self.n_components, random_state=self.random_state, **params)
        if self.method == "tsne":
            from sklearn.manifold import TSNE

            params.setdefault("perplexity", min(30.0, max(1.0, (n_samples - 1) / 3)))
            params.setdefault("init", "pca")
            return TSNE(n_components=self.n_components, random_state=self.random_state,
                        **params)
        if self.method == "umap":
            import os

            # numba's OpenMP layer (behind umap-learn) leaves its threads spinning after each
            # parallel region, next to torch's own: measured, CNN-KMeans fits in a process that
            # had run numba's OpenMP code took 1.5x longer. Its workqueue layer sleeps between
            # regions. Only a default: a user's own NUMBA_THREADING_LAYER wins, and it has no
            # effect when numba was imported before.
            os.environ.setdefault("NUMBA_THREADING_LAYER", "workqueue")
            try:
                import umap
            except ImportError as err:
                raise ImportError(
                    "method='umap' needs umap-learn, from the 'umap' extra: "
                    "pip install 'tsc_toolkit[umap]'") from err
            params.setdefault("n_neighbors", max(2, min(15, n_samples - 1)))
            return umap.UMAP(n_components=self.n_components, random_state=self.random_state,
                             **params)
        raise ValueError(f"method must be one of {METHODS}, got {self.method!r}")

    def fit(self, X: Any, y: Any = None) -> Projector:
        """Fit the projection on embeddings ``X`` of shape (n_samples, n_features)."""
        self.fit_transform(X)
        return self

    def fit_transform(self, X: Any, y: Any = None, **fit_params: Any) -> np.ndarray:
        """Fit on ``X`` and return its 2-D coordinates."""
        X = _check_2d(X)
        estimator = self._make(len(X))
        with warnings.catch_warnings():
            # UMAP warns that a seed forces one thread; that is the intended trade.
            warnings.filterwarnings("ignore", message=".*n_jobs value.*overridden.*")
            out = estimator.fit_transform(X)
        self.estimator_ = estimator
        self.embedding_ = np.asarray(out, dtype=np.float64)
        self.n_features_in_ = X.shape[1]
        return self.embedding_

    def transform(self, X: Any) -> np.ndarray:
        """Place new embeddings in the fitted projection (PCA and UMAP only)."""
        check_is_fitted(self, "estimator_")
        if self.method == "tsne":
            raise NotImplementedError(
                "t-SNE cannot place new points; refit on all points with fit_transform, "
                "or use method='pca' or 'umap' to project new series")
        X = _check_2d(X)
        if X.shape[1] != self.n_features_in_:
            raise ValueError(f"X has {X.shape[1]} features, the projector was fitted "
                             f"on {self.n_features_in_}")
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*n_jobs value.*overridden.*")
            return np.asarray(self.estimator_.transform(X), dtype=np.float64)

    def axis_titles(self) -> list[str]:
        """Axis names, with the explained variance for PCA (``PC1 (42.0%)``)."""
        prefix = _AXIS_NAMES.get(self.method, "")
        names = [f"{prefix}{i + 1}" for i in range(self.n_components)]
        ratio = getattr(getattr(self, "estimator_", None), "explained_variance_ratio_", None)
        if ratio is not None:
            names = [f"{n} ({r:.1%})" for n, r in zip(names, ratio)]
        return names


def _check_2d(X: Any) -> np.ndarray:
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2:
        raise ValueError(f"embeddings must be 2-D (n_samples, n_features), got shape {X.shape}")
    if not np.isfinite(X).all():
        raise ValueError("embeddings contain NaN or infinite values")
    return X


def projection(model_or_embeddings: Any, labels: Any = None, *, method: str = "pca",
               color: Any = None, ids: Any = None, max_points: int = 20_000,
               projector: Projector | None = None, random_state: int | None = 0,
               title: str | None = None, height: int | None = None,
               width: int | None = None) -> go.Figure:
    """Scatter of the embeddings in 2-D, one colour per cluster (or per true label).

    Parameters
    ----------
    model_or_embeddings : CNNKMeans or array-like of shape (n_series, n_features)
        A fitted model (its ``embeddings_`` and ``labels_`` are used) or embeddings,
        for example ``model.transform(X)``.
    labels : array-like of shape (n_series,), optional
        Cluster labels; default: the model's ``labels_``. Without labels (and without
        ``color``) all points share one colour.
    method : {"pca", "umap", "tsne"}, default="pca"
        Projection to fit when ``projector`` is not given; see :class:`Projector`.
    color : array-like of shape (n_series,), optional
        True labels (or any category) to colour by instead of the clusters; the hover
        text still shows the cluster.
    ids : array-like of shape (n_series,), optional
        Series identifiers shown on hover (default: the row number).
    max_points : int, default=20_000
        Above this many series a sample, stratified by cluster, is drawn and the title
        says ``showing 20,000 of 100,000 series``. Only the sample is projected.
    projector : Projector, optional
        A projector to reuse. When it is fitted, points are placed with its
        :meth:`Projector.transform` (so new series land in the same map); otherwise it is
        fitted here. Fit one yourself to keep it: ``Projector().fit(model.embeddings_)``.
    random_state : int or None, default=0
        Seed for the sample and for a projector created here.
    title, height, width : optional
        Layout; the default title names the method.

    Returns
    -------
    plotly.graph_objects.Figure
        One scatter trace per colour group (``Scattergl`` above 1,000 points);
        ``customdata`` holds (id, cluster, label) per point.

    Examples
    --------
    >>> import numpy as np
    >>> from tsc_toolkit.plots import projection
    >>> z = np.random.default_rng(0).normal(size=(60, 8))
    >>> fig = projection(z, np.repeat([0, 1, 2], 20))
    >>> [t.name for t in fig.data]
    ['cluster 0', 'cluster 1', 'cluster 2']
    """
    if is_model(model_or_embeddings):
        embeddings = np.asarray(model_or_embeddings.embeddings_)
        if labels is None:
            labels = model_or_embeddings.labels_
    else:
        embeddings = np.asarray(getattr(model_or_embeddings, "values", model_or_embeddings))
    n = len(embeddings)
    labels = None if labels is None else as_labels(labels)
    color = None if color is None else as_labels(color, "color")
    ids = np.arange(n) if ids is None else as_labels(ids, "ids")
    for name, arr in (("labels", labels), ("color", color), ("ids", ids)):
        if arr is not None and len(arr) != n:
            raise ValueError(f"{name} has {len(arr)} entries for {n} embeddings")

    rng = np.random.default_rng(random_state)
    strata = labels if labels is not None else color if color is not None else np.zeros(n)
    keep = stratified_sample(strata, max_points, rng)
    by = " (sampled by cluster)" if labels is not None else (
        " (sampled by label)" if color is not None else " (random sample)")
    note = sample_note(len(keep), n) + by if len(keep) < n else None

    if projector is None:
        projector = Projector(method, random_state=random_state)
    if hasattr(projector, "estimator_"):
        xy = projector.transform(embeddings[keep])
    else:
        xy = projector.fit_transform(embeddings[keep])

    if color is not None:
        groups, legend = color[keep], "label"
    elif labels is not None:
        groups, legend = labels[keep], "cluster"
    else:
        groups, legend = np.zeros(len(keep), dtype=int), None
    cluster_txt = (np.array([label_text(v) for v in labels[keep]], dtype=object)
                   if labels is not None else np.full(len(keep), "", dtype=object))
    label_txt = (np.array([label_text(v) for v in color[keep]], dtype=object)
                 if color is not None else np.full(len(keep), "", dtype=object))
    id_txt = np.array([label_text(v) for v in ids[keep]], dtype=object)

    scatter = go.Scattergl if len(keep) > WEBGL_THRESHOLD else go.Scatter
    hover = "series %{customdata[0]}"
    if labels is not None:
        hover += "<br>cluster %{customdata[1]}"
    if color is not None:
        hover += "<br>label %{customdata[2]}"
    hover += "<extra></extra>"
    size = 4 if len(keep) > 5000 else 6
    fig = go.Figure()
    values = sorted_unique(groups)
    for value, col in zip(values, palette(len(values))):
        mask = groups == value
        name = ("series" if legend is None else f"cluster {label_text(value)}"
                if legend == "cluster" else label_text(value))
        fig.add_trace(scatter(
            x=xy[mask, 0], y=xy[mask, 1], mode="markers", name=name,
            marker=dict(color=col, size=size, opacity=0.8 if len(keep) > 5000 else 0.9),
            customdata=np.stack([id_txt[mask], cluster_txt[mask], label_txt[mask]], axis=1),
            hovertemplate=hover))
    axes = projector.axis_titles()
    head = title or f"Embeddings ({_TITLES.get(projector.method, projector.method)})"
    return finish(fig, title=with_note(head, note), height=height, width=width,
                  xaxis_title=axes[0], yaxis_title=axes[1], legend_title_text=legend or "")
