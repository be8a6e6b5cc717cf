"""Spectral clustering of the kNN graph, and labelling new points by their neighbours."""

import numpy as np
import pytest
from sklearn.cluster import KMeans
from sklearn.datasets import make_moons
from sklearn.metrics import adjusted_rand_score

from tsc_toolkit.clustering.graph_clustering import (
    AUTO_NEIGHBORS,
    GRAPH_WEIGHTS,
    choose_neighbors,
    eigengap,
    graph_pieces,
    group_pieces,
    neighbour_graph,
    neighbour_vote,
    spectral_labels,
)


def test_spectral_separates_curved_groups_that_kmeans_cuts():
    X, y = make_moons(300, noise=0.05, random_state=0)
    assert adjusted_rand_score(y, KMeans(2, n_init=10, random_state=0).fit_predict(X)) < 0.6
    assert adjusted_rand_score(y, spectral_labels(X, 2, 10, random_state=0)) > 0.95


def test_neighbour_vote_labels_new_points_like_their_neighbours():
    X, y = make_moons(300, noise=0.05, random_state=0)
    labels = spectral_labels(X, 2, 10, random_state=0)
    Q, yq = make_moons(100, noise=0.05, random_state=1)
    got = neighbour_vote(X, labels, Q, 10, 2)
    # the same partition up to renaming
    assert adjusted_rand_score(yq, got) > 0.95
    assert neighbour_vote(X, labels, Q[:0], 10, 2).shape == (0,)


def test_tiny_inputs_do_not_fail():
    assert spectral_labels(np.zeros((2, 3)), 2, 10, 0).tolist() == [0, 1]
    assert spectral_labels(np.random.default_rng(0).normal(size=(5, 2)), 1, 10, 0).tolist() \
        == [0] * 5


def test_both_graph_weights_separate_curved_groups():
    X, y = make_moons(300, noise=0.05, random_state=0)
    for weights in GRAPH_WEIGHTS:
        assert adjusted_rand_score(y, spectral_labels(X, 2, 10, 0, weights=weights)) > 0.95
    with pytest.raises(ValueError, match="weights must be one of"):
        spectral_labels(X, 2, 10, 0, weights="gaussian")


def test_local_scaling_joins_a_dense_and_a_sparse_cluster_alike():
    rng = np.random.default_rng(0)
    X = np.vstack([rng.normal(0, 0.01, (40, 2)), rng.normal(5, 1.0, (40, 2))])
    A = neighbour_graph(X, 10, "local-scaling").toarray()
    assert np.allclose(A, A.T) and np.all(np.diag(A) == 0)
    assert A.max() <= 1 and A[A > 0].min() > 0
    # each point's edges scale with its own neighbourhood: a dense and a sparse cluster get
    # edges of comparable weight, 100 times apart in distance
    dense, sparse = A[:40, :40], A[40:, 40:]
    assert 0.5 < dense[dense > 0].mean() / sparse[sparse > 0].mean() < 2
    assert A[:40, 40:].max() < 1e-6  # and the two clusters are not joined


def test_local_scaling_survives_duplicate_series():
    X = np.repeat(np.random.default_rng(1).normal(size=(10, 3)), 3, axis=0)  # triplicates
    A = neighbour_graph(X, 5, "local-scaling")
    assert np.all(A.diagonal() == 0) and np.isfinite(A.data).all()
    assert (np.asarray((A > 0).sum(axis=1)).ravel() >= 5).all()
    labels = spectral_labels(X, 2, 5, 0)
    assert len(set(labels)) == 2 and (labels[0::3] == labels[1::3]).all()


def test_eigengap_is_one_for_k_loose_pieces_and_small_past_them():
    from scipy.sparse import block_diag, csr_matrix

    clique = np.ones((6, 6)) - np.eye(6)
    A = csr_matrix(block_diag([clique] * 3))
    assert eigengap(A, 3) == pytest.approx(1.2, abs=1e-6)  # 1 against the cliques' -1/5
    assert eigengap(A, 2) == pytest.approx(0.0, abs=1e-6)  # three eigenvalues at 1
    assert eigengap(A, 17) == 0.0  # no (k+1)-th eigenvalue to compare with


