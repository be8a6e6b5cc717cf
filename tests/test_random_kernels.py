"""The random-kernel view: fixed features, NaN-aware, any length, saved without pickling."""

import numpy as np
import pytest

from tsc_toolkit.embedding.scaling import SeriesScaler
from tsc_toolkit.io.datasets import make_series
from tsc_toolkit.views.random_kernels import RandomKernelFeatures, interpolate_gaps


@pytest.fixture(scope="module")
def data():
    X, y = make_series(60, n_clusters=3, length=80, random_state=0)
    return SeriesScaler("series").fit_transform(X), y


def test_view_has_the_requested_size_and_unit_rms_norm(data):
    X, _ = data
    view = RandomKernelFeatures(n_features=600, n_components=12, random_state=0)
    Z = view.fit_transform(X)
    assert Z.shape == (60, 12) and Z.dtype == np.float32
    assert np.sqrt((Z ** 2).sum(axis=1).mean()) == pytest.approx(1.0, rel=1e-4)
    np.testing.assert_allclose(view.transform(X), Z, atol=1e-5)


def test_same_seed_same_view_other_seed_other_view(data):
    X, _ = data
    a = RandomKernelFeatures(600, 8, random_state=1).fit_transform(X)
    b = RandomKernelFeatures(600, 8, random_state=1).fit_transform(X)
    c = RandomKernelFeatures(600, 8, random_state=2).fit_transform(X)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_view_separates_the_generated_clusters(data):
    from sklearn.cluster import KMeans
    from sklearn.metrics import adjusted_rand_score

    X, y = data
    Z = RandomKernelFeatures(1000, 10, random_state=0).fit_transform(X)
    labels = KMeans(3, n_init=5, random_state=0).fit_predict(Z)
    assert adjusted_rand_score(y, labels) > 0.8


def test_a_short_series_padded_in_a_batch_has_its_own_features(data):
    X, _ = data
    view = RandomKernelFeatures(600, 8, random_state=0).fit(X)
    short = X[:1, :, :50]
    padded = np.concatenate([X[:1], X[1:2]]).copy()
    padded[0, :, 50:] = np.nan
    np.testing.assert_allclose(view.transform(padded)[0], view.transform(short)[0], atol=1e-5)


def test_interior_gaps_are_interpolated_and_padding_stays_outside():
    X = np.array([[[0.0, np.nan, 2.0, np.nan, 4.0, np.nan, np.nan]]], dtype=np.float32)
    filled, lengths = interpolate_gaps(X)
    assert lengths.tolist() == [5]
    np.testing.assert_allclose(filled[0, 0], [0, 1, 2, 3, 4, 0, 0])


def test_several_channels_and_missing_values(data):
    X, _ = make_series(30, length=40, n_channels=3, missing_rate=0.2, short_fraction=0.3,
                       random_state=2)
    Z = RandomKernelFeatures(500, 6, random_state=0).fit_transform(
        SeriesScaler("series").fit_transform(X))
    assert Z.shape == (30, 6) and np.isfinite(Z).all()


def test_tensors_round_trip(data):
    X, _ = data
    view = RandomKernelFeatures(600, 8, random_state=0).fit(X)
    back = RandomKernelFeatures.from_tensors(view.to_tensors("v"), "v", n_features=600)
    np.testing.assert_array_equal(back.transform(X), view.transform(X))
