"""Put a large local collection of series on S3 as several files, for a batch transform.

A SageMaker batch transform hands each S3 object under its input prefix to one instance, so
a single large file keeps one instance busy while the others idle. :func:`upload_series`
streams any source (see :mod:`tsc_toolkit.io.sources`) into ``parts`` fg-style CSV files of
consecutive series, a chunk at a time, and uploads them; give ``parts`` at least the
transform's ``instance_count`` (a few times it evens out the load).
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

__all__ = ["upload_series"]


def upload_series(source, s3_prefix: str, *, parts: int, boto_session=None,
                  chunk_size: int = 4096, **open_options) -> list[str]:
    """Write ``source`` as ``parts`` CSV files under ``s3_prefix``; returns their S3 URIs.

    Parameters
    ----------
    source : path, array, SeriesSource or iterable of chunks
        Anything :func:`tsc_toolkit.io.sources.open_series` opens (``channels=`` and the Parquet
        options go in ``open_options``). A source that does not know its length is read twice
        (once to count).
    s3_prefix : str
        ``s3://bucket/prefix/``; the files are ``part-00000.csv``, ``part-00001.csv``, ...
        in the order of the series, so the transform's ``.out`` files, read in name order,
        follow the source's order.
    parts : int
        Number of files (at most one per series).
    boto_session : boto3.Session, optional
    chunk_size : int, default=4096
        Series held in memory at a time.

    Returns
    -------
    list of str
    """
    from ..io.csvio import write_csv
    from ..io.sources import open_series
    from .shared.aws import split_s3_uri

    source = open_series(source, **open_options)
    total = source.n_series
    if total is None:
        total = sum(len(chunk.ids) for chunk in source.chunks(chunk_size))
    if parts < 1 or total < 1:
        raise ValueError(f"Need at least one part and one series (parts={parts}, "
                         f"series={total}).")
    parts = min(parts, total)
    per_part = math.ceil(total / parts)
    bucket, prefix = split_s3_uri(s3_prefix)
    prefix = prefix.rstrip("/")
    if boto_session is None:
        import boto3

        boto_session = boto3.Session()
    s3 = boto_session.client("s3")
    uris = []
    with tempfile.TemporaryDirectory(prefix="tsc-upload-") as tmp:
        paths = [Path(tmp) / f"part-{i:05d}.csv" for i in range(math.ceil(total / per_part))]
        handles = [open(p, "w", encoding="utf-8") for p in paths]  # noqa: SIM115
        try:
            seen = 0
            for chunk in source.chunks(chunk_size):
                # split the chunk where it crosses a part boundary
                offset = 0
                while offset < len(chunk.ids):
                    part = (seen + offset) // per_part
                    take = min(len(chunk.ids) - offset, (part + 1) * per_part - seen - offset)
                    write_csv(chunk.X[offset:offset + take], handles[part])
                    offset += take
                seen += len(chunk.ids)
        finally:
            for fh in handles:
                fh.close()
        for path in paths:
            key = f"{prefix}/{path.name}".lstrip("/")
            s3.upload_file(str(path), bucket, key)
            uris.append(f"s3://{bucket}/{key}")
    return uris
