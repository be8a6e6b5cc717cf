"""The causal dilated CNN encoder of Franceschi et al. (2019), for padded batches.

Architecture (as in the paper's code): ``blocks`` causal convolution blocks with
dilations 1, 2, 4, ..., each made of two weight-normalised causal convolutions with
LeakyReLU and a residual connection (a 1x1 convolution when the channel count changes),
one final block to ``reduced_size`` channels, global max pooling over time, and a linear
layer to ``output_size``.

Two changes let one forward pass serve a whole batch of series of different lengths:

- *Masked max pooling.* Each series comes with its length; steps after it are excluded
  from the max. The convolutions are causal, so padding after a series never reaches its
  own steps: a series encoded inside a padded batch gets the same embedding as alone.
- *Missing values as a mask channel.* Each input channel is paired with an "observed"
  channel (1 where a value was seen, 0 where it was missing) and missing values are set
  to 0. Missing steps keep their place in time, so events are not shifted.
"""

from __future__ import annotations

import copy
import threading
import weakref

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import weight_norm

__all__ = ["CausalCNNEncoder", "prepare_input", "encode", "inference_network"]


class _CausalConv(nn.Module):
    """A weight-normalised Conv1d that only looks at the past (left padding).

    A tap ``j`` steps of ``dilation`` back reads only the zero padding when
    ``j * dilation`` reaches past the start of every window of the batch. Such taps add
    exactly nothing, so they are dropped with their padding: on short windows the deep,
    widely dilated layers become pointwise convolutions instead of convolving mostly
    zeros (a layer with dilation 512 on 100 steps would otherwise pad to 1,124 steps).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, dilation: int):
        super().__init__()
        self.kernel_size = kernel_size
        self.dilation = dilation
        self.conv = weight_norm(nn.Conv1d(in_channels, out_channels, kernel_size,
                                          dilation=dilation))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # taps j = 0 .. used-1 look j * dilation steps back; j * dilation <= time - 1
        used = min(self.kernel_size, (x.shape[2] - 1) // self.dilation + 1)
        weight = self.conv.weight[:, :, self.kernel_size - used:]
        x = F.pad(x, ((used - 1) * self.dilation, 0))
        return F.conv1d(x, weight, self.conv.bias, dilation=self.dilation)


class _CausalBlock(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, dilation: int):
        super().__init__()
        self.conv1 = _CausalConv(in_channels, out_channels, kernel_size, dilation)
        self.conv2 = _CausalConv(out_channels, out_channels, kernel_size, dilation)
        self.residual = (nn.Conv1d(in_channels, out_channels, 1)
                         if in_channels != out_channels else None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.leaky_relu(self.conv1(x))
        out = F.leaky_relu(self.conv2(out))
        res = x if self.residual is None else self.residual(x)
        return out + res


class CausalCNNEncoder(nn.Module):
    """Causal dilated CNN mapping a padded batch of series to fixed-size embeddings.

    Parameters
    ----------
    in_channels : int
        Channels of the network input (twice the data channels: values and masks).
    filters : int
        Channels of all but the last convolution block.
    blocks : int
        Number of dilated blocks before the final block (dilations 1, 2, ..., 2**(blocks-1)).
    reduced_size : int
        Channels of the final block, max-pooled over time.
    output_size : int
        Size of the embedding.
    kernel_size : int
        Kernel size of the causal convolutions.

    Examples
    --------
    >>> import torch
    >>> enc = CausalCNNEncoder(2, filters=8, blocks=2, reduced_size=8, output_size=4,
    ...                        kernel_size=3)
    >>> enc(torch.zeros(5, 2, 30), torch.full((5,), 30)).shape
    torch.Size([5, 4])
    """

    def __init__(self, in_channels: int, filters: int, blocks: int, reduced_size: int,
                 output_size: int, kernel_size: int):
        super().__init__()
        layers = []
        channels = in_channels
        for i in range(blocks):
            layers.append(_CausalBlock(channels, filters, kernel_size, 2 ** i))
            channels = filters
        layers.append(_CausalBlock(channels, reduced_size, kernel_size, 2 ** blocks))
        self.network = nn.Sequential(*layers)
        self.linear = nn.Linear(reduced_size, output_size)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Embed ``x`` of shape (batch, in_channels, time); ``lengths`` (batch,) ints."""
        h = self.network(x)
        steps = torch.arange(h.shape[2], device=h.device)
        pad = steps[None, :] >= lengths[:, None]
        h = h.masked_fill(pad[:, None, :], float("-inf"))
        return self.linear(h.max(dim=2).values)


def prepare_input(X: np.ndarray) -> np.ndarray:
    """Turn a scaled dataset (NaN for missing) into network input: values and masks.

    Returns float32 of shape (n_series, 2 * n_channels, length): the first half holds
    values with NaN set to 0, the second half 1 where a value was observed.
    """
    observed = ~np.isnan(X)
    return np.concatenate([np.where(observed, X, 0.0), observed], axis=1).astype(np.float32)


