"""CNNKMeans as a scikit-learn estimator: fitting, predicting, history, checkpoints, saving."""

import json

import numpy as np
import pytest
import torch
from sklearn.base import clone

from tsc_toolkit import CNNKMeans, TimeSeriesValueError
from tsc_toolkit.io.datasets import make_series
from tsc_toolkit.persistence import ModelFormatError

SMALL = dict(blocks=2, filters=12, reduced_size=12, output_size=8, epochs=2, batch_size=8,
             device="cpu", random_state=0, n_init=2, score_sample_size=40)


@pytest.fixture(scope="module")
def data():
    return make_series(48, n_clusters=3, length=40, random_state=1)


@pytest.fixture(scope="module")
def fitted(data):
    X, _ = data
    return CNNKMeans(clusters=3, **SMALL).fit(X, X_valid=X[:16])


def test_defaults_are_fg_research_hyperparameters_except_the_epoch_budget():
    params = CNNKMeans().get_params()
    assert {k: params[k] for k in ("clusters", "algorithm", "blocks", "filters", "kernel_size",
                                   "reduced_size", "output_size", "negative_samples", "lr",
                                   "batch_size")} == dict(
        clusters=8, algorithm="lloyd", blocks=10, filters=40, kernel_size=3, reduced_size=160,
        output_size=320, negative_samples=10, lr=0.001, batch_size=10)
    # fg-research's epochs=100 means 2,000 to 50,000 steps on ordinary data: the default is a
    # fixed step budget instead, and epochs=N keeps fg-research's meaning.
    assert params["epochs"] is None
    assert params["device"] == "auto"


def test_default_budget_does_not_grow_with_the_number_of_series():
    from tsc_toolkit.cnn_kmeans import AUTO_STEPS

    tiny = dict(blocks=1, filters=4, reduced_size=4, output_size=4, kernel_features=0,
                clustering="kmeans", device="cpu", random_state=0, n_init=1)
    for n in (30, 300):
        X, _ = make_series(n, length=20, random_state=0)
        model = CNNKMeans(clusters=2, **tiny).fit(X)
        assert model.n_steps_ == AUTO_STEPS
    X, _ = make_series(30, length=20, random_state=0)
    assert CNNKMeans(clusters=2, epochs=2, **tiny).fit(X).n_steps_ == 2 * 3  # fg's epochs


def test_scores_are_only_computed_when_something_reads_them(data):
    X, _ = data
    quiet = CNNKMeans(clusters=3, **SMALL).fit(X)
    assert quiet.history_.train_score.isna().all()
    watched = CNNKMeans(clusters=3, **SMALL).fit(X, callbacks=[lambda m, r: None])
    assert watched.history_.train_score.notna().all()


def test_clone_keeps_hyperparameters_and_drops_fitted_state(fitted):
    copy = clone(fitted)
    assert copy.get_params() == fitted.get_params()
    assert not hasattr(copy, "labels_")


def test_fit_sets_fitted_attributes(fitted, data):
    X, _ = data
    assert fitted.labels_.shape == (len(X),)
    assert set(fitted.labels_) <= {0, 1, 2}
    assert fitted.cluster_centers_.shape == (3, 8)
    assert fitted.embeddings_.shape == (len(X), 8)
    assert fitted.n_channels_ == 1 and fitted.n_steps_ == 2 * 6


def test_history_has_one_row_per_epoch(fitted):
    h = fitted.history_
    assert list(h.columns) == ["epoch", "train_loss", "train_score", "valid_loss", "valid_score"]
    assert h["epoch"].tolist() == [1, 2]
    assert h[["train_loss", "train_score", "valid_loss", "valid_score"]].notna().all().all()
    assert (h["train_score"].between(-1, 1)).all()


