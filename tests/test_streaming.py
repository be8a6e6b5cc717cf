"""Streamed transform, predict, assign and fit give what the in-memory calls give."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest

from tsc_toolkit import CNNKMeans, read_csv, streaming, write_csv
from tsc_toolkit.cnn_kmeans import fit_seed
from tsc_toolkit.io.csvio import format_predictions_csv
from tsc_toolkit.io.datasets import make_series

TINY = dict(blocks=1, filters=8, reduced_size=8, output_size=5, epochs=1, batch_size=8,
            n_init=1, score_sample_size=20, random_state=0, device="cpu", verbose=0)
# Different batches of the same series may round differently in the last float bits.
CLOSE = dict(rtol=1e-5, atol=1e-6)


@pytest.fixture(scope="module")
def data():
    # missing values, and lengths from 10 to 40 so that chunks pad differently
    X, y = make_series(70, n_clusters=3, length=40, n_channels=2, missing_rate=0.08,
                       short_fraction=0.5, min_length=10, random_state=4)
    return X, y


@pytest.fixture(scope="module")
def model(data):
    return CNNKMeans(clusters=3, **TINY).fit(data[0][:40])


def test_streamed_embeddings_match_in_memory_from_every_input(model, data, tmp_path):
    X = data[0]
    expected = model.transform(X)
    np.save(tmp_path / "x.npy", X)
    write_csv(X, tmp_path / "x.csv")
    flat = X.reshape(-1, X.shape[2])
    pd.DataFrame(flat, columns=[f"t{j}" for j in range(flat.shape[1])]).to_parquet(
        tmp_path / "wide.parquet", row_group_size=16)
    inputs = {"npy": tmp_path / "x.npy", "csv": tmp_path / "x.csv",
              "parquet": tmp_path / "wide.parquet", "iterable": [X[:33], X[33:]],
              "memmap": np.load(tmp_path / "x.npy", mmap_mode="r")}
    for name, source in inputs.items():
        got = streaming.transform(model, source, chunk_size=9, progress=False)
        np.testing.assert_allclose(got, expected, **CLOSE, err_msg=name)


def test_assign_streams_to_npy_parquet_and_fg_csv(model, data, tmp_path):
    X = data[0]
    np.save(tmp_path / "x.npy", X)
    ref = model.assign(X)
    out = streaming.assign(model, tmp_path / "x.npy", tmp_path / "a.npy", chunk_size=16,
                           progress=False)
    table = np.load(out)
    assert table.shape == (len(X), 2 + model.output_size)
    np.testing.assert_array_equal(table[:, 0].astype(int), ref.closest_cluster)
    np.testing.assert_allclose(table[:, 1], ref.distance_to_cluster, **CLOSE)
    np.testing.assert_allclose(table[:, 2:], ref.embedding, **CLOSE)

    frame = pd.read_parquet(streaming.assign(model, tmp_path / "x.npy", tmp_path / "a.parquet",
                                             chunk_size=16, progress=False))
    assert frame.series_id.tolist() == list(range(len(X)))
    np.testing.assert_array_equal(frame.closest_cluster, ref.closest_cluster)
    np.testing.assert_allclose(frame[[f"embedding_{j}" for j in range(5)]], ref.embedding,
                               **CLOSE)

    buf = io.StringIO()
    streaming.assign(model, tmp_path / "x.npy", buf, chunk_size=16, progress=False)
    rows = buf.getvalue().splitlines()
    assert [float(r.split(",")[0]) for r in rows] == ref.closest_cluster.astype(float).tolist()
    assert len(rows) == len(format_predictions_csv(ref.closest_cluster,
                                                   ref.embedding).splitlines())

    labels = streaming.predict(model, tmp_path / "x.npy", tmp_path / "p.npy", chunk_size=7,
                               progress=False)
    np.testing.assert_array_equal(np.load(labels), ref.closest_cluster)
    emb = np.load(streaming.transform(model, tmp_path / "x.npy", tmp_path / "t.npy",
                                      chunk_size=7, progress=False))
    np.testing.assert_allclose(emb, ref.embedding, **CLOSE)


def test_the_estimator_hands_paths_to_the_streaming_path(model, data, tmp_path):
    X = data[0]
    np.save(tmp_path / "x.npy", X)
    np.testing.assert_array_equal(model.predict(tmp_path / "x.npy"), model.predict(X))
    np.testing.assert_allclose(model.transform(str(tmp_path / "x.npy")), model.transform(X),
                               **CLOSE)


def test_fit_on_a_sample_is_the_in_memory_fit_of_that_sample(data, tmp_path):
    X = data[0]
    np.save(tmp_path / "x.npy", X)
    streamed = streaming.fit(CNNKMeans(clusters=3, **TINY), tmp_path / "x.npy",
                             sample_size=30, cluster_on="sample", progress=False)
    # the draw is seeded by the model's own seed, as its fit is
    drawn = streaming.open_series(tmp_path / "x.npy").sample(30, fit_seed(TINY["random_state"]))
    direct = CNNKMeans(clusters=3, **TINY).fit(drawn.X)
    np.testing.assert_array_equal(streamed.cluster_centers_, direct.cluster_centers_)
    np.testing.assert_array_equal(streamed.labels_, direct.labels_)
    assert streamed.n_series_streamed_ == 30


def test_webscale_fit_clusters_every_streamed_embedding(data, tmp_path):
    from tsc_toolkit.clustering.kmeans import WebScaleKMeans

    X = data[0]
    write_csv(X, tmp_path / "x.csv")
    keep = tmp_path / "emb.npy"
    model = CNNKMeans(clusters=3, clustering="kmeans", kernel_features=0, **TINY)
    streaming.fit(model, tmp_path / "x.csv", channels=2, sample_size=30, embeddings=keep,
                  chunk_size=16, progress=False)
    assert model.n_series_streamed_ == len(X) and model.embeddings_.shape[0] == 30
    z = np.load(keep)
    np.testing.assert_allclose(z, model.transform(read_csv(tmp_path / "x.csv", channels=2)),
                               **CLOSE)
    km = WebScaleKMeans(k=3, num_trials=TINY["n_init"], random_state=fit_seed(0),
                        device="cpu").fit(z)
    np.testing.assert_allclose(model.cluster_centers_, km.cluster_centers_, **CLOSE)
    # predictions use the new centers
    np.testing.assert_array_equal(model.predict(X), km.predict(model.transform(X)))

    # with a random-kernel view the features are clustered, the centers are mean embeddings
    viewed = streaming.fit(CNNKMeans(clusters=3, clustering="kmeans", kernel_features=40, **TINY),
                           tmp_path / "x.csv", channels=2, sample_size=30, chunk_size=16,
                           cluster_on="all", progress=False)
    assert viewed.features_.shape[1] > 5
    assert viewed.feature_centers_.shape == (3, viewed.features_.shape[1])
    assert viewed.cluster_centers_.shape == (3, 5)
    with pytest.raises(ValueError, match="clustering='kmeans'"):
        streaming.fit(CNNKMeans(clusters=3, clustering="spectral", **TINY), tmp_path / "x.csv",
                      channels=2, cluster_on="all", progress=False)
    # the former name of cluster_on still works, with a warning
    with pytest.warns(FutureWarning, match="cluster_on"):
        old = streaming.fit(CNNKMeans(clusters=3, clustering="kmeans", kernel_features=40,
                                      **TINY), tmp_path / "x.csv", channels=2, sample_size=30,
                            chunk_size=16, clustering="webscale", progress=False)
    np.testing.assert_array_equal(old.cluster_centers_, viewed.cluster_centers_)


def test_a_streamed_fit_draws_its_sample_with_the_models_seed(data, tmp_path):
    X = data[0]
    np.save(tmp_path / "x.npy", X)
    fits = [streaming.fit(CNNKMeans(clusters=3, **{**TINY, "random_state": seed}),
                          tmp_path / "x.npy", sample_size=20, progress=False)
            for seed in (0, 0, 1)]
    np.testing.assert_array_equal(fits[0].embeddings_, fits[1].embeddings_)
    assert fits[0].embeddings_.shape != fits[2].embeddings_.shape or not np.array_equal(
        fits[0].embeddings_, fits[2].embeddings_)


def test_a_model_fitted_through_the_estimator_from_a_path(data, tmp_path):
    X = data[0]
    np.save(tmp_path / "x.npy", X)
    model = CNNKMeans(clusters=3, **TINY).fit(tmp_path / "x.npy")
    assert model.n_series_streamed_ == len(X)
    assert model.predict(tmp_path / "x.npy").shape == (len(X),)


class _LazyArray:
    """An array-like read only by slices, as an h5py or zarr dataset is: it records every
    slice asked for and has no ``__array__``, so reading it whole would fail."""

    def __init__(self, X):
        self._X, self.shape, self.dtype, self.reads = X, X.shape, X.dtype, []

    def __getitem__(self, index):
        rows = np.arange(self.shape[0])[index]
        self.reads.append(len(rows))
        return self._X[index].copy()

    def __len__(self):
        return self.shape[0]


def test_a_memmap_is_embedded_a_chunk_at_a_time_with_the_in_memory_results(model, data,
                                                                             tmp_path,
                                                                             monkeypatch):
    X = data[0]
    expected = model.assign(X)
    np.save(tmp_path / "x.npy", X)
    mapped = np.load(tmp_path / "x.npy", mmap_mode="r")
    assert isinstance(mapped, np.memmap) and streaming.is_chunked(mapped)
    calls = []
    run = streaming._run
    monkeypatch.setattr(streaming, "_run", lambda *a, **k: calls.append(a[3]) or run(*a, **k))
    np.testing.assert_allclose(model.transform(mapped), expected.embedding, atol=1e-5)
    got = model.assign(mapped)
    np.testing.assert_array_equal(got.closest_cluster, expected.closest_cluster)
    np.testing.assert_allclose(got.distance_to_cluster, expected.distance_to_cluster, atol=1e-5)
    np.testing.assert_array_equal(model.predict(mapped), expected.closest_cluster)
    assert calls == ["transform", "assign", "assign"]  # every call took the chunked path


def test_arrays_larger_than_a_chunk_and_lazy_array_likes_are_read_by_chunks(model, data,
                                                                            monkeypatch):
    X = data[0]  # 70 series, missing values, lengths 10 to 40
    expected = model.assign(X)
    assert not streaming.is_chunked(X)  # small arrays keep the in-memory path
    monkeypatch.setattr(streaming, "CHUNK_SIZE", 16)
    assert streaming.is_chunked(X) and not streaming.is_chunked(X[:16])
    assert not streaming.is_chunked(X[:, 0, 0])  # one series is not a batch of them
    np.testing.assert_array_equal(model.predict(X), expected.closest_cluster)
    lazy = _LazyArray(X)
    assert streaming.is_chunked(lazy)
    got = streaming.assign(model, lazy, chunk_size=16, progress=False)
    np.testing.assert_array_equal(got.closest_cluster, expected.closest_cluster)
    np.testing.assert_allclose(got.embedding, expected.embedding, atol=1e-5)
    assert max(lazy.reads) == 16 and sum(lazy.reads) == len(X)  # never read whole
    # a univariate array-like of shape (n, length) too
    uni_model_X = X[:, :1, :]
    flat = _LazyArray(np.ascontiguousarray(uni_model_X[:, 0, :]))
    chunks = list(streaming.open_series(flat).chunks(32))
    np.testing.assert_array_equal(np.concatenate([c.X for c in chunks]), uni_model_X)
    assert flat.reads == [32, 32, 6]


def test_fitting_a_memmap_is_fitting_the_file_it_maps_and_gives_the_in_memory_fit(data,
                                                                                  tmp_path,
                                                                                  monkeypatch):
    X = data[0]
    np.save(tmp_path / "x.npy", X)
    mapped = np.load(tmp_path / "x.npy", mmap_mode="r")
    calls = []
    fit = streaming.fit
    monkeypatch.setattr(streaming, "fit", lambda m, s, **k: calls.append(type(s)) or
                        fit(m, s, **k))
    a = CNNKMeans(clusters=3, **TINY).fit(X)
    b = CNNKMeans(clusters=3, **TINY).fit(mapped)
    assert calls == [np.memmap]  # the array in memory is fitted whole, the memmap streamed
    # fewer series than streaming.SAMPLE_SIZE: the sample is every series, in order
    np.testing.assert_array_equal(b.labels_, a.labels_)
    np.testing.assert_allclose(b.embeddings_, a.embeddings_, **CLOSE)
    np.testing.assert_array_equal(b.predict(X), a.predict(X))
    lazy = _LazyArray(X)
    c = CNNKMeans(clusters=3, **TINY).fit(lazy)
    np.testing.assert_array_equal(c.labels_, a.labels_)


def test_the_stages_alone_read_a_memmap_by_chunks_with_the_in_memory_results(model, data,
                                                                             tmp_path,
                                                                             monkeypatch):
    from tsc_toolkit.io import sources

    X = data[0][:, :, :]
    np.save(tmp_path / "x.npy", X)
    mapped = np.load(tmp_path / "x.npy", mmap_mode="r")
    encoder, view = model.encoder_stage_, model.kernel_view_
    expected_z = encoder.transform(X)
    expected_v = view.transform(encoder.scale(X))
    expected_f = model.cluster_features(X)
    monkeypatch.setattr(sources, "CHUNK_SIZE", 16)
    lazy = _LazyArray(X)
    np.testing.assert_allclose(encoder.transform(lazy), expected_z, **CLOSE)
    assert max(lazy.reads) <= 16 and sum(lazy.reads) == len(X)
    np.testing.assert_allclose(encoder.transform(mapped), expected_z, **CLOSE)
    np.testing.assert_allclose(model.cluster_features(mapped), expected_f, **CLOSE)
    scaled = np.lib.format.open_memmap(tmp_path / "s.npy", mode="w+", dtype=np.float32,
                                       shape=X.shape)
    scaled[:] = encoder.scale(X)
    np.testing.assert_allclose(view.transform(scaled), expected_v, **CLOSE)


def test_map_chunks_fills_one_output_from_chunks_of_any_array():
    from tsc_toolkit.io.sources import map_chunks

    X = np.arange(2 * 3 * 7, dtype=np.float32).reshape(7, 2, 3)
    sizes = []
    out = map_chunks(lambda c: sizes.append(len(c)) or c.sum(axis=(1, 2)), X, chunk_size=3)
    np.testing.assert_array_equal(out, X.sum(axis=(1, 2)))
    assert sizes == [3, 3, 1]
    assert map_chunks(lambda c: c.sum(axis=(1, 2)), X[:0], chunk_size=3).shape == (0,)


def test_embedding_a_memmap_holds_the_output_and_a_chunk_not_copies_of_the_input(tmp_path):
    # NumPy reports its allocations to tracemalloc: the whole-array path made copies of the
    # input (converted, scaled, masked and padded) before embedding, 77 MiB at its peak for
    # this 15 MiB file (5.2 times); a chunk at a time it peaks at 11 MiB.
    import tracemalloc

    n, length = 30_000, 128
    X, _ = make_series(n, length=length, missing_rate=0.02, random_state=0)
    np.save(tmp_path / "x.npy", X)
    del X
    mapped = np.load(tmp_path / "x.npy", mmap_mode="r")
    file_mib = mapped.nbytes / 2 ** 20  # about 15 MiB
    model = CNNKMeans(clusters=2, kernel_features=0, **TINY).fit(np.array(mapped[:200]))
    tracemalloc.start()
    try:
        z = model.transform(mapped)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert z.shape == (n, TINY["output_size"])
    assert peak / 2 ** 20 < file_mib, (peak / 2 ** 20, file_mib)
