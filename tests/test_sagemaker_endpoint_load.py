"""Good and malformed requests from several threads against ``tsc-toolkit serve`` on loopback.

Every malformed request gets its 4xx with a JSON error body the client can read (no 5xx, no
dropped connection), good requests get the model's answers, the server stays up and its
memory does not grow. The same malformed bodies, handed to the container's handlers
directly (what SageMaker's inference containers call), raise RequestError with a 4xx
status and nothing else. Bounded: a few hundred requests per model, a fixed thread count.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from tsc_toolkit.sagemaker.container import inference
from tsc_toolkit.sagemaker.container import kmeans as kmeans_container
from tsc_toolkit.sagemaker.container.inference import RequestError
from tsc_toolkit.sagemaker.shared.recordio import numpy_to_record_bytes

ROOT = Path(__file__).resolve().parents[1]
LIMIT_MB = 0.05  # a small payload limit keeps the over-limit bodies cheap to send
LIMIT = int(LIMIT_MB * 1024 * 1024)
THREADS = 8
ROUNDS = 3  # each thread sends the whole mix this many times

# Malformed bodies both kinds of model must refuse with a 4xx: (name, body, content type,
# accept, expected status).
MALFORMED = [
    ("nested arrays", b"[" * 5000, "application/json", "application/json", 400),
    ("nested objects", b'{"a":' * 5000, "application/json", "application/json", 400),
    ("nested lines", b"[" * 5000 + b"\n", "application/jsonlines", "application/json", 400),
    ("not utf-8", b"\xff\xfe\x00", "text/csv", "application/json", 400),
    ("empty", b"", "text/csv", "application/json", 400),
    ("not a number", b"1,a,3\n", "text/csv", "application/json", 400),
    ("huge integer", b'{"instances": [[1, 1' + b"0" * 400 + b', 3]]}', "application/json",
     "application/json", 400),
    ("instances not a list", b'{"instances": 5}', "application/json", "application/json", 400),
    ("bad json", b'{"instances": [1, 2', "application/json", "application/json", 400),
    ("bad content type", b"1,2,3\n", "image/png", "application/json", 415),
    ("bad accept", b"1,2,3\n", "text/csv", "text/html", 406),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rss_kib(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


class Served:
    """``tsc-toolkit serve MODEL`` in a subprocess, on a free loopback port."""

    def __init__(self, model_path: Path, env_extra: dict):
        self.port = _free_port()
        env = {**os.environ, **env_extra,
               "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tsc_toolkit.cli", "serve", str(model_path), "--port",
             str(self.port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 120
        while True:
            try:
                if self.request("GET", "/ping")[0] == 200:
                    break
            except OSError:
                pass
            assert self.proc.poll() is None, self.proc.stderr.read().decode()
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.1)

    def request(self, method, path, body=None, headers=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            resp = conn.getresponse()
            return resp.status, resp.getheader("Content-Type"), resp.read()
        finally:
            conn.close()

    def raw(self, head: bytes) -> tuple[int, bytes]:
        """Send request headers only (no body) and read the answer."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=60) as sock:
            sock.sendall(head)
            resp = http.client.HTTPResponse(sock)
            resp.begin()
            return resp.status, resp.read()

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        finally:
            self.proc.stderr.close()


def _cases(good: list, over_limit: bytes, over_type: str):
    """The request mix: (name, sender) pairs; a sender returns (status, body) or raises."""
    cases = list(good)
    for name, body, ctype, accept, status in MALFORMED:
        cases.append((name, status, "POST", "/invocations", body,
                      {"Content-Type": ctype, "Accept": accept}))
    cases += [
        ("over the limit", 413, "POST", "/invocations", over_limit,
         {"Content-Type": over_type, "Accept": "application/json"}),
        ("unknown route", 404, "POST", "/nothing", b"1,2,3\n", {"Content-Type": "text/csv"}),
        ("ping", 200, "GET", "/ping", None, {}),
        ("no length", 411, "RAW", b"POST /invocations HTTP/1.1\r\nHost: x\r\n"
         b"Content-Type: text/csv\r\nConnection: close\r\n\r\n", None, None),
        ("expect 100-continue over the limit", 413, "RAW",
         b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\n"
         b"Content-Length: 99999999\r\nExpect: 100-continue\r\n\r\n", None, None),
    ]
    return cases


