"""Widgets driven from Python: callbacks, button clicks, selections, and the fallbacks."""

from __future__ import annotations

import sys
import threading

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("ipywidgets")

from tsc_toolkit import CNNKMeans  # noqa: E402
from tsc_toolkit.io.datasets import make_series  # noqa: E402
from tsc_toolkit.widgets import (  # noqa: E402
    ClusterExplorer,
    EmbeddingsModel,
    FigureView,
    JobMonitor,
    KSelector,
    TrainingDashboard,
    metric_series,
    resolve_live,
)

TINY = dict(clusters=3, blocks=2, filters=16, reduced_size=16, output_size=16, random_state=0,
            device="cpu")
LIVE = ["output", pytest.param("figurewidget", marks=pytest.mark.skipif(
    "anywidget" not in sys.modules and __import__("importlib").util.find_spec("anywidget") is None,
    reason="anywidget is not installed"))]


@pytest.fixture(scope="module")
def data():
    X, y = make_series(60, n_clusters=3, length=40, random_state=0)
    return X, y


@pytest.fixture(scope="module")
def fitted(data):
    X, _ = data
    return CNNKMeans(epochs=2, **TINY).fit(X)


@pytest.fixture
def no_anywidget(monkeypatch):
    """Make ``import anywidget`` fail, as in SageMaker Studio's images."""
    monkeypatch.setitem(sys.modules, "anywidget", None)


def record(epoch, loss, score=0.5, **extra):
    return {"epoch": epoch, "train_loss": loss, "train_score": score, "valid_loss": np.nan,
            "valid_score": np.nan, **extra}


# ---------------------------------------------------------------- live view choice


def test_auto_falls_back_to_output_without_anywidget(no_anywidget):
    assert resolve_live("auto") == "output"
    dash = TrainingDashboard(total_epochs=4, redraw_seconds=0)
    assert dash.view.mode == "output"
    import ipywidgets

    assert isinstance(dash.view.widget, ipywidgets.Output)
    dash.on_epoch_end(None, record(1, 0.9))
    assert len(dash.view.figure.data[0].x) == 1
    assert dash.view.redraws == 2  # once built, once per epoch


def test_figurewidget_mode_says_which_extra_without_anywidget(no_anywidget):
    with pytest.raises(ImportError, match="live"):
        TrainingDashboard(live="figurewidget")


def test_unknown_live_mode_is_rejected():
    with pytest.raises(ValueError, match="live must be one of"):
        resolve_live("matplotlib")


@pytest.mark.parametrize("live", LIVE)
def test_figure_view_replace_keeps_the_widget(live):
    import plotly.graph_objects as go

    view = FigureView(go.Figure(go.Scatter(y=[1, 2])), live=live)
    widget = view.widget
    view.replace(go.Figure([go.Bar(y=[3]), go.Scatter(y=[4])], layout={"title": "new"}))
    assert view.widget is widget
    assert [t.type for t in view.figure.data] == ["bar", "scatter"]
    assert view.figure.layout.title.text == "new"


# ---------------------------------------------------------------- TrainingDashboard


@pytest.mark.parametrize("live", LIVE)
def test_dashboard_updates_progress_text_and_curves_each_epoch(live):
    dash = TrainingDashboard(live=live, redraw_seconds=0)
    model = CNNKMeans(epochs=5, **TINY)
    dash.on_train_begin(model)
    assert dash.progress.max == 5 and dash.state == "running"
    dash.on_epoch_end(model, record(1, 0.9, 0.2))
    dash.on_epoch_end(model, record(2, 0.8, 0.3))
    dash.on_epoch_end(model, record(3, 0.6931, 0.41))
    assert dash.progress.value == 3
    assert "epoch 3/5" in dash.status.value and "0.6931" in dash.status.value
    fig = dash.view.figure
    names = [t.name for t in fig.data]
    train_loss = fig.data[names.index("train_loss")]
    assert list(train_loss.x) == [1, 2, 3]
    assert list(train_loss.y) == pytest.approx([0.9, 0.8, 0.6931])
    assert len(fig.data[names.index("train_score")].y) == 3
    # no validation set: its curves stay empty rather than full of gaps
    assert not fig.data[names.index("valid_loss")].y
    assert repr(dash) == ("TrainingDashboard: epoch 3/5, train_loss 0.6931, train_score 0.41, "
                          "running")
    dash.on_train_end(model)
    assert repr(dash).endswith(", done") and dash.stop_button.disabled


