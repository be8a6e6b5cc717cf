"""Curves over time: cluster centre series with members and bands, and training curves."""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ..data import as_dataset
from ._common import as_labels, finish, is_model, label_text, palette, rgba, sorted_unique

# Quantile bands are estimated from at most this many members per cluster: a sort of
# 100,000 long series per step would dominate the time to draw the figure.
BAND_SAMPLE = 10_000
# A members trace with more points than this is drawn with WebGL.
_GL_POINTS = 10_000


def nan_quantile(values: np.ndarray, q: float) -> np.ndarray:
    """Quantile ``q`` over axis 0 ignoring NaN (linear interpolation, as ``np.nanquantile``).

    Vectorised: one sort instead of numpy's per-column loop. Columns with no observed
    value give NaN.

    Examples
    --------
    >>> import numpy as np
    >>> from tsc_toolkit.plots.curves import nan_quantile
    >>> v = np.array([[1.0, np.nan], [2.0, np.nan], [4.0, 5.0]])
    >>> nan_quantile(v, 0.5).tolist()
    [2.0, 5.0]
    """
    values = np.asarray(values, dtype=np.float64)
    count = (~np.isnan(values)).sum(axis=0)
    ordered = np.sort(values, axis=0)  # NaN sorts last
    pos = q * np.maximum(count - 1, 0)
    lo = np.floor(pos).astype(int)
    hi = np.minimum(lo + 1, np.maximum(count - 1, 0))
    cols = np.arange(values.shape[1])
    frac = pos - lo
    out = ordered[lo, cols] * (1 - frac) + ordered[hi, cols] * frac
    out[count == 0] = np.nan
    return out


def _series_for(model_or_X: Any, labels: Any, X: Any) -> tuple[np.ndarray, np.ndarray | None]:
    if is_model(model_or_X):
        if X is None:
            raise ValueError("a model does not keep its training series: pass them as "
                             "centroids(model, X=X_train)")
        data = as_dataset(X, min_observed=1)
        if labels is None:
            fitted = np.asarray(model_or_X.labels_)
            labels = fitted if len(fitted) == len(data) else model_or_X.predict(data)
    else:
        if X is not None:
            raise TypeError("give the series once: centroids(X, labels) or "
                            "centroids(model, X=X)")
        data = as_dataset(model_or_X, min_observed=1)
    labels = None if labels is None else as_labels(labels)
    if labels is not None and len(labels) != len(data):
        raise ValueError(f"labels has {len(labels)} entries for {len(data)} series")
    return data, labels


