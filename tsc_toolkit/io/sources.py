"""Series that stay on disk, read a chunk at a time.

A *source* yields :class:`Chunk` objects: the ids of a few series and their values in the
toolkit's data contract (float32 ``(n, n_channels, length)``, NaN for missing values and for
padding after a shorter series). Each chunk is padded only to its own longest series; the
encoder ignores padding, so this changes nothing in the embeddings. :func:`open_series` picks
the reader from what it is given:

- a memory-mapped ``.npy`` file of shape ``(n, n_channels, length)`` (or any array);
- a Parquet file (or a folder of them) or an Arrow IPC / Feather file, in the long layout
  (``series_id``, ``time``, ``value``, optional ``channel``: rows of a series contiguous) or
  the wide layout (one row per series and channel, one column per step, an optional id
  column), read a record batch at a time with pyarrow (the ``parquet`` extra);
- a fg-style CSV file, or a folder of them, read a block of lines at a time;
- any iterable of chunks (arrays, lists of series, DataFrames), each through
  :func:`tsc_toolkit.as_dataset`.

Memory stays bounded by the chunk size: nothing here holds more than one chunk (plus, for
the long layout, the rows of the one series that crosses a record batch boundary).
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from ..data import TimeSeriesValueError, _is_sparse, as_dataset, check_dataset, from_long_frame
from .csvio import parse_csv_text

__all__ = ["Chunk", "SeriesSource", "ArraySource", "ParquetSource", "CSVSource",
           "IterableSource", "open_series", "require_pyarrow", "is_lazy_array",
           "is_chunked_array", "map_chunks", "CHUNK_SIZE"]

#: Series per chunk, what bounds the working memory of chunked inference: 1,024 series of length
#: 500 are 2 MiB of float32. Embedding a memory-mapped 30,000 x 500 file with the default encoder
#: grew anonymous memory by 313 MiB beyond the embeddings with chunks of 4,096 series and by
#: 140 MiB with 1,024, in about the same time (2-core AMD EPYC).
CHUNK_SIZE = 1024

_PARQUET = (".parquet", ".pq")
_ARROW = (".arrow", ".feather", ".ipc")


class Chunk(NamedTuple):
    """A few consecutive series of a source."""

    ids: np.ndarray
    """(n,) ids of the series: the file's ``series_id`` or id column, else the row number."""
    X: np.ndarray
    """(n, n_channels, length) float32 in the data contract."""


def require_pyarrow():
    """Import pyarrow, or say which extra installs it."""
    try:
        import pyarrow
    except ImportError as exc:
        raise ImportError("Reading and writing Parquet or Arrow files needs pyarrow: "
                          "pip install 'tsc_toolkit[parquet]'") from exc
    return pyarrow


class SeriesSource:
    """Base of the readers: iterate :meth:`chunks`; ``n_series`` is None when unknown."""

    n_series: int | None = None

    def chunks(self, chunk_size: int = 4096) -> Iterator[Chunk]:  # pragma: no cover
        raise NotImplementedError

    def sample(self, n: int, random_state: int | None = 0) -> Chunk:
        """``n`` series drawn uniformly without replacement, in source order.

        One pass over the source (reservoir sampling), holding at most ``n`` series; readers
        with random access override it to read only the drawn rows.
        """
        rng = np.random.default_rng(random_state)
        kept: list[tuple[int, Any, np.ndarray]] = []
        seen = 0
        for chunk in self.chunks():
            lengths = _lengths(chunk.X)
            for j in range(len(chunk.ids)):
                item = (seen, chunk.ids[j], chunk.X[j, :, :lengths[j]].copy())
                if len(kept) < n:
                    kept.append(item)
                else:
                    slot = int(rng.integers(0, seen + 1))
                    if slot < n:
                        kept[slot] = item
                seen += 1
        if not kept:
            raise TimeSeriesValueError("The source holds no series.")
        kept.sort(key=lambda item: item[0])
        return Chunk(np.asarray([item[1] for item in kept]), as_dataset([k[2] for k in kept]))

    def read(self) -> Chunk:
        """Every series at once, in memory (for sources known to be small)."""
        chunks = list(self.chunks())
        if not chunks:
            raise TimeSeriesValueError("The source holds no series.")
        return Chunk(np.concatenate([c.ids for c in chunks]), _concat([c.X for c in chunks]))

    def __len__(self) -> int:
        if self.n_series is None:
            raise TypeError(f"{type(self).__name__} does not know its length before reading.")
        return self.n_series


