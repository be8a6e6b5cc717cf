"""Comparisons of variants on the saved features of the default CNN-KMeans fits.

`benchmarks.clustering_stages` (other clustering stages) and `benchmarks.kernel_views` (other
random-kernel views) both score one variant per row of a per-fit table (columns ``dataset``,
``group``, ``seed``, the variant's column, ``nmi``, ``seconds``); this module turns such a
table into the panel, group and set tables and writes the report around them.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from .common import REPO, Config, set_threads, to_markdown
from .report import cpu_count, cpu_model, load_average


def best_peer(path=None) -> pd.Series:
    """The best peer's mean NMI (over seeds) on each set, from the peer runs the quality
    benchmark stores (``path``, default its ``Config.peer_cache``); empty where none are
    stored."""
    path = Path(path or Config().peer_cache)
    if not path.exists():
        return pd.Series(dtype=float)
    peers = pd.read_csv(path)
    ok = peers[peers.status == "ok"]
    return ok.groupby(["dataset", "method"]).nmi.mean().groupby("dataset").max()


def tables(runs: pd.DataFrame, by: str, default: str, seconds: str | None = None,
           peers: pd.Series | None = None) -> dict[str, pd.DataFrame]:
    """Panel, group and per-set means (over seeds) of each variant's NMI (variants in column
    ``by``, in order of appearance); with ``seconds``, the summary also holds each variant's
    median seconds per fit under that name. With ``peers`` (the best peer's mean NMI per set,
    as :func:`best_peer` reads it), the summary counts the sets where the variant is at least
    as good as every peer ("best on", ties within 5e-4 counting, as in the quality report)."""
    names = list(dict.fromkeys(runs[by]))
    per_set = runs.groupby(["dataset", by], sort=False).nmi.mean().unstack()[names]
    panel = per_set.mean()
    by_group = (runs.groupby(["group", by], sort=False).nmi.mean().unstack()[names]
                .reset_index())
    summary = pd.DataFrame({by: names, "panel mean NMI": panel.to_numpy(),
                            "vs default": (panel - panel.get(default, np.nan)).to_numpy()})
    if peers is not None and len(peers):
        best = peers.reindex(per_set.index)
        won = per_set.sub(best, axis=0).ge(-5e-4)
        summary[f"best on (of {int(best.notna().sum())}, vs stored peers)"] = (
            won.sum().to_numpy())
    if seconds is not None:
        summary[seconds] = runs.groupby(by, sort=False).seconds.median()[names].to_numpy()
    return {"summary": summary, "groups": by_group, "sets": per_set.reset_index()}


def sections(t: dict[str, pd.DataFrame]) -> list[str]:
    """The panel, group and set tables of :func:`tables`, as report lines."""
    return ["## Panel", "", to_markdown(t["summary"]), "",
            "## Groups", "", to_markdown(t["groups"]), "",
            "## Sets", "", to_markdown(t["sets"]), ""]


def command_line(module: str, argv=None) -> str:
    """``python -m module`` and its arguments (``argv``, else this process's), each quoted as a
    shell needs it: variant names hold spaces, ";" and "|"."""
    return f"python -m {module} " + " ".join(
        shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))


def variant_arguments(parser: argparse.ArgumentParser, variants, seeds: str) -> None:
    """The options of a benchmark that runs ``variants`` on panel sets: ``--datasets``,
    ``--seeds``, ``--variants`` (separated by ;) and ``--threads``."""
    parser.add_argument("--datasets", default="panel", help="panel, holdout, or names")
    parser.add_argument("--seeds", default=seeds)
    parser.add_argument("--variants", default=";".join(variants), help="separated by ;")
    parser.add_argument("--threads", type=int, default=2)


def chosen(parser: argparse.ArgumentParser, args, variants) -> tuple[tuple, list, list]:
    """``(datasets, seeds, variants)`` from the options of :func:`variant_arguments`; an
    unknown variant is an error of the command line, before anything runs. Sets the threads."""
    from .panel import HOLDOUT, PANEL

    datasets = {"panel": PANEL, "holdout": HOLDOUT}.get(args.datasets) or \
        tuple(args.datasets.split(","))
    seeds = [int(s) for s in args.seeds.split(",")]
    names = [v.strip() for v in args.variants.split(";") if v.strip()]
    unknown = [v for v in names if v not in variants]
    if unknown:
        parser.error(f"unknown variant(s): {'; '.join(unknown)}")
    set_threads(args.threads)
    return datasets, seeds, names


def write_report(path: Path, t: dict, *, module: str, argv, title: str, intro: str,
                 started: tuple, seeds, run_note: str = "") -> None:
    """A variants report: the title, who writes it, ``intro``, the command, machine, load,
    seeds and run time (``started``: the load average and ``perf_counter`` at the start),
    then the tables of :func:`tables`."""
    load_start, tic = started
    command = command_line(module, argv)
    Path(path).write_text("\n".join([
        f"# {title}",
        "",
        f"Written by `python -m {module}`; do not edit by hand. " + intro,
        "",
        f"Command: `{command.strip()}`. Machine: {cpu_model()}, {cpu_count()} cores; load "
        f"average at start {load_start}, at end {load_average()}. Seeds: {seeds}. Run time: "
        f"{time.perf_counter() - tic:.0f} s{run_note}.",
        "",
        *sections(t),
    ]))


def main(argv, *, module: str, description: str, option: str, choices, out: str,
         run: Callable, tables: Callable, title: str, intro: Callable[[], str]) -> int:
    """The command line of a comparison: ``--features``, ``--out``, ``--<option>`` (a comma-
    separated subset of ``choices``; ``option`` is a plural such as "stages") and ``--threads``; runs ``run(folder, chosen)``, saves the
    per-fit table next to the report (.csv) and writes the report."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--features", default=str(REPO / "build" / "panel_features"))
    parser.add_argument("--out", default=str(REPO / "docs" / out))
    parser.add_argument(f"--{option}", default=",".join(choices))
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    chosen = [s.strip() for s in getattr(args, option).split(",") if s.strip()]
    unknown = set(chosen) - set(choices)
    if unknown:
        parser.error(f"unknown {option[:-1]}(s): {', '.join(sorted(unknown))}")
    set_threads(args.threads)
    load_start, tic = load_average(), time.perf_counter()
    runs = run(Path(args.features), chosen)
    path = Path(args.out)
    runs.to_csv(path.with_suffix(".csv"), index=False)
    t = tables(runs)
    from .panel import HOLDOUT
    from .sanity import CASES

    if set(runs.dataset) <= set(HOLDOUT):  # an independent check, not the tuning panel
        title = title.replace("the development panel", "the held-out sets")
    elif set(runs.dataset) <= set(CASES):  # fits of `benchmarks.sanity --features-dir`
        title = title.replace("the development panel", "the sanity suite's easy data")
    command = command_line(module, argv)
    path.write_text("\n".join([
        f"# {title}",
        "",
        f"Written by `python -m {module}`; do not edit by hand. " + intro(),
        "",
        f"Command: `{command.strip()}`. Machine: {cpu_model()}, {cpu_count()} cores; load "
        f"average at start {load_start}, at end {load_average()}. Fits: "
        f"{runs[['dataset', 'seed']].drop_duplicates().shape[0]}. Run time: "
        f"{time.perf_counter() - tic:.0f} s.",
        "",
        *sections(t),
    ]))
    print(f"[{option}] wrote {path}")
    return 0
