"""Clustering stages compared on the features the default CNN-KMeans fits clustered.

The quality benchmark run with ``--features-dir`` keeps, for every set and seed, what the
default model clustered (``features_``: the T-Loss embedding, then the 50-d random-kernel
view). This script reclusters those features with other stages, so a change of the clustering
stage is measured on the whole panel and every seed without training again::

    python -m benchmarks.run --only quality --features-dir build/panel_features
    python -m benchmarks.clustering_stages --features build/panel_features

``eigengap neighbours 5/7/10`` is the default stage (``n_neighbors="auto"``, and a graph in
more pieces than k grouped by its pieces' means) and reproduces the quality table's CNN-KMeans
numbers (same features, same seed); ``eigengap 5/7/10 pieces spectral`` is that stage before
pieces were grouped, ``self-tuning10`` the default before that (10 neighbours always); the
others change one thing each. Run on ``build/sanity_features`` (``python -m benchmarks.sanity
--features-dir``) it compares the stages on the sanity suite's easy data. It writes
docs/benchmarks_stages.md and the per-fit table next to it (.csv).
"""

from __future__ import annotations

import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import normalized_mutual_info_score

from . import comparison
from .panel import group
from .quality import embedding_width, load_features, saved_features

#: Width of the embedding at the front of the features being reclustered (read from each
#: saved file by :func:`run`; see :func:`benchmarks.quality.embedding_width`).
_CURRENT = {"width": 320}


def _w() -> int:
    return _CURRENT["width"]


def set_embedding_width(width: int) -> None:
    """Tell the stages how many of the first feature columns are the embedding."""
    _CURRENT["width"] = int(width)


def _spectral(n_neighbors=10, view="both", kernel_weight=1.0):
    def fit(Z, k, seed):
        from tsc_toolkit.clustering.graph_clustering import spectral_labels

        Z = Z.copy()
        Z[:, _w():] *= kernel_weight
        part = {"both": slice(None), "embedding": slice(0, _w()),
                "view": slice(_w(), None)}[view]
        return spectral_labels(Z[:, part], k, n_neighbors, seed, weights="unit",
                               pieces="spectral")
    return fit


def _kmeans(Z, k, seed):
    from sklearn.cluster import KMeans

    return KMeans(k, n_init=10, random_state=seed).fit_predict(Z)


def _ward(Z, k, seed):
    from sklearn.cluster import AgglomerativeClustering

    return AgglomerativeClustering(k).fit_predict(Z)


def _local_scaling_graph(Z, n_neighbors=10):
    from tsc_toolkit.clustering.graph_clustering import neighbour_graph

    return neighbour_graph(Z, min(n_neighbors, len(Z) - 1), "local-scaling")


def _self_tuning(Z, k, seed, n_neighbors=10, kernel_weight=1.0, pieces="spectral"):
    """Spectral clustering of the kNN graph with Zelnik-Manor and Perona's local scaling (the
    model's own stage); ``kernel_weight`` scales the random-kernel view first. ``pieces``: what
    a graph in more pieces than k gets (``graph_clustering.spectral_labels``); the stages
    measured before the default grouped such pieces keep "spectral", their behaviour then."""
    from tsc_toolkit.clustering.graph_clustering import spectral_labels

    if kernel_weight != 1.0:
        Z = Z.copy()
        Z[:, _w():] *= kernel_weight
    return spectral_labels(Z, k, n_neighbors, seed, weights="local-scaling", pieces=pieces)


def _embedding_pca(components):
    """The embedding reduced by PCA to ``components`` dimensions (unit RMS norm, as the
    random-kernel view is) beside the view, then the default stage."""
    def fit(Z, k, seed):
        from sklearn.decomposition import PCA

        E = Z[:, :_w()]
        n = int(min(components, *E.shape))
        P = PCA(n, random_state=seed).fit_transform(E)
        P /= np.sqrt((P ** 2).sum(axis=1).mean()) or 1.0
        return _self_tuning(np.hstack([P, Z[:, _w():]]).astype(np.float32), k, seed)
    return fit


