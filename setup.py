"""Build hook: the wheel carries the bundled data sets and the tutorial notebooks.

They live at the top of the repository (``data/``, ``notebooks/``), where the tests, the docs
and ``make demo`` use them. ``build_py`` copies the files users need into
``tsc_toolkit/_bundled/`` of the built package, so that an installed copy finds them through
``tsc_toolkit.resources`` without a checkout. Everything else is configured in pyproject.toml.
"""

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
#: folder -> file patterns copied into tsc_toolkit/_bundled/<folder>/
BUNDLED = {
    "data": ("*.npz", "*.csv", "README.md"),
    "notebooks": ("*.ipynb", "README.md"),
}


class BuildPyWithBundledFiles(build_py):
    """``build_py`` that also copies the data sets and notebooks into the package."""

    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):
            return  # an editable install reads them from the checkout itself
        for folder, patterns in BUNDLED.items():
            target = Path(self.build_lib) / "tsc_toolkit" / "_bundled" / folder
            for pattern in patterns:
                for src in sorted((ROOT / folder).glob(pattern)):
                    self.mkpath(str(target))
                    self.copy_file(str(src), str(target / src.name))


setup(cmdclass={"build_py": BuildPyWithBundledFiles})
