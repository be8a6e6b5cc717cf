"""Benchmarks of tsc_toolkit: clustering quality against peers, training speed, scaling and
memory, and the web-scale K-Means.

Run everything with ``python -m benchmarks.run`` (``make bench``), or a small version of every
section with ``python -m benchmarks.run --fast`` (``make bench-fast``; this is what CI runs).
Each section is a module with a ``run(config) -> Section`` function; :mod:`benchmarks.report`
turns the sections into ``docs/benchmarks.md``.
"""

from .common import Config, Section

__all__ = ["Config", "Section"]
