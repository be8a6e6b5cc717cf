"""Spectral clustering of the kNN graph, and labelling new points by their neighbours."""

import numpy as np
from sklearn.cluster import KMeans
from sklearn.datasets import make_moons
from sklearn.metrics import adjusted_rand_score

from tsc_toolkit.graph_clustering import neighbour_vote, spectral_labels


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