def _eigengap_weight(weights):
    """The default stage with the random-kernel view scaled by whichever of ``weights`` gives
    the graph the largest eigengap at k."""
    def fit(Z, k, seed):
        from tsc_toolkit.clustering.graph_clustering import eigengap, neighbour_graph

        best, best_gap = 1.0, -np.inf
        for w in weights:
            F = Z.copy()
            F[:, _w():] *= w
            gap = eigengap(neighbour_graph(F, min(10, len(F) - 1), "local-scaling"), k)
            if gap > best_gap + 1e-9:
                best, best_gap = w, gap
        return _self_tuning(Z, k, seed, kernel_weight=best)
    return fit


def _components(A) -> int:
    from scipy.sparse.csgraph import connected_components

    return int(connected_components(A, directed=False)[0])


def _connected_neighbours(low, high):
    """The default stage on the smallest neighbour count from ``low`` to ``high`` whose graph
    is connected (von Luxburg 2007, section 8.1: a kNN graph should connect the data; a graph
    in pieces hands spectral clustering its pieces as clusters)."""
    def fit(Z, k, seed):
        n_neighbors = low
        while n_neighbors < high and _components(_local_scaling_graph(Z, n_neighbors)) > 1:
            n_neighbors += 1
        return _self_tuning(Z, k, seed, n_neighbors=n_neighbors)
    return fit


def _log_neighbours(Z, k, seed):
    """The default stage on round(log2 n) neighbours, between 5 and 15 (von Luxburg 2007: a
    kNN graph's k of the order of log n)."""
    n_neighbors = int(np.clip(round(np.log2(len(Z))), 5, 15))
    return _self_tuning(Z, k, seed, n_neighbors=n_neighbors)


def _eigengap_neighbours(counts):
    """The default stage on whichever neighbour count among ``counts`` gives the graph the
    largest eigengap at k (the smaller count on a tie): the estimator's ``n_neighbors="auto"``
    with other candidates."""
    def fit(Z, k, seed):
        from tsc_toolkit.clustering.graph_clustering import choose_neighbors

        return _self_tuning(Z, k, seed, n_neighbors=choose_neighbors(Z, k, "local-scaling",
                                                                     counts))
    return fit


def _eigenvectors(count):
    """The default graph, its spectral embedding with ``count(k)`` eigenvectors instead of k."""
    def fit(Z, k, seed):
        from sklearn.cluster import SpectralClustering

        A = _local_scaling_graph(Z)
        return SpectralClustering(k, affinity="precomputed", random_state=seed, n_init=10,
                                  n_components=min(count(k), len(Z) - 1)).fit_predict(A)
    return fit


def _self_tuning_two_graphs(Z, k, seed):
    A = (_local_scaling_graph(Z[:, :_w()]) + _local_scaling_graph(Z[:, _w():]))
    return _spectral_of(A, k, seed)


def _knn(Z, n_neighbors):
    from sklearn.neighbors import kneighbors_graph

    A = kneighbors_graph(Z, min(n_neighbors, len(Z) - 1), include_self=False)
    return A.maximum(A.T)


def _spectral_of(A, k, seed):
    from sklearn.cluster import SpectralClustering

    return SpectralClustering(k, affinity="precomputed", random_state=seed,
                              n_init=10).fit_predict(A)


def _two_graphs(Z, k, seed, n_neighbors=10):
    """Spectral clustering of the sum of each view's own kNN graph (each view counts the same,
    whatever its scale)."""
    A = _knn(Z[:, :_w()], n_neighbors) + _knn(Z[:, _w():], n_neighbors)
    return _spectral_of(A, k, seed)


def _candidates(Z, k, seed):
    from tsc_toolkit.clustering.graph_clustering import spectral_labels

    return [spectral_labels(Z, k, 10, seed, weights="unit"), _self_tuning(Z, k, seed),
            spectral_labels(Z[:, _w():], k, 10, seed, weights="unit"),
            spectral_labels(Z[:, :_w()], k, 10, seed, weights="unit"), _kmeans(Z, k, seed)]


