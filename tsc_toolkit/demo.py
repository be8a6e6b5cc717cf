"""Run sizes for the notebooks: a fast mode for tests, the full run for people.

Every notebook's first code cell calls :func:`settings` and takes its epochs, data sizes and
k range from the result. The test configuration sets ``TSC_TOOLKIT_FAST=1`` so the notebooks
run in seconds under ``pytest --nbval-lax``; without the variable a reader gets the full run.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

__all__ = ["ENV_VAR", "fast_mode", "settings"]

ENV_VAR = "TSC_TOOLKIT_FAST"
_TRUE = {"1", "true", "yes", "on"}

# A small encoder that trains in about a second per epoch on one CPU core.
_TINY_MODEL = {"blocks": 2, "filters": 16, "reduced_size": 16, "output_size": 16}

_FAST: dict[str, Any] = {
    "mode": "fast",
    "seed": 0,
    "epochs": 3,
    "n_series": 60,
    "length": 64,
    "k_range": range(2, 6),
    "n_refs": 3,
    "model": _TINY_MODEL,
}

_FULL: dict[str, Any] = {
    "mode": "full",
    "seed": 0,
    "epochs": 30,
    "n_series": 600,
    "length": 128,
    "k_range": range(2, 11),
    "n_refs": 10,
    "model": {},  # the CNNKMeans defaults
}


def fast_mode(environ: Mapping[str, str] | None = None) -> bool:
    """True when ``TSC_TOOLKIT_FAST`` is set to 1 (or true, yes, on).

    Parameters
    ----------
    environ : mapping, optional
        Where to look; ``os.environ`` by default.

    Examples
    --------
    >>> from tsc_toolkit.demo import fast_mode
    >>> fast_mode({"TSC_TOOLKIT_FAST": "1"}), fast_mode({"TSC_TOOLKIT_FAST": "0"}), fast_mode({})
    (True, False, False)
    """
    environ = os.environ if environ is None else environ
    return environ.get(ENV_VAR, "").strip().lower() in _TRUE


def settings(fast: bool | None = None, *, verbose: bool = True,
             max_series: int | None = None) -> dict[str, Any]:
    """Sizes for a notebook run, fast (tests) or full (the default for people).

    Parameters
    ----------
    fast : bool, optional
        Force a mode; by default :func:`fast_mode` decides from the environment.
    verbose : bool, default=True
        Print which mode runs and how to switch.
    max_series : int, optional
        The number of series the notebook has: ``n_series`` is capped to it, so the printed
        line says how many series the notebook really uses.

    Returns
    -------
    dict
        ``mode`` ("fast" or "full"), ``seed``, ``epochs``, ``n_series`` and ``length``
        (synthetic data size; notebooks on real data keep at most ``n_series`` series),
        ``k_range`` (ks to scan), ``n_refs`` (gap statistic reference sets) and ``model``
        (extra :class:`~tsc_toolkit.CNNKMeans` arguments: a tiny encoder in fast mode, the
        defaults in full mode). A fresh dict each call, safe to change.

    Examples
    --------
    >>> from tsc_toolkit.demo import settings
    >>> s = settings(fast=True)
    Fast mode (TSC_TOOLKIT_FAST=1): 3 epochs, 60 series, k in 2..5; for the full run unset TSC_TOOLKIT_FAST.
    >>> s["epochs"], list(s["k_range"])
    (3, [2, 3, 4, 5])
    >>> settings(fast=False, verbose=False)["mode"]
    'full'
    >>> settings(fast=False, max_series=160)["n_series"]
    Full mode: 30 epochs, 160 series, k in 2..10; set TSC_TOOLKIT_FAST=1 for a quick run.
    160
    """
    if fast is None:
        fast = fast_mode()
    chosen = _FAST if fast else _FULL
    out = {key: (dict(value) if isinstance(value, dict) else value)
           for key, value in chosen.items()}
    if max_series is not None:
        out["n_series"] = min(out["n_series"], int(max_series))
    if verbose:
        ks = out["k_range"]
        sizes = (f"{out['epochs']} epochs, {out['n_series']} series, "
                 f"k in {ks[0]}..{ks[-1]}")
        if fast:
            print(f"Fast mode ({ENV_VAR}=1): {sizes}; for the full run unset {ENV_VAR}.")
        else:
            print(f"Full mode: {sizes}; set {ENV_VAR}=1 for a quick run.")
    return out
