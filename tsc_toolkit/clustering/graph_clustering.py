"""Spectral clustering on a k-nearest-neighbour graph, and labelling new points by their neighbours.

K-Means on the embeddings looks for round, equally wide groups. Series of one class often
lie on a curved, stretched cloud instead; a graph that joins each series to its nearest
neighbours follows such a cloud, and the leading eigenvectors of its Laplacian turn it into
points that K-Means separates well (Ng, Jordan and Weiss, NIPS 2001; von Luxburg 2007).

That needs a graph that holds the data together. On small, well-separated data a graph of a
few neighbours per point can fall apart into more pieces than there are clusters (two shapes
within one kind, say), and spectral clustering then joins pieces at random; such pieces are
grouped by how far apart they lie instead (:func:`group_pieces`).
"""

from __future__ import annotations

import numpy as np

__all__ = ["AUTO_NEIGHBORS", "GRAPH_WEIGHTS", "PIECES", "eigengap", "neighbour_graph",
           "choose_neighbors", "resolve_neighbors", "graph_pieces", "group_pieces",
           "spectral_labels", "neighbour_vote", "neighbour_index"]


#: Weights of the graph's edges: "local-scaling" (the default) or "unit".
GRAPH_WEIGHTS = ("local-scaling", "unit")
#: The neighbour whose distance sets a series' own scale in ``"local-scaling"`` weights
#: (Zelnik-Manor and Perona's choice).
SCALE_NEIGHBOR = 7
#: The neighbour counts that ``n_neighbors="auto"`` chooses among (see :func:`choose_neighbors`).
AUTO_NEIGHBORS = (5, 7, 10)
#: What :func:`spectral_labels` does with a graph in more pieces than clusters: "group" (the
#: default) keeps each piece whole and groups the pieces (:func:`group_pieces`); "spectral"
#: hands the graph to spectral clustering all the same (the behaviour before).
PIECES = ("group", "spectral")


def neighbour_graph(features: np.ndarray, n_neighbors: int, weights: str = "local-scaling"):
    """The symmetric k-nearest-neighbour graph of ``features`` as a sparse matrix.

    ``"unit"``: weight 1 where both points are among each other's neighbours, 1/2 where one
    is. ``"local-scaling"``: an edge between i and j weighs ``exp(-d_ij^2 / (s_i s_j))``,
    where ``s_i`` is the distance from i to its 7th neighbour (or its last, with fewer), so a
    dense cluster and a sparse one are joined with comparable weights ("self-tuning spectral
    clustering", Zelnik-Manor and Perona, NIPS 2004); the larger of the two directions is kept.
    """
    if weights not in GRAPH_WEIGHTS:
        raise ValueError(f"weights must be one of {GRAPH_WEIGHTS}, got {weights!r}")
    if weights == "unit":
        from sklearn.neighbors import kneighbors_graph

        A = kneighbors_graph(features, n_neighbors, include_self=False)
        return 0.5 * (A + A.T)
    from scipy.sparse import csr_matrix
    from sklearn.neighbors import NearestNeighbors

    n = len(features)
    dist, idx = NearestNeighbors(n_neighbors=n_neighbors + 1).fit(features).kneighbors(features)
    # The query point is its own first neighbour, except among exact duplicates: drop the
    # column that holds it where it is not first, so that no series is its own neighbour.
    self_at = np.where(idx == np.arange(n)[:, None], np.arange(n_neighbors + 1), n_neighbors)
    keep = np.ones_like(idx, dtype=bool)
    keep[np.arange(n), self_at.min(axis=1)] = False
    dist = dist[keep].reshape(n, n_neighbors)
    idx = idx[keep].reshape(n, n_neighbors)
    scale = dist[:, min(SCALE_NEIGHBOR, n_neighbors) - 1].astype(np.float64)
    positive = scale[scale > 0]
    floor = positive.min() if positive.size else 1.0
    scale = np.maximum(scale, floor * 1e-6)  # duplicates: a tiny scale, not a zero division
    rows, cols = np.repeat(np.arange(n), n_neighbors), idx.ravel()
    w = np.exp(-dist.ravel().astype(np.float64) ** 2 / (scale[rows] * scale[cols]))
    A = csr_matrix((w, (rows, cols)), shape=(n, n))
    return A.maximum(A.T)


