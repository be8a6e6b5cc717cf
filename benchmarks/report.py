"""Turn benchmark sections into ``docs/benchmarks.md``: machine, versions, date, command, tables."""

from __future__ import annotations

import datetime as dt
import os
import platform
from collections.abc import Sequence
from importlib import metadata

import numpy as np
import pandas as pd

from .common import Config, Section, fmt_seconds, to_markdown

PACKAGES = ("torch", "numpy", "scikit-learn", "scipy", "aeon", "tslearn", "sktime", "tsc_toolkit")


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def memory_gib() -> float:
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) / 2 ** 20
    except OSError:
        pass
    return float("nan")


def cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def load_average() -> str:
    try:
        return " / ".join(f"{v:.1f}" for v in os.getloadavg())
    except OSError:
        return "n/a"


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def gpu() -> str:
    import torch

    if torch.cuda.is_available():
        return ", ".join(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count()))
    return "none (no GPU on this machine)"


def environment(cfg: Config, command: str, load_start: str) -> pd.DataFrame:
    rows = [
        ("date (UTC)", dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M")),
        ("command", f"`{command}`"),
        ("mode", "fast (CI size)" if cfg.fast else "full"),
        ("CPU", cpu_model()),
        ("cores available / threads used", f"{cpu_count()} / {cfg.threads}"),
        ("RAM", f"{memory_gib():.1f} GiB"),
        ("GPU", gpu()),
        ("load average (1/5/15 min) at start / end", f"{load_start} ; {load_average()}"),
        ("OS", platform.platform()),
    ]
    rows += [(f"version: {k}", v) for k, v in versions().items()]
    return pd.DataFrame(rows, columns=["", "value"])


def render(sections: Sequence[Section], cfg: Config, command: str, load_start: str,
           total_seconds: float) -> str:
    by_key = {s.key: s for s in sections}
    out = [
        "# Benchmarks",
        "",
        "Measured numbers for tsc_toolkit and its peers on the same data in the same run. "
        "This file is written by `python -m benchmarks.run` (`make bench`); do not edit it by "
        "hand, rerun it. Where a peer does better, the tables show it: the best value in each "
        "row is bold whatever the method.",
        "",
        "Out of core (series embedded from a memory-mapped file under a memory cap, "
        "WebScaleKMeans over embeddings on disk): [benchmarks_streaming.md]"
        "(benchmarks_streaming.md), written by `python -m benchmarks.streaming`. Choosing k "
        "(how often each criterion of `scan_k` finds the number of classes on the panel): "
        "[benchmarks_k.md](benchmarks_k.md) (each k clustered as the estimator clusters) and "
        "[benchmarks_k_kmeans.md](benchmarks_k_kmeans.md) (K-Means), written by `python -m "
        "benchmarks.choose_k`. Other "
        "clustering stages and other random-kernel views on the saved features of the default "
        "fits: [benchmarks_stages.md](benchmarks_stages.md) (`python -m "
        "benchmarks.clustering_stages`) and [benchmarks_views.md](benchmarks_views.md) "
        "(`python -m benchmarks.kernel_views`). Independent check on 18 held-out UCR sets "
        "that no default was tuned on: [benchmarks_holdout.md](benchmarks_holdout.md) "
        "(`python -m benchmarks.run --only quality --datasets holdout`), with the stages and "
        "views on their features in [benchmarks_stages_holdout.md]"
        "(benchmarks_stages_holdout.md) and [benchmarks_views_holdout.md]"
        "(benchmarks_views_holdout.md), and the k scans in [benchmarks_k_holdout.md]"
        "(benchmarks_k_holdout.md) and [benchmarks_k_holdout_kmeans.md]"
        "(benchmarks_k_holdout_kmeans.md).",
        "",
        f"Total time of this run: {fmt_seconds(total_seconds)}"
        + (" (fast mode: tiny sizes, numbers are only a smoke test)." if cfg.fast else
           " (the quality section was rebuilt from per-fit tables saved by an earlier run; "
           "its own time is at its end)." if "--quality-from" in command else "."),
        "",
        "## Machine and versions",
        "",
        to_markdown(environment(cfg, command, load_start)),
        "",
        "The machine is shared: a load average above the number of cores means other work ran "
        "at the same time, and wall times are then inflated (treat them as ±30 % or worse).",
        "",
    ]
    number = 0
    for key in ("quality", "speed", "kmeans", "scaling"):
        if key not in by_key:
            continue
        number += 1
        s = by_key[key]
        out += [f"## {number}. {s.title}", "", s.intro, ""]
        out += globals()[f"_body_{key}"](s)
        if s.notes:
            out += ["Notes:", ""] + [f"- {n}" for n in s.notes] + [""]
        out += [f"_Section time: {fmt_seconds(s.seconds)}._", ""]
    return "\n".join(out).rstrip() + "\n"


def _body_quality(s: Section) -> list[str]:
    from .quality import wins

    w = wins(s.tables["runs"])
    lines = ["### Panel summary", "", s.markdown["panel"], "",
             "Mean NMI per group:", "", s.markdown["groups"], "",
             "### Targets of CNN-KMeans at its defaults", "", s.markdown["targets"], "",
             "### Datasets", "", s.markdown["datasets"], "",
             "### NMI (mean ± std over seeds)", "", s.markdown["nmi"], "",
             "### ARI (mean ± std over seeds)", "", s.markdown["ari"], "",
             "### Wall time per fit (mean over seeds)", "", s.markdown["seconds"], "",
             "Best mean NMI per dataset (ties counted for each):", ""]
    lines += [f"- {m}: {len(d)} ({', '.join(d) if d else 'none'})" for m, d in w.items()]
    lines += ["", "### Published NMI, for context (not measured here)", "",
              "From Lafabregue et al. (DMKD 2022), per-dataset means over 5 seeds, as listed in "
              "the project's algorithm notes. Their protocol differs: the encoder is trained on "
              "the train split and K-Means is scored on the test split only, with a TensorFlow "
              "port of T-Loss and without L2-normalised embeddings. OSULeaf and PLAID are not in "
              "those tables.", "", s.markdown["published"], ""]
    return lines


def _body_speed(s: Section) -> list[str]:
    return [s.markdown["training"], ""]


def _body_scaling(s: Section) -> list[str]:
    return [
        "### Measurements", "", s.markdown["points"], "",
        "### Exponents (slope of log time and log extra memory against log size)", "",
        s.markdown["exponents"], "",
        "An exponent of 1 is linear. Memory exponents of small deltas (a few MiB) are noise.", "",
        "### Projection to 100 million series (a projection, not a measurement)", "",
        s.markdown["projection"], "",
        "How this is computed: the time of the largest measured point of each stage, scaled "
        "to the target size linearly for the one-pass stages (encode, web-scale K-Means, PCA) "
        "and with the measured time exponent (at least 1) for the k scan, on this "
        "machine's 2 CPU threads. The instance column divides by 18, assuming throughput grows "
        "linearly with vCPUs (36 vCPUs per ml.c5.9xlarge, 10 instances, data split evenly, "
        "no I/O or start-up time), which is optimistic; a GPU instance would change the encode "
        "row the most and is not measured here. Training is not in the table: its cost is set "
        "by the step budget (`max_steps`, or epochs x series / batch size), not by the number of "
        "series to cluster; train on a sample, then encode everything "
        "(steps per second are in the training-speed section). The k scan and PCA run on a "
        "1-million-series sample of the embeddings, which is how they would be used at that "
        "scale.", "",
    ]


def _body_kmeans(s: Section) -> list[str]:
    return ["### Time and quality", "", s.markdown["compare"], "",
            "### Fitting from a memory-mapped file under a memory cap", "",
            s.markdown["memmap"], ""]


def figures(sections: Sequence[Section], directory) -> list[str]:
    """Draw the quality and scaling figures as SVG files; returns their file names.

    Needs matplotlib (not a dependency of the toolkit); without it, no figures are drawn.
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    from pathlib import Path

    import numpy as np

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    by_key = {s.key: s for s in sections}
    names = []
    if "quality" in by_key:
        from .quality import METHODS

        runs = by_key["quality"].tables["runs"]
        ok = runs[runs.status == "ok"]
        stats = ok.groupby(["dataset", "method"]).nmi.agg(["mean", "std"]).fillna(0)
        datasets = list(dict.fromkeys(runs.dataset))
        fig, ax = plt.subplots(figsize=(10, 4))
        width = 0.8 / len(METHODS)
        for i, method in enumerate(METHODS):
            means = [stats["mean"].get((d, method), np.nan) for d in datasets]
            stds = [stats["std"].get((d, method), 0.0) for d in datasets]
            ax.bar(np.arange(len(datasets)) + (i - (len(METHODS) - 1) / 2) * width, means,
                   width, yerr=stds, label=method, capsize=2)
        ax.set_xticks(np.arange(len(datasets)), datasets)
        ax.set_ylabel("NMI (mean ± std over seeds)")
        ax.set_title("Clustering quality (missing bar = skipped)")
        ax.legend(fontsize=8, ncols=3)
        fig.tight_layout()
        fig.savefig(directory / "bench_quality.svg")
        plt.close(fig)
        names.append("bench_quality.svg")
    if "scaling" in by_key:
        points = by_key["scaling"].tables["points"]
        fig, axes = plt.subplots(1, 2, figsize=(10, 4))
        for (stage, axis), g in points.groupby(["stage", "axis"], sort=False):
            ax = axes[1] if axis == "length" else axes[0]
            x = g.length if axis == "length" else g.n
            ax.loglog(x, g.seconds, "o-", label=stage)
        axes[0].set_xlabel("series")
        axes[1].set_xlabel("series length (encode)")
        for ax in axes:
            ax.set_ylabel("seconds")
            ax.legend(fontsize=8)
            ax.grid(True, which="both", alpha=0.3)
        fig.suptitle("Time per stage (log-log)")
        fig.tight_layout()
        fig.savefig(directory / "bench_scaling.svg")
        plt.close(fig)
        names.append("bench_scaling.svg")
    return names


def results_summary(sections: Sequence[Section], cfg: Config, link: str = "docs/benchmarks.md"
                    ) -> str:
    """A short "Results" section for the README, computed from the same tables.

    Every dataset is listed, with the best method whoever it is; no selection.
    """
    by_key = {s.key: s for s in sections}
    out = ["## Results", ""]
    if "quality" in by_key:
        from .quality import CNN, METHODS, RAW

        runs = by_key["quality"].tables["runs"]
        ok = runs[runs.status == "ok"]
        means = ok.groupby(["dataset", "method"]).nmi.mean().unstack()
        stds = ok.groupby(["dataset", "method"]).nmi.std(ddof=0).unstack()
        rows, cnn_best, cnn_beats_raw, cnn_ties_raw, compared = [], 0, 0, 0, 0
        for name in cfg.datasets:
            if name not in means.index:
                continue
            row = means.loc[name].dropna()
            best_method = row.idxmax()
            peers = row.drop(CNN, errors="ignore")
            best_peer = peers.idxmax() if len(peers) else None
            cnn = row.get(CNN, np.nan)
            if np.isfinite(cnn) and abs(cnn - row.max()) < 5e-4:
                cnn_best += 1
            if np.isfinite(cnn) and RAW in row:
                compared += 1
                # the tables show three decimals: a smaller difference is a tie, not a win
                cnn_beats_raw += int(cnn - row[RAW] >= 5e-4)
                cnn_ties_raw += int(abs(cnn - row[RAW]) < 5e-4)
            rows.append({
                "dataset": name,
                "CNN-KMeans NMI": f"{cnn:.3f} ± {stds.loc[name].get(CNN, np.nan):.3f}",
                "K-Means raw NMI": f"{row.get(RAW, np.nan):.3f}",
                "best other method": (f"{best_peer} ({peers[best_peer]:.3f})"
                                      if best_peer else "–"),
                "best overall": best_method,
            })
        q = by_key["quality"]
        budget = ("its defaults" if cfg.cnn_max_steps is None
                  else f"a {cfg.cnn_max_steps}-step budget")
        out += [
            f"Clustering quality on the development panel: {len(rows)} UCR/UEA sets "
            "(univariate, multivariate, varying length, and with injected gaps; train and test "
            f"merged, k = number of classes, {len(cfg.seeds)} seed(s), NMI mean ± std). "
            f"CNN-KMeans ran at {budget}. It has the best mean NMI on {cnn_best} of "
            f"{len(rows)} sets and beats K-Means on z-normalised raw series on "
            f"{cnn_beats_raw} of {compared}"
            + (f" (tied to three decimals on {cnn_ties_raw})" if cnn_ties_raw else "")
            + ". "
            + _peer_wins_sentence(runs, METHODS),
            "",
        ]
        for key, lead in (("panel", None),
                          ("targets", "Targets for CNN-KMeans at its defaults, as measured in "
                                      "this run:"),
                          ("groups", "Mean NMI per group:")):
            if key in q.tables and not q.tables[key].empty:
                out += ([lead, ""] if lead else []) + [to_markdown(q.tables[key]), ""]
        out += [to_markdown(pd.DataFrame(rows)), ""]
    if "speed" in by_key:
        t = by_key["speed"].tables["training"]
        cpu = t[t.device == "cpu"].set_index("data")
        out += [
            "Training speed at fg-research's default hyperparameters on "
            f"{cfg.threads} CPU threads: "
            + "; ".join(f"{kind} {r.steps_per_s:.2f} steps/s ({r.series_per_s:.1f} series/s, "
                        f"{r.relative_to_equal:.2f}x equal length)"
                        for kind, r in cpu.iterrows())
            + f". Encoding runs at about {cpu.encode_series_per_s.iloc[0]:.0f} series/s "
            "(length "
            f"{cfg.speed_length}). "
            + ("GPU rows are in the full report." if (t.device == "cuda").any()
               else "No GPU was available for these runs."),
            "",
        ]
    if "kmeans" in by_key:
        t = by_key["kmeans"].tables["compare"]
        memmap = by_key["kmeans"].tables.get("memmap")
        out += [
            f"K-Means on {cfg.kmeans_n:,} x {cfg.kmeans_dim} points ({cfg.kmeans_k} blobs):",
            "",
            to_markdown(pd.DataFrame({
                "method": t.method, "fit time": [f"{s:.1f} s" for s in t.seconds],
                "msd / KMeans msd": [f"{r:.4f}" for r in t.msd_ratio]})),
            "",
        ]
        if memmap is not None:
            mem = memmap.iloc[0]
            out += [f"WebScaleKMeans fitted a {mem.file_mib:.0f} MiB memory-mapped file with new "
                    f"private memory capped at {int(mem.bound_mib)} MiB (glibc's default "
                    "allocator); private memory grew by "
                    f"{mem.vmdata_after_mib - mem.vmdata_before_mib:.0f} MiB, mostly the labels "
                    "and distances of every point.", ""]
    if "scaling" in by_key:
        e = by_key["scaling"].tables["exponents"]
        parts = [f"{r['stage']} over {r['varied']}: {r['time exponent']:.2f}"
                 for r in e.to_dict("records")]
        out += ["Measured time exponents (log-log slope): " + "; ".join(parts) + ".", ""]
    out += [f"All tables, the machine and the versions: [{link}]({link}).", ""]
    return "\n".join(out)


def _peer_wins_sentence(runs, methods) -> str:
    from .quality import wins

    w = wins(runs)
    parts = [f"{m} on {len(d)} ({', '.join(d)})" for m, d in w.items() if d]
    return "Best mean NMI per dataset: " + "; ".join(parts) + "." if parts else ""
