"""Notebook widgets (ipywidgets 8): live training, cluster exploration, choosing k, job watching.

Each class builds its container widget on construction and shows it when displayed (a cell's
value, or ``display(obj)``); its ``repr`` is a one-line text summary for logs and static
viewers. Figures are plotly ``FigureWidget`` views when anywidget is installed (the ``live``
extra), else ``Output`` widgets redrawn on change (SageMaker Studio's images lack anywidget).

- :class:`TrainingDashboard`: progress, loss and score curves and a Stop button, as a
  :class:`~tsc_toolkit.CNNKMeans` callback.
- :class:`ClusterExplorer`: pick a cluster, see its centroid, members and points; click a point.
- :class:`KSelector`: a slider over k that re-clusters the stored embeddings (no retraining).
- :class:`JobMonitor`: a SageMaker training job's status, time, metrics and log tail.
"""

from ._base import FigureView, anywidget_available, resolve_live
from .dashboard import TrainingDashboard
from .explorer import ClusterExplorer
from .jobs import JobMonitor, metric_series
from .kselector import EmbeddingsModel, KSelector, cluster_scores

__all__ = ["ClusterExplorer", "EmbeddingsModel", "FigureView", "JobMonitor", "KSelector",
           "TrainingDashboard", "anywidget_available", "cluster_scores", "metric_series",
           "resolve_live"]
