"""Figures of tsc_toolkit.plots: traces and layout checked through fig.to_dict()."""

from __future__ import annotations

import base64

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

from tsc_toolkit.io.datasets import make_series
from tsc_toolkit.plots import (
    Projector,
    centroids,
    cluster_sizes,
    contingency,
    elbow,
    projection,
    training_curves,
)
from tsc_toolkit.plots.curves import nan_quantile


@pytest.fixture(scope="module")
def data():
    return make_series(60, n_clusters=3, length=40, random_state=0)


@pytest.fixture(scope="module")
def model(data):
    from tsc_toolkit import CNNKMeans

    X, _ = data
    return CNNKMeans(clusters=3, blocks=2, filters=16, reduced_size=16, output_size=16,
                     epochs=3, random_state=0, device="cpu").fit(X, X_valid=X[:20])


def decode(value):
    """Undo plotly's base64 typed-array encoding in ``to_dict()`` output."""
    if isinstance(value, dict) and "bdata" in value:
        arr = np.frombuffer(base64.b64decode(value["bdata"]), dtype=np.dtype(value["dtype"]))
        shape = value.get("shape")
        return arr.reshape([int(s) for s in shape.split(",")]) if shape else arr
    if isinstance(value, dict):
        return {k: decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [decode(v) for v in value]
    return value


def traces(fig, role=None):
    out = [decode(t) for t in fig.to_dict()["data"]]
    return [t for t in out if role is None or (t.get("meta") or {}).get("role") == role]


def title(fig):
    return fig.to_dict()["layout"]["title"]["text"]


def panel_titles(fig):
    return [a["text"] for a in fig.to_dict()["layout"].get("annotations", [])
            if a["text"].startswith(("cluster", "all series"))]


# --- projection ---------------------------------------------------------------------------

def test_projection_of_a_model_colours_by_cluster_with_hover_ids(model):
    fig = projection(model)
    data = traces(fig)
    assert isinstance(fig, go.Figure)
    assert [t["name"] for t in data] == ["cluster 0", "cluster 1", "cluster 2"]
    assert {t["type"] for t in data} == {"scatter"}
    assert sum(len(t["x"]) for t in data) == 60
    hover = data[0]["hovertemplate"]
    assert "series %{customdata[0]}" in hover and "cluster %{customdata[1]}" in hover
    ids = sorted(int(row[0]) for t in data for row in t["customdata"])
    assert ids == list(range(60))
    assert fig.layout.xaxis.title.text.startswith("PC1 (")
    assert "PCA" in title(fig)


def test_projection_colours_by_true_label_and_keeps_cluster_in_hover(model, data):
    _, y = data
    fig = projection(model, color=np.array(["abc"[v] for v in y]), ids=[f"s{i}" for i in range(60)])
    data_ = traces(fig)
    assert [t["name"] for t in data_] == ["a", "b", "c"]
    assert "label %{customdata[2]}" in data_[0]["hovertemplate"]
    row = data_[0]["customdata"][0]
    assert row[0].startswith("s") and row[2] == "a" and row[1] in {"0", "1", "2"}


def test_projection_without_labels_draws_one_group():
    z = np.random.default_rng(0).normal(size=(40, 5))
    fig = projection(z)
    assert [t["name"] for t in traces(fig)] == ["series"]
    assert "cluster" not in traces(fig)[0]["hovertemplate"]


def test_projection_samples_100k_series_by_cluster_and_says_so():
    rng = np.random.default_rng(0)
    n = 100_000
    labels = rng.choice(4, size=n, p=[0.7, 0.2, 0.09, 0.01])
    z = rng.normal(size=(n, 8)).astype(np.float32) + labels[:, None]
    fig = projection(z, labels, max_points=20_000)
    data = traces(fig)
    assert {t["type"] for t in data} == {"scattergl"}
    counts = [len(t["x"]) for t in data]
    assert sum(counts) == 20_000
    shares = np.array(counts) / 20_000
    assert np.allclose(shares, np.bincount(labels) / n, atol=0.002)
    assert "showing 20,000 of 100,000 series" in title(fig)


def test_projector_is_reused_to_place_new_points(data):
    rng = np.random.default_rng(1)
    z = rng.normal(size=(60, 6))
    p = Projector().fit(z)
    new = rng.normal(size=(7, 6))
    fig = projection(new, projector=p)
    got = np.column_stack([traces(fig)[0]["x"], traces(fig)[0]["y"]])
    np.testing.assert_allclose(got, p.transform(new))
    np.testing.assert_allclose(p.transform(z), p.embedding_, atol=1e-8)
    with pytest.raises(ValueError, match="features"):
        p.transform(rng.normal(size=(3, 5)))


def test_projector_fitted_inside_projection_when_unfitted():
    z = np.random.default_rng(2).normal(size=(30, 4))
    p = Projector()
    projection(z, projector=p)
    assert p.transform(z).shape == (30, 2)


def test_tsne_projects_but_refuses_new_points():
    z = np.random.default_rng(3).normal(size=(40, 4))
    p = Projector("tsne")
    fig = projection(z, np.repeat([0, 1], 20), projector=p)
    assert "t-SNE" in title(fig)
    with pytest.raises(NotImplementedError, match="t-SNE cannot place new points"):
        p.transform(z[:2])
    with pytest.raises(NotImplementedError):
        projection(z[:5], projector=p)


def test_unknown_method_is_a_clear_error():
    with pytest.raises(ValueError, match="method must be one of"):
        Projector("mds").fit(np.zeros((5, 2)))


def test_umap_projects_small_data_and_new_points():
    pytest.importorskip("umap", reason="umap-learn is in the umap extra")
    z = np.random.default_rng(4).normal(size=(40, 6))
    p = Projector("umap")
    fig = projection(z, np.repeat([0, 1], 20), projector=p)
    assert "UMAP" in title(fig)
    assert sum(len(t["x"]) for t in traces(fig)) == 40
    assert p.transform(z[:3]).shape == (3, 2)


def test_umap_missing_names_the_extra(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_umap(name, *args, **kwargs):
        if name == "umap":
            raise ImportError("No module named 'umap'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_umap)
    with pytest.raises(ImportError, match=r"tsc_toolkit\[umap\]"):
        Projector("umap").fit(np.zeros((10, 3)))


# --- centroids ------------------------------------------------------------------------------

def test_centroids_univariate_panels_band_and_counts(data):
    X, y = data
    fig = centroids(X, y)
    assert panel_titles(fig) == ["cluster 0 (n=20)", "cluster 1 (n=20)", "cluster 2 (n=20)"]
    assert len(traces(fig, "center")) == 3
    assert len(traces(fig, "members")) == 3
    highs = traces(fig, "band_high")
    assert len(highs) == 3 and all(t["fill"] == "tonexty" for t in highs)
    assert len(traces(fig, "band_low")) == 3
    # band brackets the centre
    for lo, hi in zip(traces(fig, "band_low"), highs):
        assert np.all(np.asarray(lo["y"]) <= np.asarray(hi["y"]))


def test_centroids_centre_is_nanmean_of_members_with_varying_lengths():
    X, y = make_series(40, n_clusters=2, length=30, missing_rate=0.1, short_fraction=0.5,
                       random_state=1)
    fig = centroids(X, y, max_members=5)
    for t in traces(fig, "center"):
        members = X[y == int(t["meta"]["cluster"]), 0, :]
        expected = np.nanmean(members, axis=0)
        got = np.asarray(t["y"], dtype=float)
        for step in (0, 7, 14, len(got) - 1):
            np.testing.assert_allclose(got[step], expected[step], rtol=1e-5)
    members = traces(fig, "members")[0]
    # 5 sampled members, each followed by a NaN break
    assert np.isnan(np.asarray(members["y"], dtype=float)).sum() >= 5
    assert "members: 5 sampled per cluster" in title(fig)


def test_centroids_median_and_coverage_threshold():
    X = np.full((4, 1, 6), np.nan, dtype=np.float32)
    X[:, 0, :3] = [[1, 2, 3], [2, 3, 4], [3, 4, 5], [10, 10, 10]]
    X[0, 0, 3:] = [7, 8, 9]  # one long member
    labels = np.zeros(4, dtype=int)
    med = traces(centroids(X, labels, center="median"), "center")[0]
    np.testing.assert_allclose(np.asarray(med["y"], dtype=float)[:4], [2.5, 3.5, 4.5, 7])
    cov = traces(centroids(X, labels, min_coverage=0.5), "center")[0]
    y = np.asarray(cov["y"], dtype=float)
    assert np.isfinite(y[:3]).all() and np.isnan(y[3:]).all()


def test_centroids_multivariate_has_one_row_per_channel():
    X, y = make_series(30, n_clusters=3, length=20, n_channels=2, random_state=2)
    fig = centroids(X, y, band=None, col_wrap=2)
    assert len(panel_titles(fig)) == 3
    assert len(traces(fig, "center")) == 6
    assert not traces(fig, "band_high")
    assert {(t["meta"]["cluster"], t["meta"]["channel"]) for t in traces(fig, "center")} == {
        (str(c), ch) for c in range(3) for ch in range(2)}
    layout = fig.to_dict()["layout"]
    assert sum(1 for key in layout if key.startswith("xaxis")) == 4 * 2  # 2 blocks x 2 channels x 2 cols
    assert layout["yaxis"]["title"]["text"] == "channel 0"
    only = centroids(X, y, channels=[1])
    assert {t["meta"]["channel"] for t in traces(only, "center")} == {1}
    assert only.to_dict()["layout"]["yaxis"]["title"]["text"] == "channel 1"
    with pytest.raises(ValueError, match="channels"):
        centroids(X, y, channels=[2])


def test_centroids_from_a_model_needs_the_series(model, data):
    X, _ = data
    with pytest.raises(ValueError, match="X=X_train"):
        centroids(model)
    fig = centroids(model, X=X)
    counts = np.bincount(model.labels_, minlength=3)
    assert panel_titles(fig) == [f"cluster {c} (n={counts[c]})" for c in range(3)
                                 if counts[c]]
    new = centroids(model, X=X[:10])  # other series: labelled by predict
    assert sum(int(t.split("n=")[1].rstrip(")")) for t in panel_titles(new)) == 10
    with pytest.raises(TypeError):
        centroids(X, X=X)


def test_centroids_without_labels_draws_one_panel(data):
    X, _ = data
    fig = centroids(X)
    assert panel_titles(fig) == ["all series (n=60)"]


def test_centroids_subset_keeps_each_clusters_colour(data):
    X, y = data
    full = {t["meta"]["cluster"]: t["line"]["color"] for t in traces(centroids(X, y), "center")}
    part = traces(centroids(X, y, clusters=[2]), "center")
    assert [t["meta"]["cluster"] for t in part] == ["2"]
    assert part[0]["line"]["color"] == full["2"] != full["0"]


def test_centroids_at_100k_series_samples_members_and_says_so():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(100_000, 1, 12)).astype(np.float32)
    labels = rng.integers(0, 2, size=100_000)
    fig = centroids(X, labels, max_members=30, clusters=[1])
    assert len(panel_titles(fig)) == 1
    members = traces(fig, "members")[0]
    assert len(members["y"]) == 30 * 13
    assert "10,000 sampled members" in title(fig)
    assert "members: 30 sampled" in title(fig)


def test_nan_quantile_matches_numpy():
    rng = np.random.default_rng(0)
    v = rng.normal(size=(50, 9))
    v[rng.random(v.shape) < 0.3] = np.nan
    v[:, 4] = np.nan
    for q in (0.1, 0.5, 0.9):
        with np.errstate(all="ignore"), pytest.warns(RuntimeWarning):
            expected = np.nanquantile(v, q, axis=0)
        np.testing.assert_allclose(nan_quantile(v, q), expected)


# --- elbow ----------------------------------------------------------------------------------

SCORES = pd.DataFrame({
    "k": [2, 3, 4, 5, 6, 7],
    "inertia": [900.0, 500.0, 200.0, 170.0, 150.0, 140.0],
    "silhouette": [0.41, 0.58, 0.63, 0.47, 0.32, 0.19],
    "calinski_harabasz": [588, 1284, 2166, 1654, 1345, 1141],
    "davies_bouldin": [0.88, 0.69, 0.56, 1.85, 2.75, 3.35],
    "gap": [0.2, 0.5, 0.9, 0.92, 0.93, 0.94],
    "gap_se": [0.05] * 6,
})


class FakeScan:
    def __init__(self, scores, suggested):
        self.scores_ = scores
        self.suggested_ = suggested


def suggested_marks(fig):
    return {t["meta"]["criterion"]: t["meta"]["k"] for t in traces(fig, "suggested")}


def test_elbow_small_multiples_with_every_suggestion_marked():
    fig = elbow(SCORES)
    assert len(traces(fig, "criterion")) == 5
    assert suggested_marks(fig) == {"inertia": 4, "silhouette": 4, "calinski_harabasz": 4,
                                    "davies_bouldin": 4, "gap": 4}
    layout = fig.to_dict()["layout"]
    assert len(layout["shapes"]) == 5  # one dashed vertical line per criterion
    assert sum(a["text"] == "k=4" for a in layout["annotations"]) == 5
    gap = [t for t in traces(fig, "criterion") if t["meta"]["criterion"] == "gap"][0]
    assert gap["error_y"]["array"] == pytest.approx([0.05] * 6)
    assert "suggested k" in title(fig)


def test_elbow_takes_a_scan_and_skips_missing_criteria():
    scores = SCORES[["k", "inertia", "silhouette"]].assign(davies_bouldin=np.nan)
    fig = elbow(FakeScan(scores, {"silhouette": 3, "elbow": 5}))
    assert [t["meta"]["criterion"] for t in traces(fig, "criterion")] == ["inertia", "silhouette"]
    assert suggested_marks(fig) == {"inertia": 5, "silhouette": 3}


def test_elbow_scan_with_plain_attribute_names_and_override():
    class Scan:
        scores = SCORES
        suggested = {"gap": 6}

    fig = elbow(Scan(), suggested={"silhouette": 2})
    marks = suggested_marks(fig)
    assert marks["gap"] == 6 and marks["silhouette"] == 2 and marks["davies_bouldin"] == 4


def test_elbow_marks_a_selected_k_in_every_panel():
    fig = elbow(SCORES[["k", "inertia", "silhouette"]], selected=3)
    shapes = fig.to_dict()["layout"]["shapes"]
    solid = [s for s in shapes if s["line"].get("dash") != "dash"]
    assert len(solid) == 2 and all(s["x0"] == 3 for s in solid)


def test_elbow_rejects_scores_without_criteria():
    with pytest.raises(ValueError, match="none of the criteria"):
        elbow(pd.DataFrame({"k": [2, 3]}))


# --- training curves, sizes, contingency ----------------------------------------------------

def test_training_curves_from_a_model_show_train_and_valid(model):
    fig = training_curves(model)
    names = [t["name"] for t in traces(fig)]
    assert names == ["train_loss", "valid_loss", "train_score", "valid_score"]
    assert len(traces(fig)[0]["x"]) == 3
    assert [t["xaxis"] for t in traces(fig)] == ["x", "x", "x2", "x2"]
    assert training_curves(model, log_loss=True).layout.yaxis.type == "log"


def test_training_curves_without_validation_or_epochs():
    fig = training_curves(pd.DataFrame({"epoch": [1, 2], "train_loss": [1.0, 0.5],
                                        "train_score": [0.1, 0.2],
                                        "valid_loss": [np.nan, np.nan]}))
    assert [t["name"] for t in traces(fig)] == ["train_loss", "train_score"]
    empty = training_curves([])
    assert traces(empty) == []
    assert any(a["text"] == "no epochs yet" for a in empty.to_dict()["layout"]["annotations"])


def test_cluster_sizes_bars_and_stacking(model, data):
    _, y = data
    fig = cluster_sizes(model)
    bar = traces(fig)[0]
    assert bar["type"] == "bar"
    assert list(bar["y"]) == np.bincount(model.labels_, minlength=3).tolist()
    stacked = cluster_sizes(model.labels_, color=y)
    assert len(traces(stacked)) == 3 and stacked.layout.barmode == "stack"
    assert sum(sum(t["y"]) for t in traces(stacked)) == 60


def test_contingency_counts_and_scores_match_sklearn(data):
    _, y = data
    rng = np.random.default_rng(0)
    pred = np.where(rng.random(60) < 0.8, (y + 1) % 3, rng.integers(0, 4, 60))
    fig = contingency(pred, y)
    heat = traces(fig)[0]
    assert heat["type"] == "heatmap" and heat["texttemplate"] == "%{text}"
    assert np.asarray(heat["z"]).sum() == 60
    assert len(heat["y"]) == len(np.unique(pred)) and len(heat["x"]) == 3
    text = title(fig)
    assert f"NMI {normalized_mutual_info_score(y, pred):.3f}" in text
    assert f"ARI {adjusted_rand_score(y, pred):.3f}" in text
    # rows ordered so that the dominant label moves along the diagonal
    z = np.asarray(heat["z"])
    dominant = np.argmax(z, axis=1)
    assert np.all(np.diff(dominant) >= 0) and set(dominant) == {0, 1, 2}


def test_every_figure_accepts_the_shared_layout_keywords(model, data):
    X, y = data
    figs = [projection(model, title="t", height=400, width=500),
            centroids(X, y, title="t", height=400, width=500),
            elbow(SCORES, title="t", height=400, width=500),
            training_curves(model, title="t", height=400, width=500),
            cluster_sizes(y, title="t", height=400, width=500),
            contingency(y, y, title="t", height=400, width=500)]
    for fig in figs:
        layout = fig.to_dict()["layout"]
        assert layout["title"]["text"].startswith("t")
        assert (layout["height"], layout["width"]) == (400, 500)
