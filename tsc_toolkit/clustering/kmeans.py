"""Web-scale mini-batch K-Means, as SageMaker's built-in K-Means algorithm runs it.

The algorithm (Sculley, "Web-scale k-means clustering", WWW 2010, as the built-in algorithm's
documentation describes it):

1. *Initialise* ``K = k * center_factor`` centers from the first mini-batch, at random or by
   k-means++ (D²-weighted) sampling.
2. *Stream* the mini-batches: each point goes to its nearest center; a center that gets ``n_c``
   new points moves toward their mean with rate ``n_c / (N_c + n_c)``, where ``N_c`` counts the
   points it had before. With ``half_life_time_size = h > 0`` earlier points fade: ``N_c`` is
   multiplied by ``0.5 ** (batch_size / h)`` before each update, so a point's weight halves after
   ``h`` more points.
3. *Shrink* the ``K`` centers to ``k`` with Lloyd's method on the centers weighted by their
   counts (``local_init_method`` initialisation, at most ``max_iterations`` iterations, stopping
   when the relative improvement is below ``tol``), ``num_trials`` times; the trial with the
   lowest weighted mean squared distance wins.

Everything runs in torch, on a GPU when there is one. Data may be an array, a memory-mapped
array or an iterable of mini-batches, so it never needs to fit in memory at once.
"""

from __future__ import annotations

import os
import tarfile
from numbers import Integral, Real
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClusterMixin, TransformerMixin
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

try:  # scikit-learn >= 1.6
    from sklearn.utils.validation import validate_data as _validate_data
except ImportError:  # scikit-learn 1.5
    def _validate_data(estimator, X, **kwargs):
        return estimator._validate_data(X, **kwargs)

from ..io.ndarray_file import read_ndarray_list, write_ndarray_list

__all__ = ["WebScaleKMeans", "ClusterAssignment"]

#: What ``center_factor="auto"`` and ``num_trials="auto"`` stand for (the built-in container
#: logs "shrinking 80 centers into 8" for k=8 and runs 10 local attempts).
AUTO_CENTER_FACTOR = 10
AUTO_NUM_TRIALS = 10
_MODEL_MEMBER = "model_algo-1"
_MAX_MODEL_BYTES = 1 << 31


class ClusterAssignment(NamedTuple):
    """Nearest center of each point and the Euclidean distance to it."""

    closest_cluster: np.ndarray
    distance_to_cluster: np.ndarray