def _select(Z, k, seed):
    """The candidate partition that agrees best with the others (average NMI; Strehl and
    Ghosh, JMLR 2002)."""
    parts = _candidates(Z, k, seed)
    agree = [sum(normalized_mutual_info_score(p, q) for j, q in enumerate(parts) if j != i)
             for i, p in enumerate(parts)]
    return parts[int(np.argmax(agree))]


def _coassociation(Z, k, seed):
    """Spectral clustering of how often two series share a cluster among the candidates
    (evidence accumulation; Fred and Jain, TPAMI 2005)."""
    parts = _candidates(Z, k, seed)
    C = np.mean([p[:, None] == p[None, :] for p in parts], axis=0)
    return _spectral_of(C, k, seed)


def _snn_graph(Z, n_neighbors, times_local_scaling=False):
    """Shared-nearest-neighbour graph: two series are joined by the Jaccard overlap of their
    neighbour sets (each set holding the series itself and its ``n_neighbors`` nearest; Jarvis
    and Patrick 1973, as single-cell clustering weights its kNN graphs), optionally multiplied
    by the local-scaling weight of a kNN edge (pairs that are not kNN neighbours then drop)."""
    from scipy.sparse import csr_matrix
    from sklearn.neighbors import NearestNeighbors

    n = len(Z)
    c = min(n_neighbors, n - 1)
    idx = NearestNeighbors(n_neighbors=c + 1).fit(Z).kneighbors(Z, return_distance=False)
    idx[:, 0] = np.arange(n)  # the series itself (duplicates could put another one first)
    B = csr_matrix((np.ones(idx.size), (np.repeat(np.arange(n), c + 1), idx.ravel())),
                   shape=(n, n))
    B.data[:] = 1.0  # a duplicate index counts once
    shared = (B @ B.T).tocoo()
    jaccard = shared.data / (2 * (c + 1) - shared.data)
    keep = shared.row != shared.col
    A = csr_matrix((jaccard[keep], (shared.row[keep], shared.col[keep])), shape=(n, n))
    if times_local_scaling:
        A = A.multiply(_local_scaling_graph(Z, c)).tocsr()
    return A


def _eigengap_graph(graph):
    """Spectral clustering of ``graph(Z, count)`` with the count among ``AUTO_NEIGHBORS`` whose
    graph has the largest eigengap at k (the smaller on a tie): what ``n_neighbors="auto"``
    (``graph_clustering.choose_neighbors``) does, for graphs that function cannot build."""
    def fit(Z, k, seed):
        from tsc_toolkit.clustering.graph_clustering import AUTO_NEIGHBORS, eigengap

        graphs = [graph(Z, c) for c in sorted(AUTO_NEIGHBORS)]
        gaps = [eigengap(A, k) for A in graphs]
        return _spectral_of(graphs[int(np.argmax(gaps))], k, seed)
    return fit


def _grow_to_k_pieces(Z, k, seed):
    """The eigengap's neighbour count, raised one at a time until the graph has at most k
    pieces (at most n - 1), then spectral clustering of that graph."""
    from tsc_toolkit.clustering.graph_clustering import choose_neighbors, graph_pieces

    count = choose_neighbors(Z, k, "local-scaling")
    while count < len(Z) - 1 and graph_pieces(_local_scaling_graph(Z, count))[0] > k:
        count += 1
    return _self_tuning(Z, k, seed, n_neighbors=count)


def _pieces_by_linkage(method):
    """The default stage, but a graph in more pieces than k has its pieces joined by
    ``method`` linkage of the distances between their series (scipy's "single": nearest
    pair, "complete": farthest pair) instead of size-weighted K-Means on their means."""
    def fit(Z, k, seed):
        from scipy.cluster.hierarchy import fcluster, linkage
        from scipy.spatial.distance import cdist

        from tsc_toolkit.clustering.graph_clustering import choose_neighbors, graph_pieces

        chosen = choose_neighbors(Z, k)  # what n_neighbors="auto" picks
        count, piece = graph_pieces(_local_scaling_graph(Z, chosen))
        if count <= k:
            return _self_tuning(Z, k, seed, n_neighbors=chosen, pieces="group")
        members = [np.flatnonzero(piece == i) for i in range(count)]
        reduce = np.min if method == "single" else np.max
        D = np.zeros((count, count))
        for i in range(count):
            for j in range(i + 1, count):
                D[i, j] = D[j, i] = reduce(cdist(Z[members[i]], Z[members[j]]))
        merged = fcluster(linkage(D[np.triu_indices(count, 1)], method=method), k,
                          criterion="maxclust")
        return (merged - 1)[piece]
    return fit


