"""The module paths of before the package was laid out by stage, kept importable.

``import tsc_toolkit.graph_clustering`` (or ``from tsc_toolkit.kmeans import WebScaleKMeans``)
gives the module at its new place, the very same object, so code, notebooks and patches written
for the old paths keep working. Nothing is imported until an old path is asked for.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys

#: Old module path -> where it lives now.
MOVED = {
    **{f"tsc_toolkit.{name}": f"tsc_toolkit.io.{name}" for name in
       ("csvio", "sources", "sinks", "ndarray_file", "archives", "datasets")},
    **{f"tsc_toolkit.{name}": f"tsc_toolkit.embedding.{name}" for name in
       ("encoder", "triplet", "training", "checkpoints", "scaling")},
    "tsc_toolkit.random_kernels": "tsc_toolkit.views.random_kernels",
    **{f"tsc_toolkit.{name}": f"tsc_toolkit.clustering.{name}" for name in
       ("graph_clustering", "kmeans", "selection")},
}


class _OldPaths(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds an old path and hands back the module of its new one."""

    def __init__(self):
        self._specs: dict = {}

    def find_spec(self, fullname, path=None, target=None):
        if fullname in MOVED:
            return importlib.util.spec_from_loader(fullname, self)
        return None

    def create_module(self, spec):
        module = importlib.import_module(MOVED[spec.name])
        self._specs[module.__name__] = module.__spec__
        return module

    def exec_module(self, module):
        # the import system gave the module the old path's spec: give it back its own
        module.__spec__ = self._specs.get(module.__name__, module.__spec__)


def install() -> None:
    """Let the old paths be imported (once per process)."""
    if not any(isinstance(finder, _OldPaths) for finder in sys.meta_path):
        sys.meta_path.append(_OldPaths())
