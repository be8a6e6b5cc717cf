"""Unpack model and code archives without letting an archive write outside its folder.

Model archives come from S3, from other people's jobs, or from requests: an entry with an
absolute path, a ``..`` component, a link or a device file is refused rather than extracted.
"""

from __future__ import annotations

import os
import tarfile
from pathlib import Path

__all__ = ["UnsafeArchiveError", "extract_tar"]


class UnsafeArchiveError(ValueError):
    """An archive entry would land outside the target folder or is not a plain file."""


def extract_tar(archive: tarfile.TarFile | str | os.PathLike, target: str | os.PathLike) -> Path:
    """Extract a tar archive into ``target``, accepting only plain files and folders inside it.

    Parameters
    ----------
    archive : tarfile.TarFile or path
        An open archive, or the path of one (any compression tarfile reads).
    target : path
        Folder to extract into (created when missing).

    Returns
    -------
    Path
        ``target``.

    Raises
    ------
    UnsafeArchiveError
        For an absolute path, a ``..`` component, a link, or anything but a file or folder;
        nothing is extracted then.

    Examples
    --------
    >>> import io, tarfile, tempfile
    >>> from tsc_toolkit.io.archives import extract_tar
    >>> buf = io.BytesIO()
    >>> with tarfile.open(fileobj=buf, mode="w") as tar:
    ...     info = tarfile.TarInfo("../escape.txt"); info.size = 0
    ...     tar.addfile(info, io.BytesIO(b""))
    >>> _ = buf.seek(0)
    >>> extract_tar(tarfile.open(fileobj=buf), tempfile.mkdtemp())
    Traceback (most recent call last):
    ...
    tsc_toolkit.io.archives.UnsafeArchiveError: Archive entry '../escape.txt' points outside the target folder.
    """
    if not isinstance(archive, tarfile.TarFile):
        with tarfile.open(archive) as tar:
            return extract_tar(tar, target)
    target = Path(target)
    target.mkdir(parents=True, exist_ok=True)
    root = target.resolve()
    members = archive.getmembers()
    for m in members:
        path = Path(m.name)
        if path.is_absolute() or ".." in path.parts or \
                not (root / path).resolve().is_relative_to(root):
            raise UnsafeArchiveError(
                f"Archive entry {m.name!r} points outside the target folder.")
        if not (m.isfile() or m.isdir()):
            raise UnsafeArchiveError(
                f"Archive entry {m.name!r} is a link or special file; only files and folders "
                f"are accepted.")
    if hasattr(tarfile, "data_filter"):  # Python 3.10.12+: also drops unsafe modes
        archive.extractall(target, members=members, filter="data")
    else:  # pragma: no cover  (older Pythons; the checks above already ran)
        archive.extractall(target, members=members)  # noqa: S202
    return target
