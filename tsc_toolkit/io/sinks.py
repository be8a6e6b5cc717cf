"""Results written a chunk at a time: ``.npy``, Parquet, or fg's CSV contract.

A writer receives the results of one chunk of series at a time (ids, and any of cluster,
distance and embedding) and appends them to its file, so memory never holds more than one
chunk. What each format holds:

========== ======================= ============================ =====================================
result     ``.npy``                ``.csv`` (fg)                ``.parquet``
========== ======================= ============================ =====================================
transform  (n, d) float32          embedding per row            series_id, embedding_0 ...
predict    (n,) int64              label per row                series_id, closest_cluster
assign     (n, 2 + d) float32:     label, embedding (what       series_id, closest_cluster,
           label, distance,        ``tsc-toolkit predict``      distance_to_cluster, embedding_0 ...
           embedding               writes)
========== ======================= ============================ =====================================
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path
from typing import IO

import numpy as np

__all__ = ["ResultWriter", "NpyWriter", "CSVWriter", "ParquetWriter", "open_writer", "KINDS"]

KINDS = ("transform", "predict", "assign")
#: Room for the shape of any array in the ``.npy`` header, written before the row count is known.
_NPY_HEADER_BYTES = 128


class ResultWriter:
    """Base of the writers: ``write(ids, labels, distances, embeddings)`` per chunk, then close.

    Usable as a context manager. ``path`` is the file written (None for a text stream).
    """

    def __init__(self, kind: str):
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {kind!r}.")
        self.kind = kind
        self.rows = 0
        self.path: Path | None = None

    def write(self, ids, labels=None, distances=None, embeddings=None) -> None:
        self._write(np.asarray(ids), labels, distances, embeddings)
        self.rows += len(ids)

    def _write(self, ids, labels, distances, embeddings) -> None:  # pragma: no cover
        raise NotImplementedError

    def close(self) -> None:
        """Finish the file."""

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class NpyWriter(ResultWriter):
    """A ``.npy`` file grown row by row; the header gets the final row count on close."""

    def __init__(self, path, kind: str):
        super().__init__(kind)
        self.path = Path(path)
        self._fh = open(self.path, "wb")  # noqa: SIM115 - closed in close()
        self._fh.write(b"\0" * _NPY_HEADER_BYTES)
        self._dtype = np.dtype(np.int64 if kind == "predict" else np.float32)
        self._width: int | None = None

    def _write(self, ids, labels, distances, embeddings) -> None:
        if self.kind == "transform":
            block = np.asarray(embeddings, dtype=np.float32)
        elif self.kind == "predict":
            block = np.asarray(labels, dtype=np.int64)
        else:
            block = np.column_stack([np.asarray(labels, dtype=np.float32),
                                     np.asarray(distances, dtype=np.float32),
                                     np.asarray(embeddings, dtype=np.float32)])
        if block.ndim == 2:
            self._width = block.shape[1]
        self._fh.write(np.ascontiguousarray(block, dtype=self._dtype).tobytes())

    def close(self) -> None:
        if self._fh.closed:
            return
        shape = (self.rows,) if self.kind == "predict" else (self.rows, self._width or 0)
        header = repr({"descr": np.lib.format.dtype_to_descr(self._dtype),
                       "fortran_order": False, "shape": shape})
        prefix = b"\x93NUMPY\x01\x00"
        room = _NPY_HEADER_BYTES - len(prefix) - 2
        text = header.encode("latin1").ljust(room - 1) + b"\n"
        if len(text) != room:
            raise ValueError(f"The .npy header for shape {shape} does not fit.")
        self._fh.seek(0)
        self._fh.write(prefix + room.to_bytes(2, "little") + text)
        self._fh.close()


class CSVWriter(ResultWriter):
    """fg-research's CSV contract: label (as a float) first, then the embedding."""

    def __init__(self, path_or_buf: str | os.PathLike | IO[str], kind: str):
        super().__init__(kind)
        if hasattr(path_or_buf, "write"):
            self._fh, self._own = path_or_buf, False
        else:
            self.path = Path(path_or_buf)
            self._fh, self._own = open(self.path, "w", encoding="utf-8", newline=""), True  # noqa: SIM115

    def _write(self, ids, labels, distances, embeddings) -> None:
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        n = len(ids)
        emb = (np.asarray(embeddings, dtype=np.float32) if self.kind != "predict"
               else np.empty((n, 0), np.float32))
        head = [[]] * n if self.kind == "transform" else [[repr(float(v))] for v in labels]
        for first, row in zip(head, emb):
            writer.writerow(first + [repr(float(v)) for v in row])
        self._fh.write(buf.getvalue())

    def close(self) -> None:
        if self._own:
            self._fh.close()
        else:
            self._fh.flush()


class ParquetWriter(ResultWriter):
    """A Parquet file with one row group per chunk (needs the ``parquet`` extra)."""

    def __init__(self, path, kind: str):
        super().__init__(kind)
        from .sources import require_pyarrow

        require_pyarrow()
        self.path = Path(path)
        self._writer = None

    def _write(self, ids, labels, distances, embeddings) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        columns = {"series_id": pa.array(ids)}
        if self.kind != "transform":
            columns["closest_cluster"] = pa.array(np.asarray(labels, dtype=np.int64))
        if self.kind == "assign":
            columns["distance_to_cluster"] = pa.array(np.asarray(distances, dtype=np.float32))
        if self.kind != "predict":
            emb = np.asarray(embeddings, dtype=np.float32)
            for j in range(emb.shape[1]):
                columns[f"embedding_{j}"] = pa.array(emb[:, j])
        table = pa.table(columns)
        if self._writer is None:
            self._writer = pq.ParquetWriter(self.path, table.schema)
        self._writer.write_table(table)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def open_writer(output, kind: str) -> ResultWriter:
    """The writer for ``output``: chosen by suffix (``.npy``, ``.parquet``/``.pq``, else CSV);
    a text stream (such as ``sys.stdout``) gets CSV."""
    if hasattr(output, "write"):
        return CSVWriter(output, kind)
    suffix = Path(output).suffix.lower()
    if suffix == ".npy":
        return NpyWriter(output, kind)
    if suffix in (".parquet", ".pq"):
        return ParquetWriter(output, kind)
    return CSVWriter(output, kind)
