"""The k benchmark counts each criterion's hits right and reads what the quality run saved."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.datasets import make_blobs

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `benchmarks/` sits next to the package, not inside it
    sys.path.insert(0, str(ROOT))

from benchmarks import choose_k  # noqa: E402
from benchmarks.quality import save_features  # noqa: E402
from tsc_toolkit.clustering.selection import METRICS  # noqa: E402


def test_summary_counts_exact_and_within_one_hits():
    rows = pd.DataFrame({"classes": [3, 4, 10, 2], "gap": [3, 5, 2, 2],
                         "silhouette": [2, 2, 9, 12]})
    table = choose_k.summary(rows, ["gap", "silhouette"]).set_index("criterion")
    assert table.loc["gap", "k = classes"] == 2 and table.loc["gap", "within one"] == 3
    assert table.loc["silhouette", "k = classes"] == 0
    assert table.loc["silhouette", "within one"] == 2
    assert table.loc["gap", "median abs. miss"] == 0.5


def test_scanned_range_holds_the_classes_and_at_least_eleven_ks():
    assert choose_k.k_range(3, 500) == range(2, 13)
    assert choose_k.k_range(37, 781) == range(2, 40)
    assert choose_k.k_range(4, 8) == range(2, 8)  # never k >= n


def test_scans_every_saved_set_in_panel_order_and_writes_the_report(tmp_path):
    feats = tmp_path / "features"
    for name, centers, seed in (("Zeta", 3, 0), ("GunPoint", 2, 1), ("ArrowHead", 4, 2)):
        X, y = make_blobs(n_samples=90, centers=centers, n_features=5, cluster_std=0.3,
                          random_state=seed)
        save_features(feats, name, 0, X, y)
    save_features(feats, "GunPoint", 1, np.zeros((4, 2)), np.arange(4))  # another seed: ignored
    out = tmp_path / "k.md"
    assert choose_k.main(["--features", str(feats), "--out", str(out), "--threads", "1"]) == 0
    rows = pd.read_csv(out.with_suffix(".csv"))
    assert rows["dataset"].tolist() == ["GunPoint", "ArrowHead", "Zeta"]
    assert rows["classes"].tolist() == [2, 4, 3]
    # by default each k is clustered as the estimator clusters, and silhouette recommends
    assert (rows["algorithm"] == "spectral").all()
    assert (rows["recommended"] == rows["silhouette"]).all()
    text = out.read_text()
    assert "## Per criterion" in text and "| recommended | 3 |" in text
    assert "spectral clustering of the kNN graph with local-scaling weights, the neighbour " \
           "count (5, 7 or 10) chosen for each k by the eigengap" in text
    assert "`selection.RECOMMENDED_SPECTRAL` = silhouette," in text
    assert "**" in text  # well-separated blobs: some criterion finds the classes, shown bold
    again = tmp_path / "again.md"
    assert choose_k.main(["--render", str(out.with_suffix(".csv")), "--out", str(again)]) == 0
    assert again.read_text() == text  # the report can be rewritten from the saved table
    # ... and names the machine and versions it ran with, not those of the machine rewriting it
    saved = pd.read_csv(out.with_suffix(".csv")).assign(machine="Elsewhere CPU, 64 cores",
                                                         versions="numpy 0.1")
    saved.to_csv(tmp_path / "elsewhere.csv", index=False)
    assert choose_k.main(["--render", str(tmp_path / "elsewhere.csv"), "--out", str(again)]) == 0
    assert "Machine: Elsewhere CPU, 64 cores; load average" in again.read_text()
    assert "Versions: numpy 0.1. Run time" in again.read_text()

    kmeans = tmp_path / "k_kmeans.md"
    assert choose_k.main(["--features", str(feats), "--out", str(kmeans), "--threads", "1",
                          "--algorithm", "lloyd"]) == 0
    rows = pd.read_csv(kmeans.with_suffix(".csv"))
    assert (rows["recommended"] == rows["calinski_harabasz"]).all()
    assert "clustered by K-Means" in kmeans.read_text()
    # a table saved before the option existed is rendered as the K-Means scan it was
    old = tmp_path / "old.csv"
    rows.drop(columns="algorithm").to_csv(old, index=False)
    assert choose_k.main(["--render", str(old), "--out", str(tmp_path / "old.md")]) == 0
    assert (tmp_path / "old.md").read_text() == kmeans.read_text()

    # criteria left out are named, not shown as empty columns
    some = tmp_path / "k_some.md"
    assert choose_k.main(["--features", str(feats), "--out", str(some), "--threads", "1",
                          "--metrics", "silhouette", "calinski_harabasz"]) == 0
    text = some.read_text()
    assert "Not computed in this run: inertia, davies_bouldin, gap (`--metrics`)." in text
    assert "| gap |" not in text and "| silhouette | 3 |" in text
    again = tmp_path / "some_again.md"
    assert choose_k.main(["--render", str(some.with_suffix(".csv")), "--out", str(again)]) == 0
    assert again.read_text() == text


def test_clustering_stages_recluster_every_saved_fit_and_compare_with_the_default(tmp_path):
    from benchmarks import clustering_stages

    feats = tmp_path / "features"
    for seed in (0, 1):
        X, y = make_blobs(n_samples=60, centers=3, n_features=20, cluster_std=0.5,
                          random_state=seed)
        save_features(feats, "GunPoint", seed, X, y, embedding_width=16)
    out = tmp_path / "stages.md"
    assert clustering_stages.main(["--features", str(feats), "--out", str(out), "--threads",
                                   "1", "--stages",
                                   f"{clustering_stages.DEFAULT},spectral10,kmeans"]) == 0
    runs = pd.read_csv(out.with_suffix(".csv"))
    assert len(runs) == 2 * 3 and set(runs.seed) == {0, 1}
    summary = clustering_stages.tables(runs)["summary"].set_index("stage")
    assert summary.loc[clustering_stages.DEFAULT, "vs default"] == 0
    assert summary.loc["kmeans", "panel mean NMI"] > 0.9  # three well-separated blobs
    assert "## Groups" in out.read_text()


def test_kernel_views_default_reproduces_the_fit_and_the_others_change_only_the_view(tmp_path):
    from sklearn.metrics import normalized_mutual_info_score

    from benchmarks import kernel_views, panel
    from benchmarks.quality import saved_features
    from tsc_toolkit import CNNKMeans

    X, y = panel.load("GunPoint")
    X, y = X[::4], y[::4]  # 50 series: the same path as the full set, quickly
    feats = tmp_path / "features"
    model = CNNKMeans(clusters=2, blocks=1, filters=4, reduced_size=4, output_size=320,
                      max_steps=2, random_state=3, device="cpu").fit(X)
    save_features(feats, "GunPoint", 3, model.features_, y)
    rows = kernel_views.run(feats, ("default", "20 components"), log=lambda *_: None,
                            data={"GunPoint": X})
    assert [name for name, _, _ in saved_features(feats)] == ["GunPoint"]
    by_view = rows.set_index("view").nmi
    assert by_view["default"] == normalized_mutual_info_score(y, model.labels_)
    assert rows.seed.tolist() == [3, 3]
    table = kernel_views.tables(rows)["summary"].set_index("view")
    assert table.loc["default", "vs default"] == 0


def test_every_clustering_stage_labels_every_series_into_at_most_k_groups():
    from benchmarks import clustering_stages

    clustering_stages.set_embedding_width(16)  # the first 16 columns are the "embedding"
    X, y = make_blobs(n_samples=45, centers=3, n_features=24, cluster_std=0.5, random_state=0)
    X = X.astype(np.float32)
    for name, stage in clustering_stages.STAGES.items():
        labels = np.asarray(stage(X, 3, 0))
        assert labels.shape == (45,) and len(set(labels.tolist())) <= 3, name
    # the eigengap is large where the graph falls into k pieces, and small at a wrong k
    from tsc_toolkit.clustering.graph_clustering import eigengap, neighbour_graph

    A = neighbour_graph(X, 10, "local-scaling")
    assert eigengap(A, 3) > eigengap(A, 2)


def test_report_on_held_out_sets_is_titled_as_an_independent_check(tmp_path):
    rows = pd.DataFrame({"dataset": ["CBF", "Coffee"], "group": ["univariate"] * 2,
                         "series": [30, 28], "classes": [3, 2], "k scanned": ["2-12"] * 2,
                         **{m: [3, 2] for m in (*METRICS, "recommended")},
                         "seconds": [0.1, 0.1]})
    held = choose_k.render(rows, "cmd", "0", "0", 1.0)
    assert held.startswith("# Choosing k on the held-out sets") and "For every held-out set" in held
    panel = choose_k.render(rows.assign(dataset=["GunPoint", "Coffee"]), "cmd", "0", "0", 1.0)
    assert panel.startswith("# Choosing k on the development panel")
