"""Seeded fits whose results are kept in ``tests/data/golden``, so that a change to how the
estimator is put together can be shown to give the same labels, features and predictions, and
that model files written before it still load and predict the same.

``python tests/golden_cases.py`` writes the records (run it only to record a deliberate change
of results, and say why in the commit).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent / "data" / "golden"
ROOT = Path(__file__).resolve().parents[1]

_SMALL = dict(blocks=2, filters=16, reduced_size=16, output_size=16, max_steps=20,
              kernel_features=400, random_state=3, device="cpu", verbose=0)

#: name -> (make_series options or "sample", CNNKMeans options)
CASES = {
    "univariate-spectral": (dict(n_series=60, n_clusters=3, length=40, random_state=0),
                            dict(clusters=3)),
    "multivariate-kmeans": (dict(n_series=60, n_clusters=3, length=30, n_channels=3,
                                 random_state=1),
                            dict(clusters=3, clustering="kmeans", n_init=3)),
    "varying-standard": (dict(n_series=70, n_clusters=2, length=50, short_fraction=0.4,
                              random_state=2),
                         dict(clusters=2, normalize="standard", n_neighbors=7,
                              graph_weights="unit")),
    "missing-embedding-only": (dict(n_series=60, n_clusters=3, length=40, missing_rate=0.1,
                                    random_state=3),
                               dict(clusters=3, clustering="kmeans", kernel_features=0,
                                    scaling="channel")),
    "sample-csv": ("sample", dict(clusters=3)),
}


def load_data(spec):
    """Training and test series of a case."""
    if spec == "sample":
        from tsc_toolkit import read_csv

        return (read_csv(ROOT / "data" / "train.csv"),
                read_csv(ROOT / "data" / "test.csv"))
    from tsc_toolkit.io.datasets import make_series

    X, _ = make_series(**spec)
    return X[: len(X) * 3 // 4], X[len(X) * 3 // 4:]


def fitted(name):
    from tsc_toolkit import CNNKMeans

    spec, options = CASES[name]
    X, X_test = load_data(spec)
    model = CNNKMeans(**{**_SMALL, **options}).fit(X)
    return model, X, X_test


def results(model, X, X_test) -> dict[str, np.ndarray]:
    """What a fitted model shows of itself and answers for new series."""
    from tsc_toolkit import scan_k, streaming

    out = {name: np.asarray(getattr(model, name + "_")) for name in
           ("labels", "features", "embeddings", "cluster_centers", "feature_centers")}
    out["inertia"] = np.asarray(model.inertia_)
    a = model.assign(X_test)
    out["predict"], out["distance"], out["transform"] = (np.asarray(v) for v in a)
    scan = scan_k(model, range(2, 5), metrics=["silhouette"], random_state=0)
    for k in scan.k_values:
        out[f"scan_labels_{k}"] = scan.labels[k]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "series.npy"
        np.save(path, X)
        streamed = streaming.fit(model.__class__(**model.get_params()), path, sample_size=40,
                                 random_state=0, progress=False)
        out["streamed_labels"] = streamed.labels_
        out["streamed_predict"] = streamed.predict(X_test)
    return out


def refit_results(model) -> dict[str, np.ndarray]:
    """Labels of ``refit_clusters`` at k + 1 (run last: it changes the model)."""
    k = len(model.cluster_centers_) + 1
    model.refit_clusters(k)
    return {"refit_labels": model.labels_, "refit_centers": model.cluster_centers_}


def record(names=None) -> None:
    HERE.mkdir(parents=True, exist_ok=True)
    for name in names or CASES:
        model, X, X_test = fitted(name)
        model.save(HERE / f"{name}-model", include_embeddings=True)
        out = results(model, X, X_test)
        out.update(refit_results(model))
        np.savez_compressed(HERE / f"{name}.npz", **out)
        print(name, {k: v.shape for k, v in out.items()})


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    record(sys.argv[1:] or None)
