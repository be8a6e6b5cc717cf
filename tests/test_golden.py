"""The estimator gives the labels, features and predictions it gave when the records in
``tests/data/golden`` were made (``tests/golden_cases.py``: seeded fits of univariate,
multivariate, varying-length and gapped series, and the bundled sample), and model files
written then load and predict the same.

The records were made on an AMD EPYC processor with torch's CPU build. Another processor may
round some convolutions differently; the float comparisons allow for that, the labels do not.
"""

import golden_cases
import numpy as np
import pytest

from tsc_toolkit import CNNKMeans

FLOAT = dict(rtol=1e-4, atol=1e-4)


def _records(name):
    with np.load(golden_cases.HERE / f"{name}.npz") as f:
        return {k: f[k] for k in f.files}


def _compare(got: dict, want: dict, keys) -> None:
    for key in keys:
        g, w = np.asarray(got[key]), want[key]
        assert g.shape == w.shape, key
        if w.dtype.kind in "iu":
            np.testing.assert_array_equal(g, w, err_msg=key)
        else:
            np.testing.assert_allclose(g, w, err_msg=key, **FLOAT)


@pytest.mark.parametrize("name", list(golden_cases.CASES))
def test_fit_reproduces_the_records(name):
    want = _records(name)
    model, X, X_test = golden_cases.fitted(name)
    got = golden_cases.results(model, X, X_test)
    got.update(golden_cases.refit_results(model))
    assert set(got) == set(want)
    _compare(got, want, sorted(want))


@pytest.mark.parametrize("name", list(golden_cases.CASES))
def test_saved_files_load_and_predict_the_same(name):
    want = _records(name)
    model = CNNKMeans.load(golden_cases.HERE / f"{name}-model")
    _, X_test = golden_cases.load_data(golden_cases.CASES[name][0])
    a = model.assign(X_test)
    got = {"predict": a.closest_cluster, "distance": a.distance_to_cluster,
           "transform": a.embedding, "labels": model.labels_, "features": model.features_,
           "embeddings": model.embeddings_, "cluster_centers": model.cluster_centers_,
           "feature_centers": model.feature_centers_}
    _compare(got, want, sorted(got))
