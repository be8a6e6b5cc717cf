"""The one data convention of the toolkit and the converters into it.

Every array of time series inside tsc_toolkit is a float32 array shaped
``(n_series, n_channels, length)``. A NaN *after* the last observed step of a
series means "this series is shorter"; a NaN *before* it means "this value is
missing". :func:`as_dataset` turns what users have (numpy arrays, ragged lists,
pandas frames) into that array and validates it, so the rest of the library never
has to look at another layout.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

__all__ = [
    "TimeSeriesValueError",
    "NonNumericValueError",
    "as_dataset",
    "from_long_frame",
    "check_dataset",
    "series_lengths",
    "observed_mask",
    "count_missing",
]


class TimeSeriesValueError(ValueError):
    """Raised when input data cannot be turned into a valid time series dataset.

    The message always says what is wrong and where (series, channel, step, or file
    row and column), so that the user can fix the input.
    """


_LONG_ID = ("series_id", "series", "id", "unique_id")
_LONG_TIME = ("time", "timestamp", "t", "step", "ds")
_LONG_VALUE = ("value", "y", "values")
_LONG_CHANNEL = ("channel", "dim", "dimension", "variable")


class NonNumericValueError(TimeSeriesValueError, TypeError):
    """A value that is not a number; also a TypeError, as NumPy raises for one."""


def as_dataset(obj: Any, *, min_observed: int = 2, name: str = "X") -> np.ndarray:
    """Convert time series in any supported layout into the toolkit's array.

    Parameters
    ----------
    obj : array-like, list of arrays, or pandas DataFrame
        - a 3-D array ``(n_series, n_channels, length)``;
        - a 2-D array ``(n_series, length)`` of univariate series;
        - a 1-D array: one univariate series;
        - a list of 1-D arrays (univariate series of any lengths) or of 2-D arrays
          ``(n_channels, length_i)``; shorter series are padded with trailing NaN;
        - a wide :class:`pandas.DataFrame` (one row per series, one column per step);
        - a long (tidy) DataFrame with columns ``series_id``, ``time``, ``value`` and
          optionally ``channel`` (see :func:`from_long_frame` for other names).
    min_observed : int, default=2
        Fewest observed values a series may have.
    name : str, default="X"
        Name used in error messages.

    Returns
    -------
    X : ndarray of shape (n_series, n_channels, length), dtype float32
        NaN marks missing values (inside a series) and padding (after its end).

    Raises
    ------
    TimeSeriesValueError
        For non-numeric values, infinities, empty input, series with fewer than
        ``min_observed`` observed values, or lists mixing channel counts.

    Examples
    --------
    >>> import numpy as np
    >>> from tsc_toolkit import as_dataset
    >>> X = as_dataset([np.arange(5.0), np.arange(3.0)])
    >>> X.shape, X.dtype
    ((2, 1, 5), dtype('float32'))
    >>> bool(np.isnan(X[1, 0, 3:]).all())
    True
    """
    X = _convert(obj, name)
    return check_dataset(X, min_observed=min_observed, name=name)


def _convert(obj: Any, name: str) -> np.ndarray:
    try:
        import pandas as pd
    except ImportError:  # pragma: no cover - pandas is a dependency
        pd = None

    if pd is not None and isinstance(obj, pd.DataFrame):
        if _long_columns(obj) is not None:
            ids, time, value, channel = _long_columns(obj)
            return from_long_frame(obj, id_col=ids, time_col=time, value_col=value,
                                   channel_col=channel, validate=False)
        return _numeric_2d(obj.to_numpy(), name, frame=obj)[:, None, :]
    if pd is not None and isinstance(obj, pd.Series):
        obj = obj.to_numpy()
    if _is_sparse(obj):
        raise TimeSeriesValueError(
            f"Sparse input is not supported: {name} is a sparse {type(obj).__name__}; time "
            "series are dense arrays (NaN marks a missing value), so pass X.toarray().")
    if not isinstance(obj, (np.ndarray, list, tuple)) and hasattr(obj, "__array__"):
        obj = np.asarray(obj)  # array-likes (xarray, dask, ...) as the array they stand for

    if isinstance(obj, np.ndarray) and obj.dtype != object:
        arr = _to_float(obj, name)
        if arr.ndim == 1:
            return arr[None, None, :]
        if arr.ndim == 2:
            if arr.shape[1] == 0:
                raise TimeSeriesValueError(
                    f"Found array with 0 feature(s) (shape={arr.shape}) while a minimum of 1 "
                    f"is required: the series of {name} have no time step.")
            return arr[:, None, :]
        if arr.ndim == 3:
            return arr
        raise TimeSeriesValueError(
            f"{name} has {arr.ndim} dimensions; expected 1 (one series), 2 (n_series, length) "
            "or 3 (n_series, n_channels, length)."
        )

    if isinstance(obj, (str, bytes)) or not isinstance(obj, Iterable):
        raise TimeSeriesValueError(
            f"{name} must be an array, a list of arrays or a pandas DataFrame, "
            f"not {type(obj).__name__}. To read a CSV file use tsc_toolkit.read_csv(path)."
        )
    items = list(obj)
    if not items:
        raise TimeSeriesValueError(f"{name} is empty: it holds no time series.")
    if all(np.isscalar(v) or v is None for v in items):
        return _to_float(np.asarray(items, dtype=object), name)[None, None, :]
    return _ragged(items, name)


def _ragged(items: Sequence[Any], name: str) -> np.ndarray:
    series = []
    for i, item in enumerate(items):
        arr = _to_float(np.asarray(item, dtype=object) if not isinstance(item, np.ndarray)
                        else item, f"{name}[{i}]")
        if arr.ndim == 1:
            arr = arr[None, :]
        elif arr.ndim != 2:
            raise TimeSeriesValueError(
                f"{name}[{i}] has {arr.ndim} dimensions; each series must be 1-D (length,) "
                "or 2-D (n_channels, length)."
            )
        series.append(arr)
    channels = {s.shape[0] for s in series}
    if len(channels) > 1:
        first = series[0].shape[0]
        bad = next(i for i, s in enumerate(series) if s.shape[0] != first)
        raise TimeSeriesValueError(
            f"{name} mixes channel counts: series 0 has {first} channel(s) but series {bad} has "
            f"{series[bad].shape[0]}. Every series needs the same channels; use NaN for a "
            "channel that was not recorded."
        )
    length = max(s.shape[1] for s in series)
    out = np.full((len(series), series[0].shape[0], length), np.nan, dtype=np.float32)
    for i, s in enumerate(series):
        out[i, :, : s.shape[1]] = s
    return out


def _to_float(arr: np.ndarray, name: str) -> np.ndarray:
    if arr.dtype.kind in "fiub":
        return np.asarray(arr, dtype=np.float32)
    if arr.dtype.kind == "c":
        raise _complex_error(name)
    out = np.empty(arr.shape, dtype=np.float32)
    flat_in, flat_out = arr.reshape(-1), out.reshape(-1)
    for k, v in enumerate(flat_in):
        if v is None:
            flat_out[k] = np.nan
            continue
        if isinstance(v, (complex, np.complexfloating)):
            raise _complex_error(name)
        try:
            flat_out[k] = float(v)
        except (TypeError, ValueError) as err:
            where = np.unravel_index(k, arr.shape)
            raise NonNumericValueError(
                f"{name} holds a non-numeric value {v!r} at index {tuple(int(w) for w in where)} "
                f"({err}). Use NaN (or an empty cell in a CSV) for missing values."
            ) from None
    return out


def _complex_error(name: str) -> TimeSeriesValueError:
    # NumPy would keep the real part with only a ComplexWarning; a series is real-valued.
    return TimeSeriesValueError(
        f"Complex data not supported: {name} holds complex numbers, but a time series here is "
        "real-valued. Pass X.real, np.abs(X) or the two as channels if that is what you mean.")


def _is_sparse(obj: Any) -> bool:
    try:
        import scipy.sparse
    except ImportError:  # pragma: no cover - scipy is a dependency
        return False
    return scipy.sparse.issparse(obj)


def _numeric_2d(values: np.ndarray, name: str, frame=None) -> np.ndarray:
    try:
        return _to_float(values, name)
    except TimeSeriesValueError:
        if frame is None:
            raise
    # Name the row label and column label of the first bad cell.
    for col in frame.columns:
        for row, v in frame[col].items():
            if v is None:
                continue
            try:
                float(v)
            except (TypeError, ValueError):
                raise TimeSeriesValueError(
                    f"{name} holds a non-numeric value {v!r} in row {row!r}, column {col!r}. "
                    "A wide frame must hold one series per row and only numbers (NaN for missing)."
                ) from None
    raise AssertionError("unreachable")  # pragma: no cover


def _long_columns(frame) -> tuple[str, str, str, str | None] | None:
    cols = {str(c).lower(): c for c in frame.columns}

    def pick(names):
        return next((cols[n] for n in names if n in cols), None)

    ids, time, value = pick(_LONG_ID), pick(_LONG_TIME), pick(_LONG_VALUE)
    if ids is None or value is None or time is None:
        return None
    extra = set(frame.columns) - {ids, time, value}
    channel = pick(_LONG_CHANNEL)
    if extra - {channel}:
        return None
    return ids, time, value, channel


def from_long_frame(frame, id_col: str = "series_id", time_col: str = "time",
                    value_col: str = "value", channel_col: str | None = None,
                    *, min_observed: int = 2, validate: bool = True) -> np.ndarray:
    """Convert a long (tidy) DataFrame, one row per observation, into the toolkit's array.

    Rows are ordered by ``time_col`` within each series, and each distinct time of a
    series becomes one step. With ``channel_col``, a (series, time) pair lacking one
    channel gets NaN there: a missing value, not a shift in time.

    Examples
    --------
    >>> import pandas as pd
    >>> from tsc_toolkit.data import from_long_frame
    >>> df = pd.DataFrame({"series_id": [0, 0, 0, 1, 1], "time": [0, 1, 2, 0, 1],
    ...                    "value": [1.0, 2.0, 3.0, 5.0, 6.0]})
    >>> from_long_frame(df).shape
    (2, 1, 3)
    """
    import pandas as pd

    missing = [c for c in (id_col, time_col, value_col, channel_col)
               if c is not None and c not in frame.columns]
    if missing:
        raise TimeSeriesValueError(
            f"The long frame has no column(s) {missing}; it has {list(frame.columns)}. "
            "Pass id_col=, time_col=, value_col= (and channel_col=) to name yours."
        )
    if frame.empty:
        raise TimeSeriesValueError("The long frame is empty: it holds no observations.")
    values = pd.to_numeric(frame[value_col], errors="coerce")
    bad = values.isna() & frame[value_col].notna()
    if bad.any():
        row = bad.idxmax()
        raise TimeSeriesValueError(
            f"Column {value_col!r} holds a non-numeric value {frame.loc[row, value_col]!r} "
            f"in row {row!r}."
        )
    work = pd.DataFrame({"id": frame[id_col].to_numpy(), "time": frame[time_col].to_numpy(),
                         "value": values.to_numpy(dtype=float)})
    if channel_col is not None:
        work["channel"] = frame[channel_col].to_numpy()
        dup = work.duplicated(["id", "time", "channel"])
    else:
        work["channel"] = 0
        dup = work.duplicated(["id", "time"])
    if dup.any():
        row = frame.index[int(np.argmax(dup.to_numpy()))]
        raise TimeSeriesValueError(
            f"Row {row!r} repeats a (series, time{', channel' if channel_col else ''}) that "
            "already has a value; each observation must appear once."
        )
    series_ids = pd.unique(work["id"])
    channels = pd.unique(work["channel"])
    work["step"] = work.groupby("id")["time"].rank(method="dense").astype(int) - 1
    sid = pd.Index(series_ids).get_indexer(work["id"])
    cid = pd.Index(channels).get_indexer(work["channel"])
    length = int(work["step"].max()) + 1
    out = np.full((len(series_ids), len(channels), length), np.nan, dtype=np.float32)
    out[sid, cid, work["step"].to_numpy()] = work["value"].to_numpy(dtype=np.float32)
    if validate:
        return check_dataset(out, min_observed=min_observed, name="frame")
    return out


def observed_mask(X: np.ndarray) -> np.ndarray:
    """Boolean array, True where a value was observed (not NaN)."""
    return ~np.isnan(X)


def series_lengths(X: np.ndarray) -> np.ndarray:
    """Length of each series: one past its last step where any channel is observed.

    Trailing NaN (in every channel) is padding; NaN before the end is missing data.

    Examples
    --------
    >>> import numpy as np
    >>> from tsc_toolkit.data import series_lengths
    >>> X = np.array([[[1, np.nan, 3, np.nan]], [[1, 2, 3, 4]]], dtype=np.float32)
    >>> series_lengths(X).tolist()
    [3, 4]
    """
    any_obs = observed_mask(X).any(axis=1)  # (n, length)
    length = X.shape[2]
    last = length - np.argmax(any_obs[:, ::-1], axis=1)
    last[~any_obs.any(axis=1)] = 0
    return last.astype(np.int64)


def count_missing(X: np.ndarray) -> dict[str, int]:
    """Count missing values inside series and padding after them.

    Returns a dict with ``missing`` (NaN before the end of a series), ``padding``
    (trailing NaN) and ``total`` (every NaN, the figure fg-research's log prints).
    """
    lengths = series_lengths(X)
    total = int(np.isnan(X).sum())
    padding = int(((X.shape[2] - lengths) * X.shape[1]).sum())
    return {"missing": total - padding, "padding": padding, "total": total}


def check_dataset(X: np.ndarray, *, min_observed: int = 2, name: str = "X",
                  where=None) -> np.ndarray:
    """Validate an array in the toolkit's convention and return it as float32.

    Trailing steps that are NaN in every series are dropped. Raises
    :class:`TimeSeriesValueError` with the position of the first problem found.
    ``where(i)`` describes series ``i`` in messages (default ``"series i"``); readers of
    files pass one that names the file row.
    """
    if where is None:
        def where(i):
            return f"series {i}"
    X = np.asarray(X)
    if X.ndim != 3:
        raise TimeSeriesValueError(
            f"{name} must have shape (n_series, n_channels, length); got shape {X.shape}."
        )
    X = _to_float(X, name) if X.dtype != np.float32 else X
    n, c, length = X.shape
    if n == 0 or c == 0 or length == 0:
        raise TimeSeriesValueError(
            f"{name} is empty (shape {X.shape}): it needs at least one series, one channel "
            "and one time step."
        )
    inf = np.isinf(X)
    if inf.any():
        i, ch, t = (int(v) for v in np.argwhere(inf)[0])
        raise TimeSeriesValueError(
            f"{name} holds an infinite value in {where(i)}, channel {ch}, step {t}. "
            "Replace it with NaN if it is missing, or with a finite number."
        )
    observed = (~np.isnan(X)).any(axis=1).sum(axis=1)  # observed steps per series
    empty = np.flatnonzero(observed == 0)
    if empty.size:
        raise TimeSeriesValueError(
            f"{name}: {where(int(empty[0]))} has no observed values "
            f"({empty.size} such series in all). Remove all-missing series before clustering."
        )
    short = np.flatnonzero(observed < min_observed)
    if short.size:
        i = int(short[0])
        raise TimeSeriesValueError(
            f"{name}: {where(i)} has {int(observed[i])} observed value(s); at least "
            f"{min_observed} are needed ({short.size} such series in all)."
        )
    keep = int(series_lengths(X).max())
    if keep < length:
        X = X[:, :, :keep]
    return np.ascontiguousarray(X, dtype=np.float32)
