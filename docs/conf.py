"""Sphinx configuration of the documentation site: ``make docs`` builds it into build/docs/html.

The pages are Markdown (MyST) and reStructuredText under ``docs/``; the API reference comes from
the numpydoc docstrings (``docs/api/``); the tutorial notebooks are rendered from the outputs
stored in ``notebooks/`` (the site builds offline and runs no notebook). Every warning is an
error in ``make docs`` and in ``tests/test_docs.py``.
"""

from __future__ import annotations

import filecmp
import shutil
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(ROOT))

import tsc_toolkit  # noqa: E402

project = "tsc_toolkit"
author = "tsc_toolkit contributors"
copyright = "tsc_toolkit contributors, Apache-2.0"
release = version = tsc_toolkit.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "numpydoc",
    "myst_nb",
]

# The notebooks live in notebooks/ (nbval tests them there); Sphinx reads only its source folder,
# so they are copied next to the pages, into a folder that git ignores.
NOTEBOOKS = DOCS / "notebooks"


def _copy_notebooks() -> None:
    NOTEBOOKS.mkdir(exist_ok=True)
    wanted = {p.name: p for p in sorted((ROOT / "notebooks").glob("*.ipynb"))}
    for stale in NOTEBOOKS.glob("*.ipynb"):
        if stale.name not in wanted:
            stale.unlink()
    for name, source in wanted.items():
        target = NOTEBOOKS / name
        # copy only what changed, so that an incremental build rereads only those
        if not target.exists() or not filecmp.cmp(source, target, shallow=False):
            shutil.copyfile(source, target)


_copy_notebooks()

source_suffix = {".rst": "restructuredtext", ".md": "myst-nb", ".ipynb": "myst-nb"}
root_doc = "index"
exclude_patterns = [
    "_build",
    # the README's results section as `make bench` writes it (links relative to the repository
    # root); the same tables are in benchmarks.md, which the site shows
    "results_summary.md",
]
templates_path = []

# Markdown: heading anchors for links such as page.md#a-section, and no network at build time.
myst_heading_anchors = 3
myst_enable_extensions = ["colon_fence", "deflist"]
nb_execution_mode = "off"  # the notebooks are shown with their stored (fast-mode) outputs
nb_merge_streams = True

# API reference: numpydoc renders the docstrings; classes list their methods through autodoc.
# (Members are listed per class in docs/api/, so that a module page documents only its own names.)
autodoc_default_options = {"member-order": "bysource"}
autodoc_typehints = "none"  # the numpydoc Parameters sections already give the types
autosummary_generate = False
numpydoc_show_class_members = False
numpydoc_xref_param_type = False
numpydoc_validation_checks = set()

html_theme = "furo"
html_title = f"tsc_toolkit {release}"
html_theme_options = {"navigation_with_keys": True}
html_last_updated_fmt = None
html_show_sourcelink = False
# no intersphinx: the site builds and reads without network access


def _skip_member(app, what, name, obj, skip, options):
    """Leave out the ``set_*_request`` methods that scikit-learn adds to every estimator.

    They document scikit-learn's metadata routing, not this package, and refer to scikit-learn's
    glossary, which this site does not have.
    """
    if name.startswith("set_") and name.endswith("_request"):
        return True
    return None


def setup(app):
    app.connect("autodoc-skip-member", _skip_member)
