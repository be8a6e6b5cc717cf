"""Files that come with the toolkit: bundled data sets, notebooks, and the package's own source.

In a source checkout the data sets and notebooks are the repository's ``data/`` and
``notebooks/`` folders. A built wheel carries copies of them inside the package, under
``tsc_toolkit/_bundled/`` (``setup.py`` puts them there), so an installed copy is complete
without the checkout. The functions here find whichever is present.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

__all__ = ["bundled_dir", "notebooks_dir", "copy_notebooks", "source_files", "BUNDLED"]

_PACKAGE = Path(__file__).resolve().parent

#: Name of the folder inside the installed package that holds the bundled files.
BUNDLED = "_bundled"


def bundled_dir(name: str) -> Path:
    """Folder ``name`` (``"data"`` or ``"notebooks"``) of the installed package or the checkout.

    Parameters
    ----------
    name : {"data", "notebooks"}

    Returns
    -------
    Path
        ``tsc_toolkit/_bundled/<name>`` in an installed wheel, else ``<checkout>/<name>``;
        the path is returned even when it does not exist, so callers can name it in errors.

    Examples
    --------
    >>> from tsc_toolkit.resources import bundled_dir
    >>> (bundled_dir("data") / "GunPoint.npz").is_file()
    True
    """
    if name not in ("data", "notebooks"):
        raise ValueError(f"name must be 'data' or 'notebooks', got {name!r}.")
    packaged = _PACKAGE / BUNDLED / name
    if packaged.is_dir():
        return packaged
    return _PACKAGE.parent / name


def notebooks_dir() -> Path:
    """Folder holding the tutorial notebooks (``*.ipynb``) of this copy of the toolkit."""
    return bundled_dir("notebooks")


def copy_notebooks(dest: str | os.PathLike, *, overwrite: bool = False) -> list[Path]:
    """Copy the tutorial notebooks (and their README) into ``dest``; returns the files written.

    Parameters
    ----------
    dest : path
        Target folder, created when missing.
    overwrite : bool, default=False
        Replace notebooks already in ``dest``; by default an existing file is an error, so
        that edits made to an earlier copy are never lost.

    Returns
    -------
    list of Path
    """
    src = notebooks_dir()
    files = sorted(src.glob("*.ipynb"))
    if not files:
        raise FileNotFoundError(f"No notebooks found in {src}.")
    readme = src / "README.md"
    if readme.is_file():
        files.append(readme)
    dest = Path(dest)
    clashes = [dest / f.name for f in files if (dest / f.name).exists()]
    if clashes and not overwrite:
        raise FileExistsError(f"{clashes[0]} already exists; pass overwrite=True "
                              f"(--overwrite) to replace the notebooks in {dest}.")
    dest.mkdir(parents=True, exist_ok=True)
    return [Path(shutil.copy2(f, dest / f.name)) for f in files]


def source_files() -> Iterator[tuple[Path, str]]:
    """The toolkit's own source files, as ``(path, name inside the package)``, sorted.

    What a SageMaker job or model archive needs to import ``tsc_toolkit``: every ``.py`` file
    and ``py.typed``, wherever this copy is installed (a checkout or site-packages), without
    caches and without the bundled data sets and notebooks.
    """
    for path in sorted(_PACKAGE.rglob("*")):
        rel = path.relative_to(_PACKAGE)
        if not path.is_file() or "__pycache__" in rel.parts or rel.parts[0] == BUNDLED:
            continue
        if path.suffix == ".py" or path.name == "py.typed":
            yield path, rel.as_posix()
