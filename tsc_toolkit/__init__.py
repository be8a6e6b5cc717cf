"""tsc_toolkit: time series clustering for Jupyter.

A causal dilated CNN encoder trained with the triplet loss of Franceschi et al. (2019)
turns each series into an embedding; with a second view from random convolution kernels, it is
grouped by spectral clustering of the nearest-neighbour graph (or K-Means). Data everywhere is a
float32 array ``(n_series, n_channels, length)`` with NaN for missing values and padding.
"""

from importlib import import_module

from . import _moved
from .data import TimeSeriesValueError, as_dataset
from .io.csvio import read_csv, write_csv, write_predictions_csv

_moved.install()  # the module paths of before the stages had folders still import

__version__ = "0.1.0"

# Names whose modules import torch or plotly are loaded on first use.
_LAZY = {
    "CNNKMeans": "tsc_toolkit.cnn_kmeans",
    "WebScaleKMeans": "tsc_toolkit.clustering.kmeans",
    "scan_k": "tsc_toolkit.clustering.selection",
}

__all__ = ["as_dataset", "read_csv", "write_csv", "write_predictions_csv",
           "TimeSeriesValueError", "__version__", *_LAZY]


def __getattr__(name):
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'tsc_toolkit' has no attribute {name!r}")
