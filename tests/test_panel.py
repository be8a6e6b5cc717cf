"""The development panel's reader and gap injection (the data come from the bench extra)."""

import numpy as np
import pytest

from benchmarks import panel


def test_reads_a_ucr_tsv_with_its_labels_and_nan_padding(tmp_path):
    path = tmp_path / "Toy_TRAIN.tsv"
    path.write_text("1\t0.5\t1.5\t2.5\n2\t3.0\t4.0\tNaN\n1\t1\t2\n")
    X, labels = panel.read_ucr_tsv(path)
    assert X.shape == (3, 1, 3) and X.dtype == np.float32
    assert labels.tolist() == ["1", "2", "1"]
    np.testing.assert_array_equal(np.isnan(X[:, 0]), [[0, 0, 0], [0, 0, 1], [0, 0, 1]])


@pytest.mark.parametrize("rate", panel.MISSING_RATES)
def test_gaps_hit_their_rate_and_keep_every_series_whole(rate):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 1, 120)).astype(np.float32)
    X[:10, :, 100:] = np.nan  # shorter series keep their length
    gapped = panel.inject_gaps(X, rate, seed=1)
    observed = ~np.isnan(X)
    lost = np.isnan(gapped) & observed
    assert lost.sum() / observed.sum() == pytest.approx(rate, abs=0.01)
    lengths = lambda A: (~np.isnan(A).all(axis=1)).cumsum(axis=1).argmax(axis=1)  # noqa: E731
    np.testing.assert_array_equal(lengths(gapped), lengths(X))
    np.testing.assert_array_equal(panel.inject_gaps(X, rate, seed=1), gapped)


def test_panel_has_its_groups():
    groups = {panel.group(name) for name in panel.PANEL}
    assert groups == {"univariate", "multivariate", "varying length", "missing values"}
    assert len(panel.PANEL) == 31 and set(panel.FAST) <= set(panel.PANEL)


def test_held_out_sets_are_apart_from_the_panel_and_load_like_it(tmp_path, monkeypatch):
    assert not set(panel.HOLDOUT) & set(panel.PANEL) and len(panel.HOLDOUT) == 18
    assert {panel.group(name) for name in panel.HOLDOUT} == {
        "univariate", "varying length", "missing values"}
    # the same reader as the panel's: train and test merged, labels renumbered, padding trimmed
    folder = tmp_path / "DodgerLoopDay"
    folder.mkdir()
    (folder / "DodgerLoopDay_TRAIN.tsv").write_text("3\t1\tNaN\t3\tNaN\n5\t1\t2\t3\tNaN\n")
    (folder / "DodgerLoopDay_TEST.tsv").write_text("5\t4\t5\t6\n")
    seen = []
    monkeypatch.setattr(panel, "_tsv_folder", lambda name: seen.append(name) or folder)
    X, y = panel.load("DodgerLoopDay")
    assert seen == ["DodgerLoopDay"] and X.shape == (3, 1, 3) and X.dtype == np.float32
    assert y.tolist() == [0, 1, 1] and np.isnan(X[0, 0, 1])  # a gap inside stays NaN
    with pytest.raises(KeyError, match="held out"):
        panel.load("NoSuchSet")


def test_the_run_command_expands_holdout(monkeypatch):
    from benchmarks import run

    seen = {}
    monkeypatch.setattr(run, "run_sections", lambda cfg, keys, **kw: seen.update(
        datasets=cfg.datasets, keys=keys))
    monkeypatch.setattr(run, "render", lambda *a, **k: "")
    run.main(["--only", "quality", "--datasets", "GunPoint,holdout", "--out",
              "/dev/null", "--figures", "none", "--summary", "/dev/null"])
    assert seen["datasets"] == ("GunPoint", *panel.HOLDOUT) and seen["keys"] == ["quality"]
