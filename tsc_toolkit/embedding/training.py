"""Pieces of the training loop that do not depend on the estimator: devices, batching,
distributed helpers, embedding normalisation and per-epoch scores."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..threads import cores, cores_busy_elsewhere  # noqa: F401  (the latter re-exported)

__all__ = ["resolve_device", "make_batches", "PairEncoder", "Distributed", "normalize_embeddings",
           "silhouette", "nearest_centers"]


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` picks CUDA, then Apple's MPS, then the CPU."""
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        return torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ValueError(f"device must be 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps', "
                         f"got {device!r}.") from err


def make_batches(lengths: np.ndarray, batch_size: int, rng: np.random.Generator,
                 bucket: int = 50) -> list[np.ndarray]:
    """Shuffle series into batches of similar length.

    The series are shuffled, cut into chunks of ``bucket * batch_size``, sorted by length
    inside each chunk and cut into batches, whose order is shuffled again. With equal
    lengths this is plain shuffled batching; with mixed lengths a batch pads little.
    """
    order = rng.permutation(len(lengths))
    if np.all(lengths == lengths[0]):
        return [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
    chunk = bucket * batch_size
    batches = []
    for c in range(0, len(order), chunk):
        part = order[c:c + chunk]
        part = part[np.argsort(lengths[part], kind="stable")]
        batches.extend(part[i:i + batch_size] for i in range(0, len(part), batch_size))
    return [batches[i] for i in rng.permutation(len(batches))]


class PairEncoder(nn.Module):
    """Embeds anchors and the other crops in one forward call.

    DistributedDataParallel expects one forward per backward; wrapping both passes of
    the triplet loss in one module keeps that true.
    """

    def __init__(self, encoder: nn.Module):
        super().__init__()
        self.encoder = encoder

    def forward(self, xa, la, xo, lo):
        return self.encoder(xa, la), self.encoder(xo, lo)


class Distributed:
    """What the training loop needs to know about torch.distributed, if it is running."""

    def __init__(self):
        dist = torch.distributed
        self.active = dist.is_available() and dist.is_initialized()
        self.rank = dist.get_rank() if self.active else 0
        self.world = dist.get_world_size() if self.active else 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def wrap(self, module: nn.Module, device: torch.device) -> nn.Module:
        if not self.active:
            return module
        from torch.nn.parallel import DistributedDataParallel

        ids = [device.index if device.index is not None else torch.cuda.current_device()] \
            if device.type == "cuda" else None
        return DistributedDataParallel(module, device_ids=ids)

    def shard(self, batches: list) -> list:
        """This rank's share; every rank gets the same number of batches."""
        if not self.active:
            return batches
        usable = len(batches) - len(batches) % self.world
        return batches[self.rank:usable:self.world] if usable else batches[:1]

    def mean(self, value: float, device: torch.device) -> float:
        if not self.active:
            return value
        t = torch.tensor([value], dtype=torch.float64, device=device)
        torch.distributed.all_reduce(t)
        return float(t.item()) / self.world

    def any(self, flag: bool, device: torch.device) -> bool:
        if not self.active:
            return flag
        t = torch.tensor([1.0 if flag else 0.0], device=device)
        torch.distributed.all_reduce(t, op=torch.distributed.ReduceOp.MAX)
        return bool(t.item() > 0)


def normalize_embeddings(z: np.ndarray, method: str | None, mean=None, scale=None) -> np.ndarray:
    """Put raw embeddings in the space K-Means works in.

    ``"l2"`` divides each embedding by its norm (directions, not norms, carry the dot
    products the loss trains); ``"standard"`` centres and scales each feature with
    ``mean`` and ``scale``; ``None`` keeps them raw.
    """
    if method is None or method == "none":
        return z
    if method == "l2":
        norm = np.linalg.norm(z, axis=1, keepdims=True)
        return (z / np.maximum(norm, 1e-12)).astype(np.float32)
    if method == "standard":
        return ((z - mean) / scale).astype(np.float32)
    raise ValueError(f"normalize must be 'l2', 'standard' or None, got {method!r}.")


def silhouette(z: np.ndarray, labels: np.ndarray, seed: int = 0,
               sample_size: int = 2000) -> float:
    """Silhouette coefficient, NaN when it is undefined (one cluster, or one per point)."""
    from sklearn.metrics import silhouette_score

    k = len(np.unique(labels))
    if k < 2 or k >= len(z):
        return float("nan")
    size = min(sample_size, len(z))
    return float(silhouette_score(z, labels, sample_size=size if size < len(z) else None,
                                  random_state=seed))


def nearest_centers(z: np.ndarray, centers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index of and Euclidean distance to the nearest center, for each row of ``z``."""
    d2 = ((z.astype(np.float64) ** 2).sum(1)[:, None] - 2.0 * z @ centers.T.astype(np.float64)
          + (centers.astype(np.float64) ** 2).sum(1)[None, :])
    labels = d2.argmin(axis=1)
    dist = np.sqrt(np.maximum(d2[np.arange(len(z)), labels], 0.0))
    return labels.astype(np.int64), dist.astype(np.float32)


def threads_for_training(requested: int) -> int:
    """Torch CPU threads for a fit: ``requested``, less the cores other processes keep busy.

    On a shared machine, more compute threads than free cores make every step wait for the
    slowest thread (measured here: 60 steps took 33 s on 2 threads next to another busy
    process, 8.5 s on 1 thread); one thread per free core degrades gracefully.
    """
    busy = cores_busy_elsewhere()
    if busy is None:
        return requested
    return int(max(1, min(requested, cores() - round(busy))))
