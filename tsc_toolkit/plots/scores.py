"""Charts of numbers about a clustering: choosing k, cluster sizes, agreement with labels."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ._common import as_labels, finish, label_text, palette, sorted_unique

# Criterion column -> (panel title, how its best k is chosen).
CRITERIA = {
    "inertia": ("Inertia (elbow)", "elbow"),
    "silhouette": ("Silhouette (higher is better)", "max"),
    "calinski_harabasz": ("Calinski-Harabasz (higher is better)", "max"),
    "davies_bouldin": ("Davies-Bouldin (lower is better)", "min"),
    "gap": ("Gap statistic (1-SE rule)", "gap"),
}
_ALIASES = {"elbow": "inertia", "ch": "calinski_harabasz", "db": "davies_bouldin"}


def _scan_parts(scan: Any, suggested: dict | None) -> tuple[pd.DataFrame, dict]:
    if isinstance(scan, pd.DataFrame):
        frame, found = scan, {}
    else:
        frame = getattr(scan, "scores_", None)
        if frame is None:
            frame = getattr(scan, "scores", None)
        if frame is None:
            raise TypeError("elbow() takes a k-scan result (with scores_) or a DataFrame "
                            f"with a 'k' column, got {type(scan).__name__}")
        frame = pd.DataFrame(frame)
        found = getattr(scan, "suggested_", None) or getattr(scan, "suggested", None) or {}
        found = dict(found)
        if getattr(scan, "elbow_", None) is not None:
            found.setdefault("inertia", scan.elbow_)
    if "k" not in frame.columns:
        raise ValueError("the scores need a 'k' column")
    found.update(suggested or {})
    return frame.sort_values("k"), {_ALIASES.get(key, key): v for key, v in found.items()}


def suggest_k(k: np.ndarray, values: np.ndarray, rule: str,
              se: np.ndarray | None = None) -> int | None:
    """Best k for one criterion: ``"elbow"`` (Kneedle), ``"max"``, ``"min"`` or ``"gap"``.

    ``"gap"`` is Tibshirani's 1-SE rule: the smallest k with
    ``gap(k) >= gap(k+1) - se(k+1)``.

    Examples
    --------
    >>> import numpy as np
    >>> from tsc_toolkit.plots.scores import suggest_k
    >>> k = np.arange(2, 9)
    >>> suggest_k(k, np.array([100, 60, 20, 17, 15, 13, 12.0]), "elbow")
    4
    >>> suggest_k(k, np.array([0.4, 0.5, 0.7, 0.6, 0.5, 0.4, 0.3]), "max")
    4
    """
    ok = np.isfinite(values)
    k, values = np.asarray(k)[ok], np.asarray(values, dtype=float)[ok]
    if len(k) == 0:
        return None
    if rule == "max":
        return int(k[np.argmax(values)])
    if rule == "min":
        return int(k[np.argmin(values)])
    if rule == "gap":
        se = np.zeros_like(values) if se is None else np.nan_to_num(np.asarray(se)[ok])
        for i in range(len(k) - 1):
            if values[i] >= values[i + 1] - se[i + 1]:
                return int(k[i])
        return int(k[-1])
    if rule == "elbow":
        if len(k) < 3:
            return None
        from kneed import KneeLocator

        knee = KneeLocator(k, values, curve="convex", direction="decreasing").knee
        return None if knee is None else int(knee)
    raise ValueError(f"unknown rule {rule!r}")


def elbow(scan: Any, *, suggested: dict[str, int] | None = None, selected: int | None = None,
          col_wrap: int = 3,
          title: str | None = None, height: int | None = None,
          width: int | None = None) -> go.Figure:
    """Small multiples of the k-selection criteria, each with its suggested k marked.

    Parameters
    ----------
    scan : KScan or DataFrame
        The result of :func:`tsc_toolkit.clustering.selection.scan_k` (its ``scores_`` and
        ``suggested_``), or a DataFrame with a ``k`` column and any of ``inertia``,
        ``silhouette``, ``calinski_harabasz``, ``davies_bouldin``, ``gap`` (with
        ``gap_se`` for error bars). Criteria that are absent or all NaN get no panel.
    suggested : dict, optional
        Criterion -> k, overriding the scan's suggestions. A criterion without a
        suggestion gets one computed here: Kneedle elbow for inertia, maximum silhouette
        and Calinski-Harabasz, minimum Davies-Bouldin, 1-SE rule for the gap.
    selected : int, optional
        A k to mark in every panel (a solid line), for example the k in use.
    col_wrap : int, default=3
        Panels per row.
    title, height, width : optional
        Layout; the default title lists the suggestions.

    Returns
    -------
    plotly.graph_objects.Figure
        Per panel: the criterion's line (``meta={"role": "criterion", ...}``), a star at
        the suggested k (``meta={"role": "suggested", "k": ...}``) and a dashed vertical
        line with a ``k=...`` label.

    Examples
    --------
    >>> import pandas as pd
    >>> from tsc_toolkit.plots import elbow
    >>> scores = pd.DataFrame({"k": [2, 3, 4, 5, 6],
    ...                        "inertia": [90.0, 50.0, 20.0, 17.0, 15.0],
    ...                        "silhouette": [0.4, 0.5, 0.7, 0.6, 0.5]})
    >>> fig = elbow(scores)
    >>> [(t.meta["criterion"], t.meta["k"]) for t in fig.data if t.meta["role"] == "suggested"]
    [('inertia', 4), ('silhouette', 4)]
    """
    frame, found = _scan_parts(scan, suggested)
    present = [c for c in CRITERIA if c in frame.columns
               and np.isfinite(pd.to_numeric(frame[c], errors="coerce")).any()]
    if not present:
        raise ValueError(f"the scores hold none of the criteria {list(CRITERIA)}")
    n_cols = min(col_wrap, len(present))
    n_rows = math.ceil(len(present) / n_cols)
    fig = make_subplots(rows=n_rows, cols=n_cols,
                        subplot_titles=[CRITERIA[c][0] for c in present],
                        horizontal_spacing=0.08, vertical_spacing=0.18)
    k = frame["k"].to_numpy()
    picks = {}
    for i, (crit, color) in enumerate(zip(present, palette(len(present)))):
        row, col = i // n_cols + 1, i % n_cols + 1
        y = pd.to_numeric(frame[crit], errors="coerce").to_numpy(dtype=float)
        se = (pd.to_numeric(frame["gap_se"], errors="coerce").to_numpy(dtype=float)
              if crit == "gap" and "gap_se" in frame.columns else None)
        error = dict(type="data", array=np.nan_to_num(se), visible=True) if se is not None else None
        fig.add_trace(go.Scatter(x=k, y=y, mode="lines+markers", name=crit, showlegend=False,
                                 line=dict(color=color), error_y=error,
                                 meta={"role": "criterion", "criterion": crit}),
                      row=row, col=col)
        if selected is not None:
            fig.add_vline(x=selected, line=dict(color="black", width=2), opacity=0.5,
                          row=row, col=col)
        best = found.get(crit)
        if best is None:
            best = suggest_k(k, y, CRITERIA[crit][1], se)
        if best is None or best not in k:
            continue
        best = int(best)
        picks[crit] = best
        fig.add_trace(go.Scatter(
            x=[best], y=[y[np.flatnonzero(k == best)[0]]], mode="markers", showlegend=False,
            name=f"suggested k ({crit})",
            marker=dict(symbol="star", size=16, color=color, line=dict(width=1, color="black")),
            meta={"role": "suggested", "criterion": crit, "k": best},
            hovertemplate=f"suggested k={best}<extra>{crit}</extra>"), row=row, col=col)
        fig.add_vline(x=best, line=dict(dash="dash", color="grey", width=1), row=row, col=col,
                      annotation_text=f"k={best}", annotation_position="top right")
    fig.update_xaxes(title_text="k", dtick=1 if len(k) <= 20 else None)
    head = title or "Choosing k"
    summary = ", ".join(f"{c.replace('_', '-')} {v}" for c, v in picks.items())
    best = getattr(scan, "best_k_", None)
    if best is not None and summary:
        by = str(getattr(scan, "recommended_by", "")).replace("_", "-")
        summary = f"<b>recommended k = {best}</b> ({by}); suggested: {summary}"
    elif summary:
        summary = f"suggested k: {summary}"
    return finish(fig, title=f"{head}<br><sup>{summary}</sup>" if summary else head,
                  height=height or 300 * n_rows + 110, width=width)


def cluster_sizes(labels_or_model: Any, *, color: Any = None, title: str | None = None,
                  height: int | None = None, width: int | None = None) -> go.Figure:
    """Bar chart of the number of series per cluster, optionally stacked by true label.

    Parameters
    ----------
    labels_or_model : array-like of shape (n_series,) or CNNKMeans
        Cluster labels, or a fitted model (its ``labels_``).
    color : array-like of shape (n_series,), optional
        True labels: each bar is split by them.
    title, height, width : optional
        Layout.

    Returns
    -------
    plotly.graph_objects.Figure
        A ``Bar`` trace (one per true label when ``color`` is given), counts as text.

    Examples
    --------
    >>> from tsc_toolkit.plots import cluster_sizes
    >>> fig = cluster_sizes([0, 0, 1, 2, 2, 2])
    >>> list(fig.data[0].y)
    [2, 1, 3]
    """
    labels = as_labels(labels_or_model)
    clusters = sorted_unique(labels)
    x = [label_text(c) for c in clusters]
    fig = go.Figure()
    if color is None:
        counts = [int(np.sum(labels == c)) for c in clusters]
        fig.add_trace(go.Bar(x=x, y=counts, text=counts, name="series",
                             marker_color=palette(len(clusters)),
                             hovertemplate="cluster %{x}: %{y:,} series<extra></extra>"))
    else:
        truth = as_labels(color, "color")
        if len(truth) != len(labels):
            raise ValueError(f"color has {len(truth)} entries for {len(labels)} labels")
        values = sorted_unique(truth)
        for value, col in zip(values, palette(len(values))):
            counts = [int(np.sum((labels == c) & (truth == value))) for c in clusters]
            fig.add_trace(go.Bar(x=x, y=counts, text=counts, name=f"label {label_text(value)}",
                                 marker_color=col))
        fig.update_layout(barmode="stack", legend_title_text="label")
    fig.update_traces(textposition="auto")
    fig.update_xaxes(title_text="cluster", type="category")
    fig.update_yaxes(title_text="series")
    head = title or f"Cluster sizes ({len(labels):,} series, {len(clusters)} clusters)"
    return finish(fig, title=head, height=height, width=width)


def contingency(labels_pred: Any, labels_true: Any, *, title: str | None = None,
                height: int | None = None, width: int | None = None) -> go.Figure:
    """Heat map of clusters against true labels, counts in the cells, NMI and ARI on top.

    Parameters
    ----------
    labels_pred : array-like of shape (n_series,) or CNNKMeans
        Cluster labels, or a fitted model (its ``labels_``).
    labels_true : array-like of shape (n_series,)
        True classes.
    title, height, width : optional
        Layout; the title always ends with ``NMI ... · ARI ...``.

    Returns
    -------
    plotly.graph_objects.Figure
        One ``Heatmap``: rows are clusters, columns true labels, ``z`` the counts.
        Clusters are ordered by the label they hold most of, so agreement shows as a
        diagonal.

    Examples
    --------
    >>> from tsc_toolkit.plots import contingency
    >>> fig = contingency([0, 0, 1, 1], ["a", "a", "b", "a"])
    >>> fig.layout.title.text
    'Clusters vs labels<br><sup>NMI 0.344 · ARI 0.000</sup>'
    """
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score
    from sklearn.metrics.cluster import contingency_matrix

    pred = as_labels(labels_pred, "labels_pred")
    true = as_labels(labels_true, "labels_true")
    if len(pred) != len(true):
        raise ValueError(f"labels_pred has {len(pred)} entries, labels_true {len(true)}")
    clusters, classes = sorted_unique(pred), sorted_unique(true)
    table = contingency_matrix(true, pred)  # rows: sorted classes, columns: sorted clusters
    counts = table.T
    order = sorted(range(len(clusters)), key=lambda r: (np.argmax(counts[r]), -counts[r].max()))
    counts = counts[order]
    rows = [f"cluster {label_text(clusters[r])}" for r in order]
    nmi = normalized_mutual_info_score(true, pred)
    ari = adjusted_rand_score(true, pred)
    fig = go.Figure(go.Heatmap(
        z=counts, x=[label_text(c) for c in classes], y=rows, colorscale="Blues",
        text=counts, texttemplate="%{text}", colorbar=dict(title="series"),
        hovertemplate="%{y}, label %{x}: %{z:,} series<extra></extra>"))
    fig.update_xaxes(title_text="true label", type="category")
    fig.update_yaxes(title_text="cluster", type="category", autorange="reversed")
    head = title or "Clusters vs labels"
    return finish(fig, title=f"{head}<br><sup>NMI {nmi:.3f} · ARI {ari:.3f}</sup>",
                  height=height or max(320, 40 * len(rows) + 160), width=width)
