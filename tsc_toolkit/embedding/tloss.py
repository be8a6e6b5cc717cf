"""TLossEncoder: scaling, the causal CNN, its triplet-loss training, scores, callbacks and
checkpoints, as one scikit-learn transformer."""

from __future__ import annotations

import os
import time
from numbers import Integral, Real
from pathlib import Path

import numpy as np
import torch
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from ..clustering.stage import FeatureClusterer
from ..data import TimeSeriesValueError, as_dataset, series_lengths
from ..hyperparameters import ARCHITECTURE_PARAMS
from ..io.sources import is_chunked_array, map_chunks
from ..persistence import ModelFormatError, json_params, read_bundle, write_bundle
from ..seeding import stage_seed
from ..threads import inference_threads, work_of
from . import checkpoints
from .encoder import CausalCNNEncoder, encode, prepare_input
from .scaling import SCALING_METHODS, SeriesScaler
from .training import (
    Distributed,
    PairEncoder,
    make_batches,
    normalize_embeddings,
    resolve_device,
    silhouette,
    threads_for_training,
)
from .triplet import sample_triplets, triplet_loss

__all__ = ["TLossEncoder", "AUTO_STEPS", "HISTORY_COLUMNS", "shipped_weights",
           "widen_first_layer"]

KIND = "tsc_toolkit.TLossEncoder"
HISTORY_COLUMNS = ["epoch", "train_loss", "train_score", "valid_loss", "valid_score"]
#: Optimisation steps of a fit when neither ``epochs`` nor ``max_steps`` is set.
AUTO_STEPS = 100
#: The same for an encoder that starts from pretrained weights: none (on the development panel
#: 100 more steps moved the mean NMI from 0.388 to 0.395 and the median fit from 2 s to 18 s).
PRETRAINED_STEPS = 0


