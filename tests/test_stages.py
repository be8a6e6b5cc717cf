"""CNNKMeans is a composition of three fitted stages, each usable alone: the T-Loss encoder
(TLossEncoder), the random-kernel view (RandomKernelFeatures) and the clustering stage
(FeatureClusterer)."""

import ast
import pickle
from pathlib import Path

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.cluster import KMeans
from sklearn.pipeline import Pipeline

from tsc_toolkit import CNNKMeans
from tsc_toolkit.clustering import FeatureClusterer
from tsc_toolkit.embedding import TLossEncoder
from tsc_toolkit.io.datasets import make_series
from tsc_toolkit.persistence import ModelFormatError
from tsc_toolkit.views.random_kernels import RandomKernelFeatures

SMALL = dict(blocks=2, filters=12, reduced_size=12, output_size=8, max_steps=10, batch_size=8,
             random_state=0, device="cpu")
PACKAGE = Path(__file__).resolve().parents[1] / "tsc_toolkit"


@pytest.fixture(scope="module")
def data():
    X, y = make_series(48, n_clusters=3, length=36, missing_rate=0.05, short_fraction=0.3,
                       random_state=0)
    return X, y


@pytest.fixture(scope="module")
def model(data):
    return CNNKMeans(clusters=3, kernel_features=300, **SMALL).fit(data[0])


def test_the_stages_built_by_hand_give_the_estimators_labels(data, model):
    from tsc_toolkit.cnn_kmeans import fit_seed

    X = data[0]
    seed = fit_seed(model.random_state)
    encoder = TLossEncoder(**model.encoder_params(seed))
    z = encoder.fit_transform(X)
    view = RandomKernelFeatures(300, random_state=seed).fit_transform(encoder.scale(X))
    features = np.hstack([z, view]).astype(np.float32)
    stage = FeatureClusterer(3, random_state=seed).fit(features)
    np.testing.assert_array_equal(z, model.embeddings_)
    np.testing.assert_array_equal(features, model.features_)
    np.testing.assert_array_equal(stage.labels_, model.labels_)


def test_the_estimators_stages_answer_as_the_estimator(data, model):
    X = data[0][:10]
    np.testing.assert_array_equal(model.encoder_stage_.transform(X), model.transform(X))
    np.testing.assert_array_equal(model.clusterer_.predict(model.cluster_features(X)),
                                  model.predict(X))
    assert model.encoder_ is model.encoder_stage_.module_
    assert model.feature_centers_ is model.clusterer_.cluster_centers_
    assert model.n_neighbors_ == model.clusterer_.n_neighbors_


def test_the_encoder_alone_in_a_scikit_learn_pipeline(data):
    X, y = data
    pipe = Pipeline([("embed", TLossEncoder(**SMALL)),
                     ("cluster", KMeans(3, n_init=2, random_state=0))])
    labels = pipe.fit_predict(X)
    assert labels.shape == (len(X),)
    assert clone(pipe).get_params()["embed__output_size"] == 8
    enc = pipe.named_steps["embed"]
    assert enc.n_steps_ == 10 and len(enc.history_) >= 1
    np.testing.assert_array_equal(pipe.named_steps["cluster"].labels_,
                                  pipe.predict(X))


def test_the_encoder_saves_and_loads_on_its_own(data, tmp_path):
    X = data[0]
    enc = TLossEncoder(**{**SMALL, "normalize": "standard"}).fit(X)
    path = enc.save(tmp_path / "encoder")
    back = TLossEncoder.load(path)
    np.testing.assert_array_equal(back.transform(X), enc.transform(X))
    assert back.get_params() == enc.get_params()
    with pytest.raises(ModelFormatError):
        CNNKMeans.load(path)  # an encoder is not a whole model