def test_transform_predict_and_assign_agree(fitted, data):
    X, _ = data
    z = fitted.transform(X[:10])
    assert z.shape == (10, 8) and z.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(z, axis=1), 1.0, rtol=1e-5)  # l2 by default
    np.testing.assert_allclose(z, fitted.embeddings_[:10], rtol=1e-4, atol=1e-5)
    a = fitted.assign(X[:10])
    np.testing.assert_array_equal(a.closest_cluster, fitted.predict(X[:10]))
    direct = np.linalg.norm(z - fitted.cluster_centers_[a.closest_cluster], axis=1)
    np.testing.assert_allclose(a.distance_to_cluster, direct, rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(fitted.predict(X), fitted.labels_)


def test_predict_works_on_other_lengths(fitted, data):
    X, _ = data
    longer = np.concatenate([X[:4], X[:4]], axis=2)
    assert fitted.predict(longer).shape == (4,)
    assert fitted.predict(X[:4, :, :15]).shape == (4,)


def test_wrong_channel_count_at_predict_is_a_clear_error(fitted):
    with pytest.raises(TimeSeriesValueError, match="2 channel"):
        fitted.predict(np.ones((2, 2, 30)))


def test_fit_predict_and_fit_transform(data):
    X, _ = data
    model = CNNKMeans(clusters=3, **{**SMALL, "epochs": 1})
    labels = model.fit_predict(X)
    np.testing.assert_array_equal(labels, model.labels_)
    z = clone(model).fit_transform(X)
    assert z.shape == (len(X), 8)


def test_invalid_hyperparameter_is_reported_at_fit(data):
    X, _ = data
    with pytest.raises(ValueError, match="algorithm"):
        CNNKMeans(algorithm="fast", **SMALL).fit(X)
    with pytest.raises(ValueError, match="clusters"):
        CNNKMeans(clusters=0, **SMALL).fit(X)


def test_more_clusters_than_series_is_a_clear_error():
    X, _ = make_series(6, length=20)
    with pytest.raises(ValueError, match="more than the 6 training series"):
        CNNKMeans(clusters=7, **SMALL).fit(X)


def test_verbose_prints_fg_research_metric_lines(data, capsys):
    X, _ = data
    CNNKMeans(clusters=3, verbose=1, **SMALL).fit(X, X_valid=X[:10])
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("epoch")]
    assert len(lines) == 2
    import re

    pattern = (r"^epoch: (\d+) train_loss: (-?\d+\.\d{8}) train_score: (-?\d+\.\d{8}) "
               r"valid_loss: (-?\d+\.\d{8}) valid_score: (-?\d+\.\d{8})$")
    assert all(re.match(pattern, line) for line in lines), lines


def test_training_is_repeatable_with_a_seed(data):
    X, _ = data
    a = CNNKMeans(clusters=3, **SMALL).fit(X)
    b = CNNKMeans(clusters=3, **SMALL).fit(X)
    np.testing.assert_array_equal(a.embeddings_, b.embeddings_)


def test_missing_values_and_shorter_series_train_without_crashing():
    X, y = make_series(60, n_clusters=3, length=40, missing_rate=0.15, short_fraction=0.3,
                       random_state=2)
    inside = np.isnan(X).mean()
    assert 0.10 <= inside <= 0.25
    model = CNNKMeans(clusters=3, **SMALL).fit(X)
    assert np.isfinite(model.embeddings_).all()
    assert np.isfinite(model.history_["train_loss"]).all()


def test_multivariate_with_channels_missing_at_different_steps(rng):
    X, _ = make_series(40, n_clusters=2, length=30, n_channels=3, random_state=3)
    X[rng.random(X.shape) < 0.15] = np.nan
    X[:, :, 0] = 0.0  # keep the first step observed
    X[:, :, -1] = 1.0
    assert not np.array_equal(np.isnan(X[:, 0]), np.isnan(X[:, 1]))
    model = CNNKMeans(clusters=2, **SMALL).fit(X)
    assert model.n_channels_ == 3
    assert np.isfinite(model.transform(X)).all()


def test_request_stop_ends_training_after_the_epoch(data):
    X, _ = data
    stop_after_first = lambda model, record: model.request_stop()  # noqa: E731
    model = CNNKMeans(clusters=3, **{**SMALL, "epochs": 5}).fit(X, callbacks=[stop_after_first])
    assert len(model.history_) == 1
    assert model.predict(X[:3]).shape == (3,)


def test_callback_objects_get_the_whole_protocol(data):
    X, _ = data
    seen = []

    class Recorder:
        def on_train_begin(self, model):
            seen.append("begin")

        def on_epoch_end(self, model, record):
            seen.append(record["epoch"])

        def on_train_end(self, model):
            seen.append("end")

    CNNKMeans(clusters=3, **SMALL).fit(X, callbacks=[Recorder()])
    assert seen == ["begin", 1, 2, "end"]


def test_refit_clusters_changes_k_without_touching_the_encoder(data):
    X, _ = data
    model = CNNKMeans(clusters=3, **SMALL).fit(X)
    before = model.transform(X[:5])
    model.refit_clusters(5)
    # the setting stays as set (only __init__ and set_params set parameters)
    assert model.clusters == 3 and model.n_clusters_ == 5
    assert model.cluster_centers_.shape == (5, 8)
    assert len(set(model.labels_)) <= 5
    np.testing.assert_array_equal(model.transform(X[:5]), before)


def test_warm_start_continues_training_on_new_data(data):
    X, _ = data
    model = CNNKMeans(clusters=3, **SMALL).fit(X)
    weights = {k: v.clone() for k, v in model.encoder_.state_dict().items()}
    X_new, _ = make_series(30, n_clusters=3, length=50, random_state=9)
    model.set_params(warm_start=True).fit(X_new)
    assert model.history_["epoch"].tolist() == [1, 2, 3, 4]
    assert model.labels_.shape == (30,)
    changed = [not torch.equal(weights[k], v) for k, v in model.encoder_.state_dict().items()]
    assert any(changed)


