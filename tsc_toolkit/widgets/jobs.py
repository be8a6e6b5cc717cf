"""Watch a SageMaker training job: status, time, metric curves, log tail, Stop."""

from __future__ import annotations

import threading

from ._base import PALETTE, FigureView, WidgetBase, duration, escape, fmt, require_ipywidgets

TERMINAL = frozenset({"Completed", "Failed", "Stopped"})
_STATUS_STYLE = {"InProgress": "info", "Completed": "success", "Failed": "danger",
                 "Stopped": "warning", "Stopping": "warning"}


def metric_series(metrics) -> dict[str, tuple[list, list]]:
    """Normalise a job's metrics to ``{name: (x, y)}``.

    Accepts a DataFrame, either long (columns ``name``/``metric_name`` and ``value``) or wide
    (one column per metric, as the toolkit's job handle returns), with an x column (``epoch``,
    ``step`` or ``timestamp``; row order otherwise), or a dict ``name -> values`` (a list of
    numbers, or of ``(x, value)`` pairs).
    """
    if metrics is None:
        return {}
    out: dict[str, tuple[list, list]] = {}
    if hasattr(metrics, "columns"):
        cols = {str(c).lower(): c for c in metrics.columns}
        name_col = cols.get("name") or cols.get("metric_name") or cols.get("metricname")
        value_col = cols.get("value")
        x_col = next((cols[c] for c in ("epoch", "step", "timestamp") if c in cols), None)
        if name_col is None or value_col is None:
            return _wide_metrics(metrics, x_col)
        for name, group in metrics.groupby(name_col, sort=True):
            if x_col is not None:
                group = group.sort_values(x_col)
                xs = group[x_col].tolist()
            else:
                xs = list(range(1, len(group) + 1))
            out[str(name)] = (xs, [float(v) for v in group[value_col]])
        return out
    for name, values in dict(metrics).items():
        values = list(values)
        if values and isinstance(values[0], (tuple, list)) and len(values[0]) == 2:
            out[str(name)] = ([v[0] for v in values], [float(v[1]) for v in values])
        else:
            out[str(name)] = (list(range(1, len(values) + 1)), [float(v) for v in values])
    return out


def _wide_metrics(frame, x_col) -> dict[str, tuple[list, list]]:
    import pandas as pd

    skip = {x_col} | {c for c in frame.columns if str(c).lower() in ("epoch", "step",
                                                                       "timestamp")}
    names = [c for c in frame.columns if c not in skip and pd.api.types.is_numeric_dtype(
        frame[c])]
    if not names:
        raise ValueError(f"Metrics need name and value columns, or one numeric column per "
                         f"metric; got {list(frame.columns)}.")
    if x_col is not None:
        frame = frame.sort_values(x_col, kind="stable")
    xs_all = (frame[x_col] if x_col is not None else pd.Series(range(1, len(frame) + 1),
                                                                index=frame.index))
    out = {}
    for name in names:
        keep = frame[name].notna()
        if keep.any():
            xs = xs_all[keep].tolist()
            if x_col is not None and str(x_col).lower() in ("epoch", "step"):
                xs = [int(x) for x in xs]
            out[str(name)] = (xs, [float(v) for v in frame.loc[keep, name]])
    return out


