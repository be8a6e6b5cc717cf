"""Reading and writing fg-research's CSV contract.

Input files are headerless, with no index column: one row per series, one column per
time step. An empty cell is a missing value; empty cells at the end of a row mean the
series is shorter. Rows may have different numbers of fields.

Multivariate variant (this toolkit's own): with ``channels=C``, each series takes ``C``
consecutive rows, one per channel, in the same channel order for every series. A file of
``n * C`` rows holds ``n`` series.

Prediction files have the cluster label (written as a float, e.g. ``1.0``) in the first
column and the embedding in the following columns.
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path
from typing import IO

import numpy as np

from ..data import TimeSeriesValueError, check_dataset

__all__ = ["read_csv", "parse_csv_text", "write_csv", "write_predictions_csv",
           "format_predictions_csv"]

PathLike = str | os.PathLike


def read_csv(path: PathLike, *, channels: int = 1, min_observed: int = 2) -> np.ndarray:
    """Read a CSV file of time series into the toolkit's array.

    Parameters
    ----------
    path : str or path-like
        A headerless CSV file, one series per row (or ``channels`` rows per series).
    channels : int, default=1
        Number of consecutive rows that make one multivariate series.
    min_observed : int, default=2
        Fewest observed values a series may have.

    Returns
    -------
    X : ndarray of shape (n_series, channels, length), float32

    Raises
    ------
    TimeSeriesValueError
        If the file cannot be read, is empty, or holds a non-numeric cell (the message
        names its row and column, counted from 1), an infinite value, or a series with
        too few observed values.

    Examples
    --------
    >>> import tempfile, os
    >>> from tsc_toolkit import read_csv
    >>> path = os.path.join(tempfile.mkdtemp(), "x.csv")
    >>> _ = open(path, "w").write("1,2,3,4\\n5,,7,\\n")
    >>> X = read_csv(path)
    >>> X.shape
    (2, 1, 4)
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise TimeSeriesValueError(f"No such file: {str(path)!r}.") from None
    except IsADirectoryError:
        raise TimeSeriesValueError(
            f"{str(path)!r} is a directory; pass the path of a CSV file.") from None
    except UnicodeDecodeError as err:
        raise TimeSeriesValueError(
            f"{str(path)!r} is not a UTF-8 text file (byte {err.start} cannot be decoded); "
            "is it a CSV file?") from None
    except OSError as err:
        raise TimeSeriesValueError(f"Cannot read {str(path)!r}: {err.strerror}.") from None
    return parse_csv_text(text, channels=channels, min_observed=min_observed, source=str(path))


def parse_csv_text(text: str, *, channels: int = 1, min_observed: int = 2,
                   source: str = "the CSV data", first_line: int = 1) -> np.ndarray:
    """Parse CSV text in fg-research's contract (see :func:`read_csv`).

    ``first_line`` is the file row of the text's first line, for messages about a block of
    a larger file.
    """
    if not isinstance(channels, (int, np.integer)) or channels < 1:
        raise TimeSeriesValueError(f"channels must be a positive integer, got {channels!r}.")
    rows, linenos = _parse_rows(text, source, first_line)
    if not rows:
        raise TimeSeriesValueError(f"{source} is empty: it holds no time series.")
    if len(rows) % channels:
        raise TimeSeriesValueError(
            f"{source} has {len(rows)} rows, which is not a multiple of channels={channels}: "
            "each series must take exactly that many consecutive rows."
        )
    length = max(len(r) for r in rows)
    flat = np.full((len(rows), length), np.nan, dtype=np.float32)
    for i, r in enumerate(rows):
        flat[i, : len(r)] = r
    X = flat.reshape(len(rows) // channels, channels, length)
    inf = np.isinf(X)
    if inf.any():
        i, ch, t = (int(v) for v in np.argwhere(inf)[0])
        raise TimeSeriesValueError(
            f"{source}: row {linenos[i * channels + ch]}, column {t + 1} is infinite. "
            "Leave the cell empty if the value is missing."
        )
    def where(i):
        first = linenos[i * channels]
        if channels == 1:
            return f"the series on row {first}"
        return f"the series on rows {first}-{linenos[i * channels + channels - 1]}"

    return check_dataset(X, min_observed=min_observed, name=source, where=where)


def _parse_rows(text: str, source: str, first_line: int = 1
                ) -> tuple[list[np.ndarray], list[int]]:
    rows: list[np.ndarray] = []
    linenos: list[int] = []
    for lineno, line in enumerate(text.splitlines(), start=first_line):
        if not line.strip():
            continue  # blank lines (a trailing newline) carry no series
        cells = line.split(",")
        try:
            values = np.array([float(c) if c.strip() else np.nan for c in cells],
                              dtype=np.float64)
        except ValueError:
            col, cell = next((k + 1, c) for k, c in enumerate(cells) if not _is_number(c))
            hint = (" The file must have no header row." if lineno == 1 else "")
            raise TimeSeriesValueError(
                f"{source}: row {lineno}, column {col} holds {cell.strip()!r}, which is not a "
                f"number. Leave the cell empty for a missing value.{hint}"
            ) from None
        rows.append(values)
        linenos.append(lineno)
    return rows, linenos


def _is_number(cell: str) -> bool:
    if not cell.strip():
        return True
    try:
        float(cell)
    except ValueError:
        return False
    return True


def write_csv(X: np.ndarray, path_or_buf: PathLike | IO[str]) -> None:
    """Write series in fg-research's contract: one row per channel of each series.

    Missing values are written as empty cells and trailing padding is dropped, so
    :func:`read_csv` (with the same ``channels``) reads the file back.
    """
    X = np.asarray(X)
    if X.ndim == 2:
        X = X[:, None, :]
    lines = []
    for series in X:
        for channel in series:
            observed = np.flatnonzero(~np.isnan(channel))
            end = observed[-1] + 1 if observed.size else 0
            lines.append(",".join("" if np.isnan(v) else repr(float(v)) for v in channel[:end]))
    _write_text("\n".join(lines) + "\n", path_or_buf)


def format_predictions_csv(labels: np.ndarray, embeddings: np.ndarray) -> str:
    """Format predictions as fg-research does: label (as a float), then the embedding."""
    labels = np.asarray(labels)
    embeddings = np.asarray(embeddings, dtype=np.float32)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    for label, row in zip(labels, embeddings):
        writer.writerow([repr(float(label))] + [repr(float(v)) for v in row])
    return buf.getvalue()


def write_predictions_csv(labels: np.ndarray, embeddings: np.ndarray,
                          path_or_buf: PathLike | IO[str]) -> None:
    """Write predictions in fg-research's output contract (see :func:`format_predictions_csv`)."""
    _write_text(format_predictions_csv(labels, embeddings), path_or_buf)


def _write_text(text: str, path_or_buf) -> None:
    if hasattr(path_or_buf, "write"):
        path_or_buf.write(text)
    else:
        Path(path_or_buf).write_text(text, encoding="utf-8")