def eigengap(A, k: int) -> float:
    """How clearly the graph ``A`` falls into ``k`` groups: the gap between the k-th and the
    (k+1)-th largest eigenvalues of its normalised adjacency ``D^-1/2 A D^-1/2`` (von Luxburg,
    "A tutorial on spectral clustering", 2007, section 8.3). A graph of k loose pieces has k
    eigenvalues at 1 and a gap near 1; one without structure at k has a gap near 0.
    """
    from scipy.sparse import diags
    from scipy.sparse.linalg import ArpackNoConvergence, eigsh

    n = A.shape[0]
    if k < 1 or n <= k + 1:
        return 0.0
    d = np.asarray(A.sum(axis=1), dtype=np.float64).ravel()
    inv = diags(1.0 / np.sqrt(np.maximum(d, 1e-12)))
    M = inv @ A @ inv
    try:
        values = eigsh(M, k=k + 1, which="LA", return_eigenvectors=False, v0=np.ones(n))
    except ArpackNoConvergence:
        values = np.linalg.eigvalsh(M.toarray())
    values = np.sort(values)[::-1]
    return float(values[k - 1] - values[k])


def choose_neighbors(features: np.ndarray, k: int, weights: str = "local-scaling",
                     candidates=AUTO_NEIGHBORS) -> int:
    """The neighbour count among ``candidates`` whose graph shows ``k`` groups most clearly.

    Each count's :func:`neighbour_graph` (capped at ``n - 1``) is scored by its
    :func:`eigengap` at ``k``; the largest gap wins, the smaller count on a tie. This is what
    ``n_neighbors="auto"`` means in :func:`spectral_labels` and :class:`tsc_toolkit.CNNKMeans`.
    On the development panel (six seeds), choosing among 5, 7 and 10 neighbours scored a
    mean NMI of 0.426 against 0.415 for 10 always (7 to 10: 0.423; counts up to 15 scored
    less), and 0.514 against 0.517 on the held-out sets (docs/defaults.md).

    Examples
    --------
    >>> import numpy as np
    >>> from tsc_toolkit.clustering.graph_clustering import choose_neighbors
    >>> rng = np.random.default_rng(0)
    >>> X = np.vstack([rng.normal(0, 0.1, (20, 2)), rng.normal(3, 0.5, (20, 2))])
    >>> choose_neighbors(X, 2) in (5, 7, 10)
    True
    """
    n = len(features)
    counts = sorted({min(int(c), n - 1) for c in candidates if c >= 1})
    if n < 3 or k <= 1 or len(counts) == 1:
        return counts[0] if counts else 1
    gaps = [eigengap(neighbour_graph(features, c, weights), k) for c in counts]
    return counts[int(np.argmax(gaps))]


def resolve_neighbors(features: np.ndarray, k: int, n_neighbors, weights: str) -> int:
    """``n_neighbors`` as a count for these features: an int capped at ``n - 1``, or the
    choice of :func:`choose_neighbors` for ``"auto"``."""
    if isinstance(n_neighbors, str):
        if n_neighbors != "auto":
            raise ValueError(f"n_neighbors must be a positive integer or 'auto', got "
                             f"{n_neighbors!r}.")
        return choose_neighbors(features, k, weights)
    return max(1, min(int(n_neighbors), len(features) - 1))