class ArraySource(SeriesSource):
    """Series of an array or a memory-mapped ``.npy`` file, ``(n, n_channels, length)``.

    A memmap is read one slice at a time, so only the chunk being worked on is in memory.
    """

    def __init__(self, X, ids=None):
        if isinstance(X, (str, os.PathLike)):
            X = np.load(X, mmap_mode="r", allow_pickle=False)
        shape = tuple(X.shape)
        if len(shape) not in (2, 3):
            raise TimeSeriesValueError(f"An array source must have shape (n_series, n_channels, "
                                       f"length); got {shape}.")
        # Any array-like that slices along its first axis (np.memmap, h5py, zarr): only the
        # rows asked for are read; a 2-D one is univariate, its channel axis added per slice.
        self.X = X
        self._univariate = len(shape) == 2
        self.ids = None if ids is None else np.asarray(ids)
        self.n_series = int(shape[0])

    def _ids(self, index) -> np.ndarray:
        return np.asarray(index) if self.ids is None else self.ids[index]

    def _rows(self, index) -> np.ndarray:
        rows = np.asarray(self.X[index])
        return rows[:, None, :] if self._univariate else rows

    def chunks(self, chunk_size: int = 4096) -> Iterator[Chunk]:
        for start in range(0, self.n_series, chunk_size):
            stop = min(start + chunk_size, self.n_series)
            yield Chunk(self._ids(np.arange(start, stop)),
                        _checked(self._rows(slice(start, stop)), f"series {start}-{stop - 1}"))

    def sample(self, n: int, random_state: int | None = 0) -> Chunk:
        rng = np.random.default_rng(random_state)
        index = np.sort(rng.choice(self.n_series, size=min(n, self.n_series), replace=False))
        return Chunk(self._ids(index), _checked(self._rows(index), "the sampled series"))


class CSVSource(SeriesSource):
    """fg-style CSV: one file, or every ``*.csv`` of a folder in name order.

    Reads ``chunk_size * channels`` non-empty lines at a time; error messages give the row
    of the file, as :func:`tsc_toolkit.read_csv` does.
    """

    def __init__(self, path, channels: int = 1):
        path = Path(path)
        self.paths = sorted(path.glob("*.csv")) if path.is_dir() else [path]
        if not self.paths:
            raise TimeSeriesValueError(f"{str(path)!r} holds no .csv file.")
        self.channels = int(channels)

    def chunks(self, chunk_size: int = 4096) -> Iterator[Chunk]:
        seen = 0
        block = chunk_size * self.channels
        for path in self.paths:
            if not path.is_file():
                raise TimeSeriesValueError(f"No such file: {str(path)!r}.")
            with open(path, encoding="utf-8-sig") as fh:
                # blank lines are kept in the block, so that row numbers stay the file's
                lines: list[str] = []
                rows = 0
                first = 1
                for lineno, line in enumerate(fh, start=1):
                    lines.append(line)
                    rows += bool(line.strip())
                    if rows == block:
                        X = parse_csv_text("".join(lines), channels=self.channels,
                                           source=str(path), first_line=first)
                        yield Chunk(np.arange(seen, seen + len(X)), X)
                        seen += len(X)
                        lines, rows, first = [], 0, lineno + 1
                if rows:
                    X = parse_csv_text("".join(lines), channels=self.channels,
                                       source=str(path), first_line=first)
                    yield Chunk(np.arange(seen, seen + len(X)), X)
                    seen += len(X)


