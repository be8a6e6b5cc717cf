"""CNNKMeans: the T-Loss encoder, a random-kernel view and a clustering stage, composed as one
scikit-learn clusterer."""

from __future__ import annotations

import os
from numbers import Integral
from pathlib import Path

import numpy as np
from sklearn.base import BaseEstimator, ClusterMixin, TransformerMixin
from sklearn.utils._param_validation import Interval
from sklearn.utils.validation import check_is_fitted

from . import streaming
from .assignment import Assignment
from .clustering.graph_clustering import member_means
from .clustering.stage import FeatureClusterer, inertia
from .data import as_dataset
from .embedding.tloss import AUTO_STEPS, Callback, TLossEncoder
from .io.sources import is_chunked_array, map_chunks
from .persistence import ModelFormatError, json_params, read_bundle, write_bundle
from .seeding import fit_seed
from .threads import inference_threads, work_of
from .views.random_kernels import RandomKernelFeatures

__all__ = ["CNNKMeans", "Assignment", "fit_seed", "AUTO_STEPS"]

_KIND = "tsc_toolkit.CNNKMeans"
#: The parameters of CNNKMeans that are the encoder stage's, under the same names.
_ENCODER_PARAMS = ("blocks", "filters", "kernel_size", "reduced_size", "output_size",
                   "negative_samples", "lr", "batch_size", "epochs", "max_steps",
                   "compared_length", "scaling", "normalize", "score_sample_size", "device",
                   "checkpoint_dir", "warm_start", "pretrained", "channel_mode", "verbose")
#: The parameters of CNNKMeans that are the clustering stage's, under the same names.
_CLUSTERING_PARAMS = ("algorithm", "n_init", "clustering", "n_neighbors", "graph_weights")


def _check_k(k: int, n: int, name: str) -> None:
    if k > n:
        raise ValueError(f"{name}={k} is more than the {n} training series (n_samples={n}).")


def _stage_attribute(stage: str, name: str, doc: str):
    """A read-only attribute of the model that is its ``stage``'s attribute ``name``."""
    def get(self):
        return getattr(getattr(self, stage), name)
    return property(get, doc=doc)


