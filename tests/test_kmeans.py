"""WebScaleKMeans: the built-in algorithm's hyperparameters, streaming, and its steps."""

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import make_blobs

from tsc_toolkit.clustering.kmeans import WebScaleKMeans


@pytest.fixture(scope="module")
def blobs():
    X, y = make_blobs(3000, 8, centers=5, cluster_std=0.5, random_state=0)
    return X.astype(np.float32), y


def test_hyperparameters_use_the_built_in_names_and_defaults():
    params = WebScaleKMeans().get_params()
    assert params == dict(k=8, init_method="random", max_iterations=300, tol=1e-4,
                          num_trials="auto", local_init_method="kmeans++",
                          half_life_time_size=0, epochs=1, center_factor="auto",
                          eval_metrics=("msd",), mini_batch_size=5000, random_state=None,
                          device="auto")
    model = WebScaleKMeans(k=3, init_method="kmeans++", center_factor=4, num_trials=2,
                           eval_metrics=["msd", "ssd"])
    assert clone(model).get_params() == model.get_params()


def test_bad_hyperparameters_are_refused(blobs):
    X, _ = blobs
    with pytest.raises(ValueError, match="init_method"):
        WebScaleKMeans(init_method="farthest").fit(X)
    with pytest.raises(ValueError, match="eval_metrics"):
        WebScaleKMeans(eval_metrics=["mse"]).fit(X)


def test_finds_well_separated_blobs(blobs):
    from sklearn.metrics import adjusted_rand_score

    X, y = blobs
    model = WebScaleKMeans(k=5, random_state=0, device="cpu", mini_batch_size=500).fit(X)
    assert model.cluster_centers_.shape == (5, 8)
    assert adjusted_rand_score(y, model.labels_) > 0.99


def test_center_factor_creates_k_times_factor_centers_and_shrinks_to_k(blobs):
    X, _ = blobs
    model = WebScaleKMeans(k=5, center_factor=4, random_state=0, device="cpu",
                           mini_batch_size=500).fit(X)
    assert model.streaming_centers_.shape == (20, 8)
    assert model.cluster_centers_.shape == (5, 8)
    assert model.center_counts_.sum() == pytest.approx(len(X))
    one = WebScaleKMeans(k=5, center_factor=1, random_state=0, device="cpu").fit(X)
    assert one.streaming_centers_.shape == (5, 8)
    np.testing.assert_array_equal(one.streaming_centers_, one.cluster_centers_)


def test_auto_center_factor_is_ten_when_the_batch_allows(blobs):
    X, _ = blobs
    model = WebScaleKMeans(k=5, random_state=0, device="cpu").fit(X)
    assert model.streaming_centers_.shape == (50, 8)


def test_too_many_centers_for_the_first_batch_is_a_clear_error(blobs):
    X, _ = blobs
    with pytest.raises(ValueError, match="raise mini_batch_size"):
        WebScaleKMeans(k=5, center_factor=10, mini_batch_size=20, device="cpu").fit(X)


def test_streaming_update_follows_the_per_center_learning_rate():
    model = WebScaleKMeans(k=1, center_factor=1, random_state=0, device="cpu")
    first = np.array([[0.0, 0.0]] * 4, dtype=np.float32)
    model.partial_fit(first)
    np.testing.assert_allclose(model.cluster_centers_, [[0.0, 0.0]])
    model.partial_fit(np.array([[10.0, 0.0]], dtype=np.float32))
    # p = 1 / (4 + 1): the center moves a fifth of the way
    np.testing.assert_allclose(model.cluster_centers_, [[2.0, 0.0]], rtol=1e-6)


def test_half_life_time_size_changes_the_result_on_drifting_data():
    rng = np.random.default_rng(0)
    early = rng.normal(0.0, 0.1, size=(2000, 2))
    late = rng.normal(5.0, 0.1, size=(500, 2))
    batches = [b.astype(np.float32) for b in np.array_split(np.concatenate([early, late]), 25)]
    plain = WebScaleKMeans(k=1, center_factor=1, random_state=0, device="cpu").fit(batches)
    fading = WebScaleKMeans(k=1, center_factor=1, half_life_time_size=100, random_state=0,
                            device="cpu").fit(batches)
    assert plain.cluster_centers_[0, 0] == pytest.approx(1.0, abs=0.05)  # all points count
    assert fading.cluster_centers_[0, 0] > 4.5  # recent points dominate


