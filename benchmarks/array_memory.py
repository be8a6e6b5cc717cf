"""Memory of ``model.transform(X)`` for arrays: a memory-mapped file and a large array in RAM.

The most ordinary out-of-core idiom, ``X = np.load("series.npy", mmap_mode="r")`` then
``model.transform(X)``, and a large array already in memory. Each row runs in a fresh process
(``streaming.CAP_TEXT`` says how the cap is set and checked): the input is opened (or, for
the in-memory row, allocated and filled) and the model warmed up before the baseline is read;
then ``RLIMIT_DATA`` allows the embeddings that ``transform`` returns plus twice the
target's working room and no more, ``RssAnon`` is sampled every 10 ms during the call, and afterwards
an allocation past the cap must fail. Usage (run alone, about 10 minutes on 2 cores)::

    python -m benchmarks.array_memory                # the issue's sizes
    python -m benchmarks.array_memory --fast         # a smoke run (seconds)

It writes docs/benchmarks_array_memory.md and the raw numbers as .json beside it.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from .common import REPO, Timer, _status_mib, run_child, set_threads
from .report import cpu_count, cpu_model, load_average, versions
from .streaming import _AnonPeak, _cap_bites, save_model, write_series

#: name -> (series, length, model, target: working memory beyond the returned embeddings, MiB)
SIZES = {
    "full": {"memmap": (200_000, 500, "default", 250),
             "in-memory": (1_073_742, 500, "small", 300)},  # 2 GiB of float32
    "fast": {"memmap": (6_000, 100, "small", 250), "in-memory": (12_000, 100, "small", 300)},
}
#: A small encoder for the 2 GiB row (the default one would take 40 minutes on 2 cores); the
#: memory a chunk needs is what is measured, and it does not grow with the network.
SMALL = dict(blocks=2, filters=16, reduced_size=16, output_size=16)


def save_small_model(path: Path) -> None:
    from tsc_toolkit import CNNKMeans
    from tsc_toolkit.io.datasets import make_series

    X, _ = make_series(64, length=100, random_state=0)
    CNNKMeans(clusters=4, epochs=1, max_steps=1, n_init=1, random_state=0, device="cpu",
              verbose=0, **SMALL).fit(X).save(path)


def _child(p: dict) -> dict:
    set_threads(int(p["threads"]))
    from tsc_toolkit import CNNKMeans, streaming
    from tsc_toolkit.io import sources

    if p.get("chunk"):  # series per chunk, when not the default
        sources.CHUNK_SIZE = streaming.CHUNK_SIZE = int(p["chunk"])

    model = CNNKMeans.load(p["model"], device="cpu")
    mapped = np.load(p["path"], mmap_mode="r")
    if p["kind"] == "memmap":
        X = mapped
    else:  # an array in memory, filled from the file a slice at a time
        X = np.empty(mapped.shape, dtype=np.float32)
        for start in range(0, len(X), 50_000):
            X[start:start + 50_000] = mapped[start:start + 50_000]
    model.transform(np.array(mapped[:256]))  # one-off allocations (kernels, arenas) first
    width = int(model.encoder_stage_.output_size)
    output_mib = len(X) * width * 4 / 2 ** 20
    before = {"input_mib": X.nbytes / 2 ** 20, "output_mib": output_mib,
              "rss_anon_before_mib": _status_mib("RssAnon"),
              "vmdata_before_mib": _status_mib("VmData")}
    # The cap leaves twice the target's room: glibc's arenas for torch's threads make the
    # resident growth vary by about 100 MiB from run to run on the same input, and a run cut
    # short by the cap would measure nothing. The growth is reported against the target.
    room = output_mib + 2 * float(p["target_mib"])
    limit = _status_mib("VmData") + room
    _cap_at(limit)
    with _AnonPeak() as anon, Timer() as t:
        Z = model.transform(X)
    assert Z.shape == (len(X), width)
    bites, bite_mib = _cap_bites(limit)
    return {**p, **before, "seconds": t.seconds, "rss_anon_peak_mib": anon.peak,
            "vmdata_after_mib": _status_mib("VmData"), "room_mib": room,
            "cap_bites": bites, "bite_mib": bite_mib, "width": width}


def _cap_at(limit_mib: float) -> None:
    import resource

    resource.setrlimit(resource.RLIMIT_DATA,
                       (int(limit_mib * 2 ** 20), resource.getrlimit(resource.RLIMIT_DATA)[1]))


def run(size: str = "full", threads: int = 2, log=print) -> dict:
    rows = []
    with tempfile.TemporaryDirectory(prefix="tsc-array-memory-") as tmp:
        tmp = Path(tmp)
        models = {"default": tmp / "default", "small": tmp / "small"}
        save_model(models["default"])
        save_small_model(models["small"])
        for kind, (n, length, model, room) in SIZES[size].items():
            path = tmp / f"{kind}.npy"
            log(f"[array memory] writing {n:,} x {length} ...")
            write_series(path, n, length)
            log(f"[array memory] transform of the {kind} array ...")
            rows.append(run_child("benchmarks.array_memory", {
                "kind": kind, "path": str(path), "model": str(models[model]),
                "model_size": model, "series": n, "length": length, "target_mib": room,
                "threads": threads}, timeout=3600))
            path.unlink()
    return {"size": size, "threads": threads, "rows": rows, "cpu": cpu_model(),
            "cores": cpu_count(), "versions": versions()}


def render(res: dict) -> str:
    lines = [
        "# Memory of `transform` on large arrays",
        "",
        f"Written by `{res['command']}`; do not edit by hand. "
        + " ".join(__doc__.split("\n\n")[1].split()),
        "",
        "| | |", "|---|---|",
        f"| CPU | {res['cpu']} ({res['cores']} cores; {res['threads']} torch threads) |",
        f"| load average (1, 5, 15 min) | at start {res['load_start']}; at end "
        f"{res['load_end']} |",
        f"| versions | {', '.join(f'{k} {v}' for k, v in res['versions'].items())} |",
        "",
        "The default model is the default architecture (10 blocks x 40 filters, 320-d "
        "embeddings); the small one has 2 blocks x 16 filters and 16-d embeddings (same "
        "chunks, so the same working memory, in a fraction of the time).",
        "",
        "| input | model | time | returned embeddings | RssAnon before / peak | growth | "
        "growth beyond the embeddings (target) | cap on VmData growth |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in res["rows"]:
        growth = r["rss_anon_peak_mib"] - r["rss_anon_before_mib"]
        beyond = growth - r["output_mib"]
        name = (f"`np.load(..., mmap_mode='r')`, {r['series']:,} x 1 x {r['length']} "
                f"({r['input_mib']:.0f} MiB file)" if r["kind"] == "memmap" else
                f"array in memory, {r['series']:,} x 1 x {r['length']} "
                f"({r['input_mib']:.0f} MiB)")
        ok = beyond < r["target_mib"]
        lines.append(
            f"| {name} | {r['model_size']} | {r['seconds']:.0f} s | {r['output_mib']:.0f} MiB |"
            f" {r['rss_anon_before_mib']:.0f} / {r['rss_anon_peak_mib']:.0f} MiB | "
            f"{growth:.0f} MiB | **{beyond:.0f} MiB** (< {r['target_mib']:.0f} MiB: "
            f"{'met' if ok else 'NOT met'}) | {r['room_mib']:.0f} MiB, "
            f"{'bites' if r['cap_bites'] else 'DOES NOT bite'} |")
    lines += ["", "Growth is the peak of `RssAnon` during the call less its value before. "
              "The embeddings `transform` returns are part of it (n x width x 4 bytes); the "
              "target bounds the rest. Before arrays were read in chunks, the same memmap call "
              "grew by about 2,000 MiB (5.2 times the file): the whole array was converted, "
              "scaled, masked and padded at once.", "", f"_Run time: {res['seconds']:.0f} s._", ""]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.array_memory",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--fast", action="store_true", help="a smoke run (seconds)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default=str(REPO / "docs" / "benchmarks_array_memory.md"))
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(_child(json.loads(args.child))))
        return 0
    res = {"load_start": load_average()}
    tic = time.perf_counter()
    res.update(run("fast" if args.fast else "full", args.threads,
                   log=lambda m: print(m, file=sys.stderr, flush=True)))
    res.update(load_end=load_average(), seconds=time.perf_counter() - tic,
               command="python -m benchmarks.array_memory" + (" --fast" if args.fast else ""))
    out = Path(args.out)
    out.with_suffix(".json").write_text(json.dumps(res, indent=1, default=str))
    out.write_text(render(res))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
