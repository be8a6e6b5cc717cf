"""scan_k: the scores of each k, and the k each criterion suggests."""

from __future__ import annotations

import copy
import dataclasses

import numpy as np
import pytest
from sklearn.cluster import KMeans
from sklearn.datasets import make_blobs
from sklearn.metrics import calinski_harabasz_score, davies_bouldin_score, silhouette_score

from tsc_toolkit.clustering.selection import (
    METRICS,
    KScan,
    _chord_elbow,
    _elbow,
    _one_se_rule,
    _reference_sets,
    scan_k,
)

K_TRUE = 4


@pytest.fixture(scope="module")
def blobs():
    X, y = make_blobs(n_samples=240, centers=K_TRUE, n_features=6, cluster_std=0.7,
                      random_state=3)
    return X, y


@pytest.fixture(scope="module")
def blob_scan(blobs):
    return scan_k(blobs[0], range(2, 9), n_init=3, n_refs=5, random_state=0)


@pytest.mark.parametrize("criterion", METRICS)
def test_every_criterion_finds_the_true_k_on_separated_blobs(blob_scan, criterion):
    assert blob_scan.suggested[criterion] == K_TRUE


def test_elbow_comes_from_kneedle_on_a_clear_knee(blob_scan):
    assert blob_scan.elbow_method == "kneedle"
    assert blob_scan.elbow == blob_scan.suggested["inertia"] == K_TRUE


def test_box_reference_gap_also_finds_the_true_k(blobs):
    scan = scan_k(blobs[0], range(2, 7), metrics=["gap"], n_init=2, n_refs=5,
                  gap_reference="box", random_state=1)
    assert scan.suggested == {"gap": K_TRUE}
    assert scan.gap_reference == "box"


def test_scores_table_is_tidy_one_row_per_k(blob_scan):
    scores = blob_scan.scores
    assert scores.columns.tolist() == ["k", "inertia", "silhouette", "calinski_harabasz",
                                       "davies_bouldin", "gap", "gap_se"]
    assert scores["k"].tolist() == list(range(2, 9))
    assert scores["k"].dtype == np.int64
    assert not scores.isna().any().any()
    assert (scores["gap_se"] > 0).all()
    # inertia can only fall as k grows, on well-separated data with several restarts
    assert np.all(np.diff(scores["inertia"]) < 0)


def test_scores_match_direct_sklearn_computations(blobs):
    X = blobs[0]
    scan = scan_k(X, [3, 4, 5], n_init=4, n_refs=2, random_state=7)
    for k in (3, 4, 5):
        km = KMeans(n_clusters=k, n_init=4, random_state=7).fit(X)
        row = scan.scores.set_index("k").loc[k]
        np.testing.assert_array_equal(scan.labels[k], km.labels_)
        np.testing.assert_allclose(scan.centers[k], km.cluster_centers_)
        assert row["inertia"] == pytest.approx(km.inertia_, rel=1e-6)
        assert row["silhouette"] == pytest.approx(silhouette_score(X, km.labels_))
        assert row["calinski_harabasz"] == pytest.approx(calinski_harabasz_score(X, km.labels_))
        assert row["davies_bouldin"] == pytest.approx(davies_bouldin_score(X, km.labels_))


def test_gap_is_mean_reference_log_inertia_minus_data_log_inertia(blobs):
    X = blobs[0]
    n_refs, seed = 3, 5
    scan = scan_k(X, [3, 4, 5], metrics=["gap"], n_init=2, n_refs=n_refs, random_state=seed)
    refs = _reference_sets(X, n_refs, "pca", np.random.default_rng(seed))
    for k in (3, 4, 5):
        logw = np.log([KMeans(n_clusters=k, n_init=2, random_state=seed).fit(R).inertia_
                       for R in refs])
        data = KMeans(n_clusters=k, n_init=2, random_state=seed).fit(X).inertia_
        row = scan.scores.set_index("k").loc[k]
        assert row["gap"] == pytest.approx(logw.mean() - np.log(data), rel=1e-6)
        assert row["gap_se"] == pytest.approx(logw.std() * np.sqrt(1 + 1 / n_refs), rel=1e-6)


