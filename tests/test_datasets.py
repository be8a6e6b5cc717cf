"""Bundled and generated data: offline, labelled, in the data contract."""

import numpy as np
import pytest

from tsc_toolkit import read_csv
from tsc_toolkit.data import count_missing, series_lengths
from tsc_toolkit.io.datasets import list_datasets, load_dataset, make_series, write_sample_files


def test_generator_is_seeded_and_has_missing_values_and_shorter_series():
    X, y = make_series(90, n_clusters=3, length=60, missing_rate=0.1, short_fraction=0.3,
                       random_state=5)
    X2, y2 = make_series(90, n_clusters=3, length=60, missing_rate=0.1, short_fraction=0.3,
                         random_state=5)
    np.testing.assert_array_equal(X, X2)
    np.testing.assert_array_equal(y, y2)
    assert X.shape == (90, 1, 60) and X.dtype == np.float32
    assert np.bincount(y).tolist() == [30, 30, 30]
    counts = count_missing(X)
    assert counts["missing"] > 0 and counts["padding"] > 0
    assert (series_lengths(X) < 60).sum() > 10


def test_generated_clusters_are_really_separable():
    from sklearn.metrics import adjusted_rand_score
    from sklearn.model_selection import cross_val_score
    from sklearn.neighbors import KNeighborsClassifier

    X, y = make_series(150, n_clusters=3, length=50, random_state=0)
    acc = cross_val_score(KNeighborsClassifier(1), X[:, 0], y, cv=3).mean()
    assert acc > 0.9
    assert adjusted_rand_score(y, y) == 1.0


def test_sample_files_follow_the_fg_contract(tmp_path):
    paths = write_sample_files(tmp_path)
    shapes = {name: read_csv(paths[name]).shape[0] for name in ("train", "valid", "test")}
    assert shapes == {"train": 160, "valid": 100, "test": 100}
    labels = paths["train_labels"].read_text().split()
    assert len(labels) == 160 and set(labels) == {"0", "1", "2"}


def test_bundled_sample_files_are_the_generator_output(tmp_path):
    from pathlib import Path

    repo_data = Path(__file__).resolve().parents[1] / "data"
    paths = write_sample_files(tmp_path, random_state=0)
    for name in ("train", "valid", "test"):
        assert (repo_data / f"{name}.csv").read_text() == paths[name].read_text()


@pytest.mark.parametrize("name, shape, classes", [
    ("GunPoint", (200, 1, 150), 2),
    ("BasicMotions", (80, 6, 100), 4),
    ("JapaneseVowels", (640, 12, 29), 9),
])
def test_real_datasets_load_offline(name, shape, classes):
    X, y = load_dataset(name)
    assert X.shape == shape and X.dtype == np.float32
    assert len(y) == shape[0] and len(set(y.tolist())) == classes


def test_varying_lengths_are_trailing_nan():
    X, _ = load_dataset("JapaneseVowels")
    lengths = series_lengths(X)
    assert lengths.min() == 7 and lengths.max() == 29
    assert count_missing(X)["missing"] == 0  # only padding


def test_splits_and_errors():
    X_train, _ = load_dataset("gunpoint", split="train")
    X_test, _ = load_dataset("GunPoint", split="test")
    assert len(X_train) + len(X_test) == 200
    assert set(list_datasets()) >= {"GunPoint", "BasicMotions", "JapaneseVowels"}
    with pytest.raises(ValueError, match="Unknown dataset"):
        load_dataset("Nope")
    with pytest.raises(ValueError, match="split"):
        load_dataset("GunPoint", split="valid")
