"""Plotly figures for a clustering: projections, cluster centres, choosing k, training.

Every function returns a :class:`plotly.graph_objects.Figure` and never shows it, so the
caller can ``.show()``, ``.update_layout()``, ``.write_image()`` or inspect
``fig.to_dict()``. They take a fitted :class:`~tsc_toolkit.CNNKMeans` or plain arrays and
DataFrames, and share one keyword vocabulary: ``labels`` (cluster of each series),
``color`` (true labels to colour or split by), ``title``, ``height``, ``width``.

Figures stay responsive on 100,000 series: scatters are sampled (stratified by cluster,
drawn with WebGL) and centre plots draw a sample of members; each figure says so.

- :func:`projection` and :class:`Projector`: embeddings in 2-D (PCA, UMAP, t-SNE).
- :func:`centroids`: per cluster, the members, the centre series and a quantile band.
- :func:`elbow`: the k-selection criteria of :func:`tsc_toolkit.clustering.selection.scan_k`.
- :func:`training_curves`, :func:`cluster_sizes`, :func:`contingency`.
"""

from .curves import centroids, training_curves
from .projection import Projector, projection
from .scores import cluster_sizes, contingency, elbow

__all__ = ["Projector", "projection", "centroids", "training_curves", "elbow",
           "cluster_sizes", "contingency"]