def test_silhouette_is_sampled_when_there_are_more_points_than_sample_size(blobs):
    X = blobs[0]
    sampled = scan_k(X, [3, 4], metrics=["silhouette"], n_init=2, sample_size=50,
                     random_state=2)
    labels = sampled.labels[4]
    got = sampled.scores.set_index("k").loc[4, "silhouette"]
    assert got == pytest.approx(silhouette_score(X, labels, sample_size=50, random_state=2))
    assert got != pytest.approx(silhouette_score(X, labels), abs=1e-9)


def test_silhouette_uses_every_point_when_sample_size_covers_them(blobs):
    X = blobs[0]
    scan = scan_k(X, [3, 4], metrics=["silhouette"], n_init=2, sample_size=len(X),
                  random_state=2)
    got = scan.scores.set_index("k").loc[4, "silhouette"]
    assert got == pytest.approx(silhouette_score(X, scan.labels[4]))


def test_only_requested_criteria_are_computed_and_suggested(blobs):
    scan = scan_k(blobs[0], [2, 4, 6], metrics=("davies_bouldin", "silhouette"), n_init=2,
                  random_state=0)
    assert list(scan.suggested) == ["silhouette", "davies_bouldin"]
    assert scan.scores[["calinski_harabasz", "gap", "gap_se"]].isna().all().all()
    assert scan.scores["inertia"].notna().all()  # comes with every clustering
    assert scan.elbow is None and scan.elbow_method is None


def test_labels_and_centers_are_kept_for_every_k(blob_scan, blobs):
    assert sorted(blob_scan.labels) == blob_scan.k_values == list(range(2, 9))
    for k in blob_scan.k_values:
        assert blob_scan.labels[k].shape == (len(blobs[0]),)
        assert set(np.unique(blob_scan.labels[k])) == set(range(k))
        assert blob_scan.centers[k].shape == (k, blobs[0].shape[1])


def test_result_is_frozen_and_has_fitted_style_aliases(blob_scan):
    with pytest.raises(dataclasses.FrozenInstanceError):
        blob_scan.suggested = {}
    assert blob_scan.scores_ is blob_scan.scores
    assert blob_scan.suggested_ is blob_scan.suggested
    assert blob_scan.elbow_ == blob_scan.elbow
    assert "suggested=" in repr(blob_scan) and isinstance(blob_scan, KScan)


def test_same_integer_seed_gives_the_same_scan(blobs):
    a = scan_k(blobs[0], [3, 4, 5], n_init=2, n_refs=2, random_state=11)
    b = scan_k(blobs[0], [3, 4, 5], n_init=2, n_refs=2, random_state=11)
    assert a.scores.equals(b.scores)


def test_webscale_algorithm_finds_the_true_k(blobs):
    scan = scan_k(blobs[0], range(2, 7), metrics=["silhouette", "calinski_harabasz"],
                  algorithm="webscale", n_init=2, random_state=0)
    assert scan.suggested == {"silhouette": K_TRUE, "calinski_harabasz": K_TRUE}


def test_float32_embeddings_keep_their_dtype(blobs):
    Z = blobs[0].astype(np.float32)
    scan = scan_k(Z, [2, 3, 4], metrics=["inertia", "silhouette"], n_init=2, random_state=0)
    assert scan.centers[3].dtype == np.float32


def test_accepts_a_fitted_cnnkmeans():
    from tsc_toolkit import CNNKMeans
    from tsc_toolkit.io.datasets import make_series

    X, _ = make_series(60, n_clusters=3, length=40, random_state=0)
    model = CNNKMeans(clusters=3, blocks=2, filters=16, reduced_size=16, output_size=16,
                      epochs=3, random_state=0, device="cpu").fit(X)
    scan = scan_k(model, range(2, 6), n_init=2, n_refs=2, random_state=0)
    # what the clustering stage saw (the embedding and the random-kernel view), clustered by
    # the model's own stage
    direct = scan_k(model.features_, range(2, 6), clustering="spectral", n_init=2, n_refs=2,
                    random_state=0)
    assert scan.algorithm == "spectral"
    assert scan.scores.equals(direct.scores)
    assert scan.labels[3].shape == (60,)
    assert set(scan.suggested) == set(METRICS)
    assert scan.recommended_by == "silhouette"
    # a K-Means scan of the same model is asked for by name, or follows the model's stage
    lloyd = scan_k(model, range(2, 6), algorithm="lloyd", n_init=2, n_refs=2, random_state=0)
    assert lloyd.scores.equals(scan_k(model.features_, range(2, 6), n_init=2, n_refs=2,
                                      random_state=0).scores)
    as_kmeans = copy.copy(model)
    as_kmeans.clustering = "kmeans"
    assert scan_k(as_kmeans, range(2, 6), metrics=["silhouette"], n_init=2,
                  random_state=0).algorithm == "lloyd"