def graph_pieces(A) -> tuple[int, np.ndarray]:
    """The connected pieces of the graph ``A``: their number and each point's piece.

    Examples
    --------
    >>> import numpy as np
    >>> from tsc_toolkit.clustering.graph_clustering import graph_pieces, neighbour_graph
    >>> X = np.array([[0.0], [0.1], [0.2], [5.0], [5.1], [5.2]])
    >>> count, piece = graph_pieces(neighbour_graph(X, 2))
    >>> count, piece.tolist()
    (2, [0, 0, 0, 1, 1, 1])
    """
    from scipy.sparse.csgraph import connected_components

    count, piece = connected_components(A, directed=False)
    return int(count), piece.astype(np.int64)


def group_pieces(features: np.ndarray, piece: np.ndarray, k: int, random_state: int,
                 n_init: int = 10) -> np.ndarray:
    """Group the pieces of a graph into ``k`` clusters, each piece kept whole.

    Each piece is its members' mean, weighted by its size, and K-Means groups those means:
    this is K-Means on the series themselves under the constraint that no piece is split.
    A kNN graph of small, well-separated data can fall apart into more pieces than there are
    clusters (two shapes within one kind, say); spectral clustering then sees pieces that no
    edge relates, and joins them at random, whereas how far apart the pieces lie still says
    which belong together.

    Examples
    --------
    >>> import numpy as np
    >>> from tsc_toolkit.clustering.graph_clustering import group_pieces
    >>> X = np.array([[0.0], [0.2], [1.0], [1.2], [9.0], [9.2]])
    >>> group_pieces(X, np.array([0, 0, 1, 1, 2, 2]), 2, random_state=0).tolist()
    [0, 0, 0, 0, 1, 1]
    """
    from sklearn.cluster import KMeans

    count = int(piece.max()) + 1
    means = member_means(features.astype(np.float64), piece, count)  # no piece is empty
    sizes = np.bincount(piece, minlength=count).astype(np.float64)
    km = KMeans(k, n_init=n_init, random_state=random_state).fit(means, sample_weight=sizes)
    # Renumber in order of first appearance, so the labels do not depend on K-Means' order.
    _, first, inverse = np.unique(km.labels_[piece], return_index=True, return_inverse=True)
    order = np.argsort(np.argsort(first))
    return order[inverse.ravel()].astype(np.int64)


def spectral_labels(features: np.ndarray, k: int, n_neighbors, random_state: int,
                    n_init: int = 10, weights: str = "local-scaling",
                    pieces: str = "group") -> np.ndarray:
    """Cluster ``features`` into ``k`` groups by spectral clustering of their kNN graph.

    The graph is :func:`neighbour_graph` (``n_neighbors`` per point, capped at ``n - 1``, or
    ``"auto"``: the count :func:`choose_neighbors` picks; edges weighted by ``weights``); the
    spectral embedding's rows are grouped by K-Means with ``n_init`` restarts. With fewer than
    three points, or ``k == 1``, every point gets a label of its own up to ``k``.

    A graph in more connected pieces than ``k`` gives spectral clustering nothing to go on
    between pieces (each is an eigenvector of its own, and which ones end up together is an
    accident of K-Means' start). With ``pieces="group"`` (the default) the pieces are kept
    whole and grouped by :func:`group_pieces` instead; ``pieces="spectral"`` clusters such a
    graph spectrally all the same, as this function did before. A graph in ``k`` pieces or
    fewer is clustered spectrally either way.

    Examples
    --------
    >>> import numpy as np
    >>> from tsc_toolkit.clustering.graph_clustering import spectral_labels
    >>> rng = np.random.default_rng(0)
    >>> X = np.vstack([rng.normal(0, 0.1, (20, 2)), rng.normal(3, 0.5, (20, 2))])
    >>> labels = spectral_labels(X, 2, n_neighbors=5, random_state=0)
    >>> len(set(labels[:20])), len(set(labels[20:])), bool(labels[0] != labels[-1])
    (1, 1, True)

    Two kinds of series, each in two tight shapes: the graph falls into four pieces, and the
    two pieces of each kind are grouped together.

    >>> centres = [[0, 0], [0, 2], [9, 0], [9, 2]]
    >>> X = np.vstack([rng.normal(c, 0.05, (15, 2)) for c in centres])
    >>> labels = spectral_labels(X, 2, n_neighbors=5, random_state=0)
    >>> sorted(set(labels[:30].tolist())), sorted(set(labels[30:].tolist()))
    ([0], [1])
    """
    if pieces not in PIECES:
        raise ValueError(f"pieces must be one of {PIECES}, got {pieces!r}")
    n = len(features)
    if k <= 1 or n < 3:
        return np.minimum(np.arange(n), k - 1).astype(np.int64)
    import warnings

    from sklearn.cluster import SpectralClustering

    A = neighbour_graph(features, resolve_neighbors(features, k, n_neighbors, weights), weights)
    if pieces == "group":
        count, piece = graph_pieces(A)
        if count > k:
            return group_pieces(features, piece, k, random_state, n_init)
    model = SpectralClustering(k, affinity="precomputed", random_state=random_state,
                               assign_labels="kmeans", n_init=n_init)
    with warnings.catch_warnings():
        # Well-separated groups leave the graph in pieces: that is a result, not a fault.
        warnings.filterwarnings("ignore", message="Graph is not fully connected")
        return model.fit_predict(A).astype(np.int64)


