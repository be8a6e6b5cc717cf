"""The causal CNN encoder: padding never changes an embedding, missing values keep their place."""

import numpy as np
import pytest
import torch

from tsc_toolkit.data import series_lengths
from tsc_toolkit.embedding.encoder import CausalCNNEncoder, encode, prepare_input
from tsc_toolkit.embedding.triplet import Crops, gather_crops, sample_triplets


def _encoder(in_channels=2, seed=0):
    torch.manual_seed(seed)
    return CausalCNNEncoder(in_channels, filters=8, blocks=3, reduced_size=8, output_size=6,
                            kernel_size=3).eval()


def test_architecture_follows_the_paper():
    enc = CausalCNNEncoder(4, filters=40, blocks=10, reduced_size=160, output_size=320,
                           kernel_size=3)
    convs = [m for m in enc.network.modules() if isinstance(m, torch.nn.Conv1d)
             and m.kernel_size == (3,)]
    assert [c.dilation[0] for c in convs[::2]] == [2 ** i for i in range(11)]
    assert convs[-1].out_channels == 160 and enc.linear.out_features == 320
    # weight normalisation on every causal convolution
    assert all(hasattr(c, "parametrizations") for c in convs)


@pytest.mark.parametrize("length", [1, 3, 5, 9, 40])
def test_dropping_taps_that_only_read_padding_changes_nothing(length, rng):
    # Reference: every layer convolves its full left zero padding, as in the paper's code.
    enc = _encoder()
    x = torch.from_numpy(rng.normal(size=(3, 2, length)).astype(np.float32))
    lengths = torch.tensor([length, max(1, length // 2), 1])

    def full_padding(conv, h):
        left = (conv.kernel_size - 1) * conv.dilation
        return conv.conv(torch.nn.functional.pad(h, (left, 0)))

    def reference(h):
        for block in enc.network:
            out = torch.nn.functional.leaky_relu(full_padding(block.conv1, h))
            out = torch.nn.functional.leaky_relu(full_padding(block.conv2, out))
            h = out + (h if block.residual is None else block.residual(h))
        pad = torch.arange(h.shape[2])[None, :] >= lengths[:, None]
        return enc.linear(h.masked_fill(pad[:, None, :], float("-inf")).max(dim=2).values)

    with torch.no_grad():
        torch.testing.assert_close(enc(x, lengths), reference(x), rtol=1e-5, atol=1e-6)


def test_embedding_inside_a_padded_batch_equals_embedding_alone(rng):
    enc = _encoder()
    lengths = np.array([50, 17, 33, 4])
    X = np.full((4, 1, 50), np.nan, dtype=np.float32)
    for i, n in enumerate(lengths):
        X[i, 0, :n] = rng.normal(size=n)
    inputs = prepare_input(X)
    with torch.no_grad():
        batched = enc(torch.from_numpy(inputs), torch.from_numpy(lengths))
        for i, n in enumerate(lengths):
            alone = enc(torch.from_numpy(inputs[i:i + 1, :, :n]), torch.tensor([n]))
            torch.testing.assert_close(batched[i:i + 1], alone, rtol=1e-5, atol=1e-5)


def test_encode_helper_matches_one_by_one_on_mixed_lengths(rng):
    enc = _encoder()
    X = np.full((30, 1, 80), np.nan, dtype=np.float32)
    lengths = rng.integers(5, 81, size=30)
    for i, n in enumerate(lengths):
        X[i, 0, :n] = rng.normal(size=n)
    inputs = prepare_input(X)
    batched = encode(enc, inputs, series_lengths(X), torch.device("cpu"), batch_size=7)
    with torch.no_grad():
        for i in (0, 11, 29):
            n = int(lengths[i])
            alone = enc(torch.from_numpy(inputs[i:i + 1, :, :n]), torch.tensor([n])).numpy()
            np.testing.assert_allclose(batched[i:i + 1], alone, rtol=1e-5, atol=1e-5)


def test_missing_values_become_a_mask_channel_and_keep_their_place():
    X = np.array([[[1.0, np.nan, 3.0, 4.0], [np.nan, 2.0, 2.0, 2.0]]], dtype=np.float32)
    inputs = prepare_input(X)
    assert inputs.shape == (1, 4, 4)
    np.testing.assert_array_equal(inputs[0, 0], [1, 0, 3, 4])
    np.testing.assert_array_equal(inputs[0, 2], [1, 0, 1, 1])
    np.testing.assert_array_equal(inputs[0, 3], [0, 1, 1, 1])


def test_a_missing_value_changes_the_embedding_but_not_its_timing(rng):
    enc = _encoder()
    x = rng.normal(size=(1, 1, 40)).astype(np.float32)
    gap = x.copy()
    gap[0, 0, 10] = np.nan
    z_full = encode(enc, prepare_input(x), np.array([40]), torch.device("cpu"))
    z_gap = encode(enc, prepare_input(gap), np.array([40]), torch.device("cpu"))
    assert np.isfinite(z_gap).all()
    assert not np.allclose(z_full, z_gap)
    # masking keeps the series length: the embedding is not that of a shorter series
    shifted = np.concatenate([x[:, :, :10], x[:, :, 11:]], axis=2)
    z_shift = encode(enc, prepare_input(shifted), np.array([39]), torch.device("cpu"))
    assert not np.allclose(z_gap, z_shift)


def test_the_encoder_is_causal(rng):
    enc = _encoder()
    x = torch.from_numpy(prepare_input(rng.normal(size=(1, 1, 30)).astype(np.float32)))
    changed = x.clone()
    changed[0, 0, 20:] += 5.0
    with torch.no_grad():
        assert torch.allclose(enc(x, torch.tensor([20])), enc(changed, torch.tensor([20])))
        assert not torch.allclose(enc(x, torch.tensor([25])), enc(changed, torch.tensor([25])))


def test_triplet_crops_stay_inside_their_series(rng):
    lengths = np.array([10, 50, 23, 7, 50, 31])
    for _ in range(50):
        batch = rng.choice(6, size=3, replace=False)
        anchors, positives, negatives = sample_triplets(batch, lengths, 4, rng)
        for crops in (anchors, positives, negatives):
            assert (crops.length >= 1).all()
            assert (crops.start >= 0).all()
            assert (crops.start + crops.length <= lengths[crops.series]).all()
        # positives are sub-windows of their anchors
        assert (positives.start >= anchors.start).all()
        assert (positives.start + positives.length <= anchors.start + anchors.length).all()
        assert len(negatives.series) == 4 * 3


def test_compared_length_caps_the_anchors(rng):
    lengths = np.full(8, 500)
    for _ in range(20):
        anchors, _, _ = sample_triplets(np.arange(4), lengths, 2, rng, compared_length=40)
        assert anchors.length.max() <= 40


def test_gather_crops_cuts_the_right_values():
    inputs = torch.arange(2 * 2 * 10, dtype=torch.float32).reshape(2, 2, 10)
    crops = Crops(np.array([1, 0]), np.array([3, 0]), np.array([4, 2]))
    x, lengths = gather_crops(inputs, crops)
    assert x.shape == (2, 2, 4)
    torch.testing.assert_close(x[0], inputs[1, :, 3:7])
    torch.testing.assert_close(x[1, :, :2], inputs[0, :, :2])
    assert lengths.tolist() == [4, 2]


@pytest.mark.parametrize("channels", [1, 3])
def test_any_number_of_channels(channels, rng):
    enc = _encoder(in_channels=2 * channels)
    X = rng.normal(size=(5, channels, 20)).astype(np.float32)
    z = encode(enc, prepare_input(X), series_lengths(X), torch.device("cpu"))
    assert z.shape == (5, 6) and z.dtype == np.float32


def test_inference_network_gives_the_trained_networks_embeddings_and_follows_its_weights(rng):
    from tsc_toolkit.embedding.encoder import inference_network

    enc = _encoder()
    x = torch.from_numpy(rng.normal(size=(4, 2, 30)).astype(np.float32))
    lengths = torch.tensor([30, 20, 7, 1])
    frozen = inference_network(enc)
    assert frozen is inference_network(enc)  # kept while the weights stay the same
    assert not any(hasattr(m, "parametrizations") for m in frozen.modules())
    with torch.no_grad():
        np.testing.assert_allclose(frozen(x, lengths), enc(x, lengths), rtol=1e-6, atol=1e-6)
    # the original keeps its weight norm (the copy must not strip it from the shared class)
    assert all(hasattr(m.conv, "parametrizations") for m in enc.modules()
               if type(m).__name__ == "_CausalConv")
    # a training step changes the weights: the next call follows them
    opt = torch.optim.SGD(enc.parameters(), lr=0.5)
    enc.train()
    enc(x, lengths).pow(2).sum().backward()
    opt.step()
    enc.eval()
    updated = inference_network(enc)
    assert updated is not frozen
    with torch.no_grad():
        np.testing.assert_allclose(updated(x, lengths), enc(x, lengths), rtol=1e-6, atol=1e-6)
        assert not np.allclose(frozen(x, lengths), enc(x, lengths))


def test_a_single_series_is_encoded_as_one_row_with_the_batched_embedding(rng, monkeypatch):
    from tsc_toolkit.embedding import encoder as module

    enc = _encoder()
    X = rng.normal(size=(9, 1, 40)).astype(np.float32)
    inputs = prepare_input(X)
    shapes = []
    network = module.inference_network(enc)
    monkeypatch.setattr(module, "inference_network",
                        lambda e: (lambda x, lens: shapes.append(tuple(x.shape))
                                   or network(x, lens)))
    one = encode(enc, inputs[:1], series_lengths(X[:1]), torch.device("cpu"))
    assert shapes == [(1, 2, 40)]  # not padded to a 64-row batch
    shapes.clear()
    many = encode(enc, inputs, series_lengths(X), torch.device("cpu"))
    assert shapes == [(16, 2, 40)]  # 9 series: the next power of two
    np.testing.assert_allclose(one, many[:1], rtol=1e-5, atol=1e-6)
