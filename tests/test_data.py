"""The data contract: every converter into (n_series, n_channels, length) float32, and the
errors users get for bad input."""

import numpy as np
import pandas as pd
import pytest

from tsc_toolkit import TimeSeriesValueError, as_dataset
from tsc_toolkit.data import count_missing, from_long_frame, series_lengths


def test_3d_array_is_kept_as_float32():
    X = np.arange(24, dtype=np.float64).reshape(2, 3, 4)
    out = as_dataset(X)
    assert out.dtype == np.float32 and out.shape == (2, 3, 4)
    np.testing.assert_array_equal(out, X)


def test_2d_array_is_univariate():
    assert as_dataset(np.ones((5, 7))).shape == (5, 1, 7)


def test_1d_array_is_one_series():
    assert as_dataset(np.arange(6.0)).shape == (1, 1, 6)


def test_integer_array_becomes_float():
    assert as_dataset(np.arange(10).reshape(2, 5)).dtype == np.float32


def test_list_of_1d_arrays_of_different_lengths_is_padded_with_trailing_nan():
    X = as_dataset([np.arange(5.0), np.arange(3.0), [1, 2, np.nan, 4]])
    assert X.shape == (3, 1, 5)
    assert np.isnan(X[1, 0, 3:]).all() and not np.isnan(X[1, 0, :3]).any()
    assert series_lengths(X).tolist() == [5, 3, 4]
    assert np.isnan(X[2, 0, 2])  # interior NaN stays a missing value


def test_list_of_2d_arrays_keeps_channels():
    X = as_dataset([np.ones((2, 6)), np.zeros((2, 4))])
    assert X.shape == (2, 2, 6)
    assert np.isnan(X[1, :, 4:]).all()


def test_list_of_2d_arrays_with_different_channel_counts_is_refused():
    with pytest.raises(TimeSeriesValueError, match="channel"):
        as_dataset([np.ones((2, 6)), np.ones((3, 6))])


def test_wide_frame_is_one_row_per_series():
    df = pd.DataFrame([[1.0, 2.0, 3.0], [4.0, 5.0, np.nan]], columns=["t0", "t1", "t2"])
    X = as_dataset(df)
    assert X.shape == (2, 1, 3)
    assert series_lengths(X).tolist() == [3, 2]


def test_wide_frame_with_text_cell_names_row_and_column():
    df = pd.DataFrame({"a": [1.0, 2.0], "b": [3.0, "oops"], "c": [1.0, 2.0]})
    with pytest.raises(TimeSeriesValueError, match="oops") as err:
        as_dataset(df)
    assert "'b'" in str(err.value) or "b" in str(err.value)


def test_long_frame_univariate():
    df = pd.DataFrame({"series_id": ["a", "a", "a", "b", "b"], "time": [0, 1, 2, 0, 1],
                       "value": [1.0, 2.0, 3.0, 5.0, 6.0]})
    X = as_dataset(df)
    assert X.shape == (2, 1, 3)
    np.testing.assert_array_equal(X[0, 0], [1, 2, 3])
    assert np.isnan(X[1, 0, 2])


def test_long_frame_is_ordered_by_time_not_by_row():
    df = pd.DataFrame({"series_id": [0, 0, 0, 1, 1], "time": [2, 0, 1, 1, 0],
                       "value": [3.0, 1.0, 2.0, 6.0, 5.0]})
    X = as_dataset(df)
    np.testing.assert_array_equal(X[0, 0], [1, 2, 3])
    np.testing.assert_array_equal(X[1, 0, :2], [5, 6])


def test_long_frame_multivariate_missing_channel_is_nan_not_a_shift():
    df = pd.DataFrame({
        "series_id": [0] * 5 + [1] * 4,
        "time": [0, 0, 1, 2, 2, 0, 0, 1, 1],
        "channel": ["x", "y", "x", "x", "y", "x", "y", "x", "y"],
        "value": [1.0, 10.0, 2.0, 3.0, 30.0, 5.0, 50.0, 6.0, 60.0],
    })
    X = as_dataset(df)
    assert X.shape == (2, 2, 3)
    np.testing.assert_array_equal(X[0, 0], [1, 2, 3])
    assert X[0, 1, 0] == 10 and np.isnan(X[0, 1, 1]) and X[0, 1, 2] == 30


def test_long_frame_with_other_column_names():
    df = pd.DataFrame({"sid": [0, 0, 1, 1], "ts": [0, 1, 0, 1], "v": [1.0, 2.0, 3.0, 4.0]})
    X = from_long_frame(df, id_col="sid", time_col="ts", value_col="v")
    assert X.shape == (2, 1, 2)


def test_long_frame_missing_column_says_which():
    df = pd.DataFrame({"series_id": [0], "time": [0], "value": [1.0]})
    with pytest.raises(TimeSeriesValueError, match="channel"):
        from_long_frame(df, channel_col="channel")


def test_long_frame_duplicate_observation_is_refused():
    df = pd.DataFrame({"series_id": [0, 0, 0], "time": [0, 0, 1], "value": [1.0, 2.0, 3.0]})
    with pytest.raises(TimeSeriesValueError, match="once"):
        as_dataset(df)


def test_infinite_value_is_refused_with_its_position():
    X = np.ones((3, 1, 5))
    X[1, 0, 2] = np.inf
    with pytest.raises(TimeSeriesValueError, match=r"series 1, channel 0, step 2"):
        as_dataset(X)


def test_all_missing_series_is_refused():
    X = np.ones((3, 1, 5))
    X[2] = np.nan
    with pytest.raises(TimeSeriesValueError, match="series 2 has no observed values"):
        as_dataset(X)


def test_series_with_one_observed_value_is_refused():
    X = np.ones((3, 1, 5))
    X[0, 0, 1:] = np.nan
    with pytest.raises(TimeSeriesValueError, match="1 observed value"):
        as_dataset(X)


def test_empty_input_is_refused():
    with pytest.raises(TimeSeriesValueError, match="empty"):
        as_dataset([])
    with pytest.raises(TimeSeriesValueError, match="empty"):
        as_dataset(np.zeros((0, 1, 5)))


def test_text_in_array_is_refused():
    with pytest.raises(TimeSeriesValueError):
        as_dataset(np.array([["1", "x"]], dtype=object))


def test_string_input_points_to_read_csv():
    with pytest.raises(TimeSeriesValueError, match="read_csv"):
        as_dataset("data/train.csv")


def test_four_dimensional_array_is_refused():
    with pytest.raises(TimeSeriesValueError, match="4 dimensions"):
        as_dataset(np.ones((2, 2, 2, 2)))


def test_all_nan_trailing_steps_are_dropped_and_missing_values_counted():
    X = np.ones((2, 1, 6))
    X[:, :, 4:] = np.nan
    X[0, 0, 1] = np.nan
    out = as_dataset(X)
    assert out.shape == (2, 1, 4)
    assert count_missing(out) == {"missing": 1, "padding": 0, "total": 1}


def test_length_counts_steps_where_any_channel_is_observed():
    X = np.full((1, 2, 5), np.nan)
    X[0, 0, :3] = 1
    X[0, 1, :4] = 1
    assert series_lengths(as_dataset(X)).tolist() == [4]
