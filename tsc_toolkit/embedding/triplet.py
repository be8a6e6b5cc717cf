"""Triplet sampling and the T-Loss of Franceschi et al. (2019), batched.

For each series of a mini-batch (the *anchor's* series) the sampler draws:

- an anchor: a random sub-series;
- a positive: a random sub-window of the anchor;
- ``negative_samples`` negatives: random windows of series drawn from the whole
  training set, as long as the positive where the series allows.

The loss is ``-log σ(z_a·z_p) - (penalty / K) Σ_k log σ(-z_a·z_n_k)``, on dot products of
the embeddings (not distances).

Lengths follow the paper's draw, ``len_pos ~ U{1..L}`` and ``len_anchor ~ U{len_pos..L}``,
made once per batch. When series have different lengths, the two draws are taken as
fractions of the longest length and applied to each series' own length, so a batch of
equal-length series is sampled exactly as in the paper and a batch of mixed lengths keeps
the same proportions for every series. All crops are encoded in two padded forward
passes (anchors; positives and negatives), never one series at a time.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
from torch.nn import functional as F

__all__ = ["Crops", "sample_triplets", "gather_crops", "triplet_loss"]


class Crops(NamedTuple):
    """Windows to cut: series index, first step and length of each (int64 arrays)."""

    series: np.ndarray
    start: np.ndarray
    length: np.ndarray


def sample_triplets(batch: np.ndarray, lengths: np.ndarray, negative_samples: int,
                    rng: np.random.Generator, compared_length: int | None = None
                    ) -> tuple[Crops, Crops, Crops]:
    """Draw anchors, positives and negatives for the series in ``batch``.

    Parameters
    ----------
    batch : ndarray of int
        Indices of the anchor series.
    lengths : ndarray of int
        Length of every series of the training set (negatives are drawn from all).
    negative_samples : int
        Negatives per anchor (``K``).
    rng : numpy.random.Generator
    compared_length : int, optional
        Longest anchor; caps the cost on long series.

    Returns
    -------
    anchors, positives, negatives : Crops
        ``negatives`` holds ``K * len(batch)`` windows, negative ``k`` of anchor ``j``
        at position ``k * len(batch) + j``.
    """
    batch = np.asarray(batch, dtype=np.int64)
    series_len = lengths[batch]
    cap = lengths.max() if compared_length is None else min(int(compared_length), lengths.max())
    usable = np.minimum(series_len, cap)
    # The paper's integer draws on the reference length, then applied as fractions.
    ref = int(cap)
    len_pos = int(rng.integers(1, ref + 1))
    len_anchor = int(rng.integers(len_pos, ref + 1))
    pos_len = np.clip(np.rint(len_pos / ref * usable), 1, usable).astype(np.int64)
    anchor_len = np.clip(np.rint(len_anchor / ref * usable), pos_len, usable).astype(np.int64)
    anchor_start = rng.integers(0, series_len - anchor_len + 1)
    pos_start = anchor_start + rng.integers(0, anchor_len - pos_len + 1)

    neg_series = rng.integers(0, len(lengths), size=negative_samples * len(batch))
    neg_len = np.minimum(np.tile(pos_len, negative_samples), lengths[neg_series])
    neg_start = rng.integers(0, lengths[neg_series] - neg_len + 1)
    return (Crops(batch, anchor_start, anchor_len),
            Crops(batch, pos_start, pos_len),
            Crops(neg_series, neg_start, neg_len))


def gather_crops(inputs: torch.Tensor, crops: Crops) -> tuple[torch.Tensor, torch.Tensor]:
    """Cut windows out of ``inputs`` (n_series, channels, time) into a padded batch.

    Steps after a window's end hold whatever follows it in the series; the encoder is
    causal and masks them out of the pooling, so they never change the embedding.
    """
    device = inputs.device
    width = int(crops.length.max())
    steps = torch.arange(width, device=device)
    start = torch.from_numpy(crops.start).to(device)
    index = (start[:, None] + steps[None, :]).clamp_(max=inputs.shape[2] - 1)
    series = torch.from_numpy(crops.series).to(device)
    windows = inputs[series[:, None], :, index]  # (n_crops, width, channels)
    return windows.permute(0, 2, 1), torch.from_numpy(crops.length).to(device)


def triplet_loss(pair_encoder, inputs: torch.Tensor, anchors: Crops, positives: Crops,
                 negatives: Crops, negative_penalty: float = 1.0) -> torch.Tensor:
    """T-Loss of one batch (a scalar tensor with gradient).

    ``pair_encoder(xa, la, xo, lo)`` embeds the anchors and the other crops in one call
    (see :class:`tsc_toolkit.embedding.training.PairEncoder`), so that DistributedDataParallel sees
    one forward pass per backward pass.
    """
    n = len(anchors.series)
    others = Crops(*(np.concatenate([p, q]) for p, q in zip(positives, negatives)))
    # Data too large for the GPU stays in host memory; only the crops travel.
    device = next(pair_encoder.parameters()).device
    xa, la = (t.to(device, non_blocking=True) for t in gather_crops(inputs, anchors))
    xo, lo = (t.to(device, non_blocking=True) for t in gather_crops(inputs, others))
    z_anchor, z_others = pair_encoder(xa, la, xo, lo)
    z_pos, z_neg = z_others[:n], z_others[n:].reshape(-1, n, z_others.shape[1])
    pos_term = -F.logsigmoid((z_anchor * z_pos).sum(dim=1)).mean()
    # mean over negatives and anchors = (1/K) Σ_k mean_j, as in the paper
    neg_term = -F.logsigmoid(-(z_anchor[None] * z_neg).sum(dim=2)).mean()
    return pos_term + negative_penalty * neg_term
