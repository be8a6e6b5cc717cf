"""Scaling that lives inside a model and works for any series length.

fg-research's product scales each time step with statistics taken across the training
series, which ties the model to the training length. The scalers here never depend on
the position in time, so a model fitted on length 50 predicts on length 500.
"""

from __future__ import annotations

import warnings

import numpy as np

__all__ = ["SeriesScaler", "SCALING_METHODS"]

SCALING_METHODS = ("series", "channel", "none")


class SeriesScaler:
    """NaN-aware z-normalisation of time series, by series or by channel.

    Parameters
    ----------
    method : {"series", "channel", "none"}, default="series"
        ``"series"``: each channel of each series gets mean 0 and standard deviation 1
        (the UCR convention; shape matters, level and amplitude do not).
        ``"channel"``: each channel is centred and scaled with the mean and standard
        deviation learned over all training series (level and amplitude still matter).
        ``"none"``: values are used as they are.

    Attributes
    ----------
    mean_, scale_ : ndarray of shape (n_channels,)
        Learned statistics (``"channel"`` only; zeros and ones otherwise).

    Examples
    --------
    >>> import numpy as np
    >>> from tsc_toolkit.embedding.scaling import SeriesScaler
    >>> X = np.array([[[1.0, 2.0, 3.0, np.nan]]], dtype=np.float32)
    >>> SeriesScaler("series").fit(X).transform(X).astype(float).round(3).tolist()
    [[[-1.225, 0.0, 1.225, nan]]]
    """

    def __init__(self, method: str = "series"):
        self.method = method

    def fit(self, X: np.ndarray) -> SeriesScaler:
        if self.method not in SCALING_METHODS:
            raise ValueError(
                f"scaling must be one of {SCALING_METHODS}, got {self.method!r}.")
        n_channels = X.shape[1]
        self.mean_ = np.zeros(n_channels, dtype=np.float32)
        self.scale_ = np.ones(n_channels, dtype=np.float32)
        if self.method == "channel":
            with np.errstate(invalid="ignore"):
                mean = np.nanmean(X, axis=(0, 2), dtype=np.float64)
                std = np.nanstd(X, axis=(0, 2), dtype=np.float64)
            self.mean_ = np.nan_to_num(mean).astype(np.float32)
            self.scale_ = np.where(np.isfinite(std) & (std > 1e-8), std, 1.0).astype(np.float32)
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        if self.method == "none":
            return np.asarray(X, dtype=np.float32)
        if X.shape[1] != self.mean_.shape[0]:
            raise ValueError(
                f"X has {X.shape[1]} channel(s) but the scaler was fitted on "
                f"{self.mean_.shape[0]}.")
        if self.method == "channel":
            return ((X - self.mean_[None, :, None]) / self.scale_[None, :, None]).astype(
                np.float32)
        with np.errstate(invalid="ignore"), warnings.catch_warnings():
            # a channel with nothing observed has no mean (NaN, then 0 below): not worth a warning
            warnings.simplefilter("ignore", RuntimeWarning)
            mean = np.nanmean(X, axis=2, keepdims=True, dtype=np.float64)
            std = np.nanstd(X, axis=2, keepdims=True, dtype=np.float64)
        # A constant (or unobserved) channel is only centred: dividing by ~0 would blow it up.
        std = np.where(np.isfinite(std) & (std > 1e-8), std, 1.0)
        return ((X - np.nan_to_num(mean)) / std).astype(np.float32)

    def fit_transform(self, X: np.ndarray) -> np.ndarray:
        return self.fit(X).transform(X)

    def to_dict(self) -> dict:
        """JSON-ready state."""
        return {"method": self.method, "mean": self.mean_.tolist(), "scale": self.scale_.tolist()}

    @classmethod
    def from_dict(cls, state: dict) -> SeriesScaler:
        scaler = cls(state["method"])
        scaler.mean_ = np.asarray(state["mean"], dtype=np.float32)
        scaler.scale_ = np.asarray(state["scale"], dtype=np.float32)
        return scaler
