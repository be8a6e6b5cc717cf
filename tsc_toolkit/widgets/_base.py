"""What the widgets share: choosing the live view, a figure view, and small figures of their own."""

from __future__ import annotations

import contextlib
import html
from collections.abc import Iterator

import numpy as np

LIVE_MODES = ("auto", "figurewidget", "output")

# Colours for clusters, the same qualitative sequence plotly express uses by default.
PALETTE = ("#636EFA", "#EF553B", "#00CC96", "#AB63FA", "#FFA15A", "#19D3F3", "#FF6692",
           "#B6E880", "#FF97FF", "#FECB52")


def require_ipywidgets():
    """Import ipywidgets, or say which package is missing."""
    try:
        import ipywidgets
    except ImportError as exc:  # pragma: no cover - ipywidgets is a dependency
        raise ImportError("tsc_toolkit.widgets needs ipywidgets>=8: pip install ipywidgets"
                          ) from exc
    return ipywidgets


def anywidget_available() -> bool:
    """Whether plotly's ``FigureWidget`` can work here (it is an anywidget since plotly 6)."""
    try:
        import anywidget  # noqa: F401
    except ImportError:
        return False
    return True


def resolve_live(live: str) -> str:
    """Turn ``live="auto"`` into ``"figurewidget"`` or ``"output"``.

    ``"auto"`` picks ``FigureWidget`` when anywidget imports, else an ``Output`` widget that is
    redrawn (SageMaker Studio's images have no anywidget). ``"figurewidget"`` without anywidget
    raises an ImportError naming the ``live`` extra.
    """
    if live not in LIVE_MODES:
        raise ValueError(f"live must be one of {LIVE_MODES}, got {live!r}.")
    if live == "auto":
        return "figurewidget" if anywidget_available() else "output"
    if live == "figurewidget" and not anywidget_available():
        raise ImportError("live='figurewidget' needs anywidget: pip install 'tsc_toolkit[live]', "
                          "or use live='output'.")
    return live


def in_kernel() -> bool:
    """Whether an IPython kernel could show a widget (no point drawing into an Output otherwise)."""
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


class FigureView:
    """A plotly figure shown either as a ``FigureWidget`` or redrawn into an ``Output`` widget.

    Change ``view.figure`` (its traces and layout) inside ``with view.batch():``; a FigureWidget
    sends the changes to the browser in one message, an ``Output`` is cleared and redrawn once.

    Parameters
    ----------
    figure : plotly Figure
        The starting figure.
    live : {"auto", "figurewidget", "output"}
    """

    def __init__(self, figure, live: str = "auto"):
        import plotly.graph_objects as go

        ipywidgets = require_ipywidgets()
        self.mode = resolve_live(live)
        self.redraws = 0
        if self.mode == "figurewidget":
            self.figure = go.FigureWidget(figure)
            self.widget = self.figure
        else:
            self.figure = go.Figure(figure)
            self.widget = ipywidgets.Output()
            self.redraw()

    @contextlib.contextmanager
    def batch(self) -> Iterator:
        """Group changes to ``self.figure`` so the browser redraws once."""
        if self.mode == "figurewidget":
            with self.figure.batch_update():
                yield self.figure
        else:
            yield self.figure
            self.redraw()

    def replace(self, figure) -> None:
        """Show ``figure`` instead of the current one (same widget, so it stays in place)."""
        with self.batch() as fig:
            fig.data = ()
            fig.add_traces(list(figure.data))
            fig.layout = figure.layout

    def redraw(self) -> None:
        """Redraw the ``Output`` view (a no-op for FigureWidget, which updates by itself).

        The figure's plotly bundle replaces the widget's outputs in one state update, which is
        what ``clear_output(wait=True)`` then ``display(fig)`` amount to, and also works from a
        background thread (where the kernel does not know which cell an output belongs to).
        """
        if self.mode != "output":
            return
        import plotly.io as pio

        self.redraws += 1
        bundle = pio.renderers["plotly_mimetype"].to_mimebundle(self.figure.to_dict())
        title = self.figure.layout.title.text
        bundle["text/plain"] = f"<plotly figure{': ' + title if title else ''}>"
        self.widget.outputs = ({"output_type": "display_data", "data": bundle,
                                "metadata": {}},)


class WidgetBase:
    """A container widget built on construction, shown by ``display(obj)`` or as a cell's value."""

    container = None
    _display_handle = None

    def _repr_mimebundle_(self, **kwargs) -> dict:
        data = self.container._repr_mimebundle_(**kwargs) or {}
        data["text/plain"] = repr(self)
        self._displayed = True
        return data

    def display(self) -> None:
        """Show the widget in the notebook (what a cell ending in the object does)."""
        from IPython.display import display

        self._display_handle = display(self, display_id=True)

    def refresh_display(self) -> None:
        """Send the widget's output again, so that saved copies show its final state.

        A live widget updates in place, but the text kept in the notebook file (and in an
        HTML export without widget state) is what the widget said when it was first shown.
        Updating the display replaces that text with the current :func:`repr`.
        """
        if self._display_handle is not None:
            self._display_handle.update(self)

    @property
    def widget(self):
        """The ipywidgets container, to embed in a layout of your own."""
        return self.container


def fmt(value, digits: int = 4) -> str:
    """A number for a status line: NaN and None as a dash."""
    if value is None:
        return "-"
    try:
        value = float(value)
    except (TypeError, ValueError):
        return str(value)
    if not np.isfinite(value):
        return "-"
    return f"{value:.{digits}g}"


def duration(seconds) -> str:
    """``h:mm:ss`` for a number of seconds (a dash when unknown)."""
    if seconds is None or not np.isfinite(float(seconds)):
        return "-"
    s = int(round(float(seconds)))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def escape(text) -> str:
    return html.escape(str(text))


def pca2(z: np.ndarray, random_state: int = 0) -> np.ndarray:
    """2-D PCA coordinates of embeddings (fewer than 2 dimensions are padded with zeros)."""
    from sklearn.decomposition import PCA

    z = np.asarray(z, dtype=np.float64)
    n_comp = min(2, z.shape[0], z.shape[1])
    xy = PCA(n_components=n_comp, random_state=random_state).fit_transform(z)
    if n_comp < 2:
        xy = np.column_stack([xy, np.zeros((len(xy), 2 - n_comp))])
    return xy


def cluster_colors(labels) -> list[str]:
    return [PALETTE[int(c) % len(PALETTE)] for c in np.asarray(labels)]


def series_traces(x: np.ndarray, name: str, color: str, width: float = 1.5, opacity: float = 1.0,
                  showlegend: bool = True) -> list:
    """One line per channel of one series ``(n_channels, length)``, trailing NaN dropped."""
    import plotly.graph_objects as go

    traces = []
    x = np.asarray(x, dtype=np.float64)
    for ch, row in enumerate(x):
        last = np.flatnonzero(~np.isnan(row))
        row = row[: last[-1] + 1] if last.size else row[:0]
        label = name if len(x) == 1 else f"{name} ch{ch}"
        traces.append(go.Scatter(y=row, mode="lines", name=label, opacity=opacity,
                                 line={"color": color, "width": width}, showlegend=showlegend))
    return traces