def test_swapping_the_clustering_stage(data, model):
    import copy

    X = data[0]
    swapped = copy.copy(model)
    stage = FeatureClusterer(4, clustering="kmeans", n_init=2, random_state=0)
    swapped.set_clusterer(stage.fit(model.features_))
    assert swapped.n_clusters_ == 4 and swapped.cluster_centers_.shape == (4, 8)
    np.testing.assert_array_equal(swapped.labels_, stage.labels_)
    np.testing.assert_array_equal(swapped.predict(X), stage.predict(model.cluster_features(X)))
    assert model.n_clusters_ == 3  # a shallow copy: the original keeps its own stage


def test_the_clustering_stage_alone(tmp_path):
    rng = np.random.default_rng(0)
    F = np.vstack([rng.normal(c, 0.1, (30, 3)) for c in (0.0, 2.0, 4.0)]).astype(np.float32)
    for clustering in ("spectral", "kmeans"):
        stage = FeatureClusterer(3, clustering=clustering, random_state=0).fit(F)
        assert sorted(np.bincount(stage.labels_)) == [30, 30, 30]
        np.testing.assert_array_equal(stage.predict(F), stage.labels_)
        assert stage.cluster_centers_.dtype == np.float32 and stage.inertia_ > 0
    with pytest.raises(ValueError, match="more than the 90 training points"):
        FeatureClusterer(91).fit(F)
    # the web-scale variant clusters a memory-mapped file
    np.save(tmp_path / "f.npy", F)
    stage = FeatureClusterer(3, clustering="kmeans", algorithm="webscale", random_state=0,
                             device="cpu").fit(np.load(tmp_path / "f.npy", mmap_mode="r"))
    assert sorted(np.bincount(stage.labels_)) == [30, 30, 30]


def test_methods_do_not_rewrite_parameters(data, model, tmp_path):
    import copy

    X = data[0]
    m = copy.deepcopy(model)
    before = m.get_params()
    m.refit_clusters(2)
    assert m.get_params() == before and m.n_clusters_ == 2
    loaded = CNNKMeans.load(model.save(tmp_path / "m"), device="cpu")
    assert loaded.get_params()["device"] == "cpu"
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))