def test_a_spectral_scan_clusters_each_k_as_the_estimator_does(blobs):
    from tsc_toolkit.clustering.graph_clustering import spectral_labels

    Z = blobs[0]
    scan = scan_k(Z, [2, 3, 4], metrics=["silhouette", "calinski_harabasz"],
                  clustering="spectral", n_neighbors=7, graph_weights="unit", n_init=3,
                  random_state=5)
    for k in (2, 3, 4):
        expected = spectral_labels(Z, k, 7, 5, 3, "unit")
        np.testing.assert_array_equal(scan.labels[k], expected)
        members = [Z[expected == c].mean(axis=0) for c in range(k)]
        np.testing.assert_allclose(scan.centers[k], np.array(members), rtol=1e-6)
    assert scan.recommended_by == "silhouette"


def test_a_spectral_scan_chooses_the_neighbour_count_for_each_k_as_refit_does(blobs):
    from tsc_toolkit.clustering.graph_clustering import spectral_labels

    Z = blobs[0]
    scan = scan_k(Z, [2, 3, 4], metrics=["silhouette"], clustering="spectral", n_init=3,
                  n_neighbors="auto", random_state=5)
    for k in (2, 3, 4):
        np.testing.assert_array_equal(scan.labels[k], spectral_labels(Z, k, "auto", 5, 3))


@pytest.mark.parametrize("bad", [{"algorithm": "ward"}, {"n_neighbors": 0},
                                 {"n_neighbors": 2.5}, {"n_neighbors": "many"},
                                 {"graph_weights": "gauss"}])
def test_bad_clustering_settings_are_refused(blobs, bad):
    with pytest.raises(ValueError, match=next(iter(bad))):
        scan_k(blobs[0], [2, 3], metrics=["silhouette"], **bad)


def test_unfitted_model_is_refused_with_a_clear_error():
    from tsc_toolkit import CNNKMeans

    with pytest.raises(ValueError, match="not fitted"):
        scan_k(CNNKMeans(clusters=3))


@pytest.mark.parametrize("k_range, match", [
    ([1, 2, 3], "at least 2"),
    ([2, 3, 30], "less than the number of samples"),
    ([2, 3], "at least three"),
    ([3], "at least three"),
    (5, "iterable of ints"),
    ([2, 3.5, 4], "integers"),
])
def test_bad_k_ranges_are_refused(k_range, match):
    X = np.random.default_rng(0).normal(size=(30, 3))
    with pytest.raises(ValueError, match=match):
        scan_k(X, k_range)


def test_two_ks_are_enough_without_the_elbow():
    X = np.random.default_rng(0).normal(size=(30, 3))
    scan = scan_k(X, [2, 3], metrics=["silhouette"], n_init=1, random_state=0)
    assert scan.k_values == [2, 3]
    with pytest.raises(ValueError, match="at least two"):
        scan_k(X, [2], metrics=["silhouette"])


@pytest.mark.parametrize("make_X, kwargs, match", [
    (lambda X: np.where(np.arange(X.size).reshape(X.shape) == 5, np.nan, X), {}, "NaN"),
    (lambda X: np.where(np.arange(X.size).reshape(X.shape) == 5, np.inf, X), {}, "infinite"),
    (lambda X: X[:, :, None], {}, "2-D"),
    (lambda X: X[:, 0], {}, "2-D"),
    (lambda X: X.astype(str), {}, "numbers"),
    (lambda X: X, {"metrics": ["inertia", "bic"]}, "Unknown metric"),
    (lambda X: X, {"metrics": []}, "empty"),
    (lambda X: X, {"algorithm": "kmedoids"}, "algorithm"),
    (lambda X: X, {"gap_reference": "normal"}, "gap_reference"),
    (lambda X: X, {"n_init": 0}, "n_init"),
    (lambda X: X, {"n_refs": 0}, "n_refs"),
    (lambda X: X, {"sample_size": 1}, "sample_size"),
])
def test_bad_input_is_refused(make_X, kwargs, match):
    X = np.random.default_rng(0).normal(size=(30, 3))
    with pytest.raises(ValueError, match=match):
        scan_k(make_X(X), [2, 3, 4], **kwargs)