def member_means(features: np.ndarray, labels: np.ndarray, k: int,
                 chunk_size: int = 65536) -> np.ndarray:
    """Mean of each cluster's rows, in float64 (a cluster without members gets the overall
    mean).

    More rows than ``chunk_size`` (a memory-mapped file of embeddings, say) are read a chunk
    at a time, so the memory used is that of one chunk.

    Examples
    --------
    >>> import numpy as np
    >>> from tsc_toolkit.clustering.graph_clustering import member_means
    >>> member_means(np.array([[0.0], [2.0], [5.0]]), np.array([0, 0, 1]), 3).ravel().tolist()
    [1.0, 5.0, 2.3333333333333335]
    """
    labels = np.asarray(labels)
    if len(features) <= chunk_size:
        centers = np.tile(features.mean(axis=0), (k, 1)).astype(np.float64)
        for c in range(k):
            members = labels == c
            if members.any():
                centers[c] = features[members].mean(axis=0)
        return centers
    sums = np.zeros((k, features.shape[1]), dtype=np.float64)
    counts = np.zeros(k, dtype=np.int64)
    for start in range(0, len(features), chunk_size):
        lab = labels[start:start + chunk_size]
        np.add.at(sums, lab, np.asarray(features[start:start + chunk_size], dtype=np.float64))
        counts += np.bincount(lab, minlength=k)
    overall = sums.sum(axis=0) / max(int(counts.sum()), 1)
    return np.where(counts[:, None] > 0, sums / np.maximum(counts, 1)[:, None], overall)


def neighbour_index(train: np.ndarray, n_neighbors: int):
    """The fitted nearest-neighbour search :func:`neighbour_vote` runs over ``train``."""
    from sklearn.neighbors import NearestNeighbors

    return NearestNeighbors(n_neighbors=min(n_neighbors, len(train))).fit(train)


def neighbour_vote(train: np.ndarray, labels: np.ndarray, query: np.ndarray, n_neighbors: int,
                   n_clusters: int, index=None) -> np.ndarray:
    """Label each row of ``query`` by the most common label of its nearest ``train`` rows.

    Ties go to the cluster whose members are nearer on average among the neighbours.
    ``index``: :func:`neighbour_index` of ``train`` and ``n_neighbors``, when already built.
    """
    if len(query) == 0:
        return np.zeros(0, dtype=np.int64)
    nn = neighbour_index(train, n_neighbors) if index is None else index
    dist, idx = nn.kneighbors(query)
    weights = 1.0 + 1.0 / (1.0 + dist)  # a vote, plus a small nearness tie-break
    votes = np.zeros((len(query), n_clusters))
    np.add.at(votes, (np.arange(len(query))[:, None], labels[idx]), weights)
    return votes.argmax(axis=1).astype(np.int64)