def _silhouette_choice(Z, k, seed):
    """The partition with the higher silhouette on the features, of the default stage's and
    K-Means' (a label-free choice per data set)."""
    from sklearn.metrics import silhouette_score

    parts = [_self_tuning(Z, k, seed, n_neighbors="auto", pieces="group"), _kmeans(Z, k, seed)]
    sample = min(len(Z), 2000)
    scores = [silhouette_score(Z, p, sample_size=sample, random_state=seed)
              if len(np.unique(p)) > 1 else -1.0 for p in parts]
    return parts[int(np.argmax(scores))]


def _rescaled(transform):
    """The default stage (``n_neighbors="auto"``) on ``transform(Z)``, in ``Z``'s own dtype: the
    stage's result moves with the features' rounding alone (float64 copies of the panel's
    float32 features change two sets), so only the transform may differ from the default."""
    def fit(Z, k, seed):
        return _self_tuning(transform(Z.astype(np.float64)).astype(Z.dtype), k, seed,
                            n_neighbors="auto")
    return fit


def _rows_normalised(Z):
    return Z / np.maximum(np.linalg.norm(Z, axis=1, keepdims=True), 1e-12)


def _view_whitened(Z):
    view = Z[:, _w():]
    view = (view - view.mean(axis=0)) / np.maximum(view.std(axis=0), 1e-12)
    # same total size as before, each component now with the same spread
    view *= np.sqrt((Z[:, _w():] ** 2).sum(axis=1).mean() / (view ** 2).sum(axis=1).mean())
    return np.hstack([Z[:, :_w()], view])


def _default_stage(Z, k, seed):
    from tsc_toolkit import CNNKMeans

    return CNNKMeans().make_clusterer(k, seed).fit(Z).labels_


STAGES = {
    "self-tuning10": _self_tuning,
    "spectral10": _spectral(),
    "kmeans": _kmeans,
    "ward": _ward,
    "spectral7": _spectral(7),
    "spectral15": _spectral(15),
    "kernel view x0.5": _spectral(kernel_weight=0.5),
    "kernel view x2": _spectral(kernel_weight=2.0),
    "embedding only": _spectral(view="embedding"),
    "kernel view only": _spectral(view="view"),
    "two graphs": _two_graphs,
    "consensus select": _select,
    "co-association": _coassociation,
    "self-tuning two graphs": _self_tuning_two_graphs,
    "self-tuning15": lambda Z, k, seed: _self_tuning(Z, k, seed, n_neighbors=15),
    "self-tuning kernel x1.5": lambda Z, k, seed: _self_tuning(Z, k, seed, kernel_weight=1.5),
    "self-tuning kernel x2": lambda Z, k, seed: _self_tuning(Z, k, seed, kernel_weight=2.0),
    "self-tuning kernel x3": lambda Z, k, seed: _self_tuning(Z, k, seed, kernel_weight=3.0),
    "embedding PCA 10": _embedding_pca(10),
    "embedding PCA 50": _embedding_pca(50),
    "eigengap weight 1-3": _eigengap_weight((1.0, 1.5, 2.0, 3.0)),
    "eigengap weight 0.5-2": _eigengap_weight((0.5, 1.0, 1.5, 2.0)),
    "self-tuning5": lambda Z, k, seed: _self_tuning(Z, k, seed, n_neighbors=5),
    "self-tuning7": lambda Z, k, seed: _self_tuning(Z, k, seed, n_neighbors=7),
    "self-tuning log2 n": _log_neighbours,
    "self-tuning connected 7-10": _connected_neighbours(7, 10),
    "self-tuning connected 7-15": _connected_neighbours(7, 15),
    "self-tuning connected 5-10": _connected_neighbours(5, 10),
    "eigengap neighbours 7/10": _eigengap_neighbours((7, 10)),
    "eigengap neighbours 7-10": _eigengap_neighbours((7, 8, 9, 10)),
    # the estimator's own clustering stage at the defaults: n_neighbors="auto"
    # (tsc_toolkit.clustering.graph_clustering.AUTO_NEIGHBORS) and a graph in more pieces than k grouped
    # by its pieces' means
    "eigengap neighbours 5/7/10": _default_stage,
    # the same before pieces were grouped (the default until 2026-12-07)
    "eigengap 5/7/10 pieces spectral": lambda Z, k, seed: _self_tuning(Z, k, seed,
                                                                        n_neighbors="auto"),
    "eigengap 5/7/10 grow to k pieces": _grow_to_k_pieces,
    "eigengap 5/7/10 pieces single linkage": _pieces_by_linkage("single"),
    "eigengap 5/7/10 pieces complete linkage": _pieces_by_linkage("complete"),
    "silhouette: default or kmeans": _silhouette_choice,
    "eigengap neighbours 7/10/15": _eigengap_neighbours((7, 10, 15)),
    "eigengap neighbours 10/15": _eigengap_neighbours((10, 15)),
    "snn weights eigengap 5/7/10": _eigengap_graph(_snn_graph),
    "snn x local scaling eigengap 5/7/10": _eigengap_graph(
        lambda Z, c: _snn_graph(Z, c, times_local_scaling=True)),
    "rows unit length auto": _rescaled(_rows_normalised),
    "view components whitened auto": _rescaled(_view_whitened),
    "k+1 eigenvectors": _eigenvectors(lambda k: k + 1),
    "2k eigenvectors": _eigenvectors(lambda k: 2 * k),
}
DEFAULT = "eigengap neighbours 5/7/10"