def _send(server: Served, case):
    name, status, method, path, body, headers = case[:6]
    if method == "RAW":
        got, data = server.raw(path)
        return got, data
    got, _, data = server.request(method, path, body, headers)
    return got, data


def _load(server: Served, cases, check_good):
    """Every thread sends every case ROUNDS times, in its own order; collect what went wrong."""
    problems: list[str] = []
    counts = {"requests": 0, "good": 0}
    lock = threading.Lock()

    def worker(seed):
        order = np.random.default_rng(seed).permutation(len(cases) * ROUNDS) % len(cases)
        for i in order:
            case = cases[i]
            name, status = case[0], case[1]
            try:
                got, data = _send(server, case)
            except (OSError, http.client.HTTPException) as err:  # a dropped connection
                with lock:
                    problems.append(f"{name}: connection dropped ({type(err).__name__}: {err})")
                continue
            wrong = None
            if got != status:
                wrong = f"{name}: status {got}, expected {status}: {data[:200]!r}"
            elif status >= 400:
                error = json.loads(data)  # a JSON error body the client can read
                if error.get("status") != status or not error.get("error"):
                    wrong = f"{name}: error body {error!r}"
            elif len(case) > 6:
                wrong = check_good(case, data)
            with lock:
                counts["requests"] += 1
                counts["good"] += len(case) > 6 and wrong is None
                if wrong:
                    problems.append(wrong)

    threads = [threading.Thread(target=worker, args=(seed,)) for seed in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not any(t.is_alive() for t in threads), "a client thread hung"
    return problems, counts


def _run_load(server: Served, cases, check_good):
    _load(server, cases, check_good)  # warm-up: caches, allocator pools, thread stacks
    before = _rss_kib(server.proc.pid)
    problems, counts = _load(server, cases, check_good)
    after = _rss_kib(server.proc.pid)
    assert not problems, problems[:10]
    assert counts["requests"] == THREADS * ROUNDS * len(cases) >= 300
    assert server.request("GET", "/ping")[0] == 200 and server.proc.poll() is None
    if before is not None:
        assert after - before < 20 * 1024, f"server memory grew from {before} to {after} KiB"
    return counts


@pytest.fixture(scope="module")
def cnn_model(tiny_model_dir):
    return tiny_model_dir()


@pytest.fixture(scope="module")
def kmeans_model(tmp_path_factory):
    from tsc_toolkit.clustering.kmeans import WebScaleKMeans

    km = WebScaleKMeans(k=2, device="cpu")
    km.cluster_centers_ = np.array([[0.0, 0.0, 0.0], [5.0, 5.0, 5.0]], dtype=np.float32)
    return km.save_sagemaker_model(tmp_path_factory.mktemp("kmeans-model"))


def test_cnn_kmeans_endpoint_under_mixed_load(cnn_model):
    from tsc_toolkit import CNNKMeans
    from tsc_toolkit.io.datasets import make_series

    X, _ = make_series(6, n_clusters=2, length=24, random_state=1)
    expected = CNNKMeans.load(cnn_model, device="cpu").predict(X).tolist()
    csv = "".join(",".join(f"{v:.6g}" for v in s[0]) + "\n" for s in X).encode()
    as_json = json.dumps({"instances": [{"series": s[0].tolist()} for s in X]}).encode()
    good = [("good csv", 200, "POST", "/invocations", csv,
             {"Content-Type": "text/csv", "Accept": "application/json"}, "json"),
            ("good json", 200, "POST", "/invocations", as_json,
             {"Content-Type": "application/json", "Accept": "text/csv"}, "csv")]
    over = b"1,2,3,4\n" * (LIMIT // 8 + 100)

    def check(case, data):
        if case[6] == "json":
            labels = [p["closest_cluster"] for p in json.loads(data)["predictions"]]
        else:
            labels = [int(float(line.split(",")[0])) for line in data.decode().splitlines()]
        return None if labels == expected else f"{case[0]}: labels {labels} != {expected}"

    server = Served(cnn_model, {"TSC_TOOLKIT_MAX_PAYLOAD_MB": str(LIMIT_MB),
                                "OMP_NUM_THREADS": "1"})
    try:
        counts = _run_load(server, _cases(good, over, "text/csv"), check)
    finally:
        server.stop()
    assert counts["good"] == THREADS * ROUNDS * len(good)


def test_builtin_kmeans_endpoint_under_mixed_load(kmeans_model):
    rows = np.array([[0.1, 0.0, 0.2], [4.9, 5.1, 5.0], [0.0, 0.3, 0.0]], dtype=np.float32)
    expected = [0.0, 1.0, 0.0]
    good = [("good csv", 200, "POST", "/invocations",
             b"".join(b",".join(str(v).encode() for v in r) + b"\n" for r in rows),
             {"Content-Type": "text/csv", "Accept": "application/json"}),
            ("good recordio", 200, "POST", "/invocations", numpy_to_record_bytes(rows),
             {"Content-Type": "application/x-recordio-protobuf",
              "Accept": "application/json"}),
            ("good json", 200, "POST", "/invocations",
             json.dumps({"instances": [{"features": r.tolist()} for r in rows]}).encode(),
             {"Content-Type": "application/json", "Accept": "application/json"})]
    good = [g + ("json",) for g in good]
    over = numpy_to_record_bytes(np.zeros((LIMIT // 12 + 100, 3), dtype=np.float32))

    def check(case, data):
        labels = [p["closest_cluster"] for p in json.loads(data)["predictions"]]
        return None if labels == expected else f"{case[0]}: labels {labels} != {expected}"

    server = Served(kmeans_model, {"TSC_TOOLKIT_MAX_PAYLOAD_MB": str(LIMIT_MB)})
    try:
        counts = _run_load(server, _cases(good, over, "application/x-recordio-protobuf"),
                           check)
    finally:
        server.stop()
    assert counts["good"] == THREADS * ROUNDS * len(good)


def test_a_7_mb_body_gets_a_413_the_client_reads_and_the_connection_stays_usable(cnn_model):
    """At the default 6 MB limit: the body is read and dropped, so the client, which sends it
    whole before reading, gets the 413; the same connection then serves a good request."""
    from tsc_toolkit.sagemaker.container.server import InferenceServer

    body = b"1,2,3,4,5,6,7,8\n" * (7 * 1024 * 1024 // 16)
    with InferenceServer(cnn_model, port=0) as srv:
        conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=60)
        conn.request("POST", "/invocations", body=body, headers={"Content-Type": "text/csv"})
        resp = conn.getresponse()
        error = json.loads(resp.read())
        assert resp.status == 413 and error["status"] == 413
        assert "more than the limit of 6291456 bytes" in error["error"]
        conn.request("POST", "/invocations", body=b"1,2,3,4\n",
                     headers={"Content-Type": "text/csv", "Accept": "text/csv"})
        resp = conn.getresponse()
        assert resp.status == 200 and resp.read().decode().count("\n") == 1
        conn.close()


@pytest.mark.parametrize("name, body, ctype, accept, status", MALFORMED,
                         ids=[m[0] for m in MALFORMED])
def test_container_handlers_refuse_malformed_requests_with_a_4xx(cnn_model, kmeans_model, name,
                                                                  body, ctype, accept, status):
    """What SageMaker's inference containers call: a RequestError with the 4xx, nothing else."""
    cnn = _cached(cnn_model, inference.model_fn)
    km = _cached(kmeans_model, kmeans_container.model_fn)
    for invoke, model in ((inference.invoke, cnn), (kmeans_container.invoke, km)):
        with pytest.raises(RequestError) as info:
            invoke(model, body, ctype, accept)
        assert info.value.status == status, (invoke.__module__, info.value.message)
        assert json.loads(info.value.to_json())["status"] == status


_MODELS: dict = {}


def _cached(path, load):
    if path not in _MODELS:
        _MODELS[path] = load(path)
    return _MODELS[path]
