"""Untrained random-kernel features: a second, fixed view of each series next to the encoder's.

The view follows the recipe of MiniRocket (Dempster et al., KDD 2021): the 84 kernels of
length 9 whose weights are -1 except three 2s, applied at exponentially spaced dilations; each
kernel/dilation pair gets a few biases taken from quantiles of its own output on training
series, and a feature is the proportion of time steps where the output exceeds a bias (PPV).
Nothing is learned by gradient descent; fitting only draws the biases (and, for several
channels, which channels each kernel sums over).

Missing values inside a series are filled by linear interpolation for this view only (a
convolution over zero-filled gaps would see steps that are not there); shorter series are
convolved over their own length, and a feature averages only the steps inside the series.
The features are then standardised and reduced by PCA, so the view has a few dozen dimensions.
"""

from __future__ import annotations

from itertools import combinations

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from ..data import as_dataset
from ..io.sources import is_chunked_array, map_chunks
from ..seeding import stage_seed
from ..threads import inference_threads

__all__ = ["RandomKernelFeatures", "interpolate_gaps"]

_KIND = "tsc_toolkit.RandomKernelFeatures"
_KERNEL_LENGTH = 9
#: Time steps at most at which a long series' features are evaluated (a stride beyond).
_MAX_POSITIONS = 512
#: Up to this many comparisons (series x 84 x positions x biases), a view compares every value
#: with every bias at once; beyond, it sorts (memory stays bounded for large chunks).
_COMPARE_AT_ONCE = 1 << 22
#: The 84 weight patterns: -1 everywhere and 2 at three of the nine taps (they sum to 0).
_PATTERNS = np.array([[2.0 if i in c else -1.0 for i in range(_KERNEL_LENGTH)]
                      for c in combinations(range(_KERNEL_LENGTH), 3)], dtype=np.float32)