def _rows(n: int, planned: int) -> int:
    """Rows of a batch of ``n`` series planned for ``planned``: the next power of two.

    Few shapes still (one per power of two), and a request of one series is encoded as one
    row instead of a whole padded batch. Only for inputs smaller than one batch: over a long
    stream of chunks, the last batch of each padded to a power of two of rows grew anonymous
    memory by about 100 MiB more than batches of one size (oneDNN keeps buffers per shape).
    """
    return min(planned, 1 << max(0, int(n) - 1).bit_length())


# A network kept for inference next to each trained one: the weight norms folded into plain
# weights (the same numbers the parametrization computes on every forward pass, computed once).
_FROZEN: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_FROZEN_LOCK = threading.Lock()


def _weights_key(params: list) -> tuple:
    # An optimizer step or load_state_dict changes a parameter in place (its version counter
    # moves); .to(device) gives it new storage (its pointer moves).
    return tuple((id(p), p.data_ptr(), p._version) for p in params)


def inference_network(encoder: nn.Module) -> nn.Module:
    """``encoder`` with its weight norms folded into plain weights, in eval mode.

    The copy is kept while the encoder's weights stay the same, and rebuilt when they change
    (training, loading weights, moving to another device). Its embeddings are those of
    ``encoder``: it holds the weights the parametrization would compute.
    """
    with _FROZEN_LOCK:
        cached = _FROZEN.get(encoder)
    # the parameters are listed once per network (walking its modules costs a millisecond)
    if cached is not None and cached[0] == _weights_key(cached[1]):
        return cached[2]
    params = list(encoder.parameters())
    key = _weights_key(params)
    frozen = copy.deepcopy(encoder)
    for module in frozen.modules():
        # A new plain layer replaces each weight-normalised one: removing the parametrization
        # in place would edit the layer class that the copy shares with the original.
        if isinstance(module, _CausalConv) and parametrize.is_parametrized(module.conv):
            old = module.conv
            with torch.no_grad():
                plain = nn.Conv1d(old.in_channels, old.out_channels, old.kernel_size,
                                  dilation=old.dilation, bias=old.bias is not None,
                                  device=old.bias.device if old.bias is not None else None)
                plain.weight.copy_(old.weight)
                if old.bias is not None:
                    plain.bias.copy_(old.bias)
            module.conv = plain
    frozen.eval()
    for p in frozen.parameters():
        p.requires_grad_(False)
    with _FROZEN_LOCK:
        _FROZEN[encoder] = (key, params, frozen)
    return frozen


def _bucket(length: int) -> int:
    """``length`` rounded up to one of 8 steps per doubling (at most 12.5 % more)."""
    if length <= 16:
        return max(1, length)
    step = 1 << (int(length).bit_length() - 4)
    return -(-int(length) // step) * step


@torch.no_grad()
def encode(encoder: nn.Module, inputs: np.ndarray, lengths: np.ndarray, device: torch.device,
           batch_size: int = 64, max_elements: int = 2 ** 24, progress: bool = False
           ) -> np.ndarray:
    """Embed prepared inputs in length-sorted, padded batches.

    Series are sorted by length so that a batch pads little; a batch holds at most
    ``batch_size`` series and about ``max_elements`` input values. Each batch is padded to a
    length bucket (8 per doubling) and, when short, to its planned number of rows (to a power
    of two of rows when the whole input is smaller than one batch), so that
    batches come in few shapes: oneDNN keeps a compiled convolution per input shape, and one
    per exact length grew memory without bound over a long stream of chunks. Padding never
    changes an embedding (the convolutions are causal and the pooling is masked). The
    network runs with its weight norms folded (:func:`inference_network`).
    """
    order = np.argsort(lengths, kind="stable")
    out = np.empty((len(order), encoder.linear.out_features), dtype=np.float32)
    network = inference_network(encoder)
    start = 0
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(order), desc="encoding", leave=False)
    width = inputs.shape[2]
    while start < len(order):
        longest = _bucket(int(lengths[order[min(start + batch_size, len(order)) - 1]]))
        per_series = max(1, longest * inputs.shape[1])
        size = max(1, min(batch_size, max_elements // per_series))
        idx = order[start:start + size]
        if len(order) < batch_size:  # a few series (a request): a power of two of rows
            size = _rows(len(idx), size)
        length = _bucket(int(lengths[idx].max()))
        batch = np.zeros((size, inputs.shape[1], length), dtype=np.float32)
        batch[:len(idx), :, :min(length, width)] = inputs[idx, :, :length]
        lens = np.ones(size, dtype=np.int64)
        lens[:len(idx)] = lengths[idx]
        x = torch.from_numpy(batch).to(device)
        z = network(x, torch.from_numpy(lens).to(device))
        out[idx] = z[:len(idx)].float().cpu().numpy()
        start += len(idx)
        if bar is not None:
            bar.update(len(idx))
    if bar is not None:
        bar.close()
    return out