def test_dashboard_shows_validation_curves_when_present():
    dash = TrainingDashboard(total_epochs=2, live="output", redraw_seconds=0)
    dash.on_epoch_end(None, record(1, 0.9, valid_loss=1.0, valid_score=0.1))
    names = [t.name for t in dash.view.figure.data]
    assert list(dash.view.figure.data[names.index("valid_loss")].y) == [1.0]
    assert "valid_score 0.1" in repr(dash)


def test_output_view_holds_the_figure_as_a_plotly_bundle(no_anywidget):
    dash = TrainingDashboard(total_epochs=3, redraw_seconds=0)
    dash.on_epoch_end(None, record(1, 0.9))
    dash.on_epoch_end(None, record(2, 0.7))
    (output,) = dash.view.widget.outputs
    traces = output["data"]["application/vnd.plotly.v1+json"]["data"]
    assert [t["name"] for t in traces][:1] == ["train_loss"]
    assert list(traces[0]["y"]) == [0.9, 0.7]


def test_dashboard_redraws_curves_at_most_every_redraw_seconds_and_at_the_end():
    dash = TrainingDashboard(total_epochs=10, live="output", redraw_seconds=1e9)
    for epoch in range(1, 5):
        dash.on_epoch_end(None, record(epoch, 1.0 / epoch))
    assert dash.progress.value == 4 and "epoch 4/10" in repr(dash)
    assert len(dash.view.figure.data[0].y) == 1  # only the first epoch was drawn
    dash.on_train_end(None)
    assert len(dash.view.figure.data[0].y) == 4
    dash.on_epoch_end(None, record(10, 0.1))  # the last epoch is always drawn
    assert len(dash.view.figure.data[0].y) == 5


def test_stop_after_training_ended_changes_nothing():
    dash = TrainingDashboard(total_epochs=1, live="output")
    dash.on_epoch_end(None, record(1, 0.5))
    dash.on_train_end(None)
    dash.stop()
    assert dash.state == "done" and dash.stop_button.description == "Done"


def test_dashboard_repr_before_training_and_mimebundle():
    dash = TrainingDashboard(live="output")
    assert repr(dash) == "TrainingDashboard: epoch 0/?, waiting"
    bundle = dash._repr_mimebundle_()
    assert bundle["text/plain"] == repr(dash)
    assert bundle["application/vnd.jupyter.widget-view+json"]["model_id"] == \
        dash.container.model_id


def test_dashboard_hides_stop_when_asked():
    assert TrainingDashboard(show_stop=False, live="output").stop_button.layout.display == "none"


def test_stop_button_ends_a_real_fit_early_and_the_model_is_usable(data):
    X, _ = data

    class ClickAtEpoch2(TrainingDashboard):
        def on_epoch_end(self, model, record):
            super().on_epoch_end(model, record)
            if record["epoch"] == 2:
                self.stop_button.click()

    model = CNNKMeans(epochs=6, **TINY)
    dash = ClickAtEpoch2(live="output")
    model.fit(X, callbacks=[dash])
    assert len(model.history_) == 2 < model.epochs
    assert dash.state == "stopped" and dash.progress.value == 2
    assert repr(dash).endswith(", stopped")
    labels = model.predict(X[:5])
    assert labels.shape == (5,) and set(labels) <= {0, 1, 2}


def test_fit_in_background_runs_to_the_end(data):
    X, _ = data
    model = CNNKMeans(epochs=2, **TINY)
    dash = TrainingDashboard(live="output")
    thread = dash.fit_in_background(model, X)
    thread.join(timeout=300)
    assert not thread.is_alive() and not thread.errors
    assert dash.state == "done" and dash.progress.value == 2
    assert hasattr(model, "labels_")


def test_fit_in_background_shows_a_failure():
    dash = TrainingDashboard(live="output")
    thread = dash.fit_in_background(CNNKMeans(epochs=1, **TINY), np.zeros((2, 1, 0)))
    thread.join(timeout=60)
    assert thread.errors and dash.state == "failed" and "failed" in dash.status.value


# ---------------------------------------------------------------- ClusterExplorer


@pytest.mark.parametrize("live", LIVE)
def test_explorer_select_cluster_highlights_members_and_draws_centroid(fitted, data, live):
    X, y = data
    ex = ClusterExplorer(fitted, X, labels_true=y, live=live)
    c = int(fitted.labels_[0])
    ex.select_cluster(c)
    assert ex.dropdown.value == c and ex.cluster == c
    opacity = np.asarray(ex.projection.figure.data[0].marker.opacity)
    members = fitted.labels_ == c
    assert (opacity[members] > 0.5).all() and (opacity[~members] < 0.5).all()
    centroid = ex.centroids.figure
    assert f"{members.sum()} members" in centroid.layout.title.text
    assert len(centroid.data) >= 2  # members and the centroid line