def test_save_and_load_give_identical_predictions(fitted, data, tmp_path):
    X, _ = data
    path = fitted.save(tmp_path / "model")
    assert sorted(p.name for p in path.iterdir()) == ["config.json", "weights.safetensors"]
    loaded = CNNKMeans.load(path)
    np.testing.assert_array_equal(loaded.predict(X), fitted.predict(X))
    np.testing.assert_array_equal(loaded.transform(X), fitted.transform(X))
    assert loaded.get_params() == fitted.get_params()
    assert loaded.history_.equals(fitted.history_)
    loaded.refit_clusters(2)  # embeddings travel with the model


def test_a_file_from_before_graph_weights_loads_with_the_unit_weights_it_used(fitted,
                                                                            tmp_path):
    path = fitted.save(tmp_path / "model")
    config = json.loads((path / "config.json").read_text())
    del config["params"]["graph_weights"]
    # and, older than the recorded neighbour count and "auto", it records none
    del config["state"]["n_neighbors"]
    del config["params"]["n_neighbors"]
    (path / "config.json").write_text(json.dumps(config))
    loaded = CNNKMeans.load(path)
    assert loaded.graph_weights == "unit" and fitted.graph_weights == "local-scaling"
    assert loaded.n_neighbors == loaded.n_neighbors_ == 10
    from tsc_toolkit.clustering.graph_clustering import spectral_labels
    from tsc_toolkit.cnn_kmeans import fit_seed

    loaded.refit_clusters(3, random_state=5)
    expected = spectral_labels(fitted.features_, 3, 10, fit_seed(5), loaded.n_init, "unit")
    assert (loaded.labels_ == expected).all()


def test_loading_a_corrupted_weights_file_is_a_clear_error(fitted, tmp_path):
    path = fitted.save(tmp_path / "model")
    weights = path / "weights.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(ModelFormatError, match="weights"):
        CNNKMeans.load(path)


def test_loading_another_format_version_is_refused(fitted, tmp_path):
    path = fitted.save(tmp_path / "model")
    config = json.loads((path / "config.json").read_text())
    config["format_version"] = 999
    (path / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelFormatError, match="version"):
        CNNKMeans.load(path)


def test_loading_garbage_config_or_missing_folder(fitted, tmp_path):
    with pytest.raises(ModelFormatError):
        CNNKMeans.load(tmp_path / "nothing")
    path = fitted.save(tmp_path / "model")
    (path / "config.json").write_text("{not json")
    with pytest.raises(ModelFormatError, match="config"):
        CNNKMeans.load(path)


def test_a_pickle_in_place_of_the_weights_is_not_executed(fitted, tmp_path):
    import pickle

    path = fitted.save(tmp_path / "model")
    marker = tmp_path / "ran"

    class Evil:
        def __reduce__(self):
            return (marker.write_text, ("pwned",))

    (path / "weights.safetensors").write_bytes(pickle.dumps(Evil()))
    with pytest.raises(ModelFormatError):
        CNNKMeans.load(path)
    assert not marker.exists()


def test_resumed_training_ends_with_the_same_weights_as_uninterrupted(data, tmp_path):
    X, _ = data
    params = {**SMALL, "epochs": 3}
    straight = CNNKMeans(clusters=3, **params).fit(X)

    class Interrupt(Exception):
        pass

    def crash_in_epoch_two(model, record):
        if record["epoch"] == 2:
            raise Interrupt  # like a spot instance taken away before the epoch-2 checkpoint

    ckpt = tmp_path / "ckpt"
    with pytest.raises(Interrupt):
        CNNKMeans(clusters=3, checkpoint_dir=str(ckpt), **params).fit(
            X, callbacks=[crash_in_epoch_two])
    assert [p.name for p in sorted(ckpt.iterdir())] == ["epoch-000001"]
    resumed = CNNKMeans(clusters=3, checkpoint_dir=str(ckpt), **params).fit(X)
    assert resumed.history_["epoch"].tolist() == [1, 2, 3]
    for (name, a), b in zip(straight.encoder_.state_dict().items(),
                            resumed.encoder_.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=name)
    np.testing.assert_array_equal(straight.labels_, resumed.labels_)


def test_checkpoint_from_other_data_is_refused(data, tmp_path):
    X, _ = data
    CNNKMeans(clusters=3, checkpoint_dir=str(tmp_path), **{**SMALL, "epochs": 1}).fit(X)
    with pytest.raises(ValueError, match="other data"):
        CNNKMeans(clusters=3, checkpoint_dir=str(tmp_path), **SMALL).fit(X[:30])


