"""Cluster explorer: a projection of the embeddings, one cluster's centroid, one series."""

from __future__ import annotations

import numpy as np

from ._base import (
    PALETTE,
    FigureView,
    WidgetBase,
    cluster_colors,
    escape,
    pca2,
    require_ipywidgets,
    series_traces,
)

_FAINT = 0.12
_MAIN_WIDTH, _SIDE_WIDTH = 520, 460


def sample_points(n: int, max_points: int, random_state: int = 0) -> np.ndarray:
    """Indices of the series drawn in a projection: all, or a seeded sample of ``max_points``."""
    if n <= max_points:
        return np.arange(n)
    rng = np.random.default_rng(random_state)
    return np.sort(rng.choice(n, max_points, replace=False))


def projection_figure(xy: np.ndarray, labels: np.ndarray, hover: list[str],
                      n_total: int | None = None):
    """One scatter trace (point j = j-th row given), coloured by cluster; WebGL when large."""
    import plotly.graph_objects as go

    scatter = go.Scattergl if len(xy) > 2000 else go.Scatter
    fig = go.Figure(scatter(
        x=xy[:, 0], y=xy[:, 1], mode="markers", name="series",
        marker={"color": cluster_colors(labels), "size": 7, "opacity": 0.85,
                "line": {"width": 0}},
        hovertext=hover, hoverinfo="text"))
    note = (f" (showing {len(xy):,} of {n_total:,})" if n_total and n_total > len(xy)
            else "")
    fig.update_layout(title=f"embeddings (PCA){note}; click a point to see its series",
                      height=380,
                      width=_MAIN_WIDTH,
                      margin={"l": 40, "r": 10, "t": 40, "b": 40}, showlegend=False,
                      xaxis_title="PC 1", yaxis_title="PC 2", clickmode="event")
    return fig


def centroid_figure(X: np.ndarray, labels: np.ndarray, cluster: int, max_members: int = 30,
                    width: int | None = None):
    """One cluster's members (faint, sampled), its mean series and a quantile band."""
    from tsc_toolkit import plots

    n = int((labels == cluster).sum())
    return plots.centroids(X, labels, clusters=[cluster], max_members=max_members,
                           title=f"cluster {cluster}: {n} members", width=width,
                           height=200 + 130 * X.shape[1])