@pytest.mark.parametrize("live", LIVE)
def test_explorer_show_series_draws_that_series(fitted, data, live):
    X, y = data
    ex = ClusterExplorer(fitted, X, labels_true=y, ids=[f"s{i}" for i in range(len(X))],
                         live=live)
    ex.show_series(7)
    fig = ex.series_view.figure
    assert ex.series == 7 and ex.series_picker.value == 7
    np.testing.assert_allclose(np.asarray(fig.data[0].y), X[7, 0])
    assert "s7" in fig.layout.title.text and f"true label {y[7]}" in fig.layout.title.text
    ex.series_picker.value = 9  # the index box does the same
    assert ex.series == 9
    with pytest.raises(IndexError):
        ex.show_series(len(X))


def test_explorer_click_on_a_point_shows_its_series(fitted, data):
    pytest.importorskip("anywidget")
    X, _ = data
    ex = ClusterExplorer(fitted, X, live="figurewidget")
    trace = ex.projection.figure.data[0]
    # What plotly's front end sends for a click on point 11 of the scatter trace.
    ex.projection.figure._js2py_pointsCallback = {
        "event_type": "plotly_click",
        "points": {"trace_indexes": [0], "point_indexes": [11], "xs": [float(trace.x[11])],
                   "ys": [float(trace.y[11])]}}
    assert ex.series == 11


def test_explorer_samples_large_projections_and_maps_clicks_back(data):
    pytest.importorskip("anywidget")
    X, _ = data
    model = EmbeddingsModel(np.random.default_rng(1).normal(size=(60, 4)), clusters=3)
    ex = ClusterExplorer(model, X, max_points=20, live="figurewidget")
    trace = ex.projection.figure.data[0]
    assert len(trace.x) == 20 and "showing 20 of 60" in ex.projection.figure.layout.title.text
    ex.select_cluster(1)
    opacity = np.asarray(trace.marker.opacity)
    assert ((opacity > 0.5) == (model.labels_[ex.shown] == 1)).all()
    ex.projection.figure._js2py_pointsCallback = {
        "event_type": "plotly_click",
        "points": {"trace_indexes": [0], "point_indexes": [3], "xs": [0.0], "ys": [0.0]}}
    assert ex.series == ex.shown[3]


def test_explorer_multivariate_with_varying_lengths_and_missing_labels(no_anywidget):
    X, _ = make_series(12, n_clusters=2, length=30, random_state=1)
    X = np.concatenate([X, X[:, :, ::-1]], axis=1)  # 2 channels
    X[0, :, 20:] = np.nan  # a shorter series
    model = EmbeddingsModel(np.random.default_rng(0).normal(size=(12, 3)), clusters=2)
    ex = ClusterExplorer(model, X)
    assert ex.projection.mode == "output"
    ex.select_cluster(int(model.labels_[0]))
    ex.show_series(0)
    assert len(ex.series_view.figure.data) == 2  # one line per channel
    assert len(ex.series_view.figure.data[0].y) == 20  # trailing NaN dropped
    assert "true label" not in ex.series_view.figure.layout.title.text
    with pytest.raises(ValueError, match="No cluster"):
        ex.select_cluster(5)


def test_explorer_rejects_series_that_do_not_match_the_model(fitted, data):
    X, _ = data
    with pytest.raises(ValueError, match="labels for 60 series"):
        ClusterExplorer(fitted, X[:10], live="output")


# ---------------------------------------------------------------- KSelector


@pytest.mark.parametrize("live", LIVE)
def test_kselector_set_k_reclusters_without_retraining(fitted, data, live):
    X, _ = data
    weights = {k: v.clone() for k, v in fitted.encoder_.state_dict().items()}
    labels_before = fitted.labels_.copy()
    seen = []
    sel = KSelector(fitted, X, k_range=range(2, 6), live=live)
    sel.on_change(lambda k, labels: seen.append((k, len(np.unique(labels)))))
    assert sel.k == 3 and sel.value == 3
    scores_3 = dict(sel.scores_)
    sel.set_k(5)
    assert sel.k == 5 and sel.slider.value == 5 and seen == [(5, 5)]
    assert len(np.unique(sel.labels_)) == 5
    assert sel.scores_ != scores_3
    assert set(sel.scores_) >= {"silhouette", "calinski_harabasz", "davies_bouldin"}
    assert f"{sel.scores_['silhouette']:.4g}" in sel.scores_html.value
    colours = sel.projection.figure.data[0].marker.color
    assert len(set(colours)) == 5
    assert "k = 5" in sel.projection.figure.layout.title.text
    assert sel.centroids.figure.layout.annotations  # one titled panel per cluster
    assert len(sel.centroids.figure.layout.annotations) == 5
    # the model passed in is untouched and its encoder was not trained
    np.testing.assert_array_equal(fitted.labels_, labels_before)
    assert fitted.clusters == 3
    for key, value in fitted.encoder_.state_dict().items():
        assert (value == weights[key]).all(), key
    sel.slider.value = 2  # the slider does the same
    assert sel.k == 2 and seen[-1] == (2, 2)
    assert repr(sel).startswith("KSelector: k = 2, silhouette ")
    with pytest.raises(ValueError, match="not one of"):
        sel.set_k(9)


