"""Scaling stored in the model, independent of the series length."""

import numpy as np
import pytest

from tsc_toolkit.embedding.scaling import SeriesScaler


def test_series_scaling_z_normalises_each_channel_of_each_series(rng):
    X = rng.normal(5, 3, size=(4, 2, 30)).astype(np.float32)
    X[0, 1, 5] = np.nan
    out = SeriesScaler("series").fit_transform(X)
    np.testing.assert_allclose(np.nanmean(out, axis=2), 0, atol=1e-5)
    np.testing.assert_allclose(np.nanstd(out, axis=2), 1, atol=1e-4)
    assert np.isnan(out[0, 1, 5]) and np.isnan(out).sum() == 1


def test_constant_series_is_centred_not_blown_up():
    X = np.full((1, 1, 10), 7.0, dtype=np.float32)
    np.testing.assert_array_equal(SeriesScaler("series").fit_transform(X), 0)


def test_channel_scaling_uses_training_statistics_on_any_length(rng):
    X = rng.normal([[1.0], [10.0]], [[2.0], [5.0]], size=(50, 2, 40)).astype(np.float32)
    scaler = SeriesScaler("channel").fit(X)
    np.testing.assert_allclose(scaler.mean_, [1, 10], atol=0.2)
    longer = rng.normal(size=(3, 2, 400)).astype(np.float32)
    assert scaler.transform(longer).shape == (3, 2, 400)


def test_state_round_trips_through_json_types(rng):
    import json

    X = rng.normal(size=(5, 3, 20)).astype(np.float32)
    scaler = SeriesScaler("channel").fit(X)
    again = SeriesScaler.from_dict(json.loads(json.dumps(scaler.to_dict())))
    np.testing.assert_array_equal(again.transform(X), scaler.transform(X))


def test_wrong_channel_count_and_unknown_method():
    scaler = SeriesScaler("series").fit(np.ones((2, 1, 5), dtype=np.float32))
    with pytest.raises(ValueError, match="channel"):
        scaler.transform(np.ones((2, 3, 5), dtype=np.float32))
    with pytest.raises(ValueError, match="scaling"):
        SeriesScaler("minmax").fit(np.ones((2, 1, 5), dtype=np.float32))
