"""Notebook runs under ``pytest --nbval-lax``: fast mode, one thread, a sanitiser found from anywhere.

nbval starts each notebook's kernel as a child of the pytest process, so the environment set
here reaches the notebooks' first cell, which reads it through ``tsc_toolkit.demo``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Fast mode unless the caller chose otherwise (TSC_TOOLKIT_FAST=0 pytest notebooks runs in full).
_FAST = os.environ.setdefault("TSC_TOOLKIT_FAST", "1")
# Two xdist workers share two cores: one thread per kernel keeps them from fighting.
os.environ.setdefault("OMP_NUM_THREADS", "1")
# Kernels import the package from this checkout, not from another copy installed elsewhere.
_ROOT = Path(__file__).resolve().parent.parent
os.environ["PYTHONPATH"] = os.pathsep.join(
    p for p in (str(_ROOT), os.environ.get("PYTHONPATH", "")) if p)


def pytest_configure(config):
    # pyproject's addopts names the sanitiser relative to the repository root; nbval opens it
    # relative to the working directory, so resolve it when pytest runs from elsewhere.
    path = getattr(config.option, "nbval_sanitize_with", None)
    if path and not Path(path).exists() and (config.rootpath / path).exists():
        config.option.nbval_sanitize_with = str(config.rootpath / path)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    # The kernel starts when a notebook's first cell is set up; a unit test that ran earlier in
    # this worker may have changed the environment, so set the mode again just before.
    if item.path.suffix == ".ipynb":
        os.environ["TSC_TOOLKIT_FAST"] = _FAST
