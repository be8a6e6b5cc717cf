"""Inference latency in process and through ``tsc-toolkit serve``, idle and with one busy core.

A GunPoint model at the defaults (``CNNKMeans(clusters=2, random_state=0)`` fitted on the
training split) answers series of length 150 from the test split:

- in process: median ``transform`` and ``predict`` time of 1, 10 and 100 series;
- one client, one kept-alive connection: median and p99 latency of a request of 1, 10 and
  100 series (JSON in, JSON out);
- 16 client threads, each on its own kept-alive connection, sending one-series requests
  (1,000 in all): requests per second, median and p99 latency, 5xx answers and connections
  that failed.

Each is measured on the idle machine, then again while another process keeps one core busy
(a spinning Python loop). The server runs in its own process (``python -m tsc_toolkit.cli
serve``); the clients run in this one, on the same cores. Run alone:

    python -m benchmarks.serving --out docs/benchmarks_serving.md
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing as mp
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from .common import REPO
from .report import cpu_count, cpu_model, load_average, versions

TARGETS = {"one-series request, median (idle)": "< 20 ms",
           "16 clients, one-series requests": ">= 100 requests/s, p99 < 500 ms, no 5xx, "
                                              "no failed connection"}


def _spin(stop) -> None:  # a process that keeps one core busy
    x = 0
    while not stop.is_set():
        for _ in range(100_000):
            x += 1


class BusyCore:
    """Keep one core busy in another process while the block runs."""

    def __enter__(self):
        ctx = mp.get_context("spawn")
        self.stop = ctx.Event()
        self.proc = ctx.Process(target=_spin, args=(self.stop,), daemon=True)
        self.proc.start()
        time.sleep(0.5)
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.proc.join(timeout=10)
        if self.proc.is_alive():
            self.proc.kill()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _body(X: np.ndarray) -> bytes:
    return json.dumps({"instances": [[float(v) for v in x[0]] for x in X]}).encode()


class Server:
    """``tsc-toolkit serve MODEL`` in a subprocess, on a free loopback port."""

    def __init__(self, model_dir: Path):
        self.port = _free_port()
        env = dict(os.environ, TSC_TOOLKIT_DEVICE="cpu")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tsc_toolkit.cli", "serve", str(model_dir), "--port",
             str(self.port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                conn.request("GET", "/ping")
                if conn.getresponse().status == 200:
                    conn.close()
                    return
            except OSError:
                time.sleep(0.2)
        self.proc.kill()
        raise RuntimeError("the server did not answer /ping: "
                           + self.proc.stderr.read().decode(errors="replace")[-2000:])

    def close(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def _post(conn: http.client.HTTPConnection, body: bytes) -> int:
    conn.request("POST", "/invocations", body=body,
                 headers={"Content-Type": "application/json", "Accept": "application/json"})
    resp = conn.getresponse()
    resp.read()
    return resp.status


def sequential(port: int, body: bytes, n: int) -> dict:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    for _ in range(5):  # warm up
        _post(conn, body)
    times, statuses = [], []
    for _ in range(n):
        tic = time.perf_counter()
        statuses.append(_post(conn, body))
        times.append(time.perf_counter() - tic)
    conn.close()
    t = np.array(times) * 1e3
    return {"median_ms": float(np.median(t)), "p99_ms": float(np.percentile(t, 99)),
            "non_200": int(sum(s != 200 for s in statuses))}


def concurrent(port: int, bodies: list[bytes], clients: int, total: int) -> dict:
    lock = threading.Lock()
    next_request = iter(range(total))
    times, statuses, failures = [], [], []

    def client():
        conn = None
        while True:
            with lock:
                i = next(next_request, None)
            if i is None:
                break
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                tic = time.perf_counter()
                status = _post(conn, bodies[i % len(bodies)])
                elapsed = time.perf_counter() - tic
                with lock:
                    times.append(elapsed)
                    statuses.append(status)
            except (OSError, http.client.HTTPException) as err:
                with lock:
                    failures.append(repr(err))
                if conn is not None:
                    conn.close()
                conn = None
        if conn is not None:
            conn.close()

    threads = [threading.Thread(target=client) for _ in range(clients)]
    tic = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - tic
    t = np.array(times) * 1e3
    return {"requests": len(times), "requests_per_s": len(times) / wall,
            "median_ms": float(np.median(t)), "p99_ms": float(np.percentile(t, 99)),
            "5xx": int(sum(s >= 500 for s in statuses)),
            "non_200": int(sum(s != 200 for s in statuses)), "failed": len(failures)}


def in_process(model, X: np.ndarray, reps: int) -> dict:
    out = {}
    for n in (1, 10, 100):
        batch = X[:n]
        for verb in ("transform", "predict"):
            f = getattr(model, verb)
            f(batch)
            times = []
            for _ in range(reps if n < 100 else max(5, reps // 10)):
                tic = time.perf_counter()
                f(batch)
                times.append(time.perf_counter() - tic)
            out[f"{verb} {n}"] = float(np.median(times) * 1e3)
    return out


def measure(model_dir: Path, X: np.ndarray, reps: int, total: int) -> dict:
    from tsc_toolkit import CNNKMeans

    model = CNNKMeans.load(model_dir, device="cpu")
    res = {"in_process_ms": in_process(model, X, reps)}
    server = Server(model_dir)
    try:
        res["sequential"] = {n: sequential(server.port, _body(X[:n]), reps if n < 100 else
                                           max(20, reps // 5)) for n in (1, 10, 100)}
        bodies = [_body(X[i:i + 1]) for i in range(min(len(X), 100))]
        res["concurrent"] = concurrent(server.port, bodies, 16, total)
    finally:
        server.close()
    return res


def run(reps: int = 200, total: int = 1000, log=print) -> dict:
    from tsc_toolkit import CNNKMeans
    from tsc_toolkit.io.datasets import load_dataset

    Xtr, _ = load_dataset("GunPoint", split="train")
    Xte, _ = load_dataset("GunPoint", split="test")
    Xte = np.concatenate([Xte] * 2)[:100]
    with tempfile.TemporaryDirectory(prefix="tsc-serving-") as tmp:
        model_dir = Path(tmp) / "model"
        CNNKMeans(clusters=2, random_state=0, device="cpu", verbose=0).fit(Xtr).save(model_dir)
        log("idle ...")
        load_idle = load_average()
        idle = measure(model_dir, Xte, reps, total)
        log("one busy core ...")
        with BusyCore():
            busy = measure(model_dir, Xte, reps, total)
    return {"idle": idle, "busy": busy, "load_idle": load_idle, "cpu": cpu_model(),
            "cores": cpu_count()}


def render(res: dict, command: str, load_start: str, load_end: str, seconds: float) -> str:
    idle, busy = res["idle"], res["busy"]
    lines = [
        "# Inference latency and serving under load",
        "",
        f"Written by `{command}`; do not edit by hand. {__doc__.split(chr(10) + chr(10))[1]}",
        "",
        "| | |", "|---|---|",
        f"| CPU | {res['cpu']} ({res['cores']} cores) |",
        f"| load average (1, 5, 15 min) | at start {load_start}; at end {load_end} |",
        f"| versions | {', '.join(f'{k} {v}' for k, v in versions().items())} |",
        "",
        "## In process (median ms)", "",
        "| call | idle | one core busy |", "|---|---|---|",
    ]
    for key in idle["in_process_ms"]:
        lines.append(f"| `{key.split()[0]}` of {key.split()[1]} series | "
                     f"{idle['in_process_ms'][key]:.1f} | {busy['in_process_ms'][key]:.1f} |")
    lines += ["", "## One client, one connection (ms)", "",
              "| series per request | idle median | idle p99 | busy median | busy p99 |",
              "|---|---|---|---|---|"]
    for n in idle["sequential"]:
        a, b = idle["sequential"][n], busy["sequential"][n]
        lines.append(f"| {n} | {a['median_ms']:.1f} | {a['p99_ms']:.1f} | "
                     f"{b['median_ms']:.1f} | {b['p99_ms']:.1f} |")
    lines += ["", "## 16 clients, one-series requests", "",
              "| | requests | requests/s | median ms | p99 ms | 5xx | other non-200 | "
              "failed connections |", "|---|---|---|---|---|---|---|---|"]
    for name, r in (("idle", idle["concurrent"]), ("one core busy", busy["concurrent"])):
        lines.append(f"| {name} | {r['requests']} | {r['requests_per_s']:.0f} | "
                     f"{r['median_ms']:.1f} | {r['p99_ms']:.1f} | {r['5xx']} | "
                     f"{r['non_200'] - r['5xx']} | {r['failed']} |")
    one = idle["sequential"][1]["median_ms"]
    conc = idle["concurrent"]
    lines += ["", "## Targets", "", "| target | measured | result |", "|---|---|---|",
              f"| one-series request, median (idle): < 20 ms | {one:.1f} ms | "
              f"{'met' if one < 20 else '**not met**'} |",
              f"| 16 clients: >= 100 requests/s, p99 < 500 ms, no 5xx, no failed connection "
              f"| {conc['requests_per_s']:.0f}/s, p99 {conc['p99_ms']:.0f} ms, "
              f"{conc['5xx']} 5xx, {conc['failed']} failed | "
              + ("met" if conc["requests_per_s"] >= 100 and conc["p99_ms"] < 500
                 and conc["5xx"] == 0 and conc["failed"] == 0 else "**not met**") + " |",
              "", f"_Run time: {seconds:.0f} s._", ""]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=str(REPO / "docs" / "benchmarks_serving.md"))
    parser.add_argument("--reps", type=int, default=200)
    parser.add_argument("--requests", type=int, default=1000)
    args = parser.parse_args(argv)
    command = "python -m benchmarks.serving" + (" " + " ".join(argv) if argv else "")
    load_start = load_average()
    tic = time.perf_counter()
    res = run(args.reps, args.requests, log=lambda m: print(m, file=sys.stderr, flush=True))
    text = render(res, command, load_start, load_average(), time.perf_counter() - tic)
    out = Path(args.out)
    out.write_text(text)
    out.with_suffix(".json").write_text(json.dumps(res, indent=1, default=str))
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