def interpolate_gaps(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Fill interior NaN by linear interpolation; return ``(filled, lengths)``.

    Steps after a series' last observed value stay padding (set to 0, outside its length);
    steps before its first observed value take that first value.
    """
    n, c, length = X.shape
    observed_any = ~np.isnan(X).all(axis=1)
    lengths = np.where(observed_any.any(axis=1),
                       length - np.argmax(observed_any[:, ::-1], axis=1), 0)
    out = np.zeros_like(X, dtype=np.float32)
    grid = np.arange(length)
    for i in range(n):
        end = int(lengths[i])
        for ch in range(c):
            row = X[i, ch, :end]
            ok = ~np.isnan(row)
            if ok.all():
                out[i, ch, :end] = row
            elif ok.any():
                out[i, ch, :end] = np.interp(grid[:end], grid[:end][ok], row[ok])
    return out, lengths.astype(np.int64)


class RandomKernelFeatures(TransformerMixin, BaseEstimator):
    """Random-kernel features of series, reduced to ``n_components`` dimensions.

    The random-kernel view of :class:`~tsc_toolkit.CNNKMeans` (its ``kernel_view_``, fitted
    on the series as its encoder scales them), and a scikit-learn transformer of its own:
    ``X`` is anything :func:`tsc_toolkit.as_dataset` accepts.

    Parameters
    ----------
    n_features : int, default=10000
        Approximate number of PPV features before the reduction.
    n_components : int, default=50
        Dimensions kept by PCA.
    sample_size : int, default=2000
        Series whose convolution outputs the biases are drawn from.
    random_state : int, RandomState or None, default=0
        Seed for the biases, the quantiles and the channel draws (an int is used as it is).

    Examples
    --------
    >>> from tsc_toolkit.io.datasets import make_series
    >>> from tsc_toolkit.views.random_kernels import RandomKernelFeatures
    >>> X, _ = make_series(40, length=60, random_state=0)
    >>> RandomKernelFeatures(n_features=500, n_components=8).fit_transform(X).shape
    (40, 8)
    """

    def __init__(self, n_features: int = 10000, n_components: int = 50,
                 sample_size: int = 2000, random_state=0):
        self.n_features = n_features
        self.n_components = n_components
        self.sample_size = sample_size
        self.random_state = random_state

    # ------------------------------------------------------------------ fitting

    def fit(self, X, y=None) -> RandomKernelFeatures:
        """Draw dilations, biases and channel sets from (a sample of) the series ``X``."""
        X = as_dataset(X)
        self.n_features_in_ = int(X.shape[1] * X.shape[2])  # as scikit-learn counts features
        seed = stage_seed(self.random_state)
        rng = np.random.default_rng(seed)
        sample_size = int(self.sample_size)
        filled, lengths = interpolate_gaps(X)
        n, c, _ = X.shape
        reference = int(max(np.median(lengths), _KERNEL_LENGTH))
        top = max(0.0, np.log2((reference - 1) / (_KERNEL_LENGTH - 1)))
        per_kernel = max(1, self.n_features // len(_PATTERNS))
        n_dil = int(min(32, per_kernel, np.floor(top) + 1))
        dilations, counts = np.unique(np.floor(2 ** np.linspace(0, top, n_dil)).astype(int),
                                      return_counts=True)
        biases_per = np.maximum(1, (per_kernel * counts) // counts.sum())
        self.dilations_ = dilations.astype(np.int64)
        self.n_biases_ = biases_per.astype(np.int64)
        # Channels each kernel sums over, per dilation (all of them for one channel).
        masks = np.zeros((len(dilations), c, len(_PATTERNS)), dtype=np.float32)
        for d in range(len(dilations)):
            for j in range(len(_PATTERNS)):
                size = int(2 ** rng.uniform(0, np.log2(min(c, _KERNEL_LENGTH) + 1))) if c > 1 else 1
                masks[d, rng.choice(c, size=min(size, c), replace=False), j] = 1.0
        self.channel_masks_ = masks
        sample = rng.choice(n, size=min(n, sample_size), replace=False)
        biases = []
        for d, dilation in enumerate(self.dilations_):
            out = self._convolve(filled[sample], d, dilation)  # (s, 84, L)
            nb = int(self.n_biases_[d])
            quantiles = (np.arange(1, nb + 1) * ((np.sqrt(5) + 1) / 2)) % 1
            b = np.empty((len(_PATTERNS), nb), dtype=np.float32)
            for j in range(len(_PATTERNS)):
                r = int(rng.integers(len(sample)))
                inside = max(1, -(-int(lengths[sample[r]]) // self._stride(X.shape[2])))
                b[j] = np.quantile(out[r, j, :inside], quantiles)
            biases.append(b)
        self.biases_ = biases
        ppv = np.concatenate([self._ppv(filled[i:i + 128], lengths[i:i + 128])
                              for i in range(0, n, 128)])
        self.mean_ = ppv.mean(axis=0)
        std = ppv.std(axis=0)
        self.scale_ = np.where(std > 1e-6, std, 1.0).astype(np.float32)
        z = (ppv - self.mean_) / self.scale_
        k = int(min(self.n_components, *z.shape))
        # PCA by a seeded randomized SVD of the standardised features (signs fixed below).
        from sklearn.utils.extmath import randomized_svd

        _, _, vt = randomized_svd(z - z.mean(axis=0), k, random_state=seed)
        vt *= np.sign(vt[np.arange(k), np.abs(vt).argmax(axis=1)])[:, None]
        self.components_ = vt.astype(np.float32)
        self.center_ = z.mean(axis=0).astype(np.float32)
        proj = (z - self.center_) @ self.components_.T
        self.norm_ = float(np.sqrt((proj ** 2).sum(axis=1).mean()) or 1.0)
        self._train_view = (proj / self.norm_).astype(np.float32)
        return self

    def fit_transform(self, X, y=None) -> np.ndarray:
        """Fit on ``X`` and return its view (computed once)."""
        view = self.fit(X)._train_view
        del self._train_view
        return view

    # -------------------------------------------------------------- transforming

    def transform(self, X, chunk: int = 256) -> np.ndarray:
        """The view of the series ``X``: ``(n_series, n_components)`` float32.

        Rows have unit root-mean-square norm on the training series. A memory-mapped or
        lazily sliced array, or one of more than ``CHUNK_SIZE`` series, is read a chunk of
        series at a time (:func:`tsc_toolkit.io.sources.map_chunks`).
        """
        check_is_fitted(self, "components_")
        if is_chunked_array(X):
            return map_chunks(lambda part: self.transform(part, chunk), X)
        X = as_dataset(X)
        filled, lengths = interpolate_gaps(X)
        out = []
        with inference_threads(X.size):
            for start in range(0, len(X), chunk):
                ppv = self._ppv(filled[start:start + chunk], lengths[start:start + chunk])
                z = (ppv - self.mean_) / self.scale_
                out.append(((z - self.center_) @ self.components_.T) / self.norm_)
        if not out:
            return np.zeros((0, len(self.components_)), dtype=np.float32)
        return np.concatenate(out).astype(np.float32)

    def _stride(self, length: int) -> int:
        # A feature is a proportion over time steps: on long series every s-th step estimates
        # it well and costs s times less.
        return max(1, -(-int(length) // _MAX_POSITIONS))

    def _convolve(self, X: np.ndarray, d: int, dilation: int) -> np.ndarray:
        n, c, length = X.shape
        weights = torch.from_numpy(_PATTERNS[:, None, :])
        x = torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32)).reshape(n * c, 1, length)
        pad = (_KERNEL_LENGTH // 2) * int(dilation)
        with torch.no_grad():
            y = F.conv1d(F.pad(x, (pad, pad)), weights, dilation=int(dilation),
                         stride=self._stride(length))
            y = y.reshape(n, c, len(_PATTERNS), y.shape[-1])
            if c == 1:
                y = y[:, 0]
            else:
                y = torch.einsum("nckl,ck->nkl", y, torch.from_numpy(self.channel_masks_[d]))
        return y.numpy()

    def _ppv(self, filled: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        n, _, length = filled.shape
        steps = np.arange(0, length, self._stride(length))
        valid = torch.from_numpy(steps[None, :] < lengths[:, None])  # (n, positions)
        count = valid.sum(dim=1).clamp(min=1).to(torch.float32)[:, None, None]
        feats = []
        for d, dilation in enumerate(self.dilations_):
            y = torch.from_numpy(self._convolve(filled, d, dilation))  # (n, 84, L)
            # Steps outside a series never exceed a bias.
            y = torch.where(valid[:, None, :], y, torch.tensor(-torch.inf))
            b = torch.from_numpy(self.biases_[d])  # (84, nb)
            if y.numel() * b.shape[1] <= _COMPARE_AT_ONCE:  # a few series: compare at once
                above = torch.from_numpy((y.numpy()[:, :, None, :]
                                          > b.numpy()[None, :, :, None]).sum(axis=3))
            else:
                # the positions past each bias in the sorted values: one sort and one
                # search instead of a comparison per bias (the same counts)
                ordered = torch.sort(y, dim=2).values.contiguous()
                below = torch.searchsorted(ordered, b[None].expand(n, -1, -1).contiguous(),
                                           right=True)
                above = y.shape[2] - below  # (n, 84, nb)
            feats.append((above.to(torch.float32) / count).reshape(n, -1))
        return torch.cat(feats, dim=1).numpy()

    # ------------------------------------------------------------- persistence

    def to_tensors(self, prefix: str) -> dict[str, np.ndarray]:
        """The fitted state as named arrays (for safetensors; nothing is pickled)."""
        out = {f"{prefix}.dilations": self.dilations_, f"{prefix}.n_biases": self.n_biases_,
               f"{prefix}.channel_masks": self.channel_masks_, f"{prefix}.mean": self.mean_,
               f"{prefix}.scale": self.scale_, f"{prefix}.components": self.components_,
               f"{prefix}.center": self.center_,
               f"{prefix}.norm": np.asarray([self.norm_], dtype=np.float32)}
        for d, b in enumerate(self.biases_):
            out[f"{prefix}.biases.{d}"] = b
        return out

    def save(self, path):
        """Save the fitted view to the folder ``path`` (JSON config + safetensors)."""
        from .. import __version__
        from ..persistence import json_params, write_bundle

        check_is_fitted(self, "components_")
        return write_bundle(path, _KIND, {"library_version": __version__,
                                          "params": json_params(self.get_params())},
                            self.to_tensors("view"))

    @classmethod
    def load(cls, path) -> RandomKernelFeatures:
        """Open a view saved with :meth:`save`. Nothing is unpickled or executed."""
        from ..persistence import ModelFormatError, read_bundle

        meta, tensors = read_bundle(path, _KIND)
        params = dict(meta.get("params", {}))
        if set(params) - set(cls._get_param_names()):
            raise ModelFormatError(f"{path}: unknown parameters "
                                   f"{sorted(set(params) - set(cls._get_param_names()))}.")
        try:
            return cls.from_tensors(tensors, "view", **params)
        except KeyError as err:
            raise ModelFormatError(f"{path}: the random-kernel view lacks {err}.") from None

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        return tags

    @classmethod
    def from_tensors(cls, tensors: dict, prefix: str, **params) -> RandomKernelFeatures:
        """Rebuild a fitted view from :meth:`to_tensors` (arrays or torch tensors)."""
        def get(name):
            value = tensors[f"{prefix}.{name}"]
            return value.numpy() if hasattr(value, "numpy") else np.asarray(value)

        self = cls(**params)
        self.dilations_ = get("dilations").astype(np.int64)
        self.n_biases_ = get("n_biases").astype(np.int64)
        self.channel_masks_ = get("channel_masks").astype(np.float32)
        self.mean_, self.scale_ = get("mean"), get("scale")
        self.components_, self.center_ = get("components"), get("center")
        self.norm_ = float(get("norm")[0])
        self.biases_ = [get(f"biases.{d}").astype(np.float32) for d in range(len(self.dilations_))]
        return self
