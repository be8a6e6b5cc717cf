"""What labelling a series returns: its cluster, its distance to that cluster, its embedding."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

__all__ = ["Assignment"]


class Assignment(NamedTuple):
    """Cluster of each series, its distance to that cluster's center, and its embedding."""

    closest_cluster: np.ndarray
    distance_to_cluster: np.ndarray
    embedding: np.ndarray