class ParquetSource(SeriesSource):
    """Parquet (a file or a folder of ``*.parquet``) or Arrow IPC, long or wide layout.

    Parameters
    ----------
    path : path
    layout : {"auto", "long", "wide"}, default="auto"
        ``"auto"``: long when the columns are an id, a time and a value (and maybe a channel)
        column under the names :func:`tsc_toolkit.as_dataset` knows, else wide.
    channels : int, default=1
        Wide layout: consecutive rows that make one series (as in fg's CSV files).
    id_col : str, optional
        Column holding series ids (long: required, found by name when not given; wide: taken
        out of the values when present, e.g. ``series_id``).
    time_col, value_col, channel_col : str, optional
        Long layout column names, found by name when not given.
    batch_rows : int, default=65536
        Rows per record batch read from disk.
    """

    def __init__(self, path, layout: str = "auto", *, channels: int = 1,
                 id_col: str | None = None, time_col: str | None = None,
                 value_col: str | None = None, channel_col: str | None = None,
                 batch_rows: int = 65536):
        require_pyarrow()
        path = Path(path)
        self.paths = sorted(p for p in path.iterdir() if p.suffix in _PARQUET) \
            if path.is_dir() else [path]
        if not self.paths:
            raise TimeSeriesValueError(f"{str(path)!r} holds no .parquet file.")
        if layout not in ("auto", "long", "wide"):
            raise ValueError(f"layout must be 'auto', 'long' or 'wide', got {layout!r}.")
        self.channels = int(channels)
        self.batch_rows = int(batch_rows)
        names = self._schema_names()
        import pandas as pd

        from ..data import _long_columns

        found = _long_columns(pd.DataFrame(columns=names))
        if layout == "auto":
            layout = "long" if found is not None or (time_col and value_col) else "wide"
        self.layout = layout
        if layout == "long":
            if found is None and not (id_col and time_col and value_col):
                raise TimeSeriesValueError(
                    f"{path} has columns {names}; the long layout needs series_id, time and "
                    "value columns (or pass id_col=, time_col=, value_col=).")
            found = found or (None, None, None, None)
            self.columns = (id_col or found[0], time_col or found[1], value_col or found[2],
                            channel_col or found[3])
            self.n_series = None
        else:
            id_name = id_col or next((n for n in names if n.lower() in
                                      ("series_id", "series", "id", "unique_id")), None)
            self.id_col = id_name
            self.value_cols = [n for n in names if n != id_name]
            rows = sum(self._rows(p) for p in self.paths)
            self.n_series = rows // self.channels

    # ------------------------------------------------------------------ reading

    def _schema_names(self) -> list[str]:
        return list(self._schema(self.paths[0]).names)

    @staticmethod
    def _schema(path: Path):
        if path.suffix in _ARROW:
            import pyarrow.ipc as ipc

            return ipc.open_file(path).schema
        import pyarrow.parquet as pq

        return pq.ParquetFile(path).schema_arrow

    @staticmethod
    def _rows(path: Path) -> int:
        if path.suffix in _ARROW:
            import pyarrow.ipc as ipc

            reader = ipc.open_file(path)
            return sum(reader.get_batch(i).num_rows for i in range(reader.num_record_batches))
        import pyarrow.parquet as pq

        return pq.ParquetFile(path).metadata.num_rows

    def _batches(self, columns: list[str]) -> Iterator:
        for path in self.paths:
            if path.suffix in _ARROW:
                import pyarrow as pa
                import pyarrow.ipc as ipc

                # memory-mapped: a record batch is read when it is used
                reader = ipc.open_file(pa.memory_map(str(path)))
                for i in range(reader.num_record_batches):
                    batch = reader.get_batch(i).select(columns)
                    for start in range(0, batch.num_rows, self.batch_rows):
                        yield batch.slice(start, self.batch_rows)
            else:
                import pyarrow.parquet as pq

                yield from pq.ParquetFile(path).iter_batches(batch_size=self.batch_rows,
                                                             columns=columns)

    def chunks(self, chunk_size: int = 4096) -> Iterator[Chunk]:
        inner = self._long_chunks() if self.layout == "long" else self._wide_chunks()
        return _rechunk(inner, chunk_size)

    def _wide_chunks(self) -> Iterator[Chunk]:
        import pandas as pd

        columns = ([self.id_col] if self.id_col else []) + self.value_cols
        carry = None
        seen = 0
        for batch in self._batches(columns):
            frame = batch.to_pandas()
            if carry is not None and len(carry):
                frame = pd.concat([carry, frame], ignore_index=True)
            whole = len(frame) - len(frame) % self.channels
            carry, frame = frame.iloc[whole:], frame.iloc[:whole]
            if not len(frame):
                continue
            values = frame[self.value_cols].to_numpy(dtype=np.float32, na_value=np.nan)
            X = values.reshape(len(values) // self.channels, self.channels, values.shape[1])
            n = len(X)
            ids = (frame[self.id_col].to_numpy()[::self.channels] if self.id_col
                   else np.arange(seen, seen + n))
            yield Chunk(ids, _checked(X, f"rows {seen * self.channels + 1}-"
                                         f"{(seen + n) * self.channels}"))
            seen += n
        if carry is not None and len(carry):
            raise TimeSeriesValueError(
                f"The wide file has {seen * self.channels + len(carry)} rows, which is not a "
                f"multiple of channels={self.channels}.")

    def _long_chunks(self) -> Iterator[Chunk]:
        import pandas as pd

        id_col, time_col, value_col, channel_col = self.columns
        columns = [c for c in self.columns if c is not None]
        carry = None
        last_done = None
        for batch in self._batches(columns):
            frame = batch.to_pandas()
            if carry is not None:
                frame = pd.concat([carry, frame], ignore_index=True)
            ids = frame[id_col].to_numpy()
            # the last series may continue in the next batch: keep its rows for then
            starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])
            if len(starts) != len(pd.unique(ids)):
                raise TimeSeriesValueError(
                    "In the long layout the rows of each series must be contiguous (sort the "
                    f"file by {id_col!r}); a series id appears in two separate runs.")
            if last_done is not None and ids[0] == last_done:
                raise TimeSeriesValueError(f"Series {ids[0]!r} appears in two separate runs.")
            cut = starts[-1]
            carry, frame = frame.iloc[cut:], frame.iloc[:cut]
            if len(frame):
                yield self._long_chunk(frame)
                last_done = frame[id_col].iloc[-1]
        if carry is not None and len(carry):
            yield self._long_chunk(carry)

    def _long_chunk(self, frame) -> Chunk:
        id_col, time_col, value_col, channel_col = self.columns
        X = from_long_frame(frame, id_col, time_col, value_col, channel_col)
        return Chunk(np.asarray(frame[id_col].unique()), X)