class WebScaleKMeans(ClusterMixin, TransformerMixin, BaseEstimator):
    """Mini-batch K-Means with the hyperparameters and defaults of SageMaker's built-in K-Means.

    Parameters
    ----------
    k : int, default=8
        Number of clusters.
    init_method : {"random", "kmeans++"}, default="random"
        How the ``k * center_factor`` streaming centers are chosen from the first mini-batch.
    max_iterations : int, default=300
        Most Lloyd iterations when the centers are shrunk to ``k`` (``local_lloyd_max_iter``).
    tol : float, default=1e-4
        Stop Lloyd's iterations when the weighted SSD improves by less than this fraction.
    num_trials : int or "auto", default="auto"
        Lloyd restarts for the shrink step; the lowest loss wins ("auto" = 10).
    local_init_method : {"kmeans++", "random"}, default="kmeans++"
        Initialisation of each shrink trial.
    half_life_time_size : int, default=0
        Points after which an earlier point's weight has halved; 0 means no decay.
    epochs : int, default=1
        Passes over the data.
    center_factor : int or "auto", default="auto"
        Streaming centers per cluster (``extra_center_factor``); "auto" = 10, fewer when the first
        mini-batch is too small.
    eval_metrics : sequence of {"msd", "ssd"}, default=("msd",)
        Metrics :meth:`evaluate` reports.
    mini_batch_size : int, default=5000
        Points per mini-batch when ``fit`` is given an array; a smaller data set is one
        mini-batch, and then ``k * center_factor`` is capped at its number of points.
    random_state : int, RandomState or None, default=None
    device : str, default="auto"
        "auto" (CUDA when available, else CPU) or a torch device.

    Attributes
    ----------
    cluster_centers_ : ndarray of shape (k, n_features), float32
    labels_ : ndarray of shape (n_samples,)
        Only when ``fit`` was given an array (an iterable is not read twice).
    streaming_centers_ : ndarray of shape (k * center_factor, n_features)
        The centers before shrinking, and ``center_counts_`` their (decayed) point counts.
    msd_ : float
        Mean squared distance of the points to their centers (weighted msd of the shrink step
        when the data was an iterable).
    n_features_in_ : int
    n_points_seen_ : int

    Examples
    --------
    >>> import numpy as np
    >>> from tsc_toolkit.clustering.kmeans import WebScaleKMeans
    >>> rng = np.random.default_rng(0)
    >>> X = np.concatenate([rng.normal(c, 0.1, size=(500, 2)) for c in (0, 5, 10)])
    >>> km = WebScaleKMeans(k=3, random_state=0, device="cpu").fit(X)
    >>> sorted(int(round(c)) for c in km.cluster_centers_[:, 0])
    [0, 5, 10]
    >>> km.assign(X[:2]).closest_cluster.shape
    (2,)
    """

    _parameter_constraints: dict = {
        "k": [Interval(Integral, 1, None, closed="left")],
        "init_method": [StrOptions({"random", "kmeans++"})],
        "max_iterations": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, 1, closed="both")],
        "num_trials": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "local_init_method": [StrOptions({"random", "kmeans++"})],
        "half_life_time_size": [Interval(Integral, 0, None, closed="left")],
        "epochs": [Interval(Integral, 1, None, closed="left")],
        "center_factor": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "eval_metrics": [list, tuple],
        "mini_batch_size": [Interval(Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
        "device": [str, torch.device],
    }

    def __init__(self, k=8, init_method="random", max_iterations=300, tol=1e-4,
                 num_trials="auto", local_init_method="kmeans++", half_life_time_size=0,
                 epochs=1, center_factor="auto", eval_metrics=("msd",), mini_batch_size=5000,
                 random_state=None, device="auto"):
        self.k = k
        self.init_method = init_method
        self.max_iterations = max_iterations
        self.tol = tol
        self.num_trials = num_trials
        self.local_init_method = local_init_method
        self.half_life_time_size = half_life_time_size
        self.epochs = epochs
        self.center_factor = center_factor
        self.eval_metrics = eval_metrics
        self.mini_batch_size = mini_batch_size
        self.random_state = random_state
        self.device = device

    # ------------------------------------------------------------------ fitting

    def fit(self, X, y=None):
        """Cluster ``X``: an array, a memory-mapped array, or an iterable of mini-batches.

        An iterable is read once per epoch, so with ``epochs > 1`` it must be re-iterable (a
        list of arrays, not a generator).
        """
        self._validate_params()
        self._check_metrics()
        self._reset()
        X = self._validated(X, reset=True)
        is_array = _is_array(X)
        if is_array and np.ndim(X) == 2 and len(X) < self.k:
            raise ValueError(f"n_samples={len(X)} should be >= k={self.k}.")
        self._whole_data_in_batch = is_array and len(X) <= self.mini_batch_size
        if not is_array and self.epochs > 1 and iter(X) is X:
            raise ValueError("epochs > 1 needs data that can be read more than once: pass an "
                             "array or a list of mini-batches, not a generator.")
        for _ in range(self.epochs):
            for batch in (_array_batches(X, self.mini_batch_size) if is_array else X):
                self._update(self._as_batch(batch))
        if not hasattr(self, "_centers"):
            raise ValueError("fit got no data: the input holds no mini-batch.")
        self._shrink()
        if is_array:
            labels, dist = self._assign_stream(X)
            self.labels_ = labels
            self.msd_ = _sum_of_squares(dist) / max(1, len(dist))
        return self

    def partial_fit(self, X, y=None):
        """Update the model with one mini-batch, then shrink the centers to ``k`` again."""
        first = not hasattr(self, "_centers")
        if first:
            self._validate_params()
            self._check_metrics()
            self._reset()
        self._update(self._as_batch(self._validated(X, reset=first)))
        self._shrink()
        return self

    def _reset(self) -> None:
        for name in ("_centers", "_counts", "labels_", "cluster_centers_"):
            if hasattr(self, name):
                delattr(self, name)
        self._device = _resolve(self.device)
        self._rng = check_random_state(self.random_state)
        self._whole_data_in_batch = False
        self.n_points_seen_ = 0

    def _validated(self, X, *, reset: bool):
        """``X`` checked as scikit-learn checks input, where it is data in memory.

        Dense in-memory data (an array, a list of rows, anything with ``__array__``) goes
        through scikit-learn's ``validate_data``: 2-D, finite, real numbers, at least one
        point and one feature, and at ``predict`` the number of features seen by ``fit``.
        Sparse input is refused (the centers are dense). A memory-mapped array and an
        iterable of mini-batches are read a batch at a time, and each batch is checked.
        """
        if _is_sparse(X):
            raise TypeError("WebScaleKMeans does not take sparse input (its centers are "
                            "dense): pass X.toarray(), or a memory-mapped dense array for "
                            "data larger than memory.")
        if isinstance(X, np.memmap):
            return X
        if isinstance(X, (list, tuple)) and len(X) and np.ndim(X[0]) >= 2:
            return X  # a list of mini-batches
        if isinstance(X, (np.ndarray, list, tuple)) or hasattr(X, "__array__"):
            return _validate_data(self, X, reset=reset, dtype=np.float32)
        return X

    def _check_metrics(self) -> None:
        bad = [m for m in self.eval_metrics if m not in ("msd", "ssd")]
        if bad or not self.eval_metrics:
            raise ValueError(f"eval_metrics must list 'msd' and/or 'ssd', got "
                             f"{list(self.eval_metrics)!r}.")

    def _as_batch(self, batch) -> torch.Tensor:
        arr = np.asarray(batch, dtype=np.float32)
        if arr.ndim == 1:
            arr = arr[None, :]
        if arr.ndim != 2:
            raise ValueError(f"A mini-batch must be 2-D (points, features); got shape "
                             f"{arr.shape}.")
        if not np.isfinite(arr).all():
            raise ValueError("The data holds NaN or infinite values; K-Means needs finite "
                             "numbers.")
        expected = getattr(self, "n_features_in_", None)
        if expected is not None and arr.shape[1] != expected:
            raise ValueError(f"A mini-batch has {arr.shape[1]} features but the model has "
                             f"{expected}.")
        if not arr.flags.writeable or not arr.flags.c_contiguous:  # e.g. a read-only memmap
            arr = np.array(arr, dtype=np.float32, order="C")
        return torch.from_numpy(arr).to(self._device)

    def _update(self, batch: torch.Tensor) -> None:
        if len(batch) == 0:
            return
        if not hasattr(self, "_centers"):
            self.n_features_in_ = batch.shape[1]
            self._centers = self._initial_centers(batch)
            self._counts = torch.zeros(len(self._centers), dtype=torch.float64,
                                       device=self._device)
        labels, _ = _nearest(batch, self._centers)
        n_new = torch.bincount(labels, minlength=len(self._centers)).double()
        sums = torch.zeros_like(self._centers, dtype=torch.float64).index_add_(
            0, labels, batch.double())
        if self.half_life_time_size > 0:
            self._counts *= 0.5 ** (len(batch) / self.half_life_time_size)
        total = self._counts + n_new
        hit = n_new > 0
        # center <- (1 - p) center + p mean(batch_c), p = n_c / (N_c + n_c)
        new = (self._counts[hit, None] * self._centers[hit].double() + sums[hit]) / total[hit, None]
        self._centers[hit] = new.float()
        self._counts = total
        self.n_points_seen_ += len(batch)

    def _initial_centers(self, batch: torch.Tensor) -> torch.Tensor:
        n = len(batch)
        if self.center_factor == "auto" or self._whole_data_in_batch:
            # A data set smaller than k * center_factor (it fits in one mini-batch): as many
            # centers as there are points, k at least.
            wanted = AUTO_CENTER_FACTOR if self.center_factor == "auto" else self.center_factor
            factor = max(1, min(wanted, n // self.k))
        else:
            factor = self.center_factor
        count = self.k * factor
        if count > n:
            raise ValueError(
                f"The first mini-batch has {n} points but k * center_factor = {count} centers "
                "must be drawn from it: raise mini_batch_size or lower k or center_factor.")
        if self.init_method == "random":
            idx = self._rng.choice(n, size=count, replace=False)
            return batch[torch.from_numpy(idx).to(self._device)].clone()
        weights = torch.ones(n, dtype=torch.float64, device=self._device)
        return _kmeanspp(batch, weights, count, self._rng)

    def _shrink(self) -> None:
        centers, counts = self._centers, self._counts
        self.streaming_centers_ = centers.cpu().numpy().copy()
        self.center_counts_ = counts.cpu().numpy().copy()
        if len(centers) <= self.k:
            self.cluster_centers_ = self.streaming_centers_.copy()
            self.msd_ = float("nan")
            return
        weights = counts if float(counts.sum()) > 0 else torch.ones_like(counts)
        trials = AUTO_NUM_TRIALS if self.num_trials == "auto" else self.num_trials
        best, best_loss = None, float("inf")
        self.trial_losses_ = []
        for _ in range(trials):
            found, loss = _weighted_lloyd(centers, weights, self.k, self.local_init_method,
                                          self.max_iterations, self.tol, self._rng)
            self.trial_losses_.append(loss)
            if loss < best_loss:
                best, best_loss = found, loss
        self.cluster_centers_ = best.cpu().numpy()
        self.msd_ = best_loss

    # ---------------------------------------------------------------- inference

    def assign(self, X) -> ClusterAssignment:
        """Closest cluster and Euclidean distance to its center, for each point of ``X``."""
        check_is_fitted(self, "cluster_centers_")
        labels, dist = self._assign_stream(self._validated(X, reset=False))
        return ClusterAssignment(labels, dist)

    def predict(self, X) -> np.ndarray:
        """Index of the nearest center for each point."""
        return self.assign(X).closest_cluster

    def transform(self, X) -> np.ndarray:
        """Euclidean distance of each point to every center, shape (n_samples, k)."""
        check_is_fitted(self, "cluster_centers_")
        X = self._validated(X, reset=False)
        centers = self._centers_tensor()
        out = []
        for batch in _array_batches(X, 65536):
            d2 = _sq_distances(self._as_batch(batch), centers)
            out.append(d2.clamp_min_(0).sqrt_().cpu().numpy())
        return np.concatenate(out)

    def evaluate(self, X) -> dict[str, float]:
        """The ``eval_metrics`` of ``X``: ``msd`` (mean) and/or ``ssd`` (sum) of the squared
        distances to the nearest center, as the built-in algorithm reports on its test channel."""
        _, dist = self.assign(X)
        ssd = _sum_of_squares(dist)
        values = {"msd": ssd / len(dist) if len(dist) else float("nan"), "ssd": ssd}
        return {m: values[m] for m in self.eval_metrics}

    def score(self, X, y=None) -> float:
        """Negative sum of squared distances (higher is better), like scikit-learn's KMeans."""
        _, dist = self.assign(X)
        return -_sum_of_squares(dist)

    def _centers_tensor(self) -> torch.Tensor:
        if not hasattr(self, "_device"):
            self._device = _resolve(self.device)
        return torch.from_numpy(np.ascontiguousarray(self.cluster_centers_, dtype=np.float32)
                                ).to(self._device)

    def _assign_stream(self, X) -> tuple[np.ndarray, np.ndarray]:
        """Nearest center and distance of every point, chunk by chunk.

        For an array (a memmap included) both results are allocated once at their final
        size and filled in place, so labelling adds 12 bytes per point and a bounded chunk
        workspace, nothing that grows with the number of chunks.
        """
        centers = self._centers_tensor()
        if not hasattr(self, "n_features_in_"):
            self.n_features_in_ = centers.shape[1]
        if _is_array(X):
            n = 1 if np.ndim(X) == 1 else len(X)
            labels = np.empty(n, dtype=np.int64)
            dists = np.empty(n, dtype=np.float32)
            start = 0
            for batch in _array_batches(X, 65536):
                lab, d2 = _nearest(self._as_batch(batch), centers)
                stop = start + len(lab)
                labels[start:stop] = lab.cpu().numpy()
                dists[start:stop] = d2.sqrt_().cpu().numpy()
                start = stop
            return labels, dists
        labels, dists = [], []
        for batch in X:
            lab, d2 = _nearest(self._as_batch(batch), centers)
            labels.append(lab.cpu().numpy())
            dists.append(d2.sqrt_().cpu().numpy())
        if not labels:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32)
        return np.concatenate(labels).astype(np.int64), np.concatenate(dists).astype(np.float32)

    # ------------------------------------------------ SageMaker model file interop

    def save_sagemaker_model(self, path: str | os.PathLike) -> Path:
        """Write ``model.tar.gz`` holding ``model_algo-1``, the built-in algorithm's model file.

        The archive can be served by SageMaker's built-in K-Means container.
        """
        check_is_fitted(self, "cluster_centers_")
        path = Path(path)
        if path.suffix != ".gz" and (path.is_dir() or not path.suffix):
            path.mkdir(parents=True, exist_ok=True)
            path = path / "model.tar.gz"
        data = write_ndarray_list([np.asarray(self.cluster_centers_, dtype=np.float32)])
        import io

        info = tarfile.TarInfo(_MODEL_MEMBER)
        info.size = len(data)
        info.mode = 0o644
        tmp = path.with_name(path.name + ".tmp")
        with tarfile.open(tmp, "w:gz") as tar:
            tar.addfile(info, io.BytesIO(data))
        os.replace(tmp, path)
        return path

    @classmethod
    def load_sagemaker_model(cls, path: str | os.PathLike, **params) -> WebScaleKMeans:
        """Open a ``model.tar.gz`` (or a bare ``model_algo-1``) of the built-in K-Means.

        ``params`` set the returned estimator's hyperparameters; ``k`` comes from the file.
        """
        path = Path(path)
        if not path.is_file():
            raise ValueError(f"No such model file: {str(path)!r}.")
        if tarfile.is_tarfile(path):
            data = _read_member(path, _MODEL_MEMBER)
        else:
            if path.stat().st_size > _MAX_MODEL_BYTES:
                raise ValueError(f"{path} is larger than a K-Means model can be.")
            data = path.read_bytes()
        arrays = read_ndarray_list(data, source=str(path))
        if len(arrays) != 1 or arrays[0].ndim != 2:
            raise ValueError(f"{path}: expected one 2-D array of centroids, found "
                             f"{[a.shape for a in arrays]}.")
        centers = arrays[0].astype(np.float32)
        model = cls(**{**params, "k": len(centers)})
        model.cluster_centers_ = centers
        model.n_features_in_ = centers.shape[1]
        return model

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.non_deterministic = self.random_state is None
        return tags


# ---------------------------------------------------------------------- helpers

def _resolve(device) -> torch.device:
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def _is_sparse(X) -> bool:
    try:
        import scipy.sparse
    except ImportError:  # pragma: no cover - scipy comes with scikit-learn
        return False
    return scipy.sparse.issparse(X)


def _is_array(X) -> bool:
    return isinstance(X, np.ndarray) or (hasattr(X, "shape") and hasattr(X, "__getitem__")
                                         and not isinstance(X, (list, tuple)))


def _array_batches(X, size: int):
    if not _is_array(X):
        X = np.asarray(X, dtype=np.float32)
    if X.ndim == 1:
        X = X[None, :]
    for start in range(0, len(X), size):
        yield X[start:start + size]  # a memmap is read one slice at a time


def _sum_of_squares(values: np.ndarray, chunk: int = 1 << 20) -> float:
    """Sum of squares in float64, a chunk at a time (no float64 copy of the whole array)."""
    total = 0.0
    for start in range(0, len(values), chunk):
        part = values[start:start + chunk].astype(np.float64)
        total += float(np.dot(part, part))
    return total


def _sq_distances(x: torch.Tensor, centers: torch.Tensor) -> torch.Tensor:
    return ((x * x).sum(1, keepdim=True) - 2.0 * x @ centers.T
            + (centers * centers).sum(1)[None, :])


def _nearest(x: torch.Tensor, centers: torch.Tensor, chunk_elements: int = 1 << 24):
    """Nearest center index and squared distance, in chunks that bound memory."""
    rows = max(1, chunk_elements // max(1, len(centers)))
    labels, d2s = [], []
    for start in range(0, len(x), rows):
        d2 = _sq_distances(x[start:start + rows], centers)
        d2min, lab = d2.min(dim=1)
        labels.append(lab)
        d2s.append(d2min.clamp_min(0))
    return torch.cat(labels), torch.cat(d2s)


def _kmeanspp(points: torch.Tensor, weights: torch.Tensor, count: int,
              rng: np.random.RandomState) -> torch.Tensor:
    """D²-weighted sampling of ``count`` centers (weights multiply the probabilities)."""
    w = weights.cpu().numpy().astype(np.float64)
    first = rng.choice(len(points), p=w / w.sum())
    chosen = [first]
    d2 = _sq_distances(points, points[first:first + 1]).squeeze(1).clamp_min(0).double()
    for _ in range(1, count):
        prob = (d2.cpu().numpy() * w)
        total = prob.sum()
        if total <= 0:  # every point coincides with a chosen center
            candidates = np.setdiff1d(np.arange(len(points)), chosen)
            nxt = int(rng.choice(candidates)) if len(candidates) else int(rng.randint(len(points)))
        else:
            nxt = int(rng.choice(len(points), p=prob / total))
        chosen.append(nxt)
        d2 = torch.minimum(d2, _sq_distances(points, points[nxt:nxt + 1]).squeeze(1)
                           .clamp_min(0).double())
    return points[torch.tensor(chosen, device=points.device)].clone()


def _weighted_lloyd(points, weights, k, init, max_iter, tol, rng):
    """Lloyd's method on weighted points; returns (centers, weighted mean squared distance)."""
    if init == "kmeans++":
        centers = _kmeanspp(points, weights, k, rng)
    else:
        positive = np.flatnonzero(weights.cpu().numpy() > 0)
        pool = positive if len(positive) >= k else np.arange(len(points))
        centers = points[torch.from_numpy(rng.choice(pool, k, replace=False)).to(points.device)
                         ].clone()
    w = weights.double()
    previous = None
    for _ in range(max_iter):
        labels, d2 = _nearest(points, centers)
        loss = float((w * d2.double()).sum())
        sums = torch.zeros((k, points.shape[1]), dtype=torch.float64, device=points.device)
        sums.index_add_(0, labels, points.double() * w[:, None])
        mass = torch.zeros(k, dtype=torch.float64, device=points.device).index_add_(0, labels, w)
        filled = mass > 0
        centers = centers.clone()
        centers[filled] = (sums[filled] / mass[filled, None]).float()
        if previous is not None and previous - loss <= tol * max(previous, 1e-300):
            break
        previous = loss
    labels, d2 = _nearest(points, centers)
    msd = float((w * d2.double()).sum() / w.sum())
    return centers, msd


def _read_member(path: Path, name: str) -> bytes:
    """Read one regular file from a tar archive into memory (nothing is extracted)."""
    try:
        with tarfile.open(path, "r:*") as tar:
            for member in tar:
                if Path(member.name).name != name:
                    continue
                if not member.isfile():
                    raise ValueError(f"{path}: {member.name} is not a regular file.")
                if member.size > _MAX_MODEL_BYTES:
                    raise ValueError(f"{path}: {member.name} is too large.")
                return tar.extractfile(member).read()
    except (tarfile.TarError, EOFError, OSError) as err:
        raise ValueError(f"{path} is not a readable model archive ({err}).") from None
    raise ValueError(f"{path} holds no {name}: is it a built-in K-Means model archive?")
