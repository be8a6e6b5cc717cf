"""CNNKMeans: a T-Loss causal CNN encoder followed by K-Means, as a scikit-learn clusterer."""

from __future__ import annotations

import os
import time
from numbers import Integral, Real
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClusterMixin, TransformerMixin
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from . import checkpoints, streaming
from .data import TimeSeriesValueError, as_dataset, series_lengths
from .encoder import CausalCNNEncoder, encode, prepare_input
from .graph_clustering import GRAPH_WEIGHTS
from .persistence import ModelFormatError, read_bundle, write_bundle
from .scaling import SCALING_METHODS, SeriesScaler
from .streaming import is_streamed
from .training import (
    Distributed,
    PairEncoder,
    make_batches,
    nearest_centers,
    normalize_embeddings,
    resolve_device,
    silhouette,
    threads_for_training,
)
from .triplet import sample_triplets, triplet_loss

__all__ = ["CNNKMeans", "Assignment"]

_KIND = "tsc_toolkit.CNNKMeans"
_HISTORY_COLUMNS = ["epoch", "train_loss", "train_score", "valid_loss", "valid_score"]
#: Optimisation steps of a fit when neither ``epochs`` nor ``max_steps`` is set.
AUTO_STEPS = 100


def fit_seed(random_state) -> int:
    """The integer seed a fit derives from ``random_state`` for its weights, sampling, random-
    kernel view and clustering (an int gives the same seed every time)."""
    return int(check_random_state(random_state).randint(np.iinfo(np.int32).max))


class Assignment(NamedTuple):
    """Cluster of each series, its distance to that cluster's center, and its embedding."""

    closest_cluster: np.ndarray
    distance_to_cluster: np.ndarray
    embedding: np.ndarray