class IterableSource(SeriesSource):
    """Any iterable of chunks: arrays, lists of series or DataFrames (or :class:`Chunk`).

    Read once; pass a list (or anything iterable twice) when it must be read again, as the
    streamed ``fit`` does.
    """

    def __init__(self, iterable: Iterable):
        self.iterable = iterable

    def chunks(self, chunk_size: int = 4096) -> Iterator[Chunk]:
        seen = 0
        for item in self.iterable:
            if isinstance(item, Chunk):
                ids, X = np.asarray(item.ids), as_dataset(item.X)
            else:
                X = as_dataset(item, name=f"chunk of series {seen}-")
                ids = np.arange(seen, seen + len(X))
            yield Chunk(ids, X)
            seen += len(X)


def open_series(obj, *, channels: int = 1, layout: str = "auto", **options) -> SeriesSource:
    """A chunked reader for series on disk (or any iterable of chunks).

    Parameters
    ----------
    obj : path, array, SeriesSource or iterable
        ``.npy`` (memory-mapped), ``.parquet`` / ``.pq`` / folder of them, ``.arrow`` /
        ``.feather``, ``.csv`` / folder of them; an array (a memmap included); a source (as
        is); or an iterable of chunks.
    channels : int, default=1
        Rows per series in CSV files and wide Parquet files.
    layout : {"auto", "long", "wide"}
        Parquet and Arrow layout (see :class:`ParquetSource`).
    **options
        Passed to :class:`ParquetSource` (``id_col``, ``time_col``, ``batch_rows``, ...).

    Returns
    -------
    SeriesSource

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> from tsc_toolkit.io.sources import open_series
    >>> path = os.path.join(tempfile.mkdtemp(), "x.npy")
    >>> np.save(path, np.arange(24, dtype=np.float32).reshape(4, 1, 6))
    >>> src = open_series(path)
    >>> [chunk.X.shape for chunk in src.chunks(3)], len(src)
    ([(3, 1, 6), (1, 1, 6)], 4)
    """
    if isinstance(obj, SeriesSource):
        return obj
    if isinstance(obj, (str, os.PathLike)):
        path = Path(obj)
        suffixes = {p.suffix for p in path.iterdir()} if path.is_dir() else {path.suffix}
        if suffixes & {".npy"} and not path.is_dir():
            return ArraySource(path)
        if suffixes & set(_PARQUET + _ARROW):
            return ParquetSource(path, layout, channels=channels, **options)
        if suffixes & {".csv"}:
            return CSVSource(path, channels=channels)
        if not path.exists():
            raise TimeSeriesValueError(f"No such file: {str(path)!r}.")
        raise TimeSeriesValueError(
            f"{str(path)!r}: cannot tell the format; use .npy, .parquet, .arrow or .csv.")
    if hasattr(obj, "shape") and hasattr(obj, "__getitem__"):
        return ArraySource(obj)
    return IterableSource(obj)