def test_auto_neighbours_take_the_count_with_the_largest_eigengap():
    X, y = make_moons(200, noise=0.08, random_state=0)
    gaps = {c: eigengap(neighbour_graph(X, c), 2) for c in AUTO_NEIGHBORS}
    best = max(gaps, key=lambda c: (gaps[c], -c))
    assert choose_neighbors(X, 2) == best
    np.testing.assert_array_equal(spectral_labels(X, 2, "auto", 0),
                                  spectral_labels(X, 2, best, 0))
    # capped at n - 1 on tiny inputs, and a single point per cluster needs no choice
    assert choose_neighbors(X[:6], 2) == 5
    assert spectral_labels(X[:6], 2, "auto", 0).shape == (6,)
    with pytest.raises(ValueError, match="'auto'"):
        spectral_labels(X, 2, "many", 0)


def _two_kinds_in_four_shapes(seed=0, per_shape=15):
    """Two kinds, each in two tight shapes: shapes of one kind lie near each other, the kinds
    far apart, so a 5-NN graph falls into four pieces for two clusters."""
    rng = np.random.default_rng(seed)
    centres = [[0, 0], [0, 2], [9, 0], [9, 2]]
    X = np.vstack([rng.normal(c, 0.05, (per_shape, 2)) for c in centres])
    return X, np.repeat([0, 0, 1, 1], per_shape)


def test_graph_pieces_counts_what_no_edge_joins():
    X, _ = _two_kinds_in_four_shapes()
    count, piece = graph_pieces(neighbour_graph(X, 5))
    assert count == 4
    assert [len(set(piece[i:i + 15].tolist())) for i in range(0, 60, 15)] == [1, 1, 1, 1]
    assert graph_pieces(neighbour_graph(X, 40, "unit"))[0] == 1  # (local scaling: weights of 0)


def test_a_graph_in_more_pieces_than_clusters_is_grouped_by_its_pieces():
    X, y = _two_kinds_in_four_shapes()
    for seed in range(5):
        labels = spectral_labels(X, 2, 5, seed)
        assert adjusted_rand_score(y, labels) == 1.0
        # it is the pieces' grouping, exactly, with labels numbered by first appearance
        np.testing.assert_array_equal(
            labels, group_pieces(X, graph_pieces(neighbour_graph(X, 5))[1], 2, seed))
        assert labels[0] == 0
    # "auto" sees four pieces at every count it tries and groups them the same way
    assert adjusted_rand_score(y, spectral_labels(X, 2, "auto", 0)) == 1.0
    # three clusters of four pieces: the farthest kind stays whole, one piece pairs off
    three = spectral_labels(X, 3, 5, 0)
    assert len(set(three.tolist())) == 3


def test_group_pieces_is_size_weighted_kmeans_that_never_splits_a_piece():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(90, 4))
    piece = rng.integers(0, 9, size=90)
    labels = group_pieces(X, piece, 3, random_state=0)
    assert len(set(labels.tolist())) == 3
    for p in range(9):  # every piece whole
        assert len(set(labels[piece == p].tolist())) == 1
    # a big piece pulls the mean of its group towards it, as its series would in K-Means
    X = np.array([[0.0], [1.0], [10.0]] * 1)
    piece = np.array([0, 1, 2])
    assert group_pieces(X, piece, 2, 0).tolist() == [0, 0, 1]


def test_a_connected_graph_is_clustered_spectrally_either_way():
    X, y = make_moons(300, noise=0.05, random_state=0)
    assert graph_pieces(neighbour_graph(X, 10))[0] <= 2
    np.testing.assert_array_equal(spectral_labels(X, 2, 10, 0),
                                  spectral_labels(X, 2, 10, 0, pieces="spectral"))
    with pytest.raises(ValueError, match="pieces must be one of"):
        spectral_labels(X, 2, 10, 0, pieces="merge")
