"""Live training view: progress bar, loss and score curves, and a Stop button."""

from __future__ import annotations

import threading
import time

import numpy as np

from ._base import FigureView, WidgetBase, escape, fmt, in_kernel, require_ipywidgets

# (record key, subplot column, colour, dash)
_CURVES = (("train_loss", 1, "#636EFA", None), ("valid_loss", 1, "#EF553B", "dot"),
           ("train_score", 2, "#636EFA", None), ("valid_score", 2, "#EF553B", "dot"))


def _curves_figure():
    """Empty loss (left) and silhouette score (right) curves, filled in epoch by epoch."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=1, cols=2, subplot_titles=("loss", "score (silhouette)"))
    for name, col, color, dash in _CURVES:
        fig.add_trace(go.Scatter(x=[], y=[], mode="lines+markers", name=name,
                                 line={"color": color, "dash": dash},
                                 legendgroup=name.split("_")[0]), row=1, col=col)
    fig.update_xaxes(title_text="epoch")
    fig.update_layout(height=300, margin={"l": 40, "r": 10, "t": 40, "b": 40},
                      legend={"orientation": "h", "y": -0.25})
    return fig


class TrainingDashboard(WidgetBase):
    """Progress, loss and score curves, and a Stop button for a :class:`CNNKMeans` fit.

    Pass it as a callback: ``model.fit(X, callbacks=[TrainingDashboard()])``. It shows itself
    when training starts (or earlier, when it is a cell's value) and updates after each epoch.
    Stop asks the model to end after the current epoch (:meth:`CNNKMeans.request_stop`); the
    embeddings are then clustered as usual, so the model is usable.

    A notebook kernel runs one thing at a time, so a click on Stop reaches the model only while
    the kernel is free: train with :meth:`fit_in_background` when you want to stop by hand.
    During a plain ``fit``, the kernel's interrupt button does the same (``fit`` catches the
    interrupt and clusters with the encoder as it is).

    Parameters
    ----------
    total_epochs : int, optional
        Length of the progress bar; by default learned from the model when training starts.
    show_stop : bool, default True
        Show the Stop button.
    live : {"auto", "figurewidget", "output"}, default "auto"
        How the curves update: a plotly ``FigureWidget`` changed in place (needs anywidget), or
        an ``Output`` widget redrawn each epoch. ``"auto"`` picks the first that works.
        When a run ends the widget is displayed again (so a saved notebook keeps its final
        text); JupyterLab's plotly renderer may then show an ``Output`` view's curves as the
        picture it kept of them, which becomes a live graph when the mouse comes over it.
    redraw_seconds : float, default 0.5
        Least time between two redraws of the curves, so that short epochs do not flood the
        browser; the last epoch is always drawn. The bar and the text follow every epoch.

    Attributes
    ----------
    progress, status, stop_button : ipywidgets
    view : FigureView
        The curves; ``view.figure`` is the plotly figure (traces train_loss, valid_loss,
        train_score, valid_score).
    records : list of dict
        The per-epoch records received.
    state : str
        ``"waiting"``, ``"running"``, ``"stopping"``, ``"stopped"`` or ``"done"``.

    Examples
    --------
    >>> from tsc_toolkit.widgets import TrainingDashboard
    >>> dash = TrainingDashboard(total_epochs=10, live="output", redraw_seconds=0)
    >>> dash.on_epoch_end(None, {"epoch": 3, "train_loss": 0.6931, "train_score": 0.41})
    >>> dash
    TrainingDashboard: epoch 3/10, train_loss 0.6931, train_score 0.41, running
    >>> dash.progress.value, len(dash.view.figure.data[0].x)
    (3, 1)
    """

    def __init__(self, total_epochs: int | None = None, show_stop: bool = True,
                 live: str = "auto", redraw_seconds: float = 0.5):
        widgets = require_ipywidgets()
        self.total_epochs = total_epochs
        self.show_stop = show_stop
        self.live = live
        self.redraw_seconds = float(redraw_seconds)
        self._last_draw = -np.inf
        self._drawn = 0
        self.records: list[dict] = []
        self.state = "waiting"
        self.model = None
        self._displayed = False
        self._stop_requested = False
        self.progress = widgets.IntProgress(value=0, min=0, max=max(int(total_epochs or 1), 1),
                                            description="epoch", bar_style="info")
        self.status = widgets.HTML(value=self._status_html())
        self.stop_button = widgets.Button(description="Stop", icon="stop", button_style="warning",
                                          tooltip="End training after the current epoch")
        self.stop_button.on_click(lambda _button: self.stop())
        self.stop_button.layout.display = None if show_stop else "none"
        self.view = FigureView(_curves_figure(), live=live)
        header = widgets.HBox([self.progress, self.status, self.stop_button],
                              layout=widgets.Layout(align_items="center"))
        self.container = widgets.VBox([header, self.view.widget])
        self.container.add_class("tsc-training-dashboard")

    # ------------------------------------------------------------------ callback protocol

    def on_train_begin(self, model) -> None:
        """Remember the model (for Stop) and the number of epochs; show the widget if needed."""
        self.model = model
        self._stop_requested = False
        if self.total_epochs is None:
            # A warm start continues the epoch count of the history it already has.
            history = getattr(model, "history_", None)
            resuming = getattr(model, "warm_start", False) and hasattr(model, "encoder_")
            done = len(history) if resuming and history is not None else 0
            epochs = getattr(model, "epochs", None)
            if epochs is not None:
                self.total_epochs = done + int(epochs)
        if self.total_epochs:
            self.progress.max = int(self.total_epochs)
        self.state = "running"
        self.progress.bar_style = "info"
        self.stop_button.disabled = False
        self.stop_button.description = "Stop"
        self._refresh_text()
        if not self._displayed and in_kernel():
            self.display()

    def on_epoch_end(self, model, record: dict) -> None:
        """Add one epoch's record to the progress bar, the text and the curves."""
        if self.state == "waiting":
            self.state = "running"
        record = dict(record)
        self.records.append(record)
        if record.get("epochs"):
            self.total_epochs = int(record["epochs"])
        epoch = int(record.get("epoch", len(self.records)))
        if self.total_epochs:
            self.progress.max = max(int(self.total_epochs), epoch)
        else:
            self.progress.max = max(self.progress.max, epoch)
        self.progress.value = epoch
        self._refresh_text()
        last = bool(self.total_epochs) and epoch >= int(self.total_epochs)
        if last or time.monotonic() - self._last_draw >= self.redraw_seconds:
            self._draw_curves()

    def _draw_curves(self) -> None:
        self._last_draw = time.monotonic()
        self._drawn = len(self.records)
        epochs = [int(r.get("epoch", i + 1)) for i, r in enumerate(self.records)]
        with self.view.batch() as fig:
            for trace, (name, _col, _color, _dash) in zip(fig.data, _CURVES):
                ys = [_nan_to_none(r.get(name)) for r in self.records]
                if all(y is None for y in ys):
                    continue
                trace.x = epochs
                trace.y = ys

    def on_train_end(self, model) -> None:
        """Mark the run done (or stopped) and disable Stop."""
        # The last curves go out before the text says the run ended, so a page that reads
        # "stopped" or "done" already has every epoch's points on their way.
        if self._drawn < len(self.records):
            self._draw_curves()
        self.state = "stopped" if self._stop_requested else "done"
        self.progress.bar_style = "warning" if self._stop_requested else "success"
        self.stop_button.disabled = True
        self.stop_button.description = "Stopped" if self._stop_requested else "Done"
        self._refresh_text()
        self.refresh_display()

    # ------------------------------------------------------------------ actions

    def stop(self) -> None:
        """Ask the model to stop after the current epoch (what the Stop button does)."""
        if self.state in ("stopped", "done", "failed"):
            return
        self._stop_requested = True
        if self.model is not None and hasattr(self.model, "request_stop"):
            self.model.request_stop()
        if self.state in ("waiting", "running"):
            self.state = "stopping"
        self.stop_button.disabled = True
        self.stop_button.description = "Stopping…"
        self._refresh_text()

    def fit_in_background(self, model, X, **fit_params) -> threading.Thread:
        """Run ``model.fit(X, callbacks=[self], **fit_params)`` in a thread and return it.

        The kernel stays free, so a click on Stop reaches the model at once. Wait for the
        result with ``thread.join()`` before using the model.
        """
        callbacks = list(fit_params.pop("callbacks", None) or [])
        if self not in callbacks:
            callbacks.append(self)
        if not self._displayed and in_kernel():
            self.display()
        errors: list[BaseException] = []

        def run():
            try:
                model.fit(X, callbacks=callbacks, **fit_params)
            except BaseException as exc:  # shown in the widget; the thread must not die silently
                errors.append(exc)
                self.state = "failed"
                self.status.value = f"<b>training failed:</b> {escape(repr(exc))}"
                self.progress.bar_style = "danger"
                self.refresh_display()

        thread = threading.Thread(target=run, name="tsc-training", daemon=True)
        thread.errors = errors
        thread.start()
        return thread

    # ------------------------------------------------------------------ text

    @property
    def last(self) -> dict:
        """The latest epoch's record (empty before the first epoch)."""
        return self.records[-1] if self.records else {}

    def _summary(self) -> str:
        rec = self.last
        epoch = rec.get("epoch", 0)
        total = self.total_epochs if self.total_epochs else "?"
        parts = [f"epoch {epoch}/{total}"]
        for key in ("train_loss", "train_score", "valid_loss", "valid_score"):
            value = rec.get(key)
            if value is not None and np.isfinite(float(value)):
                parts.append(f"{key} {fmt(value)}")
        parts.append(self.state)
        return ", ".join(parts)

    def _status_html(self) -> str:
        return f"<span style='font-family:monospace'>{escape(self._summary())}</span>"

    def _refresh_text(self) -> None:
        self.status.value = self._status_html()

    def __repr__(self) -> str:
        return f"TrainingDashboard: {self._summary()}"


def _nan_to_none(value):
    if value is None:
        return None
    value = float(value)
    return value if np.isfinite(value) else None