def centroids(model_or_X: Any, labels: Any = None, *, X: Any = None, center: str = "mean",
              band: tuple[float, float] | None = (0.1, 0.9), max_members: int = 30,
              clusters: Any = None, channels: Any = None, min_coverage: float = 0.0,
              col_wrap: int = 4,
              random_state: int | None = 0, title: str | None = None,
              height: int | None = None, width: int | None = None) -> go.Figure:
    """One panel per cluster: faint member series, the centre series and a quantile band.

    Models keep embeddings, not series, so the series are always passed in:
    ``centroids(X, labels)`` with any labels, or ``centroids(model, X=X)``, which uses the
    model's ``labels_`` when ``X`` is its training data (same number of series) and
    ``model.predict(X)`` otherwise.

    Parameters
    ----------
    model_or_X : CNNKMeans or series
        A fitted model (then ``X`` is required), or the series in any layout
        :func:`tsc_toolkit.as_dataset` accepts; shorter series are trailing NaN.
    labels : array-like of shape (n_series,), optional
        Cluster of each series. Without labels (and no model) one panel shows all series.
    X : series, optional
        The series, when the first argument is a model.
    center : {"mean", "median"}, default="mean"
        Centre series, computed per time step over the members observed at that step
        (NaN-aware, so missing values and shorter series don't pull it down).
    band : (float, float) or None, default=(0.1, 0.9)
        Quantiles of the shaded band; ``None`` draws no band. Estimated from at most
        10,000 members per cluster (the title says so when sampled).
    max_members : int, default=30
        Members drawn as faint lines per cluster, sampled at random when there are more.
    clusters : sequence, optional
        Clusters to show (default: all, in order).
    channels : sequence of int, optional
        Channels to show, one row each (default: all).
    min_coverage : float, default=0.0
        The centre and band are drawn only at steps where more than this fraction of the
        cluster's members is observed (at least one member always).
    col_wrap : int, default=4
        Panels per row; multivariate data gets one row per channel within each panel.
    random_state : int or None, default=0
        Seed for the sampled members.
    title, height, width : optional
        Layout.

    Returns
    -------
    plotly.graph_objects.Figure
        Traces carry ``meta`` = ``{"role": "members"|"band_low"|"band_high"|"center",
        "cluster": ..., "channel": ...}``; each panel's title gives the member count.

    Examples
    --------
    >>> from tsc_toolkit.io.datasets import make_series
    >>> from tsc_toolkit.plots import centroids
    >>> X, y = make_series(30, n_clusters=3, length=20)
    >>> fig = centroids(X, y)
    >>> [a.text for a in fig.layout.annotations]
    ['cluster 0 (n=10)', 'cluster 1 (n=10)', 'cluster 2 (n=10)']
    """
    if center not in ("mean", "median"):
        raise ValueError(f"center must be 'mean' or 'median', got {center!r}")
    if band is not None and not 0 <= band[0] < band[1] <= 1:
        raise ValueError(f"band must be two increasing quantiles in [0, 1], got {band!r}")
    data, labels = _series_for(model_or_X, labels, X)
    if channels is not None:
        channels = [int(c) for c in np.atleast_1d(channels)]
        if not channels or not all(0 <= c < data.shape[1] for c in channels):
            raise ValueError(f"channels must lie in [0, {data.shape[1]}), got {channels}")
        data = data[:, channels, :]
    names_ch = channels or list(range(data.shape[1]))
    n, n_channels, length = data.shape
    if labels is None:
        groups, names = np.zeros(n, dtype=int), {0: f"all series (n={n:,})"}
        shown = [0]
    else:
        groups = labels
        shown = sorted_unique(labels) if clusters is None else list(clusters)
        names = {}
    rng = np.random.default_rng(random_state)
    n_cols = max(1, min(col_wrap, len(shown)))
    n_blocks = math.ceil(len(shown) / n_cols)
    n_rows = n_blocks * n_channels

    counts = {c: int(np.sum(groups == c)) for c in shown}
    titles = [""] * (n_rows * n_cols)
    for i, c in enumerate(shown):
        r, col = (i // n_cols) * n_channels, i % n_cols
        titles[r * n_cols + col] = names.get(c, f"cluster {label_text(c)} (n={counts[c]:,})")
    fig = make_subplots(rows=n_rows, cols=n_cols, subplot_titles=titles,
                        horizontal_spacing=0.06, vertical_spacing=min(0.12, 0.3 / n_rows))
    # make_subplots keeps an annotation per title, empty ones included; drop those.
    fig.layout.annotations = [a for a in fig.layout.annotations if a.text]

    sampled_members = sampled_band = False
    # A cluster keeps the colour it has in the other figures when a subset is shown.
    every = sorted_unique(groups)
    every_colors = dict(zip(every, palette(len(every))))
    colors = [every_colors.get(c, "#636efa") for c in shown]
    for i, c in enumerate(shown):
        idx = np.flatnonzero(groups == c)
        block, col = i // n_cols, i % n_cols + 1
        if len(idx) == 0:
            continue
        vals = data[idx]
        observed = ~np.isnan(vals).all(axis=(0, 1))
        span = int(np.flatnonzero(observed)[-1]) + 1 if observed.any() else 1
        vals = vals[:, :, :span]
        steps = np.arange(span)
        draw = idx if len(idx) <= max_members else np.sort(
            rng.choice(idx, max_members, replace=False))
        sampled_members |= len(draw) < len(idx)
        band_rows = (np.arange(len(idx)) if len(idx) <= BAND_SAMPLE
                     else rng.choice(len(idx), BAND_SAMPLE, replace=False))
        sampled_band |= band is not None and len(band_rows) < len(idx)
        for ch in range(n_channels):
            row = block * n_channels + ch + 1
            v = vals[:, ch, :]
            coverage = (~np.isnan(v)).mean(axis=0)
            visible = (coverage > 0) & (coverage >= min_coverage)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN steps
                centre = (np.nanmean(v, axis=0) if center == "mean"
                          else nan_quantile(v, 0.5))
            centre = np.where(visible, centre, np.nan)
            meta = {"cluster": label_text(c), "channel": names_ch[ch]}
            if band is not None:
                lo = np.where(visible, nan_quantile(v[band_rows], band[0]), np.nan)
                hi = np.where(visible, nan_quantile(v[band_rows], band[1]), np.nan)
                band_name = f"{band[0]:.0%}-{band[1]:.0%} band"
                fig.add_trace(go.Scatter(
                    x=steps, y=lo, mode="lines", line=dict(width=0), showlegend=False,
                    hoverinfo="skip", name=band_name, meta={"role": "band_low", **meta}),
                    row=row, col=col)
                fig.add_trace(go.Scatter(
                    x=steps, y=hi, mode="lines", line=dict(width=0), fill="tonexty",
                    fillcolor=rgba(colors[i], 0.25), showlegend=False, hoverinfo="skip",
                    name=band_name, meta={"role": "band_high", **meta}), row=row, col=col)
            member_x = np.tile(np.append(steps, np.nan), len(draw))
            member_y = np.concatenate(
                [data[draw, ch, :span], np.full((len(draw), 1), np.nan)], axis=1).ravel()
            scatter = go.Scattergl if member_y.size > _GL_POINTS else go.Scatter
            fig.add_trace(scatter(
                x=member_x, y=member_y, mode="lines", showlegend=False, hoverinfo="skip",
                line=dict(color=rgba(colors[i], 0.3), width=0.8),
                name=f"members of {meta['cluster']}", meta={"role": "members", **meta}),
                row=row, col=col)
            fig.add_trace(go.Scatter(
                x=steps, y=centre, mode="lines", showlegend=False,
                line=dict(color=colors[i], width=2.5), name=f"{center} of {meta['cluster']}",
                meta={"role": "center", **meta},
                hovertemplate=f"step %{{x}}<br>{center} %{{y:.3g}}<extra></extra>"),
                row=row, col=col)
            if (n_channels > 1 or channels is not None) and col == 1:
                fig.update_yaxes(title_text=f"channel {names_ch[ch]}", row=row, col=col)

    parts = []
    if band is not None:
        parts.append(f"band: {band[0]:.0%}-{band[1]:.0%} quantiles"
                     + (f" of up to {BAND_SAMPLE:,} sampled members" if sampled_band else ""))
    if sampled_members:
        parts.append(f"members: {max_members} sampled per cluster")
    head = title or f"Cluster {center}s"
    note = "; ".join(parts) or None
    if height is None:
        height = max(320, 200 * n_rows + 110)
    return finish(fig, title=f"{head}<br><sup>{note}</sup>" if note else head,
                  height=height, width=width)


def _history_frame(history_or_model: Any) -> pd.DataFrame:
    history = getattr(history_or_model, "history_", history_or_model)
    if history is None:
        return pd.DataFrame(columns=["epoch"])
    frame = history if isinstance(history, pd.DataFrame) else pd.DataFrame(history)
    if "epoch" not in frame.columns:
        frame = frame.assign(epoch=np.arange(1, len(frame) + 1))
    return frame


def training_curves(history_or_model: Any, *, log_loss: bool = False, title: str | None = None,
                    height: int | None = None, width: int | None = None) -> go.Figure:
    """Loss and score per epoch in two panels; validation curves when they were recorded.

    Parameters
    ----------
    history_or_model : CNNKMeans, DataFrame, list of dict or dict of lists
        A fitted model (its ``history_``), the history itself, or the records passed to
        ``fit``'s callbacks (columns epoch, train_loss, train_score, valid_loss,
        valid_score; any may be missing).
    log_loss : bool, default=False
        Log scale for the loss panel (the first epochs' loss often dwarfs the rest).
    title, height, width : optional
        Layout.

    Returns
    -------
    plotly.graph_objects.Figure
        Left panel: ``train_loss`` (and ``valid_loss``); right: ``train_score`` (and
        ``valid_score``, silhouette of the embeddings). Trace names are the column names.

    Examples
    --------
    >>> from tsc_toolkit.plots import training_curves
    >>> fig = training_curves([{"epoch": 1, "train_loss": 2.0, "train_score": 0.2},
    ...                        {"epoch": 2, "train_loss": 1.5, "train_score": 0.3}])
    >>> [t.name for t in fig.data]
    ['train_loss', 'train_score']
    """
    frame = _history_frame(history_or_model)
    fig = make_subplots(rows=1, cols=2, subplot_titles=("Loss", "Score (silhouette)"))
    styles = {"train": dict(color="#1f77b4"), "valid": dict(color="#ff7f0e", dash="dash")}
    markers = "lines+markers" if len(frame) <= 50 else "lines"
    for col, kind in ((1, "loss"), (2, "score")):
        for split in ("train", "valid"):
            name = f"{split}_{kind}"
            if name not in frame.columns:
                continue
            y = pd.to_numeric(frame[name], errors="coerce").to_numpy(dtype=float)
            if not np.isfinite(y).any():
                continue
            fig.add_trace(go.Scatter(x=frame["epoch"].to_numpy(), y=y, mode=markers, name=name,
                                     line=styles[split], legendgroup=split),
                          row=1, col=col)
    fig.update_xaxes(title_text="epoch", dtick=max(1, math.ceil(len(frame) / 10)))
    if log_loss:
        fig.update_yaxes(type="log", row=1, col=1)
    if not len(frame):
        fig.add_annotation(text="no epochs yet", showarrow=False, xref="paper", yref="paper",
                           x=0.5, y=0.5)
    return finish(fig, title=title or "Training curves", height=height or 360, width=width)
