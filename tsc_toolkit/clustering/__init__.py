"""The clustering stage: what groups the feature vectors of series, fitted once and shared by
:class:`~tsc_toolkit.CNNKMeans`, :func:`~tsc_toolkit.scan_k`, ``refit_clusters``, the k
selector and streamed fits."""

from .stage import CLUSTERINGS, KMEANS_ALGORITHMS, FeatureClusterer

__all__ = ["FeatureClusterer", "CLUSTERINGS", "KMEANS_ALGORITHMS"]
