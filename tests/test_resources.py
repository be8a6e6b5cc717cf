"""Bundled files and the package's source are found in a checkout and in an installed copy."""

from pathlib import Path

import pytest

from tsc_toolkit import resources

ROOT = Path(__file__).resolve().parents[1]


def test_checkout_folders_are_used_when_the_package_has_no_bundled_copy():
    assert resources.bundled_dir("data") == ROOT / "data"
    assert resources.notebooks_dir() == ROOT / "notebooks"
    with pytest.raises(ValueError, match="'data' or 'notebooks'"):
        resources.bundled_dir("docs")


def test_an_installed_copy_prefers_its_bundled_folder(tmp_path, monkeypatch):
    package = tmp_path / "site-packages" / "tsc_toolkit"
    (package / resources.BUNDLED / "data").mkdir(parents=True)
    monkeypatch.setattr(resources, "_PACKAGE", package)
    assert resources.bundled_dir("data") == package / resources.BUNDLED / "data"
    # a folder the wheel lacks falls back to where a checkout would have it
    assert resources.notebooks_dir() == tmp_path / "site-packages" / "notebooks"


def test_source_files_are_the_modules_without_caches_or_bundled_files(tmp_path, monkeypatch):
    package = tmp_path / "tsc_toolkit"
    for name in ("__init__.py", "py.typed", "sagemaker/train.py", "__pycache__/x.cpython.pyc",
                 "_bundled/data/GunPoint.npz", "_bundled/notebooks/helper.py", "notes.txt"):
        (package / name).parent.mkdir(parents=True, exist_ok=True)
        (package / name).write_text("")
    monkeypatch.setattr(resources, "_PACKAGE", package)
    assert [name for _, name in resources.source_files()] == [
        "__init__.py", "py.typed", "sagemaker/train.py"]
