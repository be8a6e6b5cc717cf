"""Out of core: embed series from a memory-mapped file, and cluster embeddings from disk.

Usage::

    python -m benchmarks.streaming                 # small sizes (minutes on one core)
    python -m benchmarks.streaming --medium        # 100,000 x 500 and the 10M x 320 K-Means
    python -m benchmarks.streaming --full          # the targets: 1,000,000 x 500 and 10M x 320
    python -m benchmarks.streaming --fast          # a smoke run (seconds)

It writes docs/benchmarks_streaming.md (and the raw numbers next to it as .json). What each
part measures is in ``CAP_TEXT``, ``ENCODE_TEXT`` and ``WEBSCALE_TEXT``, which the report
prints.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd

from .common import REPO, Timer, _status_mib, fit_exponent, run_child, set_threads, to_markdown
from .report import cpu_count, cpu_model, load_average, versions

CAP_TEXT = (
    "Every point runs in a fresh process. After the model is loaded and warmed up on 256 "
    "series, `RLIMIT_DATA` caps the data segment (`VmData`: heap, anonymous mappings, thread "
    "stacks) at what is mapped then plus the room that the anonymous memory already resident "
    "(`RssAnon`: interpreter, torch, model) leaves under 1 GiB. The whole data segment cannot "
    "be capped at 1 GiB itself: torch and the allocator reserve over 1 GiB of address space "
    "at start-up (one 1 GiB mapping of which 2 MiB are resident), which costs no memory. "
    "Pages of the memory-mapped input and of the output file are shared file pages and do "
    "not count; every array the process allocates does. After the run the child checks that "
    "the cap is real: allocating one array of the room's size must fail. Because memory "
    "reserved before the cap could still become resident without touching it, `RssAnon` is "
    "also sampled every 10 ms during the run: its peak is the private memory used.")
ENCODE_TEXT = (
    "`tsc_toolkit.streaming.transform` of a `.npy` file of series (1 channel, 5 % missing "
    "values, 20 % shorter series with trailing NaN; `make_series`) with the default encoder "
    "(10 blocks x 40 filters -> 320-d embeddings, untrained: the cost does not depend on the "
    "weights) into a `.npy` file of embeddings, 4,096 series per chunk. The time exponents in "
    "n and in length are fitted over the points (least squares on log-log).")
WEBSCALE_TEXT = (
    "`WebScaleKMeans(k=10)` at SageMaker's defaults (mini-batch 5,000, one epoch) fits a "
    "memory-mapped `.npy` file of unit-length 320-d points around 10 centres, written chunk by "
    "chunk with the streaming writer (`tsc_toolkit.io.sinks.NpyWriter`); the file is larger than "
    "the cap.")

SIZES = {
    # encode: series at length 500 (time in n), lengths at the smallest n (time in length)
    "small": {"n": (2_500, 5_000, 10_000, 20_000), "length": 500,
              "lengths": (125, 250, 1000), "embed_n": 1_000_000, "cap_mib": 1024},
    # a tenth of the target's series (about 15 min on 2 idle threads), the K-Means target whole
    "medium": {"n": (25_000, 50_000, 100_000), "length": 500, "lengths": (125, 250, 1000),
               "embed_n": 10_000_000, "cap_mib": 1024},
    "full": {"n": (100_000, 1_000_000), "length": 500, "lengths": (125, 250, 1000),
             "embed_n": 10_000_000, "cap_mib": 1024},
    "fast": {"n": (200, 400), "length": 64, "lengths": (32,), "embed_n": 20_000,
             "cap_mib": 1024},
}
TARGET_SERIES, TARGET_LENGTH, TARGET_EMBEDDINGS = 1_000_000, 500, 10_000_000
CHUNK = 4096
DIM = 320
COST_SERIES, COST_INSTANCE, COST_VCPUS, COST_INSTANCES = 100_000_000, "ml.c5.9xlarge", 36, 10


# ---------------------------------------------------------------------- data

def write_series(path: Path, n: int, length: int, seed: int = 0, chunk: int = 5_000) -> None:
    """``n`` generated series of ``length`` steps into a ``.npy`` file, a chunk at a time."""
    from numpy.lib.format import open_memmap

    from tsc_toolkit.io.datasets import make_series

    out = open_memmap(path, mode="w+", dtype=np.float32, shape=(n, 1, length))
    for i, start in enumerate(range(0, n, chunk)):
        stop = min(n, start + chunk)
        X, _ = make_series(stop - start, n_clusters=4, length=length, missing_rate=0.05,
                           short_fraction=0.2, random_state=seed + i)
        out[start:stop] = X
    out.flush()
    del out


def write_embeddings(path: Path, n: int, dim: int = DIM, seed: int = 0,
                     chunk: int = 100_000) -> None:
    """``n`` unit-length points around 10 centres, through the streaming ``.npy`` writer."""
    from tsc_toolkit.io.sinks import NpyWriter

    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((10, dim)).astype(np.float32)
    with NpyWriter(path, "transform") as writer:
        for start in range(0, n, chunk):
            m = min(n, start + chunk) - start
            z = centres[rng.integers(0, 10, m)] + 0.7 * rng.standard_normal((m, dim),
                                                                            dtype=np.float32)
            writer.write(np.arange(start, start + m), embeddings=z /
                         np.linalg.norm(z, axis=1, keepdims=True))


def save_model(path: Path) -> None:
    """The default-size encoder (320-d), fitted for one step only: encoding cost is the same."""
    from tsc_toolkit import CNNKMeans
    from tsc_toolkit.io.datasets import make_series

    X, _ = make_series(64, length=100, random_state=0)
    CNNKMeans(clusters=10, epochs=1, max_steps=1, n_init=1, random_state=0, device="cpu",
              verbose=0).fit(X).save(path)


# ---------------------------------------------------------------------- child

class _AnonPeak:
    """Peak of ``RssAnon`` (resident anonymous memory), sampled every 10 ms in a thread."""

    def __enter__(self):
        self.peak = _status_mib("RssAnon")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()
        return self

    def _poll(self):
        while not self._stop.wait(0.01):
            self.peak = max(self.peak, _status_mib("RssAnon"))

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _status_mib("RssAnon"))


def _cap(cap_mib: int) -> tuple[float, float]:
    """Cap the data segment's growth so that anonymous memory stays within ``cap_mib``.

    The limit is what is mapped now plus the room left under ``cap_mib`` by the anonymous
    memory already resident (the interpreter, torch, the model); returns the room and the
    limit, in MiB.
    """
    import resource

    room = cap_mib - _status_mib("RssAnon")
    if room <= 0:
        raise RuntimeError(f"RssAnon is {_status_mib('RssAnon'):.0f} MiB before the run, above "
                           f"the {cap_mib} MiB target.")
    limit = _status_mib("VmData") + room
    resource.setrlimit(resource.RLIMIT_DATA,
                       (int(limit * 2 ** 20), resource.getrlimit(resource.RLIMIT_DATA)[1]))
    return room, limit


def _cap_bites(limit_mib: float) -> tuple[bool, float]:
    """Whether an array 64 MiB larger than what the limit still allows fails; and its size."""
    size = max(0.0, limit_mib - _status_mib("VmData")) + 64
    try:
        block = np.ones(int(size * 2 ** 20) // 8)
    except MemoryError:
        return True, size
    del block
    return False, size


def _child(p: dict) -> dict:
    set_threads(int(p["threads"]))
    before = {"vmdata_start_mib": _status_mib("VmData")}
    if p["stage"] == "encode":
        from tsc_toolkit import CNNKMeans, streaming

        model = CNNKMeans.load(p["model"], device="cpu")
        X = np.load(p["path"], mmap_mode="r")[: p["n"]]
        model.transform(np.array(X[:256]))  # one-off allocations (kernels, arenas) first
        before.update(vmdata_before_mib=_status_mib("VmData"),
                      rss_anon_before_mib=_status_mib("RssAnon"))
        room, limit = _cap(p["cap_mib"])
        with _AnonPeak() as anon, Timer() as t:
            out = streaming.transform(model, X, p["out"], chunk_size=CHUNK, progress=False)
        rows = int(np.load(out, mmap_mode="r").shape[0])
        result = {"series": rows, "length": int(X.shape[2])}
    else:
        from tsc_toolkit.clustering.kmeans import WebScaleKMeans

        z = np.load(p["path"], mmap_mode="r")
        WebScaleKMeans(k=10, random_state=0, device="cpu").fit(np.array(z[:20_000]))
        before.update(vmdata_before_mib=_status_mib("VmData"),
                      rss_anon_before_mib=_status_mib("RssAnon"))
        room, limit = _cap(p["cap_mib"])
        with _AnonPeak() as anon, Timer() as t:
            km = WebScaleKMeans(k=10, random_state=0, device="cpu").fit(z)
        result = {"series": int(z.shape[0]), "msd": float(km.msd_),
                  "file_mib": os.path.getsize(p["path"]) / 2 ** 20}
    return {**p, **before, **result, "seconds": t.seconds,
            "vmdata_after_mib": _status_mib("VmData"), "rss_anon_peak_mib": anon.peak,
            "peak_rss_mib": _status_mib("VmHWM"), "room_mib": room,
            **dict(zip(("cap_bites", "bite_mib"), _cap_bites(limit)))}


# ---------------------------------------------------------------------- parent

def run(size: str = "small", threads: int = 1, log=print) -> dict:
    cfg = SIZES[size]
    points = []
    with tempfile.TemporaryDirectory(prefix="tsc-stream-bench-") as tmp:
        tmp = Path(tmp)
        save_model(tmp / "model")
        big = tmp / f"series-{cfg['length']}.npy"
        write_series(big, max(cfg["n"]), cfg["length"])
        files = [(big, n, "n") for n in cfg["n"]]
        for length in cfg["lengths"]:
            path = tmp / f"series-{length}.npy"
            write_series(path, min(cfg["n"]), length, seed=100)
            files.append((path, min(cfg["n"]), "length"))
        for path, n, varied in files:
            log(f"[streaming] encode {n:,} x {path.stem.split('-')[1]} ...")
            point = run_child("benchmarks.streaming", {
                "stage": "encode", "path": str(path), "n": n, "model": str(tmp / "model"),
                "out": str(tmp / "embeddings.npy"), "cap_mib": cfg["cap_mib"],
                "threads": threads})
            point["varied"] = varied
            points.append(point)
            (tmp / "embeddings.npy").unlink()
        emb = tmp / "points.npy"
        log(f"[streaming] webscale over {cfg['embed_n']:,} x {DIM} from disk ...")
        write_embeddings(emb, cfg["embed_n"])
        webscale = run_child("benchmarks.streaming", {
            "stage": "webscale", "path": str(emb), "cap_mib": cfg["cap_mib"],
            "threads": threads}, timeout=7200)
    return {"size": size, "threads": threads, "encode": points, "webscale": webscale,
            "cpu": cpu_model(), "cores": cpu_count(), "versions": versions()}


def render(res: dict, command: str, load_start: str, load_end: str) -> str:
    enc = pd.DataFrame(res["encode"])
    ws = res["webscale"]
    cap = int(enc.cap_mib.iloc[0])
    by_n = enc[enc.varied == "n"].sort_values("series")
    by_len = pd.concat([enc[enc.varied == "length"],
                        by_n[by_n.series == by_n.series.min()]]).sort_values("length")
    exp_n = fit_exponent(by_n.series, by_n.seconds) if len(by_n) > 1 else float("nan")
    exp_len = fit_exponent(by_len.length, by_len.seconds) if len(by_len) > 1 else float("nan")
    largest = by_n.iloc[-1]
    per_series = largest.seconds / largest.series
    enc_table = pd.DataFrame({
        "series": [f"{s:,}" for s in enc.series], "length": enc.length,
        "time": [f"{s:.1f} s" for s in enc.seconds],
        "per series": [f"{1e3 * s / n:.2f} ms" for s, n in zip(enc.seconds, enc.series)],
        "RssAnon before / peak": [f"{b:.0f} / **{m:.0f}** MiB" for b, m in
                                  zip(enc.rss_anon_before_mib, enc.rss_anon_peak_mib)],
        "VmData growth (cap)": [f"{a - b:.0f} MiB ({r:.0f})" for b, a, r in
                                zip(enc.vmdata_before_mib, enc.vmdata_after_mib, enc.room_mib)],
        "cap bites": ["yes" if b else "NO" for b in enc.cap_bites],
    })
    ws_rows = [
        ("points in the file", f"{ws['series']:,} x {DIM} float32 ({ws['file_mib']:.0f} MiB)"),
        ("cap on VmData growth (RLIMIT_DATA; anonymous memory within 1 GiB)",
         f"{ws['room_mib']:.0f} MiB"),
        ("VmData growth during the fit", f"{ws['vmdata_after_mib'] - ws['vmdata_before_mib']:.0f} MiB"),
        ("RssAnon before / peak", f"{ws['rss_anon_before_mib']:.0f} / "
                                  f"**{ws['rss_anon_peak_mib']:.0f}** MiB"),
        ("fit time (includes labelling every point)", f"{ws['seconds']:.1f} s"),
        ("msd", f"{ws['msd']:.4f}"),
        ("cap bites (the allocation past the limit fails)",
         f"yes ({ws['bite_mib']:.0f} MiB tried)" if ws["cap_bites"] else "NO"),
    ]
    projected = per_series * TARGET_SERIES * (TARGET_LENGTH / largest.length) ** exp_len
    ws_projected = ws["seconds"] * TARGET_EMBEDDINGS / ws["series"]
    measured_full = int(largest.series) >= TARGET_SERIES
    lines = [
        "# Out-of-core benchmark: streaming embeddings and K-Means from disk",
        "",
        f"Written by `{command}`; do not edit by hand. "
        + ("Full sizes." if measured_full else
           f"Series embedded up to **{int(largest.series):,}** of the target's "
           f"{TARGET_SERIES:,}: the target's time is **projected** from them below (run "
           "`python -m benchmarks.streaming --full` to measure it; from the projection, hours)."
           + (" The K-Means target is measured at full size." if ws["series"] >=
              TARGET_EMBEDDINGS else "")),
        "",
        "| | |", "|---|---|",
        f"| CPU | {res['cpu']} ({res['cores']} cores; "
        f"{_threads(res['threads'], 'torch thread')} used) |",
        f"| load average (1, 5, 15 min) | at start {load_start}; at end {load_end} |",
        "| versions | " + ", ".join(f"{k} {v}" for k, v in res["versions"].items()) + " |",
        "",
        "A load average above the number of cores means other jobs shared the machine and the "
        "times are inflated.",
        "",
        CAP_TEXT,
        "",
        "## 1. Embedding series from a memory-mapped file",
        "",
        ENCODE_TEXT,
        "",
        to_markdown(enc_table),
        "",
        f"Fitted time exponents: **{exp_n:.2f} in n** (length {int(largest.length)}), "
        f"**{exp_len:.2f} in length** (n = {int(by_len.series.iloc[0]):,}). Private memory "
        "does not grow with n: the chunk, its network input and the encoder's activations are "
        "the same size whatever the number of series, and the embeddings go to the output "
        "file as each chunk is done.",
        "",
        "## 2. WebScaleKMeans over 320-d embeddings streamed from disk",
        "",
        WEBSCALE_TEXT,
        "",
        to_markdown(pd.DataFrame(ws_rows, columns=["", "capped run"])),
        "",
        "## Targets",
        "",
        "| target | measured | result |",
        "|---|---|---|",
        f"| embed {TARGET_SERIES:,} x {TARGET_LENGTH} from a memory-mapped file with private "
        f"memory below 1 GB | {int(largest.series):,} x {int(largest.length)} under a "
        f"cap (proven to bite), peak RssAnon {enc.rss_anon_peak_mib.max():.0f} MiB | memory: "
        + ("met" if enc.rss_anon_peak_mib.max() < cap else "**missed**")
        + " at the measured sizes, and the bound does not depend on n; time: "
        + (f"{largest.seconds:.0f} s measured" if measured_full else
           f"**projected** {projected / 3600:.1f} h on {_threads(res['threads'])} "
           f"({1e3 * per_series:.2f} ms per series x {TARGET_SERIES:,}"
           + (f" x ({TARGET_LENGTH}/{int(largest.length)})^{exp_len:.2f}"
              if largest.length != TARGET_LENGTH else "") + ")") + " |",
        f"| time linear in n and in length | exponents {exp_n:.2f} (n), {exp_len:.2f} (length) "
        "| " + ("met" if abs(exp_n - 1) < 0.15 and abs(exp_len - 1) < 0.25 else "missed")
        + " (within 0.15 in n, 0.25 in length) |",
        f"| WebScaleKMeans on {TARGET_EMBEDDINGS:,} x 320 embeddings from disk | "
        f"{ws['series']:,} x 320 ({ws['file_mib']:.0f} MiB file), peak RssAnon "
        f"{ws['rss_anon_peak_mib']:.0f} MiB | "
        + (f"{ws['seconds']:.0f} s measured" if ws["series"] >= TARGET_EMBEDDINGS else
           f"**projected** {ws_projected / 60:.1f} min (linear in n: "
           f"{ws['seconds']:.1f} s x {TARGET_EMBEDDINGS / ws['series']:g}); the file would be "
           f"{TARGET_EMBEDDINGS * DIM * 4 / 2 ** 30:.1f} GiB, labels and distances "
           f"{TARGET_EMBEDDINGS * 12 / 2 ** 20:.0f} MiB of the cap") + " |",
        "",
    ]
    lines += _cost_projection(per_series, int(largest.length), res["threads"])
    return "\n".join(lines)


def _threads(n: int, noun: str = "thread") -> str:
    return f"{n} {noun}{'s' if n != 1 else ''}"


def _cost_projection(per_series: float, length: int, threads: int) -> list[str]:
    """Instance-hours to embed 100 million series, from the measured per-series time."""
    cpu_hours = per_series * threads * COST_SERIES / 3600
    hours = cpu_hours / COST_VCPUS
    return [
        f"## Projection: embedding {COST_SERIES:,} series on SageMaker (a projection, not a "
        "measurement)",
        "",
        "| | |", "|---|---|",
        f"| measured | {1e3 * per_series:.2f} ms per series of length {length} on "
        f"{_threads(threads, 'CPU thread')}, streamed from disk |",
        f"| CPU-hours for {COST_SERIES:,} series | {cpu_hours:,.0f} |",
        f"| instance-hours on {COST_INSTANCE} ({COST_VCPUS} vCPUs) | {hours:,.1f} |",
        f"| wall time with `batch_predict(..., instance_count={COST_INSTANCES})` | "
        f"{hours / COST_INSTANCES:,.1f} h |",
        "",
        f"Cost = {hours:,.1f} instance-hours x the on-demand price of {COST_INSTANCE} in your "
        "region (batch transform bills instance time only while the job runs), plus S3. "
        "This assumes throughput grows linearly with vCPUs and that the input is split into "
        f"at least {COST_INSTANCES} files (SageMaker gives each S3 object to one instance: "
        "`tsc_toolkit.sagemaker.staging.upload_series` splits a large collection), with no "
        "start-up or I/O time. Linear scaling with vCPUs is optimistic (a vCPU is a "
        "hyperthread), and the time per series is this run's (slower than idle when the load "
        "average above exceeds the cores). A GPU instance is not measured here (no GPU was available).",
        "",
    ]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.streaming",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--full", action="store_true", help="the targets' sizes (hours)")
    group.add_argument("--medium", action="store_true",
                       help="100,000 series and the 10M-point K-Means (about 20 min, 14 GB disk)")
    group.add_argument("--fast", action="store_true", help="a smoke run (seconds)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default=str(REPO / "docs" / "benchmarks_streaming.md"))
    parser.add_argument("--render", metavar="JSON",
                        help="rewrite the report from the .json of an earlier run")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(_child(json.loads(args.child))))
        return 0
    if args.render:
        res = json.loads(Path(args.render).read_text())
    else:
        size = ("full" if args.full else "medium" if args.medium else
                "fast" if args.fast else "small")
        res = {"load_start": load_average()}
        tic = time.perf_counter()
        res.update(run(size, args.threads))
        res.update(load_end=load_average(), seconds=time.perf_counter() - tic)
        res["command"] = "python -m benchmarks.streaming" + {
            "full": " --full", "medium": " --medium", "fast": " --fast"}.get(size, "") + (
            f" --threads {args.threads}" if args.threads != 1 else "")
        Path(args.out).with_suffix(".json").write_text(json.dumps(res, indent=1, default=str))
    text = render(res, res["command"], res["load_start"], res["load_end"])
    text += f"\n_Run time: {res['seconds']:.0f} s._\n"
    Path(args.out).write_text(text)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
