"""Spectral clustering on a k-nearest-neighbour graph, and labelling new points by their neighbours.

K-Means on the embeddings looks for round, equally wide groups. Series of one class often
lie on a curved, stretched cloud instead; a graph that joins each series to its nearest
neighbours follows such a cloud, and the leading eigenvectors of its Laplacian turn it into
points that K-Means separates well (Ng, Jordan and Weiss, NIPS 2001; von Luxburg 2007).
"""

from __future__ import annotations

import numpy as np

__all__ = ["spectral_labels", "neighbour_vote"]


def _graph(features: np.ndarray, n_neighbors: int):
    from sklearn.neighbors import kneighbors_graph

    A = kneighbors_graph(features, n_neighbors, include_self=False)
    return 0.5 * (A + A.T)


def spectral_labels(features: np.ndarray, k: int, n_neighbors: int, random_state: int,
                    n_init: int = 10) -> np.ndarray:
    """Cluster ``features`` into ``k`` groups by spectral clustering of their kNN graph.

    The graph is symmetric with unit weights (``n_neighbors`` per point, capped at ``n - 1``);
    the spectral embedding's rows are grouped by K-Means with ``n_init`` restarts. With fewer
    than three points, or ``k == 1``, every point gets a label of its own up to ``k``.
    """
    n = len(features)
    if k <= 1 or n < 3:
        return np.minimum(np.arange(n), k - 1).astype(np.int64)
    import warnings

    from sklearn.cluster import SpectralClustering

    A = _graph(features, min(n_neighbors, n - 1))
    model = SpectralClustering(k, affinity="precomputed", random_state=random_state,
                               assign_labels="kmeans", n_init=n_init)
    with warnings.catch_warnings():
        # Well-separated groups leave the graph in pieces: that is a result, not a fault.
        warnings.filterwarnings("ignore", message="Graph is not fully connected")
        return model.fit_predict(A).astype(np.int64)


def neighbour_vote(train: np.ndarray, labels: np.ndarray, query: np.ndarray, n_neighbors: int,
                   n_clusters: int) -> np.ndarray:
    """Label each row of ``query`` by the most common label of its nearest ``train`` rows.

    Ties go to the cluster whose members are nearer on average among the neighbours.
    """
    from sklearn.neighbors import NearestNeighbors

    if len(query) == 0:
        return np.zeros(0, dtype=np.int64)
    nn = NearestNeighbors(n_neighbors=min(n_neighbors, len(train))).fit(train)
    dist, idx = nn.kneighbors(query)
    weights = 1.0 + 1.0 / (1.0 + dist)  # a vote, plus a small nearness tie-break
    votes = np.zeros((len(query), n_clusters))
    np.add.at(votes, (np.arange(len(query))[:, None], labels[idx]), weights)
    return votes.argmax(axis=1).astype(np.int64)
