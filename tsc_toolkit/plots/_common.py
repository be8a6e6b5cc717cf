"""Helpers shared by the figure functions: inputs, colours, sampling, layout."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import plotly.express as px
import plotly.graph_objects as go

# Above this many points a scatter is drawn with WebGL (as plotly express does).
WEBGL_THRESHOLD = 1000


def is_model(obj: Any) -> bool:
    """True for a fitted clustering model (duck-typed: has ``labels_`` and ``embeddings_``)."""
    return hasattr(obj, "labels_") and hasattr(obj, "embeddings_")


def as_labels(obj: Any, name: str = "labels") -> np.ndarray:
    """1-D array of labels from an array-like, a pandas Series or a fitted model."""
    if is_model(obj):
        obj = obj.labels_
    arr = np.asarray(getattr(obj, "values", obj))
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {arr.shape}")
    return arr


def palette(n: int) -> list[str]:
    """``n`` distinct colours: plotly's 10 when they suffice, then Dark24, then cycled."""
    base = px.colors.qualitative.Plotly if n <= 10 else px.colors.qualitative.Dark24
    return [base[i % len(base)] for i in range(n)]


def rgba(color: str, alpha: float) -> str:
    """``#rrggbb`` or ``rgb(...)`` as an ``rgba(...)`` string with the given opacity."""
    if color.startswith("#"):
        r, g, b = (int(color[i:i + 2], 16) for i in (1, 3, 5))
    else:
        r, g, b = (int(float(v)) for v in color[color.index("(") + 1:-1].split(",")[:3])
    return f"rgba({r},{g},{b},{alpha})"


def stratified_sample(groups: np.ndarray, max_points: int, rng: np.random.Generator) -> np.ndarray:
    """Sorted indices of at most ``max_points`` items, each group keeping its share.

    Every group keeps at least one item (when ``max_points`` allows), so small clusters
    stay visible in a sampled figure.
    """
    n = len(groups)
    if n <= max_points:
        return np.arange(n)
    uniq, inverse, counts = np.unique(groups, return_inverse=True, return_counts=True)
    quota = np.maximum(np.floor(counts * max_points / n).astype(int), 1)
    quota = np.minimum(quota, counts)
    # Hand out what rounding left over to the largest groups first.
    spare = max_points - quota.sum()
    for g in np.argsort(-counts):
        if spare <= 0:
            break
        extra = min(spare, counts[g] - quota[g])
        quota[g] += extra
        spare -= extra
    keep = []
    for g in range(len(uniq)):
        members = np.flatnonzero(inverse == g)
        keep.append(rng.choice(members, size=quota[g], replace=False))
    return np.sort(np.concatenate(keep))


def sample_note(shown: int, total: int, what: str = "series") -> str:
    """The sentence a sampled figure carries, e.g. ``showing 20,000 of 100,000 series``."""
    return f"showing {shown:,} of {total:,} {what}"


def with_note(title: str, note: str | None) -> str:
    """Title text with an optional second, smaller line."""
    return title if not note else f"{title}<br><sup>{note}</sup>"


def finish(fig: go.Figure, *, title: str | None, height: int | None, width: int | None,
           **layout: Any) -> go.Figure:
    """Apply the layout keywords every figure function accepts."""
    fig.update_layout(title=dict(text=title) if title else None, template="plotly_white",
                      margin=dict(t=90 if title and "<br>" in title else 60), **layout)
    if height is not None:
        fig.update_layout(height=height)
    if width is not None:
        fig.update_layout(width=width)
    return fig


def sorted_unique(values: Sequence[Any] | np.ndarray) -> list[Any]:
    """Unique values in natural order (numbers numerically, anything else as strings)."""
    uniq = np.unique(np.asarray(values))
    return uniq.tolist()


def label_text(value: Any) -> str:
    """A label as shown in legends and hover text (NumPy scalars as plain Python)."""
    return str(value.item() if isinstance(value, np.generic) else value)