def _module_imports(path: Path) -> set[str]:
    """The package modules ``path`` imports, at any depth of its code."""
    package = "tsc_toolkit"
    here = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if here.endswith(".__init__"):
        here = here[: -len(".__init__")]
        base = here.split(".")
    else:
        base = here.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                parts = base[: len(base) - node.level + 1]
                target = ".".join(parts + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if not target.startswith(package):
                continue
            found.add(target)
            found.update(f"{target}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith(package))
    return {m for m in found if _is_module(m) and m != here}


def _is_module(name: str) -> bool:
    path = PACKAGE.parent.joinpath(*name.split("."))
    return path.with_suffix(".py").exists() or (path / "__init__.py").exists()


def test_no_module_imports_one_that_imports_it_back():
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        name = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        name = name[: -len(".__init__")] if name.endswith(".__init__") else name
        modules[name] = _module_imports(path)
    # a package imports its own modules to export them: only module-to-module cycles count
    cycles = []
    for a, deps in modules.items():
        for b in deps:
            if a in modules.get(b, ()) and not (a.startswith(b + ".") or b.startswith(a + ".")):
                if (b, a) not in cycles:
                    cycles.append((a, b))
    assert not cycles, cycles


def test_the_view_and_the_clustering_stage_save_and_load_on_their_own(data, model, tmp_path):
    X = data[0][:12]
    S = model.encoder_stage_.scale(X)
    view = RandomKernelFeatures.load(model.kernel_view_.save(tmp_path / "view"))
    np.testing.assert_array_equal(view.transform(S), model.kernel_view_.transform(S))
    assert view.get_params() == model.kernel_view_.get_params()
    for stage in (model.clusterer_,
                  FeatureClusterer(3, clustering="kmeans", random_state=0).fit(model.features_)):
        back = FeatureClusterer.load(stage.save(tmp_path / stage.clustering))
        F = model.cluster_features(X)
        np.testing.assert_array_equal(back.predict(F), stage.predict(F))
        assert back.get_params() == stage.get_params() and back.inertia_ == stage.inertia_
    with pytest.raises(ModelFormatError):
        FeatureClusterer.load(tmp_path / "view")  # a view is not a clustering stage


def test_the_view_is_a_scikit_learn_transformer(data):
    X = data[0]
    view = RandomKernelFeatures(400, 6, random_state=0)
    assert clone(view).get_params() == view.get_params()
    Z = view.fit_transform(X)
    assert Z.shape == (len(X), 6)
    np.testing.assert_allclose(view.transform(X), Z, rtol=1e-5, atol=1e-6)


def test_the_module_paths_of_before_the_layout_still_import_the_same_modules():
    import importlib
    import subprocess
    import sys

    from tsc_toolkit._moved import MOVED

    for old, new in MOVED.items():
        assert importlib.import_module(old) is importlib.import_module(new), old
        assert importlib.import_module(new).__spec__.name == new
    # in a fresh process, an old path imported first (as old code does)
    code = ("from tsc_toolkit.kmeans import WebScaleKMeans; import tsc_toolkit.graph_clustering "
            "as g; import tsc_toolkit.clustering.graph_clustering as h; "
            "assert g is h and WebScaleKMeans.__module__ == 'tsc_toolkit.clustering.kmeans'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_the_folders_name_the_stages():
    folders = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists()}
    assert {"io", "embedding", "views", "clustering", "plots", "widgets",
            "sagemaker"} <= folders
    loose = {p.stem for p in PACKAGE.glob("*.py")}
    assert not loose & {old.rsplit(".", 1)[1] for old in __import__(
        "tsc_toolkit._moved", fromlist=["MOVED"]).MOVED}


def test_pretraining_is_fitting_the_encoder_stage_on_a_corpus(tmp_path):
    from tsc_toolkit.cli import main
    from tsc_toolkit.embedding.tloss import TLossEncoder

    arch = dict(blocks=1, filters=6, reduced_size=6, output_size=4)
    corpus = []
    for seed, length in ((0, 90), (1, 40)):
        path = tmp_path / f"set{seed}.npy"
        np.save(path, make_series(30, length=length, random_state=seed)[0])
        corpus.append(str(path))
    out = tmp_path / "encoder"
    # the command a user runs on a tiny corpus (the architecture of the default model is the
    # command's; here a small one through the function, the same code)
    from tsc_toolkit.embedding.pretrain import pretrain

    enc = pretrain(corpus, out, steps=4, n_windows=24, window_length=64, device="cpu", **arch)
    assert enc.n_steps_ == 4 and enc.n_channels_ == 1
    # a callback sees each pass over the windows and can save the encoder part way
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from benchmarks.pretrain_corpus import Checkpoints

    seen = []
    part = pretrain(corpus, tmp_path / "part", steps=6, n_windows=24, window_length=64,
                    device="cpu", batch_size=8,
                    callbacks=[lambda e, r: seen.append(e.n_steps_),
                               Checkpoints(tmp_path / "part", [2, 3, 6])], **arch)
    assert seen == [3, 6]  # 24 windows in batches of 8: 3 steps a pass
    # the pass that reached 2 steps reached 3: both marks hold that encoder, and saving the
    # final encoder in its folder leaves them there
    assert [TLossEncoder.load(tmp_path / f"part-step-{n}").n_steps_ for n in (2, 3)] == [3, 3]
    X0, _ = make_series(10, length=50, random_state=6)
    np.testing.assert_array_equal(TLossEncoder.load(tmp_path / "part-step-6").transform(X0),
                                  part.transform(X0))
    np.testing.assert_array_equal(TLossEncoder.load(tmp_path / "part").transform(X0),
                                  part.transform(X0))
    loaded = TLossEncoder.load(out)
    X, _ = make_series(20, length=50, random_state=5)
    np.testing.assert_array_equal(loaded.transform(X), enc.transform(X))
    # a model started from it with no training of its own embeds as the pretrained encoder
    model = CNNKMeans(clusters=2, epochs=0, kernel_features=0, pretrained=str(out),
                      device="cpu", random_state=0, **arch).fit(X)
    assert model.n_steps_ == 0 and model.encoder_stage_.pretrained_from_ == str(out)
    np.testing.assert_allclose(model.embeddings_, enc.transform(X), rtol=1e-6, atol=1e-6)
    # from pretrained weights the automatic budget is no training; max_steps still trains
    assert TLossEncoder(pretrained=str(out), device="cpu", **arch).fit(X).n_steps_ == 0
    assert TLossEncoder(pretrained=str(out), max_steps=3, device="cpu", **arch).fit(X).n_steps_ == 3
    assert TLossEncoder(device="cpu", **arch).fit(X[:12]).n_steps_ == 100  # from random weights
    # several channels, joined: the first layer is shared out, so equal channels embed as one
    X2 = np.repeat(X, 2, axis=1)
    wide = TLossEncoder(epochs=0, pretrained=str(out), channel_mode="joint", device="cpu",
                        **arch).fit(X2)
    assert not wide.separate_channels_
    np.testing.assert_allclose(wide.transform(X2), enc.transform(X), rtol=1e-5, atol=1e-5)
    # (with 3 channels the first block of this small network has no 1x1 convolution to
    # share out: it still starts from the pretrained weights, without that equality)
    assert TLossEncoder(epochs=0, pretrained=str(out), channel_mode="joint", device="cpu",
                        **arch).fit(np.repeat(X, 3, axis=1)).pretrained_from_ == str(out)
    # another architecture is refused by name, and "auto" falls back to random weights
    with pytest.raises(ValueError, match="another architecture"):
        TLossEncoder(epochs=0, pretrained=str(out), device="cpu",
                     **{**arch, "output_size": 5}).fit(X)
    auto = TLossEncoder(epochs=0, pretrained="auto", device="cpu", **arch).fit(X)
    assert auto.pretrained_from_ is None
    # the command line
    assert main(["pretrain", *corpus, "--output", str(tmp_path / "cli"), "--steps", "2",
                 "--windows", "10", "--window-length", "32", "--device", "cpu",
                 "--quiet"]) == 0
    assert TLossEncoder.load(tmp_path / "cli").n_steps_ == 2
    assert main(["pretrain", str(tmp_path / "missing.npy"), "--output",
                 str(tmp_path / "x")]) == 2


def test_univariate_pretrained_weights_embed_each_channel_by_itself(tmp_path):
    from tsc_toolkit.embedding.pretrain import pretrain

    arch = dict(blocks=1, filters=6, reduced_size=6, output_size=4)
    corpus = tmp_path / "corpus.npy"
    np.save(corpus, make_series(30, length=60, random_state=0)[0])
    uni = pretrain([str(corpus)], tmp_path / "encoder", steps=3, n_windows=20,
                   window_length=40, device="cpu", **arch)
    X, _ = make_series(12, length=40, random_state=1)
    W, _ = make_series(12, length=40, random_state=2)
    X3 = np.concatenate([X, W, X], axis=1)
    X3[0, 1, 5:9] = np.nan  # a gap in one channel only
    # "auto" from univariate weights: each channel embedded as the univariate encoder does,
    # side by side, divided by the square root of the number of channels
    enc = TLossEncoder(epochs=0, pretrained=str(tmp_path / "encoder"), device="cpu",
                       **arch).fit(X3)
    assert enc.separate_channels_ and enc.n_channels_ == 3
    Z = enc.transform(X3)
    assert Z.shape == (12, 12) and Z.dtype == np.float32
    parts = [uni.transform(X3[:, [c]]) for c in range(3)]
    np.testing.assert_allclose(Z, np.hstack(parts) / np.sqrt(3), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(Z, axis=1), 1, rtol=1e-5)
    # a channel with nothing observed still embeds (finite), the others unchanged
    E = X3.copy()
    E[1, 2] = np.nan
    ZE = enc.transform(E)
    assert np.isfinite(ZE).all()
    np.testing.assert_allclose(ZE[1, :8], Z[1, :8], rtol=1e-5, atol=1e-6)
    # fine-tuning trains the one univariate network on every channel
    tuned = TLossEncoder(max_steps=2, pretrained=str(tmp_path / "encoder"), device="cpu",
                         **arch).fit(X3)
    assert tuned.n_steps_ == 2 and tuned.transform(X3).shape == (12, 12)
    # saved and loaded, pickled, the same embeddings; and the saved separate encoder starts
    # another of any channel count
    enc.save(tmp_path / "separate")
    loaded = TLossEncoder.load(tmp_path / "separate")
    assert loaded.separate_channels_
    np.testing.assert_array_equal(loaded.transform(X3), Z)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(enc)).transform(X3), Z)
    again = TLossEncoder(epochs=0, pretrained=str(tmp_path / "separate"), device="cpu",
                         **arch).fit(X3[:, :2])
    np.testing.assert_allclose(again.transform(X3[:, :2]),
                               np.hstack(parts[:2]) / np.sqrt(2), rtol=1e-5, atol=1e-6)
    # "joint" keeps the shared-out first layer; univariate series are the same either way
    assert TLossEncoder(epochs=0, pretrained=str(tmp_path / "encoder"), channel_mode="joint",
                        device="cpu", **arch).fit(X3).transform(X3).shape == (12, 4)
    sep1 = TLossEncoder(epochs=0, pretrained=str(tmp_path / "encoder"),
                        channel_mode="separate", device="cpu", **arch).fit(X)
    assert not sep1.separate_channels_
    np.testing.assert_array_equal(sep1.transform(X), uni.transform(X))
    # from random weights "auto" joins channels (fg-research's network); "separate" is asked
    assert not TLossEncoder(max_steps=1, device="cpu", **arch).fit(X3).separate_channels_
    model = CNNKMeans(clusters=2, channel_mode="separate", max_steps=2, kernel_features=50,
                      random_state=0, device="cpu", **arch).fit(X3)
    assert model.embeddings_.shape == (12, 12) and model.features_.shape[1] > 12
    model.save(tmp_path / "model")
    back = CNNKMeans.load(tmp_path / "model")
    np.testing.assert_array_equal(back.predict(X3), model.predict(X3))
    # weights of several channels cannot start a separate (univariate) network
    wide = TLossEncoder(max_steps=1, device="cpu", **arch).fit(X3)
    wide.save(tmp_path / "wide")
    with pytest.raises(ValueError, match="embedded separately"):
        TLossEncoder(epochs=0, pretrained=str(tmp_path / "wide"), channel_mode="separate",
                     device="cpu", **arch).fit(X3)


def test_the_light_modules_of_the_stage_folders_do_not_import_torch():
    import subprocess
    import sys

    # the command line's parser, the hyperparameters and scaling load without torch
    code = ("import sys, tsc_toolkit.cli, tsc_toolkit.hyperparameters, "
            "tsc_toolkit.embedding.scaling, tsc_toolkit.clustering.selection; "
            "assert 'torch' not in sys.modules, 'torch was imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_a_model_whose_clustered_features_are_its_embeddings_saves_and_loads(data, tmp_path):
    # K-Means on the embedding alone: the centers and features are the embedding's own arrays,
    # which safetensors refuses to write twice unless they are copied
    X = data[0]
    model = CNNKMeans(clusters=3, clustering="kmeans", kernel_features=0, n_init=2,
                      **SMALL).fit(X)
    assert model.features_ is model.embeddings_
    loaded = CNNKMeans.load(model.save(tmp_path / "m"))
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    np.testing.assert_array_equal(loaded.cluster_centers_, model.cluster_centers_)