def test_kselector_uses_a_scans_labels_and_scores():
    z = np.random.default_rng(0).normal(size=(20, 3))
    labels = {2: np.repeat([0, 1], 10), 3: np.arange(20) % 3}

    class Scan:  # what tsc_toolkit.clustering.selection.scan_k returns, as far as KSelector looks
        scores_ = pd.DataFrame({"k": [2, 3], "inertia": [9.0, 7.0], "silhouette": [0.5, 0.25],
                                "calinski_harabasz": [10.0, 8.0], "davies_bouldin": [1.0, 2.0]})
        suggested_ = {"silhouette": 2}

    Scan.labels = labels
    with pytest.raises(ValueError, match="holds no embeddings"):
        KSelector(Scan(), live="output")
    sel = KSelector(Scan(), embeddings=z, live="output")
    assert sel.k_range == [2, 3] and sel.centroids is None
    assert "suggested k: silhouette 2" in sel.scores_html.value
    sel.set_k(3)
    np.testing.assert_array_equal(sel.labels_, labels[3])
    assert sel.scores_ == {"inertia": 7.0, "silhouette": 0.25, "calinski_harabasz": 8.0,
                           "davies_bouldin": 2.0}
    # the elbow chart marks the k chosen
    solid = [shape["x0"] for shape in sel.elbow.figure.to_dict()["layout"]["shapes"]
             if "dash" not in shape.get("line", {})]
    assert solid and set(solid) == {3}


def test_kselector_fills_in_scores_the_scan_did_not_compute(fitted):
    class Scan:
        scores_ = pd.DataFrame({"k": [2, 3], "inertia": [9.0, 7.0],
                                "silhouette": [np.nan, np.nan]})

    sel = KSelector(fitted, scan=Scan(), live="output")
    assert sel.scores_["inertia"] == 7.0  # k = 3, the model's, from the scan
    assert np.isfinite(sel.scores_["silhouette"]) and "davies_bouldin" in sel.scores_


def test_kselector_rejects_other_objects():
    with pytest.raises(TypeError, match="fitted model"):
        KSelector(object())


# ---------------------------------------------------------------- JobMonitor


class FakeJob:
    """A job handle whose state the test moves forward by hand."""

    def __init__(self, states=("InProgress", "InProgress", "Completed")):
        self.name = "tsc-job-1"
        self.states = list(states)
        self.polls = 0
        self.stopped = 0
        self.failure_reason = None
        self.elapsed_seconds = 0
        self.billable_seconds = None

    @property
    def status(self):
        state = self.states[min(self.polls, len(self.states) - 1)]
        self.polls += 1
        self.elapsed_seconds = 60 * self.polls
        return state

    def metrics(self):
        n = self.polls
        return pd.DataFrame({"name": ["train_loss"] * n + ["train_score"] * n,
                             "epoch": list(range(1, n + 1)) * 2,
                             "value": [1.0 / e for e in range(1, n + 1)] + [0.1 * e for e in
                                                                            range(1, n + 1)]})

    def logs(self, tail=20):
        return "\n".join(f"epoch: {e} train_loss: {1.0 / e:.4f}" for e in range(1, self.polls + 1))

    def stop(self):
        self.stopped += 1
        self.states = ["Stopping", "Stopped"]
        self.polls = 0


@pytest.mark.parametrize("live", LIVE)
def test_job_monitor_refresh_shows_status_metrics_and_logs(live):
    job = FakeJob()
    mon = JobMonitor(job, start=False, live=live)
    mon.refresh()
    assert mon.status == "InProgress" and not mon.done
    assert "InProgress" in mon.status_html.value and "0:01:00" in mon.status_html.value
    mon.refresh()
    fig = mon.view.figure
    assert sorted(t.name for t in fig.data) == ["train_loss", "train_score"]
    assert all(len(t.y) == 2 for t in fig.data)
    assert mon.log.value.endswith("epoch: 2 train_loss: 0.5000")
    mon.refresh()
    assert mon.done and mon.stop_button.disabled
    assert repr(mon).startswith("JobMonitor: tsc-job-1 Completed, elapsed 0:03:00, billable -")


