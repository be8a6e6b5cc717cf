"""How time and memory grow with the number of series and their length, stage by stage.

Every point runs in a fresh Python process (``python -m benchmarks.scaling --child ...``;
the fast mode runs them in one process): the data is made and the stage warmed up on a few
points first, then the peak resident memory (Linux ``VmHWM``, reset through
``/proc/self/clear_refs``) is compared with the resident memory before the stage. The
difference is the extra memory the stage needed on top of its input. A fresh process keeps
memory that the allocator holds from earlier points from hiding new allocations.
``tracemalloc`` was not used because it does not see torch's allocations, nor ``ru_maxrss``,
which a child process inherits from its parent.

Stages: ``encode`` (the default untrained encoder, 10 blocks x 40 filters -> 320-d; the cost
does not depend on the weights), ``cluster`` (scikit-learn KMeans, n_init=10, k=10, what
CNNKMeans runs on its embeddings), ``webscale`` (WebScaleKMeans, k=10, defaults), ``k scan``
(``tsc_toolkit.clustering.selection.scan_k`` over k = 2..10, or the same loop with scikit-learn when that
module is not installed) and ``projection`` (PCA to 2-d). Embedding-only stages run on random
L2-normalised 320-d embeddings drawn around 10 centres.
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np
import pandas as pd

from .common import (
    Config,
    PeakMemory,
    Section,
    Timer,
    fit_exponent,
    fmt_number,
    run_child,
    set_threads,
    to_markdown,
)

TARGET_SERIES = 100_000_000
KSCAN_METRICS = ("inertia", "silhouette", "calinski_harabasz", "davies_bouldin")


def random_embeddings(n: int, dim: int, seed: int = 0, chunk: int = 100_000) -> np.ndarray:
    """``n`` L2-normalised float32 points around 10 random centres (made in chunks)."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((10, dim)).astype(np.float32)
    out = np.empty((n, dim), dtype=np.float32)
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        labels = rng.integers(0, 10, stop - start)
        z = centres[labels] + 0.7 * rng.standard_normal((stop - start, dim), dtype=np.float32)
        out[start:stop] = z / np.linalg.norm(z, axis=1, keepdims=True)
    return out


def _stage(stage: str, n: int, length: int, dim: int, threads: int) -> dict:
    """Run one measurement in this process and return its time and memory."""
    set_threads(threads)
    info = {}
    if stage == "encode":
        import torch

        from tsc_toolkit.data import series_lengths
        from tsc_toolkit.embedding.encoder import CausalCNNEncoder, encode, prepare_input

        rng = np.random.default_rng(0)
        X = rng.standard_normal((n, 1, length)).astype(np.float32)
        inputs, lengths = prepare_input(X), series_lengths(X)
        torch.manual_seed(0)
        encoder = CausalCNNEncoder(2, 40, 10, 160, 320, 3)
        encode(encoder, inputs[:16], lengths[:16], torch.device("cpu"))  # warm-up

        def work():
            encode(encoder, inputs, lengths, torch.device("cpu"))
    else:
        Z = random_embeddings(n, dim)
        small = Z[:200]
        if stage == "cluster":
            from sklearn.cluster import KMeans

            def work(data=Z):
                KMeans(n_clusters=10, n_init=10, random_state=0).fit(data)
        elif stage == "webscale":
            from tsc_toolkit.clustering.kmeans import WebScaleKMeans

            def work(data=Z):
                WebScaleKMeans(k=10, random_state=0, device="cpu").fit(data)
        elif stage == "kscan":
            from tsc_toolkit.clustering.selection import scan_k

            info["how"] = "tsc_toolkit.clustering.selection.scan_k"

            def work(data=Z):
                scan_k(data, range(2, 11), metrics=KSCAN_METRICS, random_state=0)
        elif stage == "projection":
            from sklearn.decomposition import PCA

            def work(data=Z):
                PCA(n_components=2, random_state=0).fit_transform(data)
        else:
            raise ValueError(f"unknown stage {stage!r}")
        work(small)  # warm-up: thread pools, kernels
    with PeakMemory() as mem, Timer() as t:
        work()
    return {"seconds": t.seconds, "extra_mib": mem.extra_mib, "peak_mib": mem.peak, **info}


def _points(cfg: Config) -> list[dict]:
    pts = [{"stage": "encode", "axis": "n", "n": n, "length": 100} for n in cfg.encode_n]
    pts += [{"stage": "encode", "axis": "length", "n": cfg.encode_length_n, "length": L}
            for L in cfg.encode_lengths]
    for stage, ns in (("cluster", cfg.cluster_n), ("webscale", cfg.webscale_n),
                      ("kscan", cfg.kscan_n), ("projection", cfg.projection_n)):
        pts += [{"stage": stage, "axis": "n", "n": n, "length": 0} for n in ns]
    return pts


