"""The sanity suite on a few small cases: on easy data the default finds what K-Means finds.

`python -m benchmarks.sanity` runs the whole grid (docs/benchmarks_sanity.md); these are its
fast cases, at the defaults of a user's first fit (full-size encoder, default training budget):
the bundled sample files at three seeds (the data every user sees first), two `make_series`
sets, and the sample's test series labelled by `predict`.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `benchmarks/` sits next to the package, not inside it
    sys.path.insert(0, str(ROOT))

from benchmarks import sanity  # noqa: E402

CASES = [("sample", 0), ("sample", 1), ("sample", 2), ("n50-k2", 0), ("n300-k4", 0)]


@pytest.fixture(scope="module")
def fits():
    return {(name, seed): sanity.fit_case(name, seed, scan=False) for name, seed in CASES}


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES, ids=[f"{n}-seed{s}" for n, s in CASES])
def test_default_finds_the_clusters_wherever_kmeans_on_its_features_does(fits, case):
    row = fits[case]
    assert row["kmeans"] >= sanity.FOUND, f"K-Means no longer finds {case}: {row}"
    assert row["default"] >= sanity.FOUND, f"default lost {case} that K-Means finds: {row}"
    assert row["passes"]


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_sample_files_test_series_are_predicted_right(fits, seed):
    row = fits[("sample", seed)]
    assert row["default"] >= 0.9 and row["test NMI"] >= 0.9, row


def test_rule_and_report_count_only_fits_where_kmeans_found_the_clusters(tmp_path):
    runs = pd.DataFrame([
        {"case": "a", "seed": 0, "n": 50, "k": 2, "default": 1.0, "kmeans": 1.0,
         "seconds": 1.0, "recommended k": 2},
        {"case": "a", "seed": 1, "n": 50, "k": 2, "default": 0.3, "kmeans": 0.99,
         "seconds": 1.0, "recommended k": 4},
        {"case": "b", "seed": 0, "n": 80, "k": 3, "default": 0.4, "kmeans": 0.5,
         "seconds": 2.0, "recommended k": 3},
    ])
    runs["passes"] = (runs.kmeans < sanity.FOUND) | (runs["default"] >= sanity.FOUND)
    assert sanity.failures(runs)[["case", "seed"]].values.tolist() == [["a", 1]]
    table = sanity.summary(runs).set_index("case")
    assert table.loc["a", "pass"] == "1 of 2" and table.loc["b", "pass"] == "1 of 1"
    assert table.loc["a", "k right"] == "1 of 2" and table.loc["b", "k right"] == "1 of 1"
    text = sanity.report(runs, "python -m benchmarks.sanity", ("0.1", "0.2"), 3.0)
    assert "**1 of 2 fits where K-Means" in text and "(1 fail the rule)" in text
    assert "true k on 2 of 3 fits" in text and "## Fits that fail the rule" in text


def test_cases_are_what_the_issue_asks_for():
    specs = [s for s in sanity.CASES.values() if s != "sample"]
    sizes = [s["n_series"] for s in specs]
    ks = [s["n_clusters"] for s in specs]
    assert min(sizes) == 50 and max(sizes) == 2000 and min(ks) == 2 and max(ks) == 10
    assert any(s.get("missing_rate") for s in specs) and any(s.get("short_fraction")
                                                             for s in specs)
    assert any(s.get("n_channels", 1) > 1 for s in specs)
    assert set(sanity.FAST) <= set(sanity.CASES)
    with pytest.raises(SystemExit):
        sanity.main(["--cases", "nonsense"])


def test_stages_compared_on_saved_sanity_fits_are_titled_as_the_sanity_suite(tmp_path):
    import numpy as np
    from sklearn.datasets import make_blobs

    from benchmarks import clustering_stages
    from benchmarks.quality import save_features

    for seed in (0, 1):
        X, y = make_blobs(n_samples=40, centers=2, n_features=20, cluster_std=0.5,
                          random_state=seed)
        save_features(tmp_path / "features", "n50-k2", seed, X.astype(np.float32), y, 16)
    out = tmp_path / "stages.md"
    assert clustering_stages.main(["--features", str(tmp_path / "features"), "--out", str(out),
                                   "--threads", "1", "--stages", "kmeans"]) == 0
    assert out.read_text().startswith("# Clustering stages on the saved features of the "
                                      "sanity suite's easy data")
