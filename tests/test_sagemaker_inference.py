"""The inference handlers: every request and response format, many lines, and bad requests."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tsc_toolkit.sagemaker.container import inference
from tsc_toolkit.sagemaker.container.inference import (
    RequestError,
    SeriesRequest,
    input_fn,
    invoke,
    model_fn,
    output_fn,
    predict_fn,
)


@pytest.fixture(scope="module")
def model(tiny_model_dir):
    return model_fn(tiny_model_dir())


@pytest.fixture(scope="module")
def model2(tiny_model_dir):
    return model_fn(tiny_model_dir(channels=2))


SERIES = [[0.1, 0.5, 0.2, 0.9, 0.4, 0.3], [1.0, 2.0, 3.0, 2.0, 1.0], [3.0, None, 1.0, 0.5]]


def csv_body(series=SERIES):
    return "".join(",".join("" if v is None else str(v) for v in s) + "\n" for s in series)


def expected(model, series=SERIES):
    X = np.full((len(series), 1, max(map(len, series))), np.nan, dtype=np.float32)
    for i, s in enumerate(series):
        X[i, 0, : len(s)] = [np.nan if v is None else v for v in s]
    return model.assign(X)


def test_model_fn_loads_saved_folder_without_pickle(model):
    assert model.n_channels_ == 1
    assert model.cluster_centers_.shape == (2, 4)


@pytest.mark.parametrize("ctype", ["text/csv", "text/csv; charset=utf-8", "application/json",
                                   "application/jsonlines"])
@pytest.mark.parametrize("accept", ["text/csv", "application/json", "application/jsonlines"])
def test_every_input_format_gives_every_output_format(model, ctype, accept):
    if ctype.startswith("text/csv"):
        body = csv_body()
    elif ctype == "application/json":
        body = json.dumps({"instances": SERIES})
    else:
        body = "".join(json.dumps({"series": s}) + "\n" for s in SERIES)
    out, out_type = invoke(model, body.encode(), ctype, accept)
    assert out_type == accept
    ref = expected(model)
    if accept == "text/csv":
        rows = [list(map(float, line.split(","))) for line in out.strip().split("\n")]
        assert [r[0] for r in rows] == [float(c) for c in ref.closest_cluster]
        np.testing.assert_allclose([r[1:] for r in rows], ref.embedding, rtol=1e-5, atol=1e-6)
    else:
        if accept == "application/json":
            preds = json.loads(out)["predictions"]
        else:
            assert out.endswith("\n")
            preds = [json.loads(line) for line in out.splitlines()]
        assert [p["closest_cluster"] for p in preds] == ref.closest_cluster.tolist()
        np.testing.assert_allclose([p["distance_to_cluster"] for p in preds],
                                   ref.distance_to_cluster, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose([p["embedding"] for p in preds], ref.embedding,
                                   rtol=1e-5, atol=1e-6)


def test_n_lines_in_give_n_lines_out(model, rng):
    series = [list(rng.normal(size=int(n)).round(3)) for n in rng.integers(3, 30, size=25)]
    for ctype, body in [("text/csv", csv_body(series)),
                        ("application/jsonlines",
                         "".join(json.dumps(s) + "\n" for s in series))]:
        for accept in ("text/csv", "application/jsonlines"):
            out, _ = invoke(model, body, ctype, accept)
            assert len(out.splitlines()) == 25
    out, _ = invoke(model, json.dumps(series), "application/json", "application/json")
    assert len(json.loads(out)["predictions"]) == 25


def test_accept_defaults_to_the_request_format_or_the_env_var(model, monkeypatch):
    assert invoke(model, csv_body(), "text/csv", None)[1] == "text/csv"
    assert invoke(model, csv_body(), "text/csv", "*/*")[1] == "text/csv"
    monkeypatch.setenv("SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT", "application/jsonlines")
    assert invoke(model, csv_body(), "text/csv", "*/*")[1] == "application/jsonlines"


def test_json_shapes_bare_list_single_series_and_features_alias(model):
    ref = expected(model, SERIES[:1])
    for body in (json.dumps(SERIES[:1]), json.dumps(SERIES[0]),
                 json.dumps({"instances": [{"features": SERIES[0]}]}),
                 json.dumps({"instances": [{"series": [SERIES[0]]}]})):
        out, _ = invoke(model, body, "application/json", "application/json")
        preds = json.loads(out)["predictions"]
        assert [p["closest_cluster"] for p in preds] == ref.closest_cluster.tolist()


def test_multivariate_json_and_csv(model2):
    a, b = [0.1, 0.4, 0.3, 0.8, 0.2], [1.0, 0.5, None, 0.0]
    X = np.full((1, 2, 5), np.nan, dtype=np.float32)
    X[0, 0] = a
    X[0, 1, :4] = [1.0, 0.5, np.nan, 0.0]
    ref = model2.assign(X)
    bodies = [("application/json", json.dumps({"instances": [{"series": [a, b]}]})),
              ("application/jsonlines", json.dumps([a, b]) + "\n"),
              ("text/csv", csv_body([a, b]))]
    for ctype, body in bodies:
        out, _ = invoke(model2, body, ctype, "application/json")
        (pred,) = json.loads(out)["predictions"]
        assert pred["closest_cluster"] == int(ref.closest_cluster[0])
        assert pred["distance_to_cluster"] == pytest.approx(float(ref.distance_to_cluster[0]),
                                                            rel=1e-5)


def test_handlers_run_one_by_one_like_the_container(model):
    req = input_fn(csv_body(), "text/csv")
    assert isinstance(req, SeriesRequest)
    pred = predict_fn(req, model)
    assert len(pred) == 3
    body = output_fn(pred, "application/json")
    assert len(json.loads(body)["predictions"]) == 3
    # predict_fn also takes an array in the toolkit's convention
    assert len(predict_fn(np.zeros((2, 1, 8), dtype=np.float32) + np.arange(8), model)) == 2


def status_of(model, body, ctype="text/csv", accept="application/json"):
    with pytest.raises(RequestError) as info:
        invoke(model, body, ctype, accept)
    assert str(info.value)
    return info.value


def test_unknown_content_type_is_415(model):
    err = status_of(model, csv_body(), ctype="application/x-npy")
    assert err.status == 415 and "Content-Type" in str(err)


def test_unknown_accept_is_406(model):
    err = status_of(model, csv_body(), accept="image/png")
    assert err.status == 406 and "Accept" in str(err)


def test_non_numeric_cell_is_400_and_names_row_and_column(model):
    err = status_of(model, "1,2,3\n4,abc,6\n")
    assert err.status == 400
    assert "row 2, column 2" in str(err) and "'abc'" in str(err)


def test_non_numeric_json_value_is_400(model):
    err = status_of(model, json.dumps({"instances": [[1, "x", 3]]}), ctype="application/json")
    assert err.status == 400 and "not a number" in str(err)
    err = status_of(model, "[1, 2, 3]\n{bad\n", ctype="application/jsonlines")
    assert err.status == 400 and "Line 2" in str(err)
    err = status_of(model, "{not json", ctype="application/json")
    assert err.status == 400 and "JSON" in str(err)


@pytest.mark.parametrize("body", ["", "\n\n", b"", json.dumps({"instances": []})])
def test_empty_body_is_400(model, body):
    ctype = "application/json" if "instances" in str(body) else "text/csv"
    err = status_of(model, body, ctype=ctype)
    assert err.status == 400 and ("empty" in str(err) or "no series" in str(err))


def test_payload_over_the_limit_is_413(model, monkeypatch):
    monkeypatch.setenv("TSC_TOOLKIT_MAX_PAYLOAD_MB", "0.001")  # 1048 bytes
    assert inference.max_payload_bytes() == 1048
    big = "1.0,2.0,3.0,4.0\n" * 100
    err = status_of(model, big)
    assert err.status == 413 and "1048" in str(err)
    # within the limit it works
    assert invoke(model, "1,2,3,4\n", "text/csv", "text/csv")[0]


def test_default_limit_is_six_megabytes(monkeypatch):
    monkeypatch.delenv("TSC_TOOLKIT_MAX_PAYLOAD_MB", raising=False)
    assert inference.max_payload_bytes() == 6 * 1024 * 1024


def test_series_too_short_is_400(model):
    err = status_of(model, "1,2,3\n5,,\n")
    assert err.status == 400 and "row 2" in str(err) and "at least 2" in str(err)
    err = status_of(model, json.dumps([[1.0, 2.0], [None, 4.0, None]]),
                    ctype="application/json")
    assert err.status == 400 and "series 1" in str(err)


def test_wrong_channel_count_is_400(model, model2):
    err = status_of(model, json.dumps({"instances": [[[1, 2, 3], [4, 5, 6]]]}),
                    ctype="application/json")
    assert err.status == 400 and "2 channel(s)" in str(err) and "trained on 1" in str(err)
    err = status_of(model2, "1,2,3\n4,5,6\n7,8,9\n")
    assert err.status == 400 and "multiple of channels=2" in str(err)


def test_not_utf8_is_400(model):
    err = status_of(model, b"\xff\xfe1,2,3")
    assert err.status == 400 and "UTF-8" in str(err)


def test_error_json_body():
    err = RequestError("bad", status=415)
    assert json.loads(err.to_json()) == {"error": "bad", "status": 415}


def test_request_error_keeps_its_status_in_the_sagemaker_container(tmp_path):
    """In the container, errors must derive from sagemaker_inference's base class, or the
    toolkit turns them into 500s; a stand-in package checks the wiring."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    pkg = tmp_path / "sagemaker_inference"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "errors.py").write_text(
        "class BaseInferenceToolkitError(Exception):\n"
        "    def __init__(self, status_code, message, phrase):\n"
        "        self.status_code, self.message, self.phrase = status_code, message, phrase\n")
    root = Path(__file__).resolve().parents[1]
    code = ("from sagemaker_inference.errors import BaseInferenceToolkitError as B\n"
            "from tsc_toolkit.sagemaker.container.inference import RequestError, input_fn\n"
            "try:\n    input_fn('1,2', 'image/png')\n"
            "except B as e:\n    print(e.status_code, e.phrase, isinstance(e, ValueError))\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(root)])}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         timeout=120)
    assert out.stdout.strip() == "415 Unsupported Media Type True", out.stderr
