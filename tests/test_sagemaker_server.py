"""The local endpoint answers real HTTP requests on loopback, and keeps serving after errors."""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from tsc_toolkit.sagemaker.container.server import InferenceServer, load_handler

ROOT = Path(__file__).resolve().parents[1]



@pytest.fixture(scope="module")
def model_dir(tiny_model_dir):
    return tiny_model_dir()


@pytest.fixture(scope="module")
def server(model_dir):
    srv = InferenceServer(model_dir, port=0).start()
    yield srv
    srv.stop()


def post(url, body, content_type="text/csv", accept="application/json", headers=None):
    data = body.encode() if isinstance(body, str) else body
    req = urllib.request.Request(url + "/invocations", data=data, method="POST")
    req.add_header("Content-Type", content_type)
    if accept:
        req.add_header("Accept", accept)
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, resp.headers.get("Content-Type"), resp.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.headers.get("Content-Type"), err.read().decode()


def test_binds_loopback_and_answers_ping(server):
    assert server.url.startswith("http://127.0.0.1:")
    assert server.port > 0
    with urllib.request.urlopen(server.url + "/ping", timeout=10) as resp:
        assert resp.status == 200


def test_invocations_csv_to_json_matches_the_model(server, model_dir):
    from tsc_toolkit import CNNKMeans

    status, ctype, body = post(server.url, "1,2,3,4,5\n0.5,0.1,,0.3\n")
    assert status == 200 and ctype == "application/json"
    preds = json.loads(body)["predictions"]
    X = np.array([[[1, 2, 3, 4, 5]], [[0.5, 0.1, np.nan, 0.3, np.nan]]], dtype=np.float32)
    ref = CNNKMeans.load(model_dir, device="cpu").assign(X)
    assert [p["closest_cluster"] for p in preds] == ref.closest_cluster.tolist()
    np.testing.assert_allclose([p["distance_to_cluster"] for p in preds],
                               ref.distance_to_cluster, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("ctype,body", [
    ("text/csv", "1,2,3\n4,5,6,7\n"),
    ("application/json", json.dumps({"instances": [[1, 2, 3], [4, 5, 6, 7]]})),
    ("application/jsonlines", "[1, 2, 3]\n[4, 5, 6, 7]\n"),
])
@pytest.mark.parametrize("accept", ["text/csv", "application/jsonlines"])
def test_content_types_over_http(server, ctype, body, accept):
    status, out_type, out = post(server.url, body, ctype, accept)
    assert status == 200 and out_type == accept
    assert len(out.splitlines()) == 2


def test_no_accept_answers_in_the_request_format(server):
    status, out_type, out = post(server.url, "1,2,3\n", "text/csv", accept=None)
    assert status == 200 and out_type == "text/csv"


def test_bad_request_then_good_request(server):
    status, ctype, body = post(server.url, "1,abc,3\n")
    assert status == 400 and ctype == "application/json"
    err = json.loads(body)
    assert err["status"] == 400 and "not a number" in err["error"]
    status, _, body = post(server.url, "1,2,3\n")
    assert status == 200 and len(json.loads(body)["predictions"]) == 1


@pytest.mark.parametrize("ctype,accept,body,code", [
    ("image/png", "application/json", "1,2,3\n", 415),
    ("text/csv", "image/png", "1,2,3\n", 406),
    ("text/csv", "application/json", "", 400),
    ("text/csv", "application/json", "1,,\n", 400),
])
def test_error_statuses_over_http(server, ctype, accept, body, code):
    status, out_type, out = post(server.url, body, ctype, accept)
    assert status == code and out_type == "application/json"
    assert json.loads(out)["status"] == code
    assert post(server.url, "1,2,3\n")[0] == 200


def test_payload_over_limit_is_413_and_server_keeps_serving(server, monkeypatch):
    monkeypatch.setenv("TSC_TOOLKIT_MAX_PAYLOAD_MB", "0.0001")  # 104 bytes
    status, _, out = post(server.url, "1.0,2.0,3.0\n" * 20)
    assert status == 413 and "104 bytes" in json.loads(out)["error"]
    monkeypatch.delenv("TSC_TOOLKIT_MAX_PAYLOAD_MB")
    assert post(server.url, "1,2,3\n")[0] == 200


def test_unknown_route_and_missing_length(server):
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(server.url + "/nothing", timeout=10)
    assert info.value.code == 404
    host, port = server.url[len("http://"):].split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    conn.putrequest("POST", "/invocations")
    conn.putheader("Content-Type", "text/csv")
    conn.endheaders()
    resp = conn.getresponse()
    assert resp.status == 411
    conn.close()


def test_handler_crash_is_500_and_server_keeps_serving():
    calls = []

    def flaky(body, ctype, accept):
        calls.append(body)
        if len(calls) == 1:
            raise RuntimeError("boom")
        return body.upper(), "text/plain"

    with InferenceServer(handler=flaky, port=0) as srv:
        status, _, out = post(srv.url, "abc")
        assert status == 500 and "boom" in json.loads(out)["error"]
        assert post(srv.url, "abc")[:3:2] == (200, "ABC")


def test_execution_parameters(server):
    with urllib.request.urlopen(server.url + "/execution-parameters", timeout=10) as resp:
        params = json.loads(resp.read())
    assert params["MaxPayloadInMB"] == 6 and params["BatchStrategy"] == "MULTI_RECORD"


def test_load_handler_refuses_a_folder_without_model(tmp_path):
    with pytest.raises(ValueError, match="neither"):
        load_handler(tmp_path)
    with pytest.raises(ValueError, match="No such"):
        load_handler(tmp_path / "missing")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_cli_serve_subcommand(model_dir):
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.Popen([sys.executable, "-m", "tsc_toolkit.cli", "serve", str(model_dir),
                             "--port", str(port)], env=env, stderr=subprocess.PIPE, text=True)
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(600):
            try:
                urllib.request.urlopen(url + "/ping", timeout=1).read()
                break
            except OSError:
                assert proc.poll() is None, proc.stderr.read()
                time.sleep(0.1)
        status, ctype, body = post(url, "1,2,3,4\n", accept="text/csv")
        assert status == 200 and ctype == "text/csv" and body.startswith(("0.0,", "1.0,"))
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        proc.stderr.close()


def test_serves_a_builtin_kmeans_model_with_recordio(tmp_path):
    from tsc_toolkit.clustering.kmeans import WebScaleKMeans
    from tsc_toolkit.sagemaker.shared.recordio import numpy_to_record_bytes, read_records

    km = WebScaleKMeans(k=2, device="cpu")
    km.cluster_centers_ = np.array([[0.0, 0.0], [5.0, 5.0]], dtype=np.float32)
    km.save_sagemaker_model(tmp_path)  # model.tar.gz holding model_algo-1
    rows = np.array([[4.0, 5.0], [0.0, 1.0]], dtype=np.float32)
    with InferenceServer(tmp_path, port=0) as srv:
        req = urllib.request.Request(srv.url + "/invocations", data=numpy_to_record_bytes(rows),
                                     method="POST")
        req.add_header("Content-Type", "application/x-recordio-protobuf")
        req.add_header("Accept", "application/x-recordio-protobuf")
        with urllib.request.urlopen(req, timeout=30) as resp:
            recs = read_records(resp.read())
        assert [r.label["closest_cluster"].float32_tensor.values[0] for r in recs] == [1.0, 0.0]
        status, _, body = post(srv.url, "1,2,3\n", accept="application/json")
        assert status == 400 and "feature_dim=2" in json.loads(body)["error"]


def test_a_burst_of_simultaneous_connections_is_answered_without_delay_or_reset():
    # 48 clients connect at the same instant: with the standard library's backlog of 5,
    # connections beyond it waited for a SYN retry or were refused.
    import threading

    echo = lambda body, ctype, accept: (body, ctype)  # noqa: E731
    with InferenceServer(handler=echo, port=0) as srv:
        assert srv._httpd.request_queue_size >= 48
        barrier = threading.Barrier(48)
        results, errors = [], []

        def client(i):
            try:
                barrier.wait(timeout=30)
                conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=30)
                for _ in range(3):  # kept alive: several requests on one connection
                    conn.request("POST", "/invocations", body=f"{i}".encode(),
                                 headers={"Content-Type": "text/csv"})
                    resp = conn.getresponse()
                    results.append((resp.status, resp.read()))
                conn.close()
            except Exception as err:  # noqa: BLE001  (every failure counts)
                errors.append(repr(err))

        threads = [threading.Thread(target=client, args=(i,)) for i in range(48)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
    assert errors == []
    assert len(results) == 144 and all(status == 200 for status, _ in results)
    assert sorted({int(body) for _, body in results}) == list(range(48))
