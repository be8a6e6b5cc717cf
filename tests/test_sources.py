"""Chunked readers give, chunk by chunk, the same series as the in-memory converters."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tsc_toolkit import TimeSeriesValueError, as_dataset, read_csv, write_csv
from tsc_toolkit.io.datasets import make_series
from tsc_toolkit.io.sources import ArraySource, CSVSource, ParquetSource, open_series


def _data(channels=1, n=23):
    X, _ = make_series(n, length=30, n_channels=channels, missing_rate=0.1,
                       short_fraction=0.4, min_length=8, random_state=3)
    return X


def _gather(source, chunk_size):
    chunks = list(source.chunks(chunk_size))
    assert all(len(c.ids) <= chunk_size for c in chunks)
    length = max(c.X.shape[2] for c in chunks)
    X = np.concatenate([np.pad(c.X, ((0, 0), (0, 0), (0, length - c.X.shape[2])),
                               constant_values=np.nan) for c in chunks])
    return np.concatenate([c.ids for c in chunks]), X


def _long_frame(X, channel=False):
    rows = []
    for i, series in enumerate(X):
        length = int((~np.isnan(series)).any(0).nonzero()[0].max()) + 1
        for t in range(length):
            for ch in range(X.shape[1]):
                rows.append({"series_id": f"s{i:03d}", "time": t,
                             **({"channel": ch} if channel else {}),
                             "value": float(series[ch, t])})
    return pd.DataFrame(rows)


@pytest.mark.parametrize("chunk_size", [1, 5, 100])
def test_memmapped_npy_reads_in_chunks_the_array_it_holds(tmp_path, chunk_size):
    X = _data(channels=2)
    np.save(tmp_path / "x.npy", X)
    source = open_series(tmp_path / "x.npy")
    assert isinstance(source, ArraySource) and isinstance(source.X, np.memmap)
    ids, got = _gather(source, chunk_size)
    np.testing.assert_array_equal(got, as_dataset(X))
    assert ids.tolist() == list(range(len(X))) and len(source) == len(X)


@pytest.mark.parametrize("channel", [False, True])
def test_long_parquet_across_record_batches_is_the_in_memory_frame(tmp_path, channel):
    X = _data(channels=2 if channel else 1)
    frame = _long_frame(X, channel)
    frame.to_parquet(tmp_path / "long.parquet", row_group_size=37)
    # batches of 50 rows cut most series in two
    source = open_series(tmp_path / "long.parquet", batch_rows=50)
    assert isinstance(source, ParquetSource) and source.layout == "long"
    ids, got = _gather(source, 4)
    np.testing.assert_array_equal(got, as_dataset(frame))
    assert ids.tolist() == [f"s{i:03d}" for i in range(len(X))]


def test_long_layout_rejects_a_series_split_into_two_runs(tmp_path):
    frame = _long_frame(_data(n=4))
    frame = pd.concat([frame.iloc[:5], frame.iloc[40:], frame.iloc[5:40]], ignore_index=True)
    frame.to_parquet(tmp_path / "long.parquet")
    with pytest.raises(TimeSeriesValueError, match="contiguous"):
        list(open_series(tmp_path / "long.parquet").chunks())


def test_wide_parquet_and_arrow_with_ids_and_channel_rows(tmp_path):
    import pyarrow as pa
    import pyarrow.feather as feather

    X = _data(channels=2)
    flat = X.reshape(-1, X.shape[2])
    frame = pd.DataFrame(flat, columns=[f"t{j}" for j in range(flat.shape[1])])
    frame.insert(0, "series_id", np.repeat(np.arange(100, 100 + len(X)), 2))
    frame.to_parquet(tmp_path / "wide.parquet", row_group_size=7)
    feather.write_feather(pa.Table.from_pandas(frame), tmp_path / "wide.arrow", chunksize=9)
    for name in ("wide.parquet", "wide.arrow"):
        source = open_series(tmp_path / name, channels=2, batch_rows=5)
        assert source.layout == "wide" and len(source) == len(X)
        ids, got = _gather(source, 6)
        np.testing.assert_array_equal(got, as_dataset(X))
        assert ids.tolist() == list(range(100, 100 + len(X)))


def test_csv_file_and_folder_in_blocks_with_the_file_row_in_errors(tmp_path):
    X = _data(channels=2)
    write_csv(X[:15], tmp_path / "a.csv")
    write_csv(X[15:], tmp_path / "b.csv")
    ids, got = _gather(CSVSource(tmp_path, channels=2), 4)
    np.testing.assert_array_equal(got, as_dataset(X))
    assert ids.tolist() == list(range(len(X)))
    single = list(open_series(tmp_path / "a.csv", channels=2).chunks(4))
    np.testing.assert_array_equal(single[0].X, read_csv(tmp_path / "a.csv", channels=2)[:4])

    lines = (tmp_path / "a.csv").read_text().splitlines()
    lines[20] = "1,oops,2"
    (tmp_path / "bad.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(TimeSeriesValueError, match="row 21, column 2"):
        list(open_series(tmp_path / "bad.csv").chunks(3))


def test_iterable_of_chunks_and_sampling(tmp_path):
    X = _data()
    source = open_series([X[:10], list(X[10:])])
    _, got = _gather(source, 100)
    np.testing.assert_array_equal(got, as_dataset(X))

    np.save(tmp_path / "x.npy", X)
    drawn = open_series(tmp_path / "x.npy").sample(7, random_state=1)
    np.testing.assert_array_equal(drawn.X, as_dataset(X[drawn.ids]))
    # the one-pass reservoir draws rows of the same data, in source order, without repeats
    reservoir = open_series([X[:10], X[10:]]).sample(7, random_state=1)
    assert len(set(reservoir.ids.tolist())) == 7 and list(reservoir.ids) == sorted(reservoir.ids)
    np.testing.assert_array_equal(reservoir.X, as_dataset(X[reservoir.ids]))


def test_unknown_formats_and_missing_files_are_clear_errors(tmp_path):
    with pytest.raises(TimeSeriesValueError, match="No such file"):
        open_series(tmp_path / "none.csv").chunks().__next__()
    (tmp_path / "x.txt").write_text("1,2\n")
    with pytest.raises(TimeSeriesValueError, match="cannot tell the format"):
        open_series(tmp_path / "x.txt")


def test_without_pyarrow_parquet_names_the_extra_to_install(tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "pyarrow", None)  # what an environment without it sees
    with pytest.raises(ImportError, match=r"tsc_toolkit\[parquet\]"):
        open_series(tmp_path / "x.parquet")
    np.save(tmp_path / "x.npy", _data())
    assert len(open_series(tmp_path / "x.npy")) == 23  # the other formats need no pyarrow
