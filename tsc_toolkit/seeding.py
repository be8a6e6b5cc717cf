"""The seeds of a fit: one integer derived from ``random_state``, handed to every stage."""

from __future__ import annotations

from numbers import Integral

import numpy as np
from sklearn.utils import check_random_state

__all__ = ["fit_seed", "stage_seed"]


def fit_seed(random_state) -> int:
    """The integer seed a fit derives from ``random_state`` for its weights, sampling, random-
    kernel view and clustering (an int gives the same seed every time).

    Examples
    --------
    >>> from tsc_toolkit.seeding import fit_seed
    >>> fit_seed(0) == fit_seed(0)
    True
    """
    return int(check_random_state(random_state).randint(np.iinfo(np.int32).max))


def stage_seed(random_state) -> int:
    """The integer seed a stage uses: an int as it is, else one drawn from ``random_state``.

    Examples
    --------
    >>> from tsc_toolkit.seeding import stage_seed
    >>> stage_seed(7)
    7
    """
    if isinstance(random_state, Integral):
        return int(random_state)
    return int(check_random_state(random_state).randint(np.iinfo(np.int32).max))