def test_job_monitor_thread_stops_polling_at_a_terminal_state():
    job = FakeJob()
    mon = JobMonitor(job, poll_seconds=0.01, live="output")
    mon._thread.join(timeout=30)
    assert not mon.polling and mon.status == "Completed"
    assert mon.polls == 3  # nothing after the job ended
    mon.start()  # a finished job is not polled again
    assert not mon.polling and mon.polls == 3


def test_job_monitor_stop_button_calls_job_stop():
    job = FakeJob(states=["InProgress"])
    mon = JobMonitor(job, start=False, live="output")
    mon.refresh()
    mon.stop_button.click()
    assert job.stopped == 1 and mon.stop_button.disabled
    mon.refresh()
    assert mon.status == "Stopping" and not mon.done
    mon.refresh()
    assert mon.status == "Stopped" and mon.done


def test_job_monitor_shows_failure_reason_and_poll_errors():
    job = FakeJob(states=["Failed"])
    job.failure_reason = "AlgorithmError: out of memory"
    mon = JobMonitor(job, start=False, live="output")
    mon.refresh()
    assert "out of memory" in mon.status_html.value

    class Broken(FakeJob):
        def logs(self, tail=20):
            raise ConnectionError("endpoint unreachable")

    mon = JobMonitor(Broken(), start=False, live="output")
    mon.refresh()
    assert "endpoint unreachable" in mon.status_html.value and not mon.done


def test_job_monitor_polling_can_be_stopped_by_hand():
    mon = JobMonitor(FakeJob(states=["InProgress"]), poll_seconds=30, live="output")
    assert mon.polling
    mon.stop_polling()
    mon._thread.join(timeout=30)
    assert not mon.polling and mon.polls == 1


def test_metric_series_accepts_dicts_and_frames():
    assert metric_series({"loss": [3, 2]}) == {"loss": ([1, 2], [3.0, 2.0])}
    assert metric_series({"loss": [(5, 1.0), (6, 0.5)]}) == {"loss": ([5, 6], [1.0, 0.5])}
    frame = pd.DataFrame({"metric_name": ["a", "a"], "timestamp": [2, 1], "value": [0.2, 0.1]})
    assert metric_series(frame) == {"a": ([1, 2], [0.1, 0.2])}
    with pytest.raises(ValueError, match="name and value"):
        metric_series(pd.DataFrame({"x": ["text"]}))


def test_metric_series_reads_the_wide_frame_of_the_toolkits_job_handle():
    frame = pd.DataFrame({"epoch": pd.array([2, 1, 3], dtype="Int64"),
                          "train_loss": [0.8, 0.9, 0.7], "valid_loss": [np.nan, 1.0, 0.75],
                          "timestamp": pd.to_datetime([2, 1, 3], unit="s", utc=True)})
    assert metric_series(frame) == {"train_loss": ([1, 2, 3], [0.9, 0.8, 0.7]),
                                    "valid_loss": ([1, 3], [1.0, 0.75])}


def test_job_monitor_repr_does_not_poll_the_job():
    job = FakeJob()
    mon = JobMonitor(job, start=False, live="output")
    mon.refresh()
    polls = job.polls
    repr(mon), mon._render_status()
    assert job.polls == polls


def test_threads_are_daemons():
    mon = JobMonitor(FakeJob(states=["InProgress"]), poll_seconds=30, live="output")
    assert mon._thread.daemon
    mon.stop_polling()
    assert isinstance(mon._thread, threading.Thread)


def test_kselector_with_a_real_k_scan(fitted, data):
    from tsc_toolkit.clustering.selection import scan_k

    X, _ = data
    scan = scan_k(fitted, k_range=range(2, 6), metrics=("inertia", "silhouette"),
                  random_state=0)
    sel = KSelector(fitted, X, scan=scan, live="output")
    assert sel.k_range == [2, 3, 4, 5] and sel.k == 3
    sel.set_k(4)
    np.testing.assert_array_equal(sel.labels_, scan.labels[4])
    row = scan.scores_.set_index("k").loc[4]
    assert sel.scores_["silhouette"] == pytest.approx(row["silhouette"])
    assert np.isfinite(sel.scores_["davies_bouldin"])  # not in the scan: computed here
    assert "suggested k:" in sel.scores_html.value
    alone = KSelector(scan, embeddings=fitted.embeddings_, live="output")
    alone.set_k(5)
    assert len(np.unique(alone.labels_)) == 5 and alone.model_ is None