# ---------------------------------------------------------------------- arrays

def is_lazy_array(obj) -> bool:
    """Whether ``obj`` is an array of series read only where it is sliced.

    True for a memory-mapped array (``np.memmap``, as ``np.load(path, mmap_mode="r")``
    returns) and for an array-like of shape ``(n_series, length)`` or ``(n_series,
    n_channels, length)`` that is not a NumPy array but slices into one: an h5py or zarr
    dataset, anything with ``shape``, ``dtype`` and slicing along the first axis.
    DataFrames and sparse matrices are not (:func:`tsc_toolkit.as_dataset` takes the one
    and refuses the other).

    Examples
    --------
    >>> import numpy as np
    >>> is_lazy_array(np.zeros((3, 1, 5)))
    False
    """
    if isinstance(obj, np.ndarray):
        return isinstance(obj, np.memmap) and obj.dtype != object and obj.ndim in (2, 3)
    shape = getattr(obj, "shape", None)
    return (shape is not None and hasattr(obj, "dtype") and hasattr(obj, "__getitem__")
            and not hasattr(obj, "columns") and len(shape) in (2, 3) and not _is_sparse(obj))


def is_chunked_array(obj, chunk_size: int | None = None) -> bool:
    """Whether ``obj`` is best processed a chunk of series at a time: a lazy array
    (:func:`is_lazy_array`) or a NumPy array of more than ``chunk_size`` series
    (:data:`CHUNK_SIZE` by default)."""
    if is_lazy_array(obj):
        return True
    size = CHUNK_SIZE if chunk_size is None else chunk_size
    return (isinstance(obj, np.ndarray) and obj.dtype != object and obj.ndim in (2, 3)
            and obj.shape[0] > size)


def map_chunks(func, X, chunk_size: int | None = None) -> np.ndarray:
    """``func`` of the series of ``X`` a chunk at a time, stacked in one array.

    ``X`` is any array :class:`ArraySource` reads (only the chunk at hand is converted to the
    data contract); ``func`` maps ``(n, n_channels, length)`` float32 series to an array with
    one row per series; ``chunk_size`` defaults to :data:`CHUNK_SIZE`. The output is
    allocated once, from the first chunk's result, so memory holds the output and one
    chunk, never a copy of ``X``.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.arange(20, dtype=np.float32).reshape(10, 2)  # 10 univariate series
    >>> map_chunks(lambda c: np.nanmean(c, axis=(1, 2)), X, chunk_size=4)[:3]
    array([0.5, 2.5, 4.5], dtype=float32)
    """
    source = ArraySource(X)
    out = None
    for chunk in source.chunks(CHUNK_SIZE if chunk_size is None else chunk_size):
        part = np.asarray(func(chunk.X))
        if out is None:
            out = np.empty((source.n_series,) + part.shape[1:], dtype=part.dtype)
        out[int(chunk.ids[0]):int(chunk.ids[0]) + len(part)] = part
    if out is None:
        return np.asarray(func(np.zeros((0, 1, 1), dtype=np.float32)))
    return out


# ---------------------------------------------------------------------- helpers

def _lengths(X: np.ndarray) -> np.ndarray:
    from ..data import series_lengths

    return series_lengths(X)


def _checked(X, where: str) -> np.ndarray:
    return check_dataset(np.asarray(X, dtype=np.float32), name=where)


def _rechunk(chunks: Iterator[Chunk], size: int) -> Iterator[Chunk]:
    """Regroup chunks into ``size`` series each (the last may be smaller)."""
    pending: list[Chunk] = []
    count = 0
    for chunk in itertools.chain(chunks, [None]):
        if chunk is not None:
            pending.append(chunk)
            count += len(chunk.ids)
        while count >= size or (chunk is None and count):
            ids = np.concatenate([c.ids for c in pending])
            X = _concat([c.X for c in pending])
            yield Chunk(ids[:size], X[:size])
            rest = Chunk(ids[size:], X[size:])
            pending = [rest] if len(rest.ids) else []
            count = len(rest.ids)


def _concat(arrays: list[np.ndarray]) -> np.ndarray:
    if len(arrays) == 1:
        return arrays[0]
    length = max(a.shape[2] for a in arrays)
    return np.concatenate([np.pad(a, ((0, 0), (0, 0), (0, length - a.shape[2])),
                                  constant_values=np.nan) for a in arrays])