class CNNKMeans(ClusterMixin, TransformerMixin, BaseEstimator):
    """Cluster time series: a T-Loss causal CNN encoder, a random-kernel view, a clustering stage.

    The encoder (Franceschi et al., NeurIPS 2019) is trained without labels: a random
    sub-series (anchor) should embed close to a sub-window of itself (positive) and far
    from windows of other series (negatives). Its embedding, beside an untrained
    random-kernel view of each series, is grouped by spectral clustering of the series'
    nearest-neighbour graph (or K-Means). Series may have different lengths, missing values
    and several channels.

    The model is a composition of three fitted stages, each a scikit-learn estimator that
    can be used alone: :class:`~tsc_toolkit.embedding.TLossEncoder` (``encoder_stage_``),
    :class:`~tsc_toolkit.views.random_kernels.RandomKernelFeatures` (``kernel_view_``) and
    :class:`~tsc_toolkit.clustering.FeatureClusterer` (``clusterer_``). The settings below
    are fg-research's flat hyperparameters, handed to the stages they belong to.

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
        the same processor and torch build with the same number of threads; another
        processor rounds some convolutions differently, and the fit can then end elsewhere
        (the panel's 93 default fits on an AMD EPYC against an Intel Xeon: 44 differ, one set
        by 0.4 NMI; docs/defaults.md). A fit uses one thread per core that other processes
        leave free, so on a busy machine it may run on fewer threads and round differently
        too; ``torch.set_num_threads(1)`` before fitting makes it repeatable whatever the
        load (and slower on an idle machine).
    device : str, default="auto"
        ``"auto"`` (CUDA, then MPS, then CPU), or a torch device string.
    scaling : {"series", "channel", "none"}, default="series"
        How series are scaled before encoding (see :class:`~tsc_toolkit.embedding.scaling.SeriesScaler`);
        the statistics are stored in the model and work for any length.
    normalize : {"l2", "standard", "none"} or None, default="l2"
        How embeddings are normalised before they are clustered. Raw T-Loss embeddings have
        unconstrained norms that dominate Euclidean distances; "l2" clusters directions,
        "standard" scales each dimension by the training embeddings' mean and standard
        deviation, "none" (or None) keeps them raw.
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
        :mod:`tsc_toolkit.views.random_kernels`), reduced to 50 dimensions and clustered together
        with the encoder's embedding. 0 clusters the embedding alone.
    clustering : {"spectral", "kmeans"}, default="spectral"
        "spectral": spectral clustering of the k-nearest-neighbour graph of the series (the
        groups can be curved); where that graph falls apart into more pieces than
        ``clusters`` (small, well-separated data), each piece is kept whole and the pieces are
        grouped by K-Means on their means (:func:`tsc_toolkit.clustering.graph_clustering.group_pieces`);
        new series get the cluster of most of their nearest training series. "kmeans":
        K-Means (``algorithm``), new series go to the nearest center.
    n_neighbors : int or "auto", default="auto"
        Neighbours per series in the graph of ``clustering="spectral"``. "auto": the count
        among 5, 7 and 10 whose graph shows ``clusters`` groups most clearly (the largest
        eigengap, :func:`tsc_toolkit.clustering.graph_clustering.choose_neighbors`), chosen again by
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
    pretrained : None, "auto" or path, default=None
        Where the encoder's training starts: None, from random weights (fg-research's way);
        a folder written by :func:`tsc_toolkit.embedding.pretrain.pretrain` (or
        ``tsc-toolkit pretrain``); "auto", the encoder pretrained for the package when the
        architecture is the default one (:class:`~tsc_toolkit.embedding.TLossEncoder`;
        docs/pretrained_encoder.md: a fit in about 2 s instead of 18, clusters somewhat worse
        on the development panel). ``epochs``/``max_steps`` then set how long it is
        fine-tuned; by default not at all.
    channel_mode : {"auto", "joint", "separate"}, default="auto"
        How series of several channels are embedded: by one network reading all channels
        ("joint"), or channel by channel with the embeddings side by side ("separate");
        "auto" embeds them separately when the encoder starts from univariate pretrained
        weights (see :class:`~tsc_toolkit.embedding.TLossEncoder`).
    verbose : int, default=0
        1 prints one line per epoch in fg-research's format
        (``epoch: N train_loss: ... train_score: ...``); 2 also shows progress bars.

    Attributes
    ----------
    labels_ : ndarray of shape (n_series,)
        Cluster of each training series.
    n_clusters_ : int
        Clusters of the current clustering: ``clusters``, or the k of the last
        :meth:`refit_clusters`.
    cluster_centers_ : ndarray of shape ``(n_clusters_, embedding width)``
        Mean embedding of each cluster's training series (normalised embedding space):
        what ``assign`` measures distances to.
    feature_centers_ : ndarray of shape ``(n_clusters_, n_features)``
        The clustering stage's centers in the space of ``features_`` (K-Means' centers, or
        each cluster's mean for spectral clustering, whose new series are labelled by their
        training neighbours instead).
    embeddings_ : ndarray of shape (n_series, embedding width)
        Normalised embeddings of the training series: ``output_size`` values each, or
        ``n_channels_ x output_size`` when channels are embedded separately.
    inertia_ : float
        Sum of squared distances of the embeddings to their centers.
    history_ : pandas.DataFrame
        One row per epoch: epoch, train_loss, train_score, valid_loss, valid_score.
    encoder_stage_ : TLossEncoder
        The fitted embedding stage (scaling, network, training history).
    encoder_ : torch.nn.Module
        The trained network (``encoder_stage_.module_``).
    scaler_ : SeriesScaler
        Scaling fitted on the training series (``encoder_stage_.scaler_``).
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
    clusterer_ : FeatureClusterer
        The fitted clustering stage, on ``features_``.
    n_neighbors_ : int
        Neighbours per series in the graph that clustered the training set (with
        ``clustering="spectral"``); new series are labelled by as many training neighbours.
    embedding_mean_, embedding_scale_ : ndarray of shape (output_size,)
        Statistics of the training embeddings (``normalize="standard"`` only).

    Examples
    --------
    >>> from tsc_toolkit import CNNKMeans
    >>> from tsc_toolkit.io.datasets import make_series
    >>> X, y = make_series(60, n_clusters=3, length=40, random_state=0)
    >>> model = CNNKMeans(clusters=3, blocks=2, filters=16, reduced_size=16, output_size=16,
    ...                   epochs=3, random_state=0, device="cpu").fit(X)
    >>> model.predict(X[:5]).shape
    (5,)
    >>> model.transform(X[:5]).shape
    (5, 16)
    """

    # Each setting is checked as the stage it belongs to checks it.
    _parameter_constraints: dict = {
        "clusters": [Interval(Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
        "kernel_features": [Interval(Integral, 0, None, closed="left")],
        **{name: TLossEncoder._parameter_constraints[name] for name in _ENCODER_PARAMS},
        **{name: FeatureClusterer._parameter_constraints[name] for name in _CLUSTERING_PARAMS},
    }

    def __init__(self, clusters=8, algorithm="lloyd", blocks=10, filters=40, kernel_size=3,
                 reduced_size=160, output_size=320, negative_samples=10, lr=0.001,
                 batch_size=10, epochs=None, *, random_state=None, device="auto",
                 scaling="series", normalize="l2", compared_length=128, max_steps=None,
                 score_sample_size=1000, n_init=10, kernel_features=10000,
                 clustering="spectral", n_neighbors="auto", graph_weights="local-scaling",
                 checkpoint_dir=None, warm_start=False, pretrained=None,
                 channel_mode="auto", verbose=0):
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
        self.pretrained = pretrained
        self.channel_mode = channel_mode
        self.verbose = verbose

    # ------------------------------------------------------------------ stages

    def encoder_params(self, seed: int) -> dict:
        """The parameters of this model's :class:`~tsc_toolkit.embedding.TLossEncoder`."""
        params = {name: getattr(self, name) for name in _ENCODER_PARAMS}
        return {**params, "score_clusters": self.clusters, "score_algorithm": self.algorithm,
                "random_state": seed}

    def make_clusterer(self, k: int, seed: int) -> FeatureClusterer:
        """This model's clustering stage for ``k`` clusters, unfitted."""
        return FeatureClusterer(n_clusters=int(k), clustering=self.clustering,
                                algorithm=self.algorithm, n_init=self.n_init,
                                n_neighbors=self.n_neighbors, graph_weights=self.graph_weights,
                                random_state=seed, device=self.device)

    encoder_ = _stage_attribute("encoder_stage_", "module_", "The trained network.")
    scaler_ = _stage_attribute("encoder_stage_", "scaler_", "The fitted scaling.")
    history_ = _stage_attribute("encoder_stage_", "history_", "One row per epoch.")
    n_steps_ = _stage_attribute("encoder_stage_", "n_steps_", "Optimisation steps taken.")
    n_channels_ = _stage_attribute("encoder_stage_", "n_channels_", "Training channels.")
    embedding_mean_ = _stage_attribute("encoder_stage_", "embedding_mean_",
                                       "Mean training embedding (standard normalisation).")
    embedding_scale_ = _stage_attribute("encoder_stage_", "embedding_scale_",
                                        "Training embeddings' spread (standard normalisation).")
    feature_centers_ = _stage_attribute("clusterer_", "cluster_centers_",
                                        "The clustering stage's centers in feature space.")
    n_neighbors_ = _stage_attribute("clusterer_", "n_neighbors_",
                                    "Neighbours per series in the clustering graph.")

    @property
    def n_series_clustered_(self) -> int:
        """Series the clustering stage was fitted on: the training series, or every series of
        a source that :func:`tsc_toolkit.streaming.fit` clustered with ``cluster_on="all"``."""
        return len(self.clusterer_.labels_)

    @property
    def n_series_streamed_(self) -> int:
        """The name :func:`tsc_toolkit.streaming.fit` gives ``n_series_clustered_``."""
        return self.n_series_clustered_

    # ------------------------------------------------------------------ fitting

    def fit(self, X, y=None, X_valid=None, callbacks=None):
        """Train the encoder on ``X`` and cluster the series.

        Parameters
        ----------
        X : array-like or DataFrame
            Training series, in any layout :func:`tsc_toolkit.as_dataset` accepts; or series
            on disk, trained and clustered by :func:`tsc_toolkit.streaming.fit` without
            being loaded whole: a path, a source, or an array read where it is sliced (a
            memmap such as ``np.load(path, mmap_mode="r")``, an h5py or zarr dataset),
            treated like the file it maps. Up to ``streaming.SAMPLE_SIZE`` series such an
            array gives the fit of the same series in memory; beyond, the encoder trains
            on a sample of them (see :func:`~tsc_toolkit.streaming.fit`).
        y : ignored
        X_valid : array-like, optional
            Validation series: adds ``valid_loss`` and ``valid_score`` to the history.
        callbacks : list, optional
            Each a callable ``cb(model, record)`` run after every epoch, or an object with
            any of ``on_train_begin(model)``, ``on_epoch_end(model, record)``,
            ``on_train_end(model)`` (called once the series are clustered). Call
            :meth:`request_stop` to end training early.

        Returns
        -------
        self
        """
        if streaming.is_fitted_streamed(X):  # on disk: train on a sample, cluster streamed
            return streaming.fit(self, X, X_valid=X_valid, callbacks=callbacks)
        self._validate_params()
        X = as_dataset(X)
        _check_k(self.clusters, len(X), "clusters")  # before training, not after
        self.n_features_in_ = int(X.shape[1] * X.shape[2])  # values per series (channels x steps)
        seed = fit_seed(self.random_state)
        stage = getattr(self, "encoder_stage_", None) if self.warm_start else None
        if stage is None:
            stage = TLossEncoder()
        stage.set_params(**self.encoder_params(seed))
        self.encoder_stage_ = stage
        callbacks = [Callback.wrap(cb, self, ends=False) for cb in (callbacks or [])]
        z = stage.fit_transform(X, X_valid=X_valid, callbacks=callbacks)
        self.embeddings_ = z
        self.kernel_view_ = None
        features = z
        if self.kernel_features > 0:
            self.kernel_view_ = RandomKernelFeatures(self.kernel_features, random_state=seed)
            view = self.kernel_view_.fit_transform(stage.scale(X))
            features = np.hstack([z, view]).astype(np.float32)
        self.features_ = features
        self.set_clusterer(self.make_clusterer(self.clusters, seed).fit(features))
        for cb in callbacks:
            cb.finish()
        return self

    def set_clusterer(self, clusterer: FeatureClusterer, embeddings=None) -> CNNKMeans:
        """Make a fitted clustering stage this model's.

        Parameters
        ----------
        clusterer : FeatureClusterer
            Fitted on ``features_`` (then ``labels_`` are its labels), or on the features of
            other series whose ``embeddings`` are given (then ``labels_`` are its
            predictions for the training series).
        embeddings : array-like of shape (n, output_size), optional
            The embeddings of the series ``clusterer`` was fitted on, in its order (a
            memory-mapped array is read a chunk at a time): ``cluster_centers_`` are the
            mean embedding of its clusters there. None: the training series'.

        Returns
        -------
        self
        """
        check_is_fitted(clusterer, "cluster_centers_")
        k = len(clusterer.cluster_centers_)
        z = self.embeddings_
        if embeddings is None:
            labels = clusterer.labels_
            source, source_labels = z, labels
        else:
            labels = clusterer.predict(self.features_)
            source, source_labels = embeddings, clusterer.labels_
        self.clusterer_ = clusterer
        self.n_clusters_ = k
        if self.features_ is z and clusterer.clustering == "kmeans":
            self.cluster_centers_ = clusterer.cluster_centers_
        else:
            self.cluster_centers_ = member_means(source, source_labels, k).astype(np.float32)
        self.labels_ = np.asarray(labels, dtype=np.int64)
        self.inertia_ = inertia(z, self.labels_, self.cluster_centers_)
        return self

    def request_stop(self) -> None:
        """Ask a running ``fit`` to stop after the current epoch; the model stays usable."""
        stage = getattr(self, "encoder_stage_", None)
        if stage is not None:
            stage.request_stop()

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
        ndarray of shape (n_series, embedding width), float32
        """
        check_is_fitted(self, "cluster_centers_")
        if streaming.is_chunked(X):  # on disk, memory-mapped or large: a chunk at a time
            return streaming.transform(self, X, chunk_size=streaming.CHUNK_SIZE,
                                       progress=self.verbose >= 1)
        with inference_threads(work_of(X)):
            return self.encoder_stage_.transform(X)

    def cluster_features(self, X) -> np.ndarray:
        """What the clustering stage sees for ``X``: the embedding, beside the random-kernel
        view when the model has one (``features_`` for the training series); a chunk at a
        time for arrays :meth:`transform` reads in chunks."""
        if is_chunked_array(X):
            return map_chunks(self.cluster_features, X)
        with inference_threads(work_of(X)):
            return self._embed(X)[1]

    def _embed(self, X) -> tuple[np.ndarray, np.ndarray]:
        """Embeddings and clustering features of ``X``, scaling it once."""
        check_is_fitted(self, "cluster_centers_")
        S = self.encoder_stage_.scale(X)
        z = self.encoder_stage_.embed_scaled(S)
        if getattr(self, "kernel_view_", None) is None:
            return z, z
        return z, np.hstack([z, self.kernel_view_.transform(S)]).astype(np.float32)

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
        check_is_fitted(self, "cluster_centers_")
        if streaming.is_chunked(X):  # chunks no larger than is_chunked's threshold
            return streaming.assign(self, X, chunk_size=streaming.CHUNK_SIZE,
                                    progress=self.verbose >= 1)
        with inference_threads(work_of(X)):
            z, f = self._embed(X)
            labels = self.clusterer_.predict(f)
            dist = np.linalg.norm(z - self.cluster_centers_[labels], axis=1).astype(np.float32)
        return Assignment(labels, dist, z)

    def score(self, X, y=None) -> float:
        """Negative inertia of ``X`` (higher is better), as scikit-learn's KMeans."""
        return -float((self.assign(X).distance_to_cluster.astype(np.float64) ** 2).sum())

    def refit_clusters(self, k: int, random_state=None) -> CNNKMeans:
        """Re-cluster the stored training features into ``k`` clusters, without retraining.

        Updates ``n_clusters_``, ``labels_``, ``cluster_centers_``, ``clusterer_`` and
        ``inertia_``; the ``clusters`` setting stays as it was set (``set_params`` changes
        it). The clustering is the one a fit with ``clusters=k`` would end with.
        """
        check_is_fitted(self, "embeddings_")
        if not isinstance(k, (int, np.integer)) or k < 1:
            raise ValueError(f"k must be a positive integer, got {k!r}.")
        _check_k(k, len(self.features_), "k")
        seed = fit_seed(self.random_state if random_state is None else random_state)
        return self.set_clusterer(self.make_clusterer(int(k), seed).fit(self.features_))

    # -------------------------------------------------------------- persistence

    def save(self, path: str | os.PathLike, *, include_embeddings: bool = True) -> Path:
        """Save the fitted model to the folder ``path`` (JSON config + safetensors weights).

        ``include_embeddings=False`` leaves out the training embeddings (smaller file, but
        :meth:`refit_clusters` then needs a new ``fit``).
        """
        check_is_fitted(self, "cluster_centers_")
        from . import __version__

        state, tensors = self.encoder_stage_.state()
        state["inertia"] = self.inertia_
        if hasattr(self, "n_neighbors_"):
            state["n_neighbors"] = int(self.n_neighbors_)
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
        meta = {"library_version": __version__, "params": json_params(self.get_params()),
                "state": state}
        return write_bundle(path, _KIND, meta, tensors)

    @classmethod
    def load(cls, path: str | os.PathLike, device: str | None = None) -> CNNKMeans:
        """Open a model saved with :meth:`save`. Nothing is unpickled or executed.

        Parameters
        ----------
        path : str or path
        device : str, optional
            The ``device`` setting of the opened model (else the saved one).

        Raises
        ------
        ModelFormatError
            If the folder is missing, damaged, or of another format or version.
        """
        meta, tensors = read_bundle(path, _KIND)
        try:
            params, state = dict(meta["params"]), dict(meta["state"])
        except (KeyError, TypeError, ValueError) as err:
            raise ModelFormatError(f"{path}: config.json lacks or garbles {err}.") from None
        # Files written before the random-kernel view and spectral clustering existed hold
        # K-Means models on the embedding alone; before graph weights were a setting they
        # used unit weights; a file that names no neighbour count had the default of its
        # time, 10.
        for name, old in (("kernel_features", 0), ("clustering", "kmeans"),
                          ("graph_weights", "unit"), ("n_neighbors", 10)):
            params.setdefault(name, old)
        unknown = set(params) - set(cls._get_param_names())
        if unknown:
            raise ModelFormatError(f"{path}: unknown parameters {sorted(unknown)}.")
        if device is not None:
            params["device"] = device
        try:
            model = cls(**params)
        except TypeError as err:
            raise ModelFormatError(f"{path}: config.json lacks or garbles {err}.") from None
        model.encoder_stage_ = TLossEncoder.from_state(model.encoder_params(0), state, tensors,
                                                       path)
        model._load_clusters(path, state, tensors)
        return model

    def _load_clusters(self, path, state: dict, tensors: dict) -> None:
        def array(name):
            return tensors[name].numpy() if name in tensors else None

        centers = array("cluster_centers")
        if centers is None:
            raise ModelFormatError(f"{path}: the weights hold no cluster centers.")
        feature_centers = array("feature_centers")
        feature_centers = centers if feature_centers is None else feature_centers
        self.kernel_view_ = None
        if any(key.startswith("kernel_view.") for key in tensors):
            try:
                self.kernel_view_ = RandomKernelFeatures.from_tensors(
                    tensors, "kernel_view", n_features=self.kernel_features)
            except KeyError as err:
                raise ModelFormatError(f"{path}: the random-kernel view lacks {err}.") from None
        labels, features, embeddings = array("labels"), array("features"), array("embeddings")
        if self.clustering == "spectral":  # labels new series by its training neighbours
            missing = [name for name, value in (("features", features), ("labels", labels))
                       if value is None]
            if missing:
                raise ModelFormatError(f"{path}: the weights hold no {' or '.join(missing)}, "
                                       "which spectral clustering needs to label new series.")
        if features is None and embeddings is not None:
            features = embeddings
        k = len(centers)
        count = None
        if self.clustering == "spectral":
            count = state.get("n_neighbors")
            if count is None and not isinstance(self.n_neighbors, str):
                count = self.n_neighbors  # written before the count was kept: the setting
            if count is None:
                raise ModelFormatError(f"{path}: config.json does not record how many "
                                       "neighbours the graph had (state.n_neighbors).")
        try:
            clusterer = FeatureClusterer.from_fitted(self.make_clusterer(k, 0).get_params(),
                                                     feature_centers, labels, features, count)
        except (TypeError, ValueError):
            raise ModelFormatError(f"{path}: config.json lacks or garbles "
                                   "n_neighbors.") from None
        self.clusterer_ = clusterer
        self.n_clusters_ = k
        self.cluster_centers_ = centers
        if labels is not None:
            self.labels_ = labels
        if features is not None:
            self.features_ = features
        if embeddings is not None:
            self.embeddings_ = embeddings
        if "inertia" in state:
            try:
                self.inertia_ = float(state["inertia"])
            except (TypeError, ValueError):
                raise ModelFormatError(f"{path}: config.json lacks or garbles inertia.") \
                    from None

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.non_deterministic = self.random_state is None
        return tags