def test_one_se_rule_takes_the_smallest_k_within_one_standard_error():
    ks = np.array([2, 3, 4, 5])
    se = np.full(4, 0.1)
    # the gap peaks at 4, but 3 is within one standard error of it
    assert _one_se_rule(ks, np.array([0.1, 0.9, 0.95, 0.5]), se) == 3
    assert _one_se_rule(ks, np.array([0.1, 0.5, 1.0, 0.95]), se) == 4


def test_one_se_rule_warns_and_takes_the_last_k_when_the_gap_keeps_growing():
    with pytest.warns(UserWarning, match="still grows"):
        k = _one_se_rule(np.array([2, 3, 4]), np.array([0.1, 0.5, 1.0]), np.full(3, 0.01))
    assert k == 4


def test_elbow_falls_back_to_the_chord_when_kneedle_finds_no_knee():
    ks, inertia = np.array([2, 3, 4]), np.array([10.0, 3.0, 2.9])
    assert _elbow(ks, inertia) == (3, "chord")


def test_chord_elbow_is_the_point_farthest_below_the_chord():
    ks = np.arange(2, 9)
    assert _chord_elbow(ks, np.array([100, 60, 20, 15, 12, 10, 9.0])) == 4
    # axes are rescaled, so the units of inertia do not matter
    assert _chord_elbow(ks, 1e6 * np.array([100, 60, 20, 15, 12, 10, 9.0])) == 4
    # a straight line has no elbow: the first k
    assert _chord_elbow(ks, np.linspace(10, 1, 7)) == 2


@pytest.mark.parametrize("kind", ["box", "pca"])
def test_reference_sets_are_uniform_in_a_box_that_bounds_the_data(kind):
    rng = np.random.default_rng(0)
    # correlated 2-D data: the PCA box is tilted along the diagonal
    t = rng.normal(size=500)
    X = np.column_stack([t, t + 0.1 * rng.normal(size=500)])
    refs = _reference_sets(X, 3, kind, np.random.default_rng(1))
    assert len(refs) == 3 and all(R.shape == X.shape for R in refs)
    if kind == "box":
        R = np.concatenate(refs)
        assert (R.min(0) >= X.min(0)).all() and (R.max(0) <= X.max(0)).all()
        # fills the box: the anti-diagonal corners are reached
        assert np.corrcoef(R.T)[0, 1] == pytest.approx(0, abs=0.1)
    else:
        # aligned with the data, so the reference keeps the strong correlation
        assert np.corrcoef(np.concatenate(refs).T)[0, 1] > 0.9


def test_scan_feeds_the_elbow_chart_with_its_suggestions(blob_scan):
    from tsc_toolkit.plots import elbow

    fig = elbow(blob_scan)
    marked = {t.meta["criterion"]: t.meta["k"] for t in fig.data
              if isinstance(t.meta, dict) and t.meta.get("role") == "suggested"}
    assert marked == blob_scan.suggested


def test_one_recommended_k_follows_the_first_computed_criterion_of_the_order():
    from sklearn.datasets import make_blobs

    from tsc_toolkit.clustering.selection import RECOMMENDED

    X, _ = make_blobs(n_samples=150, centers=3, n_features=3, random_state=0)
    scan = scan_k(X, range(2, 7), n_init=2, n_refs=3, random_state=0)
    assert scan.recommended_by == RECOMMENDED[0]
    assert scan.best_k_ == scan.suggested[RECOMMENDED[0]] == 3
    only = scan_k(X, range(2, 7), metrics=[RECOMMENDED[-1]], n_init=2, n_refs=3, random_state=0)
    assert only.recommended_by == RECOMMENDED[-1]
    assert "best_k_=" in repr(only)


def test_the_elbow_chart_leads_with_the_recommended_k():
    from sklearn.datasets import make_blobs

    from tsc_toolkit import plots

    X, _ = make_blobs(n_samples=150, centers=3, n_features=3, random_state=0)
    scan = scan_k(X, range(2, 7), n_init=2, n_refs=3, random_state=0)
    title = plots.elbow(scan).layout.title.text
    assert title.index("recommended k = 3") < title.index("suggested")