class ClusterExplorer(WidgetBase):
    """Pick a cluster to see its centroid, its members and where they lie; click a point to see it.

    Parameters
    ----------
    model : fitted CNNKMeans
        Any object with ``labels_`` and ``embeddings_`` for the series in ``X``.
    X : array-like
        The training series, in any layout :func:`tsc_toolkit.as_dataset` accepts.
    labels_true : array-like, optional
        True classes, shown on hover and in the series panel.
    ids : sequence, optional
        Series names shown on hover (default: the index).
    live : {"auto", "figurewidget", "output"}, default "auto"
        ``FigureWidget`` (needs anywidget) lets a click on a point show its series; with
        ``Output`` views, pick the series by its index instead.
    max_points : int, default 5000
        Points drawn in the projection; above that a seeded random sample (the title says so).

    Examples
    --------
    >>> import numpy as np
    >>> from types import SimpleNamespace
    >>> from tsc_toolkit.widgets import ClusterExplorer
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(6, 1, 20)).astype("float32")
    >>> fake = SimpleNamespace(labels_=np.array([0, 0, 1, 1, 2, 2]),
    ...                        embeddings_=rng.normal(size=(6, 4)))
    >>> ex = ClusterExplorer(fake, X, live="output")
    >>> ex.select_cluster(1)
    >>> ex.show_series(3)
    >>> ex
    ClusterExplorer: 3 clusters, 6 series; cluster 1 (2 members); series 3 (cluster 1)
    """

    def __init__(self, model, X, labels_true=None, ids=None, *, live: str = "auto",
                 max_points: int = 5000):
        from tsc_toolkit.data import as_dataset

        widgets = require_ipywidgets()
        self.model = model
        self.X = as_dataset(X)
        self.labels = np.asarray(model.labels_)
        if len(self.labels) != len(self.X):
            raise ValueError(f"The model has labels for {len(self.labels)} series but X has "
                             f"{len(self.X)}: pass the series the model was fitted on.")
        self.labels_true = None if labels_true is None else np.asarray(labels_true)
        self.ids = [str(i) for i in (range(len(self.X)) if ids is None else ids)]
        self.clusters = np.unique(self.labels)
        self.cluster: int | None = None
        self.series: int | None = None
        self._displayed = False

        self.xy = pca2(np.asarray(model.embeddings_))
        self.shown = sample_points(len(self.X), max_points)  # series index of each point
        hover = [self._describe(i) for i in self.shown]
        self.projection = FigureView(
            projection_figure(self.xy[self.shown], self.labels[self.shown], hover,
                              n_total=len(self.X)), live=live)
        self.centroids = FigureView(_placeholder("pick a cluster", _SIDE_WIDTH), live=live)
        self.series_view = FigureView(_placeholder("click a point or pick a series"), live=live)
        if self.projection.mode == "figurewidget":
            self.projection.figure.data[0].on_click(self._on_point_click)

        counts = {int(c): int((self.labels == c).sum()) for c in self.clusters}
        self.dropdown = widgets.Dropdown(
            options=[(f"cluster {c} ({counts[c]} series)", int(c)) for c in self.clusters],
            value=None, description="cluster")
        self.dropdown.observe(self._on_dropdown, names="value")
        self.series_picker = widgets.BoundedIntText(value=0, min=0, max=len(self.X) - 1,
                                                    description="series")
        self.series_picker.observe(lambda change: self.show_series(change["new"]),
                                   names="value")
        self.info = widgets.HTML()
        self.container = widgets.VBox([
            widgets.HBox([self.dropdown, self.series_picker, self.info]),
            widgets.HBox([self.projection.widget, self.centroids.widget]),
            self.series_view.widget,
        ])
        self.container.add_class("tsc-cluster-explorer")
        if len(self.clusters):
            self.select_cluster(int(self.clusters[0]))

    # ------------------------------------------------------------------ actions

    def select_cluster(self, cluster: int) -> None:
        """Show ``cluster``'s centroid and members, and highlight its points."""
        cluster = int(cluster)
        if cluster not in set(self.clusters.tolist()):
            raise ValueError(f"No cluster {cluster}; the clusters are {self.clusters.tolist()}.")
        if self.dropdown.value != cluster:
            self.dropdown.value = cluster  # the observer comes back here
            return
        self.cluster = cluster
        members = self.labels[self.shown] == cluster
        with self.projection.batch() as fig:
            fig.data[0].marker.opacity = np.where(members, 0.95, _FAINT).tolist()
            fig.data[0].marker.size = np.where(members, 9, 6).tolist()
        # side by side with the projection
        self.centroids.replace(centroid_figure(self.X, self.labels, cluster, width=_SIDE_WIDTH))
        self._refresh_info()

    def show_series(self, index: int) -> None:
        """Show series ``index`` (its channels) in the series panel."""
        index = int(index)
        if not 0 <= index < len(self.X):
            raise IndexError(f"Series index {index} is out of range 0..{len(self.X) - 1}.")
        if self.series_picker.value != index:
            self.series_picker.value = index  # the observer comes back here
            return
        self.series = index
        import plotly.graph_objects as go

        label = int(self.labels[index])
        fig = go.Figure(series_traces(self.X[index], f"series {self.ids[index]}",
                                      PALETTE[label % len(PALETTE)]))
        fig.update_layout(title=self._describe(index), height=220,
                          margin={"l": 40, "r": 10, "t": 40, "b": 30}, showlegend=False)
        self.series_view.replace(fig)
        self._refresh_info()

    def _on_dropdown(self, change) -> None:
        if change["new"] is not None:
            self.select_cluster(change["new"])

    def _on_point_click(self, trace, points, state) -> None:
        if points.point_inds:
            self.show_series(int(self.shown[points.point_inds[0]]))

    # ------------------------------------------------------------------ text

    def _describe(self, i: int) -> str:
        text = f"series {self.ids[i]}: cluster {int(self.labels[i])}"
        if self.labels_true is not None:
            text += f", true label {self.labels_true[i]}"
        return text

    def _summary(self) -> str:
        text = f"{len(self.clusters)} clusters, {len(self.X)} series"
        if self.cluster is not None:
            text += f"; cluster {self.cluster} ({int((self.labels == self.cluster).sum())} members)"
        if self.series is not None:
            text += f"; series {self.ids[self.series]} (cluster {int(self.labels[self.series])})"
        return text

    def _refresh_info(self) -> None:
        self.info.value = f"<span style='font-family:monospace'>{escape(self._summary())}</span>"

    def __repr__(self) -> str:
        return f"ClusterExplorer: {self._summary()}"


def _placeholder(text: str, width: int | None = None):
    import plotly.graph_objects as go

    fig = go.Figure()
    fig.update_layout(title=text, height=220, width=width,
                      margin={"l": 40, "r": 10, "t": 40, "b": 30})
    return fig