def test_num_trials_keeps_the_best_trial(blobs):
    X, _ = blobs
    model = WebScaleKMeans(k=5, num_trials=6, local_init_method="random", random_state=3,
                           device="cpu").fit(X)
    assert len(model.trial_losses_) == 6
    weights = model.center_counts_
    d2 = ((model.streaming_centers_[:, None] - model.cluster_centers_[None]) ** 2).sum(-1)
    kept = float((weights * d2.min(1)).sum() / weights.sum())
    assert kept == pytest.approx(min(model.trial_losses_), rel=1e-4)


def test_msd_and_ssd_match_a_direct_computation(blobs):
    X, _ = blobs
    model = WebScaleKMeans(k=5, eval_metrics=["msd", "ssd"], random_state=0,
                           device="cpu").fit(X)
    d2 = ((X[:, None, :].astype(np.float64) - model.cluster_centers_[None]) ** 2).sum(-1)
    direct = d2.min(1)
    scores = model.evaluate(X)
    assert scores["msd"] == pytest.approx(direct.mean(), rel=1e-4)
    assert scores["ssd"] == pytest.approx(direct.sum(), rel=1e-4)
    assert model.score(X) == pytest.approx(-direct.sum(), rel=1e-4)
    a = model.assign(X[:50])
    np.testing.assert_array_equal(a.closest_cluster, d2[:50].argmin(1))
    np.testing.assert_allclose(a.distance_to_cluster, np.sqrt(direct[:50]), rtol=1e-4)
    np.testing.assert_allclose(model.transform(X[:5]), np.sqrt(d2[:5]), rtol=1e-4, atol=1e-4)


def test_memmap_iterable_and_partial_fit_give_the_same_clustering(blobs, tmp_path):
    from sklearn.metrics import adjusted_rand_score

    X, y = blobs
    mm = np.lib.format.open_memmap(tmp_path / "x.npy", mode="w+", dtype=np.float32,
                                   shape=X.shape)
    mm[:] = X
    mm.flush()
    mm = np.load(tmp_path / "x.npy", mmap_mode="r")
    params = dict(k=5, random_state=0, device="cpu", mini_batch_size=600)
    a = WebScaleKMeans(**params).fit(mm)
    b = WebScaleKMeans(**params).fit(X[i:i + 600] for i in range(0, len(X), 600))
    c = WebScaleKMeans(**params)
    for i in range(0, len(X), 600):
        c.partial_fit(X[i:i + 600])
    np.testing.assert_allclose(a.cluster_centers_, b.cluster_centers_, rtol=1e-5)
    # partial_fit shrinks after every batch, so its trials draw other random numbers: the
    # streaming state is the same and the final centers are the same up to their order
    np.testing.assert_allclose(a.streaming_centers_, c.streaming_centers_, rtol=1e-5)
    order = lambda centers: centers[np.lexsort(centers.T[::-1])]  # noqa: E731
    np.testing.assert_allclose(order(a.cluster_centers_), order(c.cluster_centers_), rtol=1e-4)
    assert adjusted_rand_score(y, c.predict(X)) > 0.99
    assert not hasattr(b, "labels_")  # a generator is not read twice


def test_generator_with_several_epochs_is_refused(blobs):
    X, _ = blobs
    with pytest.raises(ValueError, match="more than once"):
        WebScaleKMeans(k=2, epochs=2, device="cpu").fit(b for b in np.array_split(X, 3))


def test_nan_and_wrong_width_are_refused(blobs):
    X, _ = blobs
    bad = X.copy()
    bad[3, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        WebScaleKMeans(k=2, device="cpu").fit(bad)
    model = WebScaleKMeans(k=2, device="cpu").fit(X)
    with pytest.raises(ValueError, match="features"):
        model.predict(X[:, :3])


def test_is_the_k_means_stage_of_cnn_kmeans():
    from tsc_toolkit import CNNKMeans
    from tsc_toolkit.io.datasets import make_series

    X, _ = make_series(40, n_clusters=2, length=30, random_state=0)
    model = CNNKMeans(clusters=2, algorithm="webscale", blocks=1, filters=8, reduced_size=8,
                      output_size=6, epochs=1, device="cpu", random_state=0,
                      score_sample_size=20).fit(X)
    assert model.cluster_centers_.shape == (2, 6)
    assert set(model.labels_) <= {0, 1}