class CNNKMeans(ClusterMixin, TransformerMixin, BaseEstimator):
    """Cluster time series with a T-Loss causal CNN encoder and K-Means on its embeddings.

    The encoder (Franceschi et al., NeurIPS 2019) is trained without labels: a random
    sub-series (anchor) should embed close to a sub-window of itself (positive) and far
    from windows of other series (negatives). K-Means then groups the embeddings. Series
    may have different lengths, missing values and several channels.

    Parameters
    ----------
    clusters : int, default=8
        Number of clusters.
    algorithm : {"lloyd", "elkan", "webscale"}, default="lloyd"
        K-Means variant: scikit-learn's Lloyd or Elkan, or the web-scale mini-batch
        K-Means of SageMaker's built-in algorithm (:class:`tsc_toolkit.WebScaleKMeans`).
    blocks : int, default=10
        Number of dilated causal convolution blocks.
    filters : int, default=40
        Channels of all but the last convolution block.
    kernel_size : int, default=3
        Kernel size of the causal convolutions.
    reduced_size : int, default=160
        Channels of the last convolution block (max-pooled over time).
    output_size : int, default=320
        Size of the embedding.
    negative_samples : int, default=10
        Negatives per anchor in the triplet loss.
    lr : float, default=0.001
        Adam learning rate.
    batch_size : int, default=10
        Anchors per optimisation step.
    epochs : int or None, default=None
        Passes over the training series (fg-research's meaning). None trains for a fixed
        budget instead: ``max_steps`` steps, or :data:`AUTO_STEPS` when that is None too, so
        a fit takes about as long on 100 series as on 100,000.
    random_state : int, RandomState or None, default=None
        Seed for weights, sampling and K-Means. With an int, CPU training is repeatable on
        the same processor and torch build; another processor rounds some convolutions
        differently, and the fit can then end elsewhere (the panel's 93 default fits on an
        AMD EPYC against an Intel Xeon: 44 differ, one set by 0.4 NMI; docs/defaults.md).
    device : str, default="auto"
        ``"auto"`` (CUDA, then MPS, then CPU), or a torch device string.
    scaling : {"series", "channel", "none"}, default="series"
        How series are scaled before encoding (see :class:`~tsc_toolkit.scaling.SeriesScaler`);
        the statistics are stored in the model and work for any length.
    normalize : {"l2", "standard"} or None, default="l2"
        How embeddings are normalised before K-Means. Raw T-Loss embeddings have
        unconstrained norms that dominate Euclidean K-Means; "l2" clusters directions.
    compared_length : int or None, default=128
        Longest anchor window (caps the cost of a step on long series); None for no cap.
    max_steps : int or None, default=None
        Stop after this many optimisation steps in all (a budget for large data).
    score_sample_size : int, default=1000
        Series used for the per-epoch silhouette scores; 0 skips them. They are computed only
        when something reads them: ``verbose >= 1``, callbacks, or ``X_valid``.
    n_init : int, default=10
        K-Means restarts for the final clustering.
    kernel_features : int, default=10000
        Size of a second, untrained view of each series (random-kernel features, see
        :mod:`tsc_toolkit.random_kernels`), reduced to 50 dimensions and clustered together
        with the encoder's embedding. 0 clusters the embedding alone.
    clustering : {"spectral", "kmeans"}, default="spectral"
        "spectral": spectral clustering of the k-nearest-neighbour graph of the series (the
        groups can be curved); where that graph falls apart into more pieces than
        ``clusters`` (small, well-separated data), each piece is kept whole and the pieces are
        grouped by K-Means on their means (:func:`tsc_toolkit.graph_clustering.group_pieces`);
        new series get the cluster of most of their nearest training series. "kmeans":
        K-Means (``algorithm``), new series go to the nearest center.
    n_neighbors : int or "auto", default="auto"
        Neighbours per series in the graph of ``clustering="spectral"``. "auto": the count
        among 5, 7 and 10 whose graph shows ``clusters`` groups most clearly (the largest
        eigengap, :func:`tsc_toolkit.graph_clustering.choose_neighbors`), chosen again by
        :meth:`refit_clusters`; the count used is ``n_neighbors_``. On the development panel
        (six seeds) "auto" scored a mean NMI of 0.426 against 0.415 for 10 always, and 0.514
        against 0.517 on the held-out sets (docs/defaults.md).
    graph_weights : {"local-scaling", "unit"}, default="local-scaling"
        Edge weights of that graph. "local-scaling": ``exp(-d^2 / (s_i s_j))`` with ``s_i``
        the distance from a series to its 7th neighbour, so dense and sparse clusters are
        joined alike (self-tuning spectral clustering); "unit": every edge weighs the same.
    checkpoint_dir : str or None, default=None
        Where to save the full training state after every epoch; ``fit`` resumes from the
        newest checkpoint found there.
    warm_start : bool, default=False
        If True and the model is fitted, ``fit`` continues training the encoder on the new
        data for ``epochs`` more epochs instead of starting again.
    verbose : int, default=0
        1 prints one line per epoch in fg-research's format
        (``epoch: N train_loss: ... train_score: ...``); 2 also shows progress bars.

    Attributes
    ----------
    labels_ : ndarray of shape (n_series,)
        Cluster of each training series.
    cluster_centers_ : ndarray of shape (clusters, output_size)
        Centers (member means) in the normalised embedding space.
    embeddings_ : ndarray of shape (n_series, output_size)
        Normalised embeddings of the training series.
    inertia_ : float
        Sum of squared distances of the embeddings to their centers.
    history_ : pandas.DataFrame
        One row per epoch: epoch, train_loss, train_score, valid_loss, valid_score.
    encoder_ : torch.nn.Module
        The trained encoder.
    scaler_ : SeriesScaler
        Scaling fitted on the training series.
    n_channels_ : int
        Channels of the training series.
    n_features_in_ : int
        Values per training series as scikit-learn counts features (channels x steps of the
        padded array); series of other lengths are still embedded.
    n_steps_ : int
        Optimisation steps taken in all.
    kernel_view_ : RandomKernelFeatures or None
        The fitted random-kernel view (None with ``kernel_features=0``).
    features_ : ndarray of shape (n_series, n_features)
        What was clustered: the embedding, with the random-kernel view beside it.
    n_neighbors_ : int
        Neighbours per series in the graph that clustered the training set (with
        ``clustering="spectral"``); new series are labelled by as many training neighbours.

    Examples
    --------
    >>> from tsc_toolkit import CNNKMeans
    >>> from tsc_toolkit.datasets import make_series
    >>> X, y = make_series(60, n_clusters=3, length=40, random_state=0)
    >>> model = CNNKMeans(clusters=3, blocks=2, filters=16, reduced_size=16, output_size=16,
    ...                   epochs=3, random_state=0, device="cpu").fit(X)
    >>> model.predict(X[:5]).shape
    (5,)
    >>> model.transform(X[:5]).shape
    (5, 16)
    """

    _parameter_constraints: dict = {
        "clusters": [Interval(Integral, 1, None, closed="left")],
        "algorithm": [StrOptions({"lloyd", "elkan", "webscale"})],
        "blocks": [Interval(Integral, 0, None, closed="left")],
        "filters": [Interval(Integral, 1, None, closed="left")],
        "kernel_size": [Interval(Integral, 1, None, closed="left")],
        "reduced_size": [Interval(Integral, 1, None, closed="left")],
        "output_size": [Interval(Integral, 1, None, closed="left")],
        "negative_samples": [Interval(Integral, 1, None, closed="left")],
        "lr": [Interval(Real, 0, None, closed="neither")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "epochs": [Interval(Integral, 0, None, closed="left"), None],
        "random_state": ["random_state"],
        "device": [str, torch.device],
        "scaling": [StrOptions(set(SCALING_METHODS))],
        "normalize": [StrOptions({"l2", "standard", "none"}), None],
        "compared_length": [Interval(Integral, 1, None, closed="left"), None],
        "max_steps": [Interval(Integral, 1, None, closed="left"), None],
        "score_sample_size": [Interval(Integral, 0, None, closed="left")],
        "n_init": [Interval(Integral, 1, None, closed="left")],
        "kernel_features": [Interval(Integral, 0, None, closed="left")],
        "clustering": [StrOptions({"spectral", "kmeans"})],
        "n_neighbors": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "graph_weights": [StrOptions(set(GRAPH_WEIGHTS))],
        "checkpoint_dir": [str, os.PathLike, None],
        "warm_start": ["boolean"],
        "verbose": ["verbose"],
    }

    def __init__(self, clusters=8, algorithm="lloyd", blocks=10, filters=40, kernel_size=3,
                 reduced_size=160, output_size=320, negative_samples=10, lr=0.001,
                 batch_size=10, epochs=None, *, random_state=None, device="auto",
                 scaling="series", normalize="l2", compared_length=128, max_steps=None,
                 score_sample_size=1000, n_init=10, kernel_features=10000,
                 clustering="spectral", n_neighbors="auto", graph_weights="local-scaling",
                 checkpoint_dir=None, warm_start=False,
                 verbose=0):
        self.clusters = clusters
        self.algorithm = algorithm
        self.blocks = blocks
        self.filters = filters
        self.kernel_size = kernel_size
        self.reduced_size = reduced_size
        self.output_size = output_size
        self.negative_samples = negative_samples
        self.lr = lr
        self.batch_size = batch_size
        self.epochs = epochs
        self.random_state = random_state
        self.device = device
        self.scaling = scaling
        self.normalize = normalize
        self.compared_length = compared_length
        self.max_steps = max_steps
        self.score_sample_size = score_sample_size
        self.n_init = n_init
        self.kernel_features = kernel_features
        self.clustering = clustering
        self.n_neighbors = n_neighbors
        self.graph_weights = graph_weights
        self.checkpoint_dir = checkpoint_dir
        self.warm_start = warm_start
        self.verbose = verbose

    # ------------------------------------------------------------------ fitting

    def fit(self, X, y=None, X_valid=None, callbacks=None):
        """Train the encoder on ``X`` and cluster the embeddings.

        Parameters
        ----------
        X : array-like or DataFrame
            Training series, in any layout :func:`tsc_toolkit.as_dataset` accepts; or series
            on disk (a path or a source), trained and clustered by
            :func:`tsc_toolkit.streaming.fit`.
        y : ignored
        X_valid : array-like, optional
            Validation series: adds ``valid_loss`` and ``valid_score`` to the history.
        callbacks : list, optional
            Each a callable ``cb(model, record)`` run after every epoch, or an object with
            any of ``on_train_begin(model)``, ``on_epoch_end(model, record)``,
            ``on_train_end(model)``. Call :meth:`request_stop` to end training early.

        Returns
        -------
        self
        """
        if is_streamed(X):  # series on disk: train on a sample, cluster streamed embeddings
            return streaming.fit(self, X, X_valid=X_valid, callbacks=callbacks)
        self._validate_params()
        X = as_dataset(X)
        self.n_features_in_ = int(X.shape[1] * X.shape[2])  # values per series (channels x steps)
        Xv = None if X_valid is None else as_dataset(X_valid, name="X_valid")
        if Xv is not None and Xv.shape[1] != X.shape[1]:
            raise TimeSeriesValueError(
                f"X_valid has {Xv.shape[1]} channel(s) but X has {X.shape[1]}.")
        dist = Distributed()
        device = resolve_device(self.device)
        continuing = self.warm_start and hasattr(self, "encoder_")
        if continuing and X.shape[1] != self.n_channels_:
            raise TimeSeriesValueError(
                f"warm_start: X has {X.shape[1]} channel(s) but the model was trained on "
                f"{self.n_channels_}.")
        seed = fit_seed(self.random_state)
        if not continuing:
            self.n_channels_ = X.shape[1]
            self.scaler_ = SeriesScaler(self.scaling).fit(X)
            self.encoder_ = self._build_encoder(seed)
            self.history_ = _empty_history()
            self.n_steps_ = 0
        self.encoder_.to(device)
        self._stop = False
        threads = torch.get_num_threads()
        if device.type == "cpu":
            torch.set_num_threads(threads_for_training(threads))
        try:
            return self._fit(X, Xv, callbacks, dist, device, seed, continuing)
        finally:
            torch.set_num_threads(threads)

    def _fit(self, X, Xv, callbacks, dist, device, seed, continuing):

        inputs_np = prepare_input(self.scaler_.transform(X))
        lengths = series_lengths(X)
        inputs = torch.from_numpy(inputs_np)
        if inputs.nbytes < 2 ** 31 or device.type == "cpu":
            inputs = inputs.to(device)
        optimizer = torch.optim.Adam(self.encoder_.parameters(), lr=self.lr)
        rngs = {"batches": np.random.default_rng(seed),
                "crops": np.random.default_rng([seed, dist.rank])}
        start_epoch = len(self.history_)
        first_epoch = start_epoch
        resumed = checkpoints.resume(self, optimizer, rngs, X) if self.checkpoint_dir else None
        if resumed is not None:
            start_epoch = resumed
        callbacks = [_Callback.wrap(cb) for cb in (callbacks or [])]
        # Scores cost an encoding and a K-Means per epoch: only when something reads them.
        watched = bool(self.verbose or callbacks or Xv is not None)
        scorer = _EpochScorer(self, X, Xv, lengths, seed, enabled=watched)
        net = dist.wrap(PairEncoder(self.encoder_), device)
        for cb in callbacks:
            cb.on_train_begin(self)

        max_steps = self._step_budget()
        if self.epochs is None:
            per_epoch = max(1, -(-len(X) // (self.batch_size * dist.world)))
            total_epochs = first_epoch + min(100, -(-(max_steps - self.n_steps_) // per_epoch))
        else:
            total_epochs = first_epoch + self.epochs
        bar = None
        if self.verbose >= 2 and dist.is_main:
            from tqdm.auto import tqdm

            bar = tqdm(total=total_epochs, initial=start_epoch, desc="training", unit="epoch")
        try:
            for epoch in range(start_epoch, total_epochs):
                if max_steps is not None and self.n_steps_ >= max_steps:
                    break
                tic = time.perf_counter()
                self.encoder_.train()
                loss = self._run_epoch(net, optimizer, inputs, lengths, rngs, dist, max_steps)
                loss = dist.mean(loss, device)
                record = {"epoch": epoch + 1, "epochs": total_epochs, "train_loss": loss}
                record.update(scorer.scores(device) if dist.is_main else
                              {"train_score": np.nan, "valid_loss": np.nan,
                               "valid_score": np.nan})
                record["seconds"] = time.perf_counter() - tic
                self._append_history(record)
                if dist.is_main:
                    self._log(record, Xv is not None, bar)
                    for cb in callbacks:
                        cb.on_epoch_end(self, record)
                    if self.checkpoint_dir:
                        checkpoints.save_checkpoint(self, optimizer, rngs, X, epoch + 1)
                if dist.any(self._stop, device):
                    break
        except KeyboardInterrupt:
            # A notebook user pressed "interrupt": keep what was learned so far.
            if self.verbose:
                print("Training interrupted; clustering with the encoder as it is.")
        finally:
            if bar is not None:
                bar.close()
        self.encoder_.eval()
        self._cluster_training_set(inputs_np, lengths, device, seed, X)
        for cb in callbacks:
            cb.on_train_end(self)
        return self

    def _build_encoder(self, seed: int) -> CausalCNNEncoder:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return CausalCNNEncoder(2 * self.n_channels_, self.filters, self.blocks,
                                    self.reduced_size, self.output_size, self.kernel_size)

    def _step_budget(self) -> int | None:
        """Steps to stop at: ``max_steps``; else :data:`AUTO_STEPS` when ``epochs`` is None."""
        if self.max_steps is not None:
            return self.max_steps
        return AUTO_STEPS if self.epochs is None else None

    def _run_epoch(self, net, optimizer, inputs, lengths, rngs, dist, max_steps) -> float:
        batches = dist.shard(make_batches(lengths, self.batch_size, rngs["batches"]))
        total, count = 0.0, 0
        for batch in batches:
            if max_steps is not None and self.n_steps_ >= max_steps:
                break
            anchors, positives, negatives = sample_triplets(
                batch, lengths, self.negative_samples, rngs["crops"], self.compared_length)
            optimizer.zero_grad(set_to_none=True)
            loss = triplet_loss(net, inputs, anchors, positives, negatives)
            loss.backward()
            optimizer.step()
            total += float(loss.detach())
            count += 1
            self.n_steps_ += 1
        return total / max(count, 1)

    def _cluster_training_set(self, inputs_np, lengths, device, seed, X) -> None:
        raw = encode(self.encoder_, inputs_np, lengths, device, progress=self.verbose >= 2)
        if self.normalize == "standard":
            self.embedding_mean_ = raw.mean(axis=0)
            std = raw.std(axis=0)
            self.embedding_scale_ = np.where(std > 1e-8, std, 1.0).astype(np.float32)
        self.embeddings_ = self._normalize(raw)
        self.kernel_view_ = None
        if self.kernel_features > 0:
            from .random_kernels import RandomKernelFeatures

            self.kernel_view_ = RandomKernelFeatures(self.kernel_features, random_state=seed)
            view = self.kernel_view_.fit_transform(self.scaler_.transform(X))
            self.features_ = np.hstack([self.embeddings_, view]).astype(np.float32)
        else:
            self.features_ = self.embeddings_
        self._fit_centers(self.clusters, seed)

    def _features(self, X: np.ndarray, z: np.ndarray) -> np.ndarray:
        """What the clustering stage sees for series ``X`` with normalised embeddings ``z``."""
        if getattr(self, "kernel_view_", None) is None:
            return z
        view = self.kernel_view_.transform(self.scaler_.transform(X))
        return np.hstack([z, view]).astype(np.float32)

    def _fit_centers(self, k: int, seed: int) -> None:
        z, f = self.embeddings_, self.features_
        if k > len(z):
            raise ValueError(f"clusters={k} is more than the {len(z)} training series "
                             f"(n_samples={len(z)}).")
        if self.clustering == "spectral":
            from .graph_clustering import resolve_neighbors, spectral_labels

            self.n_neighbors_ = resolve_neighbors(f, k, self.n_neighbors, self.graph_weights)
            labels = spectral_labels(f, k, self.n_neighbors_, seed, self.n_init,
                                     self.graph_weights)
            self.feature_centers_ = _member_means(f, labels, k)
        else:
            km = self._make_kmeans(k, seed, self.n_init).fit(f)
            self.feature_centers_ = np.asarray(km.cluster_centers_, dtype=np.float32)
            labels, _ = nearest_centers(f, self.feature_centers_)
        if f is z and self.clustering == "kmeans":
            self.cluster_centers_ = self.feature_centers_
        else:
            self.cluster_centers_ = _member_means(z, labels, k)
        self.labels_ = labels.astype(np.int64)
        dist = np.linalg.norm(z - self.cluster_centers_[self.labels_], axis=1)
        self.inertia_ = float((dist.astype(np.float64) ** 2).sum())

    def _labels_of(self, X: np.ndarray, z: np.ndarray) -> np.ndarray:
        f = self._features(X, z)
        if self.clustering == "spectral":
            from .graph_clustering import neighbour_vote

            if not hasattr(self, "features_"):
                raise ModelFormatError("This model was saved without its training features, "
                                       "which spectral clustering needs to label new series.")
            return neighbour_vote(self.features_, self.labels_, f, self._graph_neighbors(),
                                  len(self.cluster_centers_))
        return nearest_centers(f, self.feature_centers_)[0]

    def _graph_neighbors(self) -> int:
        """Neighbours per series in the graph that clustered the training set."""
        if hasattr(self, "n_neighbors_"):
            return self.n_neighbors_
        if isinstance(self.n_neighbors, str):  # a model clustered before the count was kept
            raise ModelFormatError("This model does not record how many neighbours its graph "
                                   "had; call refit_clusters(k) or fit it again.")
        return int(self.n_neighbors)

    def _make_kmeans(self, k: int, seed: int, n_init: int):
        if self.algorithm == "webscale":
            from .kmeans import WebScaleKMeans

            return WebScaleKMeans(k=k, random_state=seed, device=self.device)
        from sklearn.cluster import KMeans

        return KMeans(n_clusters=k, algorithm=self.algorithm, n_init=n_init, random_state=seed)

    def _normalize(self, raw: np.ndarray) -> np.ndarray:
        return normalize_embeddings(raw, self.normalize, getattr(self, "embedding_mean_", None),
                                    getattr(self, "embedding_scale_", None))

    def _normalize_epoch(self, raw: np.ndarray) -> np.ndarray:
        # During training there are no stored statistics yet: "standard" uses the sample's own.
        if self.normalize == "standard":
            std = raw.std(axis=0)
            return normalize_embeddings(raw, "standard", raw.mean(axis=0),
                                        np.where(std > 1e-8, std, 1.0))
        return normalize_embeddings(raw, self.normalize)

    def _append_history(self, record: dict) -> None:
        import pandas as pd

        row = pd.DataFrame([{c: record.get(c, np.nan) for c in _HISTORY_COLUMNS}])
        self.history_ = row if self.history_.empty else pd.concat(
            [self.history_, row], ignore_index=True)

    def _log(self, record: dict, has_valid: bool, bar) -> None:
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{record['train_loss']:.4f}",
                            score=f"{record['train_score']:.3f}")
        if self.verbose < 1:
            return
        line = (f"epoch: {record['epoch']} train_loss: {record['train_loss']:.8f} "
                f"train_score: {record['train_score']:.8f}")
        if has_valid:
            line += (f" valid_loss: {record['valid_loss']:.8f} "
                     f"valid_score: {record['valid_score']:.8f}")
        if bar is not None:
            bar.write(line)
        else:
            print(line, flush=True)

    def request_stop(self) -> None:
        """Ask a running ``fit`` to stop after the current epoch; the model stays usable."""
        self._stop = True

    # ---------------------------------------------------------------- inference

    def transform(self, X) -> np.ndarray:
        """Embeddings of ``X`` in the space of ``cluster_centers_`` (normalised).

        ``X`` is read a chunk at a time (:func:`tsc_toolkit.streaming.is_chunked`) when it is a
        path or source, a memory-mapped array (``np.load(path, mmap_mode="r")``), an
        array-like that slices lazily (an h5py or zarr dataset), or an array of more than
        ``streaming.CHUNK_SIZE`` series; the results are those of the whole at once, and
        :meth:`predict` and :meth:`assign` do the same.

        Returns
        -------
        ndarray of shape (n_series, output_size), float32
        """
        check_is_fitted(self, "cluster_centers_")
        if streaming.is_chunked(X):  # on disk, memory-mapped or large: a chunk at a time
            return streaming.transform(self, X, chunk_size=streaming.CHUNK_SIZE,
                                       progress=self.verbose >= 1)
        X = as_dataset(X)
        if X.shape[1] != self.n_channels_:
            raise TimeSeriesValueError(
                f"X has {X.shape[1]} channel(s) but the model was trained on "
                f"{self.n_channels_}.")
        device = resolve_device(self.device)
        self.encoder_.to(device)
        raw = encode(self.encoder_, prepare_input(self.scaler_.transform(X)), series_lengths(X),
                     device, progress=self.verbose >= 2)
        return self._normalize(raw)

    def fit_transform(self, X, y=None, **fit_params) -> np.ndarray:
        """Fit, then return the embeddings of the training series (computed once)."""
        return self.fit(X, y, **fit_params).embeddings_.copy()

    def predict(self, X) -> np.ndarray:
        """Cluster of each series (see :meth:`assign`)."""
        return self.assign(X).closest_cluster

    def assign(self, X) -> Assignment:
        """Cluster, distance to that cluster's center, and embedding of each series.

        The names follow SageMaker's built-in K-Means (``closest_cluster``,
        ``distance_to_cluster``); the distance is Euclidean in the embedding space, to the
        center of the cluster the series was given.
        """
        if streaming.is_chunked(X):  # chunks no larger than is_chunked's threshold
            return streaming.assign(self, X, chunk_size=streaming.CHUNK_SIZE,
                                    progress=self.verbose >= 1)
        X = as_dataset(X)  # once: transform and the random-kernel view both read it
        z = self.transform(X)
        labels = self._labels_of(X, z)
        dist = np.linalg.norm(z - self.cluster_centers_[labels], axis=1).astype(np.float32)
        return Assignment(labels, dist, z)

    def score(self, X, y=None) -> float:
        """Negative inertia of ``X`` (higher is better), as scikit-learn's KMeans."""
        return -float((self.assign(X).distance_to_cluster.astype(np.float64) ** 2).sum())

    def refit_clusters(self, k: int, random_state=None) -> CNNKMeans:
        """Re-cluster the stored training embeddings into ``k`` clusters, without retraining.

        Sets ``clusters`` to ``k`` and updates ``labels_``, ``cluster_centers_`` and
        ``inertia_``.
        """
        check_is_fitted(self, "embeddings_")
        if not isinstance(k, (int, np.integer)) or k < 1:
            raise ValueError(f"k must be a positive integer, got {k!r}.")
        seed = fit_seed(self.random_state if random_state is None else random_state)
        self.clusters = int(k)
        self._fit_centers(int(k), seed)
        return self

    # -------------------------------------------------------------- persistence

    def save(self, path: str | os.PathLike, *, include_embeddings: bool = True) -> Path:
        """Save the fitted model to the folder ``path`` (JSON config + safetensors weights).

        ``include_embeddings=False`` leaves out the training embeddings (smaller file, but
        :meth:`refit_clusters` then needs a new ``fit``).
        """
        check_is_fitted(self, "cluster_centers_")
        tensors = {f"encoder.{k}": v for k, v in self.encoder_.state_dict().items()}
        tensors["cluster_centers"] = self.cluster_centers_
        tensors["feature_centers"] = self.feature_centers_
        if getattr(self, "kernel_view_", None) is not None:
            tensors.update(self.kernel_view_.to_tensors("kernel_view"))
        if include_embeddings or self.clustering == "spectral":
            # Spectral clustering labels new series by their training neighbours.
            tensors["features"] = self.features_
            tensors["labels"] = self.labels_
        if include_embeddings:
            tensors["embeddings"] = self.embeddings_
        return write_bundle(path, _KIND, self._meta(), tensors)

    def _meta(self) -> dict:
        params = self.get_params()
        params["checkpoint_dir"] = None if params["checkpoint_dir"] is None else \
            str(params["checkpoint_dir"])
        params["device"] = str(params["device"])
        if not isinstance(params["random_state"], (int, type(None))):
            params["random_state"] = None
        state = {"n_channels": self.n_channels_, "scaler": self.scaler_.to_dict(),
                 "history": self.history_.to_dict(orient="list"), "n_steps": self.n_steps_}
        if hasattr(self, "inertia_"):
            state["inertia"] = self.inertia_
        if hasattr(self, "n_neighbors_"):
            state["n_neighbors"] = int(self.n_neighbors_)
        if hasattr(self, "embedding_mean_"):
            state["embedding_mean"] = self.embedding_mean_.tolist()
            state["embedding_scale"] = self.embedding_scale_.tolist()
        from . import __version__

        return {"library_version": __version__, "params": params, "state": state}

    @classmethod
    def load(cls, path: str | os.PathLike, device: str | None = None) -> CNNKMeans:
        """Open a model saved with :meth:`save`. Nothing is unpickled or executed.

        Raises
        ------
        ModelFormatError
            If the folder is missing, damaged, or of another format or version.
        """
        meta, tensors = read_bundle(path, _KIND)
        model = cls._from_meta(meta, tensors, path)
        if device is not None:
            model.device = device
        if "cluster_centers" not in tensors:
            raise ModelFormatError(f"{path}: the weights hold no cluster centers.")
        model.cluster_centers_ = tensors["cluster_centers"].numpy()
        model.feature_centers_ = (tensors["feature_centers"].numpy() if "feature_centers"
                                  in tensors else model.cluster_centers_)
        model.kernel_view_ = None
        if any(key.startswith("kernel_view.") for key in tensors):
            from .random_kernels import RandomKernelFeatures

            try:
                model.kernel_view_ = RandomKernelFeatures.from_tensors(
                    tensors, "kernel_view", n_features=model.kernel_features)
            except KeyError as err:
                raise ModelFormatError(f"{path}: the random-kernel view lacks {err}.") from None
        if "labels" in tensors:
            model.labels_ = tensors["labels"].numpy()
        if "features" in tensors:
            model.features_ = tensors["features"].numpy()
        if model.clustering == "spectral":  # labels new series by its training neighbours
            missing = [name for name in ("features", "labels") if name not in tensors]
            if missing:
                raise ModelFormatError(f"{path}: the weights hold no {' or '.join(missing)}, "
                                       "which spectral clustering needs to label new series.")
            if not hasattr(model, "n_neighbors_"):
                raise ModelFormatError(f"{path}: config.json does not record how many "
                                       "neighbours the graph had (state.n_neighbors).")
        if "embeddings" in tensors:
            model.embeddings_ = tensors["embeddings"].numpy()
            if not hasattr(model, "features_"):
                model.features_ = model.embeddings_
        return model

    @classmethod
    def _from_meta(cls, meta: dict, tensors: dict, path) -> CNNKMeans:
        import pandas as pd

        try:
            params, state = dict(meta["params"]), meta["state"]
            # Files written before the random-kernel view and spectral clustering existed
            # hold K-Means models on the embedding alone.
            params.setdefault("kernel_features", 0)
            params.setdefault("clustering", "kmeans")
            # and those written before graph weights were a setting used unit weights.
            params.setdefault("graph_weights", "unit")
            # A file that names no neighbour count had the default of its time, 10.
            params.setdefault("n_neighbors", 10)
            known = cls._get_param_names()
            unknown = set(params) - set(known)
            if unknown:
                raise ModelFormatError(f"{path}: unknown parameters {sorted(unknown)}.")
            model = cls(**params)
            model.n_channels_ = int(state["n_channels"])
            model.scaler_ = SeriesScaler.from_dict(state["scaler"])
            model.history_ = pd.DataFrame(state["history"], columns=_HISTORY_COLUMNS)
            model.n_steps_ = int(state.get("n_steps", 0))
            if "inertia" in state:
                model.inertia_ = float(state["inertia"])
            if "n_neighbors" in state:
                model.n_neighbors_ = int(state["n_neighbors"])
                if model.n_neighbors_ < 1:
                    raise ValueError("n_neighbors")
            elif model.clustering == "spectral" and not isinstance(model.n_neighbors, str):
                # Files written before the count was kept: the parameter was the count.
                model.n_neighbors_ = int(model.n_neighbors)
            if "embedding_mean" in state:
                model.embedding_mean_ = np.asarray(state["embedding_mean"], dtype=np.float32)
                model.embedding_scale_ = np.asarray(state["embedding_scale"], dtype=np.float32)
        except (KeyError, TypeError, ValueError) as err:
            if isinstance(err, ModelFormatError):
                raise
            raise ModelFormatError(f"{path}: config.json lacks or garbles {err}.") from None
        model.encoder_ = model._build_encoder(0)
        weights = {k[len("encoder."):]: v for k, v in tensors.items() if k.startswith("encoder.")}
        try:
            model.encoder_.load_state_dict(weights, strict=True)
        except RuntimeError as err:
            raise ModelFormatError(f"{path}: the weights do not fit the configured encoder "
                                   f"({str(err).splitlines()[0]}).") from None
        model.encoder_.eval()
        return model

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.non_deterministic = self.random_state is None
        return tags

    def __getstate__(self):
        # The encoder's weight-norm parametrizations do not pickle (torch allows only their
        # state_dict): keep the weights, and rebuild the encoder around them on unpickling.
        state = dict(super().__getstate__())  # a copy: the base may give __dict__ itself
        encoder = state.pop("encoder_", None)
        if encoder is not None:
            state["_encoder_weights"] = {k: v.detach().cpu()
                                         for k, v in encoder.state_dict().items()}
        return state

    def __setstate__(self, state):
        weights = state.pop("_encoder_weights", None)
        super().__setstate__(state)
        if weights is not None:
            self.encoder_ = self._build_encoder(0)
            self.encoder_.load_state_dict(weights, strict=True)
            self.encoder_.eval()


class _EpochScorer:
    """Per-epoch silhouette scores and validation loss, on fixed samples of the data."""

    def __init__(self, model: CNNKMeans, X, Xv, lengths, seed, enabled: bool = True):
        self.model, self.seed = model, seed
        rng = np.random.default_rng([seed, 1])
        size = model.score_sample_size if enabled else 0

        def sample(data):
            if data is None or size == 0:
                return None
            idx = np.sort(rng.choice(len(data), min(size, len(data)), replace=False))
            part = data[idx]
            return prepare_input(model.scaler_.transform(part)), series_lengths(part)

        self.train = sample(X)
        self.valid = sample(Xv) if Xv is not None else None
        if Xv is not None and self.valid is None:  # valid loss without scores
            self.valid = (prepare_input(model.scaler_.transform(Xv)), series_lengths(Xv))

    def scores(self, device) -> dict:
        nan = float("nan")
        out = {"train_score": nan, "valid_loss": nan, "valid_score": nan}
        m = self.model
        km = None
        if self.train is not None:
            z = m._normalize_epoch(encode(m.encoder_, *self.train, device))
            k = min(m.clusters, len(z) - 1)
            if k >= 2:
                km = m._make_kmeans(k, self.seed, 1).fit(z)
                out["train_score"] = silhouette(z, km.predict(z), self.seed)
        if self.valid is not None:
            inputs, lengths = self.valid
            t = torch.from_numpy(inputs).to(device)
            rng = np.random.default_rng([self.seed, 2])  # same draws every epoch
            losses = []
            with torch.no_grad():
                for batch in make_batches(lengths, m.batch_size, rng):
                    crops = sample_triplets(batch, lengths, m.negative_samples, rng,
                                            m.compared_length)
                    losses.append(float(triplet_loss(PairEncoder(m.encoder_), t, *crops)))
            out["valid_loss"] = float(np.mean(losses))
            if km is not None and m.score_sample_size > 0:
                zv = m._normalize_epoch(encode(m.encoder_, inputs, lengths, device))
                out["valid_score"] = silhouette(zv, km.predict(zv), self.seed)
        return out


class _Callback:
    """Adapter giving plain callables and partial callback objects the full protocol."""

    def __init__(self, target):
        self.target = target

    @classmethod
    def wrap(cls, target):
        if not callable(target) and not any(hasattr(target, m) for m in
                                            ("on_train_begin", "on_epoch_end", "on_train_end")):
            raise TypeError(f"A callback must be callable or have on_epoch_end(model, record); "
                            f"got {type(target).__name__}.")
        return cls(target)

    def on_train_begin(self, model):
        fn = getattr(self.target, "on_train_begin", None)
        if fn is not None:
            fn(model)

    def on_epoch_end(self, model, record):
        fn = getattr(self.target, "on_epoch_end", None)
        if fn is not None:
            fn(model, record)
        elif callable(self.target):
            self.target(model, record)

    def on_train_end(self, model):
        fn = getattr(self.target, "on_train_end", None)
        if fn is not None:
            fn(model)


def _member_means(z: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    """Mean of each cluster's rows, float32 (a cluster without members gets the overall mean)."""
    from .graph_clustering import member_means

    return member_means(z, labels, k).astype(np.float32)


def _empty_history():
    import pandas as pd

    return pd.DataFrame({c: pd.Series(dtype="int64" if c == "epoch" else "float64")
                         for c in _HISTORY_COLUMNS})
