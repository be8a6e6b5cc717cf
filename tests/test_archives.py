"""Archives from S3 or requests cannot write outside their folder."""

import io
import tarfile

import pytest

from tsc_toolkit.io.archives import UnsafeArchiveError, extract_tar


def _archive(tmp_path, entries):
    path = tmp_path / "model.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        for name, kind, data in entries:
            info = tarfile.TarInfo(name)
            if kind == "file":
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            elif kind == "dir":
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            else:
                info.type = tarfile.SYMTYPE
                info.linkname = data
                tar.addfile(info)
    return path


def test_plain_files_and_folders_are_extracted(tmp_path):
    path = _archive(tmp_path, [("code", "dir", b""), ("code/inference.py", "file", b"x = 1\n"),
                               ("config.json", "file", b"{}")])
    out = extract_tar(path, tmp_path / "out")
    assert (out / "code" / "inference.py").read_bytes() == b"x = 1\n"
    assert (out / "config.json").read_text() == "{}"


@pytest.mark.parametrize("entry", [
    ("../escape.txt", "file", b"x"),
    ("/etc/evil.txt", "file", b"x"),
    ("code/../../escape.txt", "file", b"x"),
    ("link", "symlink", "/etc/passwd"),
])
def test_entries_outside_the_folder_or_links_are_refused_and_nothing_is_written(tmp_path, entry):
    path = _archive(tmp_path, [("ok.txt", "file", b"fine"), entry])
    with pytest.raises(UnsafeArchiveError, match=entry[0].split("/")[-1]):
        extract_tar(path, tmp_path / "out")
    assert not (tmp_path / "out" / "ok.txt").exists()
    assert not (tmp_path / "escape.txt").exists()