def test_training_threads_stay_within_the_request_and_see_a_busy_process():
    import subprocess
    import sys

    from tsc_toolkit.embedding.training import cores_busy_elsewhere, threads_for_training

    assert 1 <= threads_for_training(2) <= 2
    assert threads_for_training(1) == 1
    spinner = subprocess.Popen([sys.executable, "-c",
                                "import time\nt=time.time()\nwhile time.time()-t<3: pass"])
    try:
        busy = cores_busy_elsewhere(window=1.0)
    finally:
        spinner.kill()
        spinner.wait()
    assert busy is None or busy >= 0.5


def test_spectral_model_predicts_its_training_labels_and_survives_saving(data, tmp_path):
    X, y = data
    model = CNNKMeans(clusters=3, **SMALL).fit(X)
    assert model.clustering == "spectral" and model.features_.shape[1] > model.output_size
    assert (model.predict(X) == model.labels_).mean() > 0.9
    model.save(tmp_path / "m", include_embeddings=False)
    back = CNNKMeans.load(tmp_path / "m")
    np.testing.assert_array_equal(back.predict(X), model.predict(X))
    assert back.assign(X).distance_to_cluster.shape == (len(X),)


def test_kmeans_on_the_embedding_alone_is_the_earlier_model(data):
    X, _ = data
    model = CNNKMeans(clusters=3, kernel_features=0, clustering="kmeans", **SMALL).fit(X)
    assert model.features_ is model.embeddings_
    from tsc_toolkit.embedding.training import nearest_centers

    np.testing.assert_array_equal(model.predict(X),
                                  nearest_centers(model.transform(X), model.cluster_centers_)[0])


def test_auto_neighbours_are_the_eigengap_choice_and_travel_with_the_model(fitted, data,
                                                                            tmp_path):
    from tsc_toolkit.clustering.graph_clustering import (
        AUTO_NEIGHBORS,
        choose_neighbors,
        spectral_labels,
    )
    from tsc_toolkit.cnn_kmeans import fit_seed

    X, _ = data
    assert CNNKMeans().n_neighbors == "auto" and fitted.n_neighbors == "auto"
    auto = clone(fitted).fit(X)  # refit_clusters below must not change the shared fixture
    chosen = choose_neighbors(auto.features_, 3, auto.graph_weights)
    assert auto.n_neighbors_ == chosen == fitted.n_neighbors_ and chosen in AUTO_NEIGHBORS
    expected = spectral_labels(auto.features_, 3, chosen, fit_seed(auto.random_state),
                               auto.n_init, auto.graph_weights)
    np.testing.assert_array_equal(auto.labels_, expected)
    loaded = CNNKMeans.load(auto.save(tmp_path / "model"))
    assert loaded.n_neighbors == "auto" and loaded.n_neighbors_ == chosen
    np.testing.assert_array_equal(loaded.predict(X), auto.predict(X))
    # refit_clusters chooses again for the new k
    auto.refit_clusters(2)
    assert auto.n_neighbors_ == choose_neighbors(auto.features_, 2, auto.graph_weights)
    # a fixed count is used as given, capped at the number of series less one
    fixed = clone(fitted).set_params(n_neighbors=100).fit(X)
    assert fixed.n_neighbors_ == len(X) - 1
    np.testing.assert_array_equal(
        fixed.set_params(n_neighbors=10).refit_clusters(3, random_state=5).labels_,
        spectral_labels(fixed.features_, 3, 10, fit_seed(5), fixed.n_init, fixed.graph_weights))
    assert fixed.n_neighbors_ == 10


def test_a_spectral_file_without_what_labels_new_series_fails_at_load(fitted, tmp_path):
    from safetensors.numpy import load_file, save_file

    path = fitted.save(tmp_path / "model")
    config = json.loads((path / "config.json").read_text())
    del config["state"]["n_neighbors"]  # "auto" names no count: only the state has it
    (path / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelFormatError, match="state.n_neighbors"):
        CNNKMeans.load(path)
    path = fitted.save(tmp_path / "other")
    tensors = load_file(path / "weights.safetensors")
    del tensors["features"]
    save_file(tensors, path / "weights.safetensors")
    with pytest.raises(ModelFormatError, match="hold no features"):
        CNNKMeans.load(path)


def test_a_garbled_neighbour_count_in_a_file_is_a_format_error(fitted, tmp_path):
    path = fitted.save(tmp_path / "model")
    config = json.loads((path / "config.json").read_text())
    config["state"]["n_neighbors"] = 0
    (path / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelFormatError, match="n_neighbors"):
        CNNKMeans.load(path)
