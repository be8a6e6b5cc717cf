"""Every Examples section in the package runs and prints what it says."""

import doctest
import importlib
import pkgutil

import pytest

import tsc_toolkit

MODULES = sorted(m.name for m in pkgutil.walk_packages(tsc_toolkit.__path__, "tsc_toolkit.")
                 if not m.name.endswith("__main__"))


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0, f"{result.failed} docstring example(s) failed in {name}"