def run(folder: Path, stages=tuple(STAGES), log=print) -> pd.DataFrame:
    from tsc_toolkit.cnn_kmeans import fit_seed

    rows = []
    for name, seed, path in saved_features(folder):
        Z, y = load_features(path)
        set_embedding_width(embedding_width(path))
        k = len(np.unique(y))
        for stage in stages:
            tic = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                labels = STAGES[stage](Z, k, fit_seed(seed))  # the fit's own seed
            rows.append({"dataset": name, "group": group(name), "seed": seed, "stage": stage,
                         "nmi": normalized_mutual_info_score(y, labels),
                         "seconds": time.perf_counter() - tic})
        log(f"[stages] {name} seed {seed}")
    if not rows:
        raise SystemExit(f"no saved fits in {folder}: run `python -m benchmarks.run --only "
                         f"quality --features-dir {folder}` first")
    return pd.DataFrame(rows)


def tables(runs: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Panel means, group means and per-set means (over seeds) of every stage's NMI."""
    return comparison.tables(runs, "stage", DEFAULT, peers=comparison.best_peer())


def _intro() -> str:
    return ("The features that every default CNN-KMeans fit of the quality benchmark clustered "
            "(the T-Loss embedding, then the 50-d random-kernel view) are reclustered by each "
            f"stage with the fit's seed; `{DEFAULT}` is the default stage (spectral clustering "
            "of the kNN graph with local-scaling weights, the neighbour count among 5, 7 and 10 "
            "whose graph has the largest eigengap at k: `n_neighbors=\"auto\"`; a graph in more "
            "pieces than k has its pieces grouped by K-Means on their means) and reproduces "
            "the quality table; `eigengap 5/7/10 pieces spectral` is the same stage as it was "
            "before pieces were grouped; `self-tuning10` is 10 neighbours always (the default before) and "
            "`spectral10` the same graph with unit weights (the default before that). \"best on\" counts the sets where a stage's mean is at least the best "
            "stored peer's (docs/peer_runs.csv). NMI against the classes, mean over seeds, then "
            "over sets.")


def main(argv=None) -> int:
    return comparison.main(
        argv, module="benchmarks.clustering_stages", description=__doc__.split("\n\n")[0],
        option="stages", choices=STAGES, out="benchmarks_stages.md", run=run, tables=tables,
        title="Clustering stages on the saved features of the development panel",
        intro=_intro)


if __name__ == "__main__":
    sys.exit(main())