class JobMonitor(WidgetBase):
    """Status, elapsed and billable time, metric curves, log tail and Stop for a training job.

    It polls the job in a daemon thread every ``poll_seconds`` and stops polling when the job
    reaches a terminal state (Completed, Failed, Stopped). :meth:`refresh` polls once by hand.

    Parameters
    ----------
    job : job handle
        Anything with ``status`` (InProgress, Completed, Failed, Stopped, Stopping),
        ``elapsed_seconds``, ``billable_seconds``, ``metrics()`` (DataFrame or dict, see
        :func:`metric_series`), ``logs(tail=...)``, ``failure_reason`` and ``stop()``;
        ``name`` or ``job_name`` when it has one.
    poll_seconds : float, default 15
        Time between polls (modest: each poll is several AWS API calls).
    start : bool, default True
        Start polling at once; with False, call :meth:`start` or :meth:`refresh`.
    log_lines : int, default 20
        Lines of log shown.
    live : {"auto", "figurewidget", "output"}, default "auto"

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> from tsc_toolkit.widgets import JobMonitor
    >>> job = SimpleNamespace(name="demo", status="Completed", elapsed_seconds=75,
    ...                       billable_seconds=61, failure_reason=None,
    ...                       metrics=lambda: {"train_loss": [0.9, 0.7]},
    ...                       logs=lambda tail=20: "epoch: 2 train_loss: 0.7", stop=lambda: None)
    >>> mon = JobMonitor(job, start=False, live="output")
    >>> mon.refresh()
    >>> mon
    JobMonitor: demo Completed, elapsed 0:01:15, billable 0:01:01, train_loss 0.7, not polling
    """

    def __init__(self, job, poll_seconds: float = 15, *, start: bool = True,
                 log_lines: int = 20, live: str = "auto"):
        import plotly.graph_objects as go

        widgets = require_ipywidgets()
        self.job = job
        self.poll_seconds = float(poll_seconds)
        self.log_lines = int(log_lines)
        self.status: str | None = None
        self.elapsed: float | None = None
        self.billable: float | None = None
        self.failure_reason: str | None = None
        self.error: str | None = None
        self.metrics: dict[str, tuple[list, list]] = {}
        self.log_text = ""
        self.polls = 0
        self._displayed = False
        self._halt = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

        self.status_html = widgets.HTML()
        self.stop_button = widgets.Button(description="Stop job", icon="stop",
                                          button_style="warning",
                                          tooltip="Ask SageMaker to stop this training job")
        self.stop_button.on_click(lambda _button: self.stop_job())
        fig = go.Figure()
        fig.update_layout(title="metrics", height=280, xaxis_title="epoch",
                          margin={"l": 40, "r": 10, "t": 40, "b": 40})
        self.view = FigureView(fig, live=live)
        self.log = widgets.Textarea(value="", disabled=True, description="log",
                                    layout=widgets.Layout(width="100%", height="12em"))
        self.container = widgets.VBox([widgets.HBox([self.status_html, self.stop_button]),
                                       self.view.widget, self.log])
        self.container.add_class("tsc-job-monitor")
        self._render_status()
        if start:
            self.start()

    # ------------------------------------------------------------------ polling

    @property
    def job_name(self) -> str:
        return str(getattr(self.job, "name", None) or getattr(self.job, "job_name", None)
                   or "job")

    @property
    def polling(self) -> bool:
        """Whether the background thread is polling."""
        return self._thread is not None and self._thread.is_alive()

    @property
    def done(self) -> bool:
        """Whether the job has reached a terminal state."""
        return self.status in TERMINAL

    def start(self) -> None:
        """Poll in a daemon thread until the job ends (or :meth:`stop_polling`)."""
        if self.polling or self.done:
            return
        self._halt.clear()
        self._thread = threading.Thread(target=self._poll_loop, name="tsc-job-monitor",
                                        daemon=True)
        self._thread.start()

    def stop_polling(self) -> None:
        """Stop the background polling (the job keeps running)."""
        self._halt.set()

    def _poll_loop(self) -> None:
        while not self._halt.is_set():
            self.refresh()
            if self.done:
                break
            self._halt.wait(self.poll_seconds)

    def refresh(self) -> None:
        """Poll the job once and update the widget."""
        with self._lock:
            self.polls += 1
            try:
                # Read each property once per poll: each may be an AWS call.
                self.status = str(self.job.status)
                self.elapsed = getattr(self.job, "elapsed_seconds", None)
                self.billable = getattr(self.job, "billable_seconds", None)
                self.failure_reason = (getattr(self.job, "failure_reason", None)
                                       if self.status == "Failed" else None)
                self.error = None
                metrics = metric_series(self.job.metrics())
                self.log_text = str(self.job.logs(tail=self.log_lines) or "")
            except Exception as exc:  # a failed poll is shown, and the next one may work
                self.error = f"{type(exc).__name__}: {exc}"
                metrics = self.metrics
            if self.done:
                self._halt.set()
                self.stop_button.disabled = True
            self._update_curves(metrics)
            self.log.value = self.log_text
            self._render_status()
            if self.done:
                self.refresh_display()

    def stop_job(self) -> None:
        """Ask the job to stop (what the Stop button does); polling continues until it ends."""
        self.stop_button.disabled = True
        self.stop_button.description = "Stopping…"
        try:
            self.job.stop()
        except Exception as exc:
            self.error = f"stop failed: {type(exc).__name__}: {exc}"
            self.stop_button.disabled = False
            self.stop_button.description = "Stop job"
        self._render_status()

    # ------------------------------------------------------------------ drawing

    def _update_curves(self, metrics: dict[str, tuple[list, list]]) -> None:
        if metrics == self.metrics and self.view.figure.data:
            return
        import plotly.graph_objects as go

        self.metrics = metrics
        with self.view.batch() as fig:
            names = [t.name for t in fig.data]
            for name, (xs, ys) in metrics.items():
                if name in names:
                    trace = fig.data[names.index(name)]
                    trace.x, trace.y = xs, ys
                else:
                    color = PALETTE[len(fig.data) % len(PALETTE)]
                    score = "score" in name or "silhouette" in name
                    fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines+markers", name=name,
                                             line={"color": color}, yaxis="y2" if score else "y"))
                    if score:
                        fig.update_layout(yaxis2={"overlaying": "y", "side": "right",
                                                  "title": "score"})

    def _summary(self) -> str:
        parts = [f"{self.job_name} {self.status or 'unknown'}",
                 f"elapsed {duration(self.elapsed)}", f"billable {duration(self.billable)}"]
        for name, (_xs, ys) in self.metrics.items():
            if ys:
                parts.append(f"{name} {fmt(ys[-1])}")
        parts.append("polling" if self.polling and not self._halt.is_set() else "not polling")
        return ", ".join(parts)

    def _render_status(self) -> None:
        style = _STATUS_STYLE.get(self.status or "", "")
        colour = {"info": "#1f77b4", "success": "#2ca02c", "danger": "#d62728",
                  "warning": "#ff7f0e"}.get(style, "#555")
        rows = [f"<b>{escape(self.job_name)}</b>: <b style='color:{colour}'>"
                f"{escape(self.status or 'unknown')}</b>",
                f"elapsed {duration(self.elapsed)}, billable {duration(self.billable)}"]
        latest = [f"{escape(n)} {fmt(ys[-1])}" for n, (_x, ys) in self.metrics.items() if ys]
        if latest:
            rows.append("latest: " + ", ".join(latest))
        if self.failure_reason:
            rows.append(f"<span style='color:#d62728'>failure: "
                        f"{escape(self.failure_reason)}</span>")
        if self.error:
            rows.append(f"<span style='color:#d62728'>{escape(self.error)}</span>")
        self.status_html.value = "<br>".join(rows)

    def __repr__(self) -> str:
        return f"JobMonitor: {self._summary()}"