class TLossEncoder(TransformerMixin, BaseEstimator):
    """Embed time series with a causal dilated CNN trained by the triplet loss (T-Loss).

    The encoder (Franceschi et al., NeurIPS 2019) learns without labels: a random sub-series
    (anchor) should embed close to a sub-window of itself (positive) and far from windows of
    other series (negatives). Series may have different lengths, missing values and several
    channels; each is scaled (``scaling``), its gaps become zeros beside an "observed" mask
    channel, and the max-pooled output of the last block is projected to ``output_size``.

    This is the embedding stage of :class:`~tsc_toolkit.CNNKMeans` (whose ``encoder_stage_``
    it is), and can be used alone, for example in a scikit-learn ``Pipeline``.

    Parameters
    ----------
    blocks, filters, kernel_size, reduced_size, output_size : int
        The network: dilated causal convolution blocks, their channels, their kernel size,
        the channels of the last block (max-pooled over time), and the embedding's size.
    negative_samples : int, default=10
        Negatives per anchor in the triplet loss.
    lr : float, default=0.001
        Adam learning rate.
    batch_size : int, default=10
        Anchors per optimisation step.
    epochs : int or None, default=None
        Passes over the series. None trains for ``max_steps`` steps, or :data:`AUTO_STEPS`
        (:data:`PRETRAINED_STEPS` from pretrained weights).
    max_steps : int or None, default=None
        Stop after this many optimisation steps in all.
    compared_length : int or None, default=128
        Longest anchor window; None for no cap.
    scaling : {"series", "channel", "none"}, default="series"
        See :class:`~tsc_toolkit.embedding.scaling.SeriesScaler`.
    normalize : {"l2", "standard", "none"} or None, default="l2"
        How embeddings are normalised: "l2" to unit length, "standard" by the training
        embeddings' mean and standard deviation, "none" (or None) not at all.
    score_clusters : int, default=8
        Clusters of the per-epoch silhouette score (K-Means on a sample's embeddings).
    score_algorithm : {"lloyd", "elkan", "webscale"}, default="lloyd"
        K-Means variant of that score.
    score_sample_size : int, default=1000
        Series of that score; 0 skips it. Scores are computed only when something reads
        them: ``verbose >= 1``, callbacks, or ``X_valid``.
    random_state : int, RandomState or None, default=None
        Seed of the weights and of the triplet sampling (an int is used as it is).
    device : str, default="auto"
        ``"auto"`` (CUDA, then MPS, then CPU), or a torch device string.
    checkpoint_dir : str or None, default=None
        Save the training state after every epoch there; ``fit`` resumes from the newest.
    warm_start : bool, default=False
        If True and fitted, ``fit`` continues training on the new series.
    pretrained : None, "auto" or path, default=None
        Where training starts. None: from random weights (seeded). A path: from the weights of
        an encoder saved there (by :meth:`save` or :func:`~tsc_toolkit.embedding.pretrain.
        pretrain`), which must have this architecture. "auto": from the weights shipped with
        the package (:func:`shipped_weights`) when the architecture is theirs, else from
        random weights. How weights pretrained on univariate series serve several channels
        is ``channel_mode``'s choice.
    channel_mode : {"auto", "joint", "separate"}, default="auto"
        How a series of several channels is embedded. "joint": one network reads all
        channels (univariate pretrained weights start it with their first layer shared out
        over the channels, so a series whose channels are all equal embeds as the univariate
        series would). "separate": one univariate network embeds each channel, and a series'
        embedding is its channels' normalised embeddings side by side, divided by the square
        root of their number (``n_channels x output_size`` values). "auto": "separate" when
        training starts from univariate pretrained weights, else "joint". On the development
        panel's multivariate sets the shipped weights cluster far better per channel (mean
        NMI of the embedding alone 0.753 against 0.382 with the first layer shared out;
        docs/pretrained_encoder.md). Univariate series are the same either way.
    verbose : int, default=0
        1: one line per epoch (``epoch: N train_loss: ... train_score: ...``); 2: also bars.

    Attributes
    ----------
    module_ : torch.nn.Module
        The trained network (:class:`~tsc_toolkit.embedding.encoder.CausalCNNEncoder`).
    scaler_ : SeriesScaler
    history_ : pandas.DataFrame
        One row per epoch: epoch, train_loss, train_score, valid_loss, valid_score.
    n_steps_ : int
        Optimisation steps taken in all.
    n_channels_ : int
    n_features_in_ : int
        Channels x steps of the padded training array, as scikit-learn counts features.
    embedding_mean_, embedding_scale_ : ndarray of shape (output_size,)
        The training embeddings' statistics (``normalize="standard"`` only).
    pretrained_from_ : str or None
        The weights training started from (None: random weights).
    separate_channels_ : bool
        Whether each channel is embedded by itself (``channel_mode``); then the network
        reads one channel and embeddings have ``n_channels_ x output_size`` values.

    Examples
    --------
    >>> from tsc_toolkit.io.datasets import make_series
    >>> from tsc_toolkit.embedding import TLossEncoder
    >>> X, _ = make_series(40, length=30, random_state=0)
    >>> enc = TLossEncoder(blocks=1, filters=8, reduced_size=8, output_size=4, max_steps=5,
    ...                    random_state=0, device="cpu").fit(X)
    >>> enc.transform(X[:3]).shape, enc.n_steps_
    ((3, 4), 5)
    """

    _parameter_constraints: dict = {
        "blocks": [Interval(Integral, 0, None, closed="left")],
        "filters": [Interval(Integral, 1, None, closed="left")],
        "kernel_size": [Interval(Integral, 1, None, closed="left")],
        "reduced_size": [Interval(Integral, 1, None, closed="left")],
        "output_size": [Interval(Integral, 1, None, closed="left")],
        "negative_samples": [Interval(Integral, 1, None, closed="left")],
        "lr": [Interval(Real, 0, None, closed="neither")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "epochs": [Interval(Integral, 0, None, closed="left"), None],
        "max_steps": [Interval(Integral, 1, None, closed="left"), None],
        "compared_length": [Interval(Integral, 1, None, closed="left"), None],
        "scaling": [StrOptions(set(SCALING_METHODS))],
        "normalize": [StrOptions({"l2", "standard", "none"}), None],
        "score_clusters": [Interval(Integral, 1, None, closed="left")],
        "score_algorithm": [StrOptions({"lloyd", "elkan", "webscale"})],
        "score_sample_size": [Interval(Integral, 0, None, closed="left")],
        "random_state": ["random_state"],
        "device": [str, torch.device],
        "checkpoint_dir": [str, os.PathLike, None],
        "warm_start": ["boolean"],
        "pretrained": [StrOptions({"auto"}), str, os.PathLike, None],
        "channel_mode": [StrOptions({"auto", "joint", "separate"})],
        "verbose": ["verbose"],
    }

    def __init__(self, blocks=10, filters=40, kernel_size=3, reduced_size=160, output_size=320,
                 negative_samples=10, lr=0.001, batch_size=10, epochs=None, max_steps=None,
                 compared_length=128, scaling="series", normalize="l2", score_clusters=8,
                 score_algorithm="lloyd", score_sample_size=1000, random_state=None,
                 device="auto", checkpoint_dir=None, warm_start=False, pretrained=None,
                 channel_mode="auto", verbose=0):
        self.blocks = blocks
        self.filters = filters
        self.kernel_size = kernel_size
        self.reduced_size = reduced_size
        self.output_size = output_size
        self.negative_samples = negative_samples
        self.lr = lr
        self.batch_size = batch_size
        self.epochs = epochs
        self.max_steps = max_steps
        self.compared_length = compared_length
        self.scaling = scaling
        self.normalize = normalize
        self.score_clusters = score_clusters
        self.score_algorithm = score_algorithm
        self.score_sample_size = score_sample_size
        self.random_state = random_state
        self.device = device
        self.checkpoint_dir = checkpoint_dir
        self.warm_start = warm_start
        self.pretrained = pretrained
        self.channel_mode = channel_mode
        self.verbose = verbose

    # ------------------------------------------------------------------ fitting

    def fit(self, X, y=None, X_valid=None, callbacks=None):
        """Train on ``X`` (any layout :func:`tsc_toolkit.as_dataset` accepts).

        Parameters
        ----------
        X : array-like or DataFrame
        y : ignored
        X_valid : array-like, optional
            Validation series: adds ``valid_loss`` and ``valid_score`` to the history.
        callbacks : list, optional
            Each a callable ``cb(encoder, record)`` run after every epoch, or an object with
            any of ``on_train_begin(encoder)``, ``on_epoch_end(encoder, record)``,
            ``on_train_end(encoder)``. Call :meth:`request_stop` to end training early.

        Returns
        -------
        self
        """
        inputs, lengths = self._train(as_dataset(X), X_valid, callbacks)
        raw = None
        if self.normalize == "standard":  # the statistics come from the training embeddings
            raw = encode(self.module_, inputs, lengths, self._device())
        self._set_statistics(raw)
        return self

    def fit_transform(self, X, y=None, **fit_params) -> np.ndarray:
        """Train on ``X``, then return its embeddings (encoded once)."""
        X = as_dataset(X)
        inputs, lengths = self._train(X, fit_params.get("X_valid"), fit_params.get("callbacks"))
        raw = encode(self.module_, inputs, lengths, self._device(),
                     progress=self.verbose >= 2)
        self._set_statistics(raw)
        return self._per_series(self._normalize(raw))

    def _train(self, X, X_valid, callbacks):
        """Train on the dataset ``X``; return its network inputs and lengths."""
        self._validate_params()
        self.n_features_in_ = int(X.shape[1] * X.shape[2])
        Xv = None if X_valid is None else as_dataset(X_valid, name="X_valid")
        if Xv is not None and Xv.shape[1] != X.shape[1]:
            raise TimeSeriesValueError(
                f"X_valid has {Xv.shape[1]} channel(s) but X has {X.shape[1]}.")
        continuing = self.warm_start and hasattr(self, "module_")
        if continuing and X.shape[1] != self.n_channels_:
            raise TimeSeriesValueError(
                f"warm_start: X has {X.shape[1]} channel(s) but the model was trained on "
                f"{self.n_channels_}.")
        seed = stage_seed(self.random_state)
        if not continuing:
            self.n_channels_ = X.shape[1]
            self.scaler_ = SeriesScaler(self.scaling).fit(X)
            start = self._pretrained_source()
            self.separate_channels_ = self._separates(start)
            self.module_ = self._build(seed)
            self.pretrained_from_ = self._start_from(start)
            self.history_ = empty_history()
            self.n_steps_ = 0
        device = resolve_device(self.device)
        self.module_.to(device)
        self._stop = False
        threads = torch.get_num_threads()
        if device.type == "cpu":
            torch.set_num_threads(threads_for_training(threads))
        try:
            return self._loop(X, Xv, callbacks, Distributed(), device, seed)
        finally:
            torch.set_num_threads(threads)

    def _loop(self, X, Xv, callbacks, dist, device, seed):
        inputs_np, lengths = self.network_inputs(X)
        inputs = torch.from_numpy(inputs_np)
        if inputs.nbytes < 2 ** 31 or device.type == "cpu":
            inputs = inputs.to(device)
        optimizer = torch.optim.Adam(self.module_.parameters(), lr=self.lr)
        rngs = {"batches": np.random.default_rng(seed),
                "crops": np.random.default_rng([seed, dist.rank])}
        start_epoch = first_epoch = len(self.history_)
        resumed = checkpoints.resume(self, optimizer, rngs, X) if self.checkpoint_dir else None
        if resumed is not None:
            start_epoch = resumed
        callbacks = [Callback.wrap(cb, self) for cb in (callbacks or [])]
        # Scores cost an encoding and a K-Means per epoch: only when something reads them.
        watched = bool(self.verbose or callbacks or Xv is not None)
        scorer = _EpochScorer(self, X, Xv, seed, enabled=watched)
        net = dist.wrap(PairEncoder(self.module_), device)
        for cb in callbacks:
            cb.on_train_begin()
        max_steps = self.step_budget()
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
                self.module_.train()
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
                        cb.on_epoch_end(record)
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
        self.module_.eval()
        for cb in callbacks:
            cb.on_train_end()
        return inputs_np, lengths

    @property
    def _network_channels(self) -> int:
        return 1 if getattr(self, "separate_channels_", False) else self.n_channels_

    def _build(self, seed: int) -> CausalCNNEncoder:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return CausalCNNEncoder(2 * self._network_channels, self.filters, self.blocks,
                                    self.reduced_size, self.output_size, self.kernel_size)

    def _pretrained_source(self) -> tuple[Path, dict, dict] | None:
        """The starting weights ``pretrained`` names, read and checked: ``(folder, meta,
        tensors)``, or None for random weights."""
        if self.pretrained is None:
            return None
        auto = isinstance(self.pretrained, str) and self.pretrained == "auto"
        source = shipped_weights() if auto else Path(self.pretrained)
        if source is None:
            return None
        meta, tensors = read_bundle(source, KIND)
        saved = meta.get("params", {})
        differ = [f"{n}={saved.get(n)!r} (here {getattr(self, n)!r})" for n in ARCHITECTURE_PARAMS
                  if saved.get(n) != getattr(self, n)]
        if differ:
            if auto:
                return None
            raise ValueError(f"The pretrained encoder in {source} has another architecture: "
                             f"{', '.join(differ)}.")
        return source, meta, tensors

    def _separates(self, start) -> bool:
        """Whether this fit embeds each channel by itself (``channel_mode``)."""
        if self.n_channels_ == 1 or self.channel_mode == "joint":
            return False
        if self.channel_mode == "separate":
            return True
        return start is not None and _weight_channels(start[1]) == 1

    def _start_from(self, start) -> str | None:
        """Load the starting weights (:meth:`_pretrained_source`); the folder they came from."""
        if start is None:
            return None
        source, meta, tensors = start
        weights = {k[len("encoder."):]: v for k, v in tensors.items() if k.startswith("encoder.")}
        channels = _weight_channels(meta)
        if channels != self._network_channels:
            if channels != 1:
                raise ValueError(f"The pretrained encoder in {source} was trained on {channels} "
                                 f"channels; it can start an encoder of {channels} channels, "
                                 f"or of any number when trained on one, not "
                                 f"{self.n_channels_}"
                                 + (" embedded separately." if self.separate_channels_ else "."))
            weights = widen_first_layer(weights, self._network_channels)
            if "network.0.residual.weight" not in self.module_.state_dict():
                # 2 x channels = filters: the first block adds its input as it is, without a
                # 1x1 convolution, so the pretrained one has no place
                weights = {k: v for k, v in weights.items()
                           if not k.startswith("network.0.residual.")}
        try:
            self.module_.load_state_dict(weights, strict=True)
        except RuntimeError as err:
            raise ModelFormatError(f"{source}: the weights do not fit the encoder "
                                   f"({str(err).splitlines()[0]}).") from None
        return str(source)

    def step_budget(self) -> int | None:
        """Steps to stop at: ``max_steps``; else, when ``epochs`` is None, :data:`AUTO_STEPS`,
        or :data:`PRETRAINED_STEPS` for an encoder that started from pretrained weights."""
        if self.max_steps is not None:
            return self.max_steps
        if self.epochs is not None:
            return None
        return PRETRAINED_STEPS if getattr(self, "pretrained_from_", None) else AUTO_STEPS

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

    def _set_statistics(self, raw) -> None:
        """Keep the training embeddings' statistics that ``normalize="standard"`` needs."""
        for name in ("embedding_mean_", "embedding_scale_"):
            self.__dict__.pop(name, None)
        if self.normalize != "standard":
            return
        self.embedding_mean_ = raw.mean(axis=0)
        std = raw.std(axis=0)
        self.embedding_scale_ = np.where(std > 1e-8, std, 1.0).astype(np.float32)

    def request_stop(self) -> None:
        """Ask a running ``fit`` to stop after the current epoch; the encoder stays usable."""
        self._stop = True

    # ---------------------------------------------------------------- inference

    def scale(self, X) -> np.ndarray:
        """The series ``X`` scaled as the training series were (float32, NaN kept)."""
        check_is_fitted(self, "module_")
        X = as_dataset(X)
        if X.shape[1] != self.n_channels_:
            raise TimeSeriesValueError(
                f"X has {X.shape[1]} channel(s) but the model was trained on "
                f"{self.n_channels_}.")
        return self.scaler_.transform(X)

    def network_inputs(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The network's input for the dataset ``X`` (scaled, gaps zeroed, mask channels) and
        the length of each of its rows: one row per series, or per channel of each series
        when channels are embedded separately."""
        return self._rows(self.scaler_.transform(X))

    def _rows(self, S: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if getattr(self, "separate_channels_", False):
            S = S.reshape(-1, 1, S.shape[2])
            # a channel with nothing observed keeps one (masked) step to pool over
            return prepare_input(S), np.maximum(series_lengths(S), 1)
        return prepare_input(S), series_lengths(S)

    def embed_scaled(self, S: np.ndarray) -> np.ndarray:
        """Normalised embeddings of series already :meth:`scale`-d."""
        raw = encode(self.module_, *self._rows(S), self._device(), progress=self.verbose >= 2)
        return self._per_series(self._normalize(raw))

    def _per_series(self, z: np.ndarray) -> np.ndarray:
        """One row per series from the network's normalised rows: a series' channels side by
        side, divided by the square root of their number, when they are embedded separately."""
        if getattr(self, "separate_channels_", False):
            c = self.n_channels_
            z = (z.reshape(-1, c * z.shape[1]) / np.float32(np.sqrt(c))).astype(np.float32)
        return z

    def transform(self, X) -> np.ndarray:
        """Normalised embeddings of ``X``: ``(n_series, output_size)`` float32 (``n_channels_ x
        output_size`` values each when channels are embedded separately).

        A memory-mapped or lazily sliced array (an h5py or zarr dataset), or one of more
        than ``CHUNK_SIZE`` series, is embedded a chunk of series at a time
        (:func:`tsc_toolkit.io.sources.map_chunks`): memory holds the embeddings and one
        chunk, not scaled and padded copies of the whole input.
        """
        if is_chunked_array(X):
            return map_chunks(self.transform, X)
        with inference_threads(work_of(X)):
            return self.embed_scaled(self.scale(X))

    def _device(self) -> torch.device:
        device = resolve_device(self.device)
        first = next(self.module_.parameters(), None)
        if first is None or first.device != device:  # .to() walks every module: 2 ms a call
            self.module_.to(device)
        return device

    def _normalize(self, raw: np.ndarray) -> np.ndarray:
        return normalize_embeddings(raw, self.normalize, getattr(self, "embedding_mean_", None),
                                    getattr(self, "embedding_scale_", None))

    def normalize_sample(self, raw: np.ndarray) -> np.ndarray:
        """Normalise a sample's embeddings by its own statistics (during training)."""
        if self.normalize == "standard":
            std = raw.std(axis=0)
            z = normalize_embeddings(raw, "standard", raw.mean(axis=0),
                                     np.where(std > 1e-8, std, 1.0))
        else:
            z = normalize_embeddings(raw, self.normalize)
        return self._per_series(z)

    # ------------------------------------------------------------------ history

    def _append_history(self, record: dict) -> None:
        import pandas as pd

        row = pd.DataFrame([{c: record.get(c, np.nan) for c in HISTORY_COLUMNS}])
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

    # -------------------------------------------------------------- persistence

    def state(self) -> tuple[dict, dict]:
        """The fitted state as JSON-ready ``state`` and named ``tensors`` (the network's
        weights, under ``encoder.``); :meth:`from_state` rebuilds the stage from them."""
        check_is_fitted(self, "module_")
        state = {"n_channels": self.n_channels_, "scaler": self.scaler_.to_dict(),
                 "history": self.history_.to_dict(orient="list"), "n_steps": self.n_steps_,
                 "separate_channels": bool(self.separate_channels_)}
        if hasattr(self, "embedding_mean_"):
            state["embedding_mean"] = self.embedding_mean_.tolist()
            state["embedding_scale"] = self.embedding_scale_.tolist()
        tensors = {f"encoder.{k}": v for k, v in self.module_.state_dict().items()}
        return state, tensors

    @classmethod
    def from_state(cls, params: dict, state: dict, tensors: dict, path="") -> TLossEncoder:
        """A fitted stage from its parameters and :meth:`state` (nothing is unpickled).

        Raises
        ------
        ModelFormatError
            If the state lacks or garbles a field, or the weights do not fit the network.
        """
        import pandas as pd

        try:
            self = cls(**params)
            self.n_channels_ = int(state["n_channels"])
            self.scaler_ = SeriesScaler.from_dict(state["scaler"])
            self.history_ = pd.DataFrame(state["history"], columns=HISTORY_COLUMNS)
            self.n_steps_ = int(state.get("n_steps", 0))
            self.separate_channels_ = bool(state.get("separate_channels", False))
            if "embedding_mean" in state:
                self.embedding_mean_ = np.asarray(state["embedding_mean"], dtype=np.float32)
                self.embedding_scale_ = np.asarray(state["embedding_scale"], dtype=np.float32)
        except (KeyError, TypeError, ValueError) as err:
            raise ModelFormatError(f"{path}: config.json lacks or garbles {err}.") from None
        self.module_ = self._build(0)
        weights = {k[len("encoder."):]: v for k, v in tensors.items() if k.startswith("encoder.")}
        try:
            self.module_.load_state_dict(weights, strict=True)
        except RuntimeError as err:
            raise ModelFormatError(f"{path}: the weights do not fit the configured encoder "
                                   f"({str(err).splitlines()[0]}).") from None
        self.module_.eval()
        return self

    def save(self, path: str | os.PathLike):
        """Save the fitted encoder to the folder ``path`` (JSON config + safetensors)."""
        from .. import __version__

        state, tensors = self.state()
        meta = {"library_version": __version__, "params": json_params(self.get_params()),
                "state": state}
        return write_bundle(path, KIND, meta, tensors)

    @classmethod
    def load(cls, path: str | os.PathLike, device: str | None = None) -> TLossEncoder:
        """Open an encoder saved with :meth:`save`. Nothing is unpickled or executed."""
        meta, tensors = read_bundle(path, KIND)
        params = dict(meta.get("params", {}))
        unknown = set(params) - set(cls._get_param_names())
        if unknown:
            raise ModelFormatError(f"{path}: unknown parameters {sorted(unknown)}.")
        if device is not None:
            params["device"] = device
        return cls.from_state(params, meta.get("state", {}), tensors, path)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.non_deterministic = self.random_state is None
        return tags

    def __getstate__(self):
        # The network's weight-norm parametrizations do not pickle (torch allows only their
        # state_dict): keep the weights, and rebuild the network around them on unpickling.
        state = dict(super().__getstate__())
        module = state.pop("module_", None)
        if module is not None:
            state["_module_weights"] = {k: v.detach().cpu()
                                        for k, v in module.state_dict().items()}
        return state

    def __setstate__(self, state):
        weights = state.pop("_module_weights", None)
        super().__setstate__(state)
        if weights is not None:
            self.module_ = self._build(0)
            self.module_.load_state_dict(weights, strict=True)
            self.module_.eval()


#: Where the encoder pretrained for the package lies (see docs/pretrained_encoder.md).
SHIPPED = Path(__file__).resolve().parent / "weights" / "tloss-ucr20"


def shipped_weights() -> Path | None:
    """The folder of the encoder pretrained for the package, None when it is not installed."""
    return SHIPPED if (SHIPPED / "config.json").is_file() else None


def _weight_channels(meta: dict) -> int:
    """Data channels of the encoder whose saved ``meta`` this is (its network may read one,
    when it embedded them separately)."""
    state = meta.get("state", {})
    return 1 if state.get("separate_channels") else int(state.get("n_channels", 1))


def widen_first_layer(weights: dict, n_channels: int) -> dict:
    """Univariate encoder weights made to read ``n_channels`` channels.

    The first block reads values and their "observed" masks: each of its univariate input
    weights is shared out equally over the channels (divided by their number), so a series
    whose channels all equal one univariate series gives the same first-layer output.
    """
    import torch

    out = dict(weights)

    def widen(w):  # (out, 2, k) -> (out, 2 * n_channels, k)
        return torch.cat([w[:, :1].repeat(1, n_channels, 1), w[:, 1:2].repeat(1, n_channels, 1)],
                         dim=1) / n_channels

    g, v = "network.0.conv1.conv.parametrizations.weight.original0", \
        "network.0.conv1.conv.parametrizations.weight.original1"
    effective = weights[g] * weights[v] / weights[v].norm(dim=(1, 2), keepdim=True)
    wide = widen(effective)
    out[v] = wide
    out[g] = wide.norm(dim=(1, 2), keepdim=True)
    if "network.0.residual.weight" in weights:
        out["network.0.residual.weight"] = widen(weights["network.0.residual.weight"])
    return out


def empty_history():
    import pandas as pd

    return pd.DataFrame({c: pd.Series(dtype="int64" if c == "epoch" else "float64")
                         for c in HISTORY_COLUMNS})


class _EpochScorer:
    """Per-epoch silhouette scores and validation loss, on fixed samples of the data."""

    def __init__(self, stage: TLossEncoder, X, Xv, seed, enabled: bool = True):
        self.stage, self.seed = stage, seed
        rng = np.random.default_rng([seed, 1])
        size = stage.score_sample_size if enabled else 0

        def sample(data):
            if data is None or size == 0:
                return None
            idx = np.sort(rng.choice(len(data), min(size, len(data)), replace=False))
            return stage.network_inputs(data[idx])

        self.train = sample(X)
        self.valid = sample(Xv) if Xv is not None else None
        if Xv is not None and self.valid is None:  # valid loss without scores
            self.valid = stage.network_inputs(Xv)

    def scores(self, device) -> dict:
        nan = float("nan")
        out = {"train_score": nan, "valid_loss": nan, "valid_score": nan}
        m = self.stage
        clusterer = None
        if self.train is not None:
            z = m.normalize_sample(encode(m.module_, *self.train, device))
            k = min(m.score_clusters, len(z) - 1)
            if k >= 2:
                clusterer = FeatureClusterer(k, "kmeans", m.score_algorithm, n_init=1,
                                             random_state=self.seed, device=m.device).fit(z)
                out["train_score"] = silhouette(z, clusterer.labels_, self.seed)
        if self.valid is not None:
            inputs, lengths = self.valid
            t = torch.from_numpy(inputs).to(device)
            rng = np.random.default_rng([self.seed, 2])  # same draws every epoch
            losses = []
            with torch.no_grad():
                for batch in make_batches(lengths, m.batch_size, rng):
                    crops = sample_triplets(batch, lengths, m.negative_samples, rng,
                                            m.compared_length)
                    losses.append(float(triplet_loss(PairEncoder(m.module_), t, *crops)))
            out["valid_loss"] = float(np.mean(losses))
            if clusterer is not None and m.score_sample_size > 0:
                zv = m.normalize_sample(encode(m.module_, inputs, lengths, device))
                out["valid_score"] = silhouette(zv, clusterer.predict(zv), self.seed)
        return out


class Callback:
    """Gives plain callables and partial callback objects the full protocol, calling them
    with ``owner`` (the estimator the user fitted)."""

    def __init__(self, target, owner, ends: bool = True):
        self.target, self.owner, self.ends = target, owner, ends

    @classmethod
    def wrap(cls, target, owner, ends: bool = True) -> Callback:
        if isinstance(target, Callback):
            return target
        if not callable(target) and not any(hasattr(target, m) for m in
                                            ("on_train_begin", "on_epoch_end", "on_train_end")):
            raise TypeError(f"A callback must be callable or have on_epoch_end(model, record); "
                            f"got {type(target).__name__}.")
        return cls(target, owner, ends)

    def on_train_begin(self):
        fn = getattr(self.target, "on_train_begin", None)
        if fn is not None:
            fn(self.owner)

    def on_epoch_end(self, record):
        fn = getattr(self.target, "on_epoch_end", None)
        if fn is not None:
            fn(self.owner, record)
        elif callable(self.target):
            self.target(self.owner, record)

    def on_train_end(self):
        if self.ends:  # else the owner says when its fit has ended (after clustering)
            self.finish()

    def finish(self):
        fn = getattr(self.target, "on_train_end", None)
        if fn is not None:
            fn(self.owner)