def run(cfg: Config) -> Section:
    section = Section("scaling", "Scaling: time and memory per stage")
    rows = []
    with Timer() as total:
        for p in _points(cfg):
            payload = {**p, "dim": cfg.embedding_dim, "threads": cfg.threads}
            try:
                out = (run_child("benchmarks.scaling", payload) if cfg.isolate else
                       _stage(p["stage"], p["n"], p["length"], cfg.embedding_dim, cfg.threads))
            except Exception as exc:  # one failed point should not lose the others
                out = {"seconds": np.nan, "extra_mib": np.nan, "peak_mib": np.nan,
                       "error": str(exc)[-200:]}
            rows.append({**p, **out})
    points = pd.DataFrame(rows)
    section.seconds = total.seconds
    section.tables["points"] = points
    section.tables["exponents"] = exponents(points)
    section.tables["projection"] = projection(points, cfg)
    shown = points.assign(
        series=points.n.map(lambda v: f"{v:,}"),
        length=points.length.map(lambda v: str(v) if v else f"{cfg.embedding_dim}-d embedding"),
        time=points.seconds.map(lambda s: f"{s:.3g} s"),
        per_series=(points.seconds / points.n * 1e6).map(lambda s: f"{s:.3g} µs"),
        extra=points.extra_mib.map(lambda m: f"{m:.0f} MiB"),
        peak=points.peak_mib.map(lambda m: f"{m:.0f} MiB"),
    )[["stage", "axis", "series", "length", "time", "per_series", "extra", "peak"]]
    shown.columns = ["stage", "varied", "series", "length", "time", "time per series",
                     "extra memory (peak RSS delta)", "process peak RSS"]
    section.markdown["points"] = to_markdown(shown)
    section.markdown["exponents"] = to_markdown(section.tables["exponents"])
    section.markdown["projection"] = to_markdown(section.tables["projection"])
    how = sorted({h for h in points.get("how", pd.Series(dtype=str)).dropna()})
    section.intro = (__doc__.split("\n\n", 1)[1].strip()
                     + f"\n\nThe k scan here used: {', '.join(how) or 'n/a'}"
                     + f" (metrics {', '.join(KSCAN_METRICS)}; the gap statistic is left out: it "
                     "clusters 10 reference sets per k and would multiply the cost by about 11).")
    if "error" in points:
        for row in points[points.error.notna()].itertuples():
            section.notes.append(f"{row.stage} n={row.n} length={row.length}: {row.error}")
    return section


def exponents(points: pd.DataFrame) -> pd.DataFrame:
    """The log-log slope of time and of extra memory for each stage and varied quantity."""
    rows = []
    for (stage, axis), g in points.groupby(["stage", "axis"], sort=False):
        x = g.n if axis == "n" else g.length
        rows.append({"stage": stage, "varied": axis,
                     "range": f"{int(x.min()):,} – {int(x.max()):,}",
                     "time exponent": fit_exponent(x, g.seconds),
                     "memory exponent": fit_exponent(x, g.extra_mib.clip(lower=1e-3))})
    return pd.DataFrame(rows)


def projection(points: pd.DataFrame, cfg: Config) -> pd.DataFrame:
    """Projected cost of 100 million series from the largest measured point of each stage.

    t(N) = t(n_max) x (N / n_max) ** b, with b = 1 for the one-pass stages (encode, web-scale
    K-Means, PCA) and the measured time exponent (at least 1) for the k scan. CPU-hours are 2-core machine hours as measured;
    instance hours assume throughput grows linearly with vCPUs (optimistic for small kernels).
    """
    rows = []
    vcpus, instances = 36, 10  # ml.c5.9xlarge has 36 vCPUs
    for stage in ("encode", "webscale", "kscan", "projection"):
        g = points[(points.stage == stage) & (points.axis == "n")]
        if stage == "encode":
            g = g[g.length == 100]
        g = g[np.isfinite(g.seconds)]
        if len(g) < 1:
            continue
        # Encoding, streaming K-Means and PCA make one pass in fixed-size batches: linear by
        # construction, so a fitted slope above 1 there is load noise. The k scan's K-Means
        # iterations may grow with n: keep its fitted slope (at least 1).
        linear = stage in ("encode", "webscale", "projection")
        b = 1.0 if linear or len(g) < 2 else max(1.0, fit_exponent(g.n, g.seconds))
        last = g.sort_values("n").iloc[-1]
        n_target = TARGET_SERIES if stage in ("encode", "webscale") else 1_000_000
        hours = last.seconds * (n_target / last.n) ** b / 3600
        instance_hours = hours * cfg.threads / vcpus
        rows.append({
            "stage": {"encode": "encode (length 100)", "webscale": "WebScaleKMeans, k=10",
                      "kscan": "k scan on a 1M sample", "projection": "PCA on a 1M sample"}[stage],
            "series": f"{n_target:,}",
            "from": f"{int(last.n):,} in {last.seconds:.3g} s",
            "exponent used": round(b, 2),
            "2-core hours": fmt_number(hours),
            f"hours on {instances} x ml.c5.9xlarge": fmt_number(instance_hours / instances),
        })
    return pd.DataFrame(rows)


def _child_main(argv) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--child", required=True)
    args = parser.parse_args(argv)
    p = json.loads(args.child)
    out = _stage(p["stage"], int(p["n"]), int(p["length"]), int(p["dim"]), int(p["threads"]))
    print(json.dumps(out))


if __name__ == "__main__":
    _child_main(sys.argv[1:])
