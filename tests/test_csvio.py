"""fg-research's CSV contract, read and written, checked against its published sample files."""

from pathlib import Path

import numpy as np
import pytest

from tsc_toolkit import TimeSeriesValueError, read_csv, write_csv, write_predictions_csv
from tsc_toolkit.data import count_missing, series_lengths
from tsc_toolkit.io.csvio import format_predictions_csv, parse_csv_text

FG = Path(__file__).parent / "data" / "fg_sample"


def test_fg_training_file_reads_with_its_documented_shape_and_missing_count():
    X = read_csv(FG / "train.csv")
    assert X.shape == (160, 1, 50) and X.dtype == np.float32
    # fg-research's training log says "Missing values: 9": 4 inside series, 5 of padding.
    assert count_missing(X) == {"missing": 4, "padding": 5, "total": 9}
    assert sorted(set(series_lengths(X).tolist())) == [45, 50]


@pytest.mark.parametrize("name, missing, padding", [("valid.csv", 7, 6), ("test.csv", 12, 8)])
def test_fg_validation_and_test_files(name, missing, padding):
    X = read_csv(FG / name)
    assert X.shape == (100, 1, 50)
    counts = count_missing(X)
    assert (counts["missing"], counts["padding"]) == (missing, padding)


def test_fg_prediction_file_has_the_layout_we_write():
    text = (FG / "real_time_predictions.csv").read_text().splitlines()
    first = text[0].split(",")
    assert len(first) == 21 and first[0] in ("0.0", "1.0", "2.0")
    labels = np.array([float(line.split(",")[0]) for line in text])
    emb = np.array([[float(v) for v in line.split(",")[1:]] for line in text], dtype=np.float32)
    ours = format_predictions_csv(labels.astype(int), emb).splitlines()
    assert len(ours) == len(text)
    for a, b in zip(ours, text):
        got, want = a.split(","), b.split(",")
        assert got[0] == want[0]  # the label is written as a float, like fg-research's
        np.testing.assert_allclose([float(v) for v in got[1:]], [float(v) for v in want[1:]],
                                   rtol=1e-6)


def test_round_trip_keeps_missing_values_and_lengths(tmp_path):
    X = np.arange(12, dtype=np.float32).reshape(3, 1, 4)
    X[0, 0, 1] = np.nan
    X[2, 0, 3] = np.nan
    write_csv(X, tmp_path / "x.csv")
    assert (tmp_path / "x.csv").read_text().splitlines()[0] == "0.0,,2.0,3.0"
    back = read_csv(tmp_path / "x.csv")
    np.testing.assert_array_equal(np.isnan(back), np.isnan(X))
    np.testing.assert_array_equal(np.nan_to_num(back), np.nan_to_num(X))


def test_multivariate_variant_takes_consecutive_rows(tmp_path):
    X = np.arange(2 * 3 * 5, dtype=np.float32).reshape(2, 3, 5)
    X[1, 2, 4] = np.nan
    X[0, 1, 2] = np.nan
    write_csv(X, tmp_path / "m.csv")
    assert len((tmp_path / "m.csv").read_text().splitlines()) == 6
    back = read_csv(tmp_path / "m.csv", channels=3)
    assert back.shape == (2, 3, 5)
    np.testing.assert_array_equal(np.isnan(back), np.isnan(X))


def test_multivariate_row_count_must_be_a_multiple_of_channels():
    with pytest.raises(TimeSeriesValueError, match="multiple of channels=2"):
        parse_csv_text("1,2\n3,4\n5,6\n", channels=2)


def test_non_numeric_cell_names_row_and_column(tmp_path):
    (tmp_path / "bad.csv").write_text("1,2,3\n4,five,6\n")
    with pytest.raises(TimeSeriesValueError, match=r"row 2, column 2") as err:
        read_csv(tmp_path / "bad.csv")
    assert "five" in str(err.value)


def test_infinite_cell_names_row_and_column(tmp_path):
    (tmp_path / "inf.csv").write_text("1,2,3\n4,5,inf\n")
    with pytest.raises(TimeSeriesValueError, match=r"row 2, column 3 is infinite"):
        read_csv(tmp_path / "inf.csv")


def test_all_missing_row_names_the_row(tmp_path):
    (tmp_path / "e.csv").write_text("1,2,3\n,,\n4,5,6\n")
    with pytest.raises(TimeSeriesValueError, match="row 2 has no observed values"):
        read_csv(tmp_path / "e.csv")


def test_series_with_a_single_value_names_the_row(tmp_path):
    (tmp_path / "s.csv").write_text("1,2,3\n4,,\n")
    with pytest.raises(TimeSeriesValueError, match="row 2 has 1 observed value"):
        read_csv(tmp_path / "s.csv")


def test_empty_file(tmp_path):
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(TimeSeriesValueError, match="empty"):
        read_csv(tmp_path / "empty.csv")


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(TimeSeriesValueError, match="No such file"):
        read_csv(tmp_path / "nope.csv")
    with pytest.raises(TimeSeriesValueError, match="directory"):
        read_csv(tmp_path)


def test_binary_file_is_unreadable(tmp_path):
    (tmp_path / "b.csv").write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe\x00\x01")
    with pytest.raises(TimeSeriesValueError, match="not a UTF-8 text file"):
        read_csv(tmp_path / "b.csv")


def test_errors_are_value_errors(tmp_path):
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(ValueError):
        read_csv(tmp_path / "empty.csv")


def test_predictions_written_to_a_file(tmp_path):
    write_predictions_csv(np.array([2, 0]), np.ones((2, 3), dtype=np.float32),
                          tmp_path / "p.csv")
    assert (tmp_path / "p.csv").read_text().splitlines() == ["2.0,1.0,1.0,1.0",
                                                             "0.0,1.0,1.0,1.0"]
