"""Run the benchmarks and write the report.

Usage::

    python -m benchmarks.run                      # everything, writes docs/benchmarks.md
    python -m benchmarks.run --fast --out /tmp/b.md
    python -m benchmarks.run --only quality,kmeans
"""

from __future__ import annotations

import argparse
import importlib
import os
import shlex
import sys
import time
from pathlib import Path

from .common import REPO, Config, Section, set_threads
from .report import figures, load_average, render, results_summary

SECTIONS = ("quality", "speed", "kmeans", "scaling")


def run_sections(cfg: Config, only=SECTIONS, log=print, after_each=None,
                 keep_going: bool = False) -> list[Section]:
    """Run the chosen sections in order and return them.

    ``after_each(sections_so_far)`` is called after every section (the command line uses it
    to rewrite the report, so an interrupted run keeps what it measured). With
    ``keep_going``, a section that raises is logged and left out instead of stopping the run.
    """
    set_threads(cfg.threads)
    out = []
    for key in only:
        module = importlib.import_module(f"benchmarks.{key}")
        log(f"[bench] {key} ...")
        try:
            section = module.run(cfg)
        except Exception as exc:  # keep the other sections' numbers
            if not keep_going:
                raise
            log(f"[bench] {key} failed: {exc!r}")
            continue
        log(f"[bench] {key} done in {section.seconds:.0f} s")
        out.append(section)
        if after_each is not None:
            after_each(out)
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fast", action="store_true",
                        help="tiny sizes (CI smoke run, well under two minutes)")
    parser.add_argument("--only", default=",".join(SECTIONS),
                        help=f"comma-separated sections among {', '.join(SECTIONS)}")
    parser.add_argument("--out", default=str(REPO / "docs" / "benchmarks.md"),
                        help="markdown file to write (default docs/benchmarks.md)")
    parser.add_argument("--figures", default=None,
                        help="folder for SVG figures (default: docs/images next to --out; "
                             "'none' to skip)")
    parser.add_argument("--summary", default=None,
                        help="also write the README results summary here "
                             "(default: docs/results_summary.md next to --out in a full run)")
    parser.add_argument("--datasets", default=None,
                        help="comma-separated datasets for the quality section ('holdout': "
                             "the held-out sets, benchmarks.panel.HOLDOUT)")
    parser.add_argument("--seeds", default=None, help="comma-separated seeds (quality)")
    parser.add_argument("--methods", default=None,
                        help="the quality section's methods, separated by ';' (default: all; "
                             "names as in benchmarks.quality.METHODS)")
    parser.add_argument("--save-runs", default=None,
                        help="also save the quality section's per-fit table (CSV) here")
    parser.add_argument("--quality-from", default=None,
                        help="comma-separated CSVs saved by --save-runs: build the quality "
                             "section from them instead of running it")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads (default 2)")
    parser.add_argument("--peer-budget", type=float, default=None,
                        help="skip a peer where its estimated seconds per fit exceed this "
                             "(default 120)")
    parser.add_argument("--partial-runs", default=None,
                        help="rewrite the quality section's per-fit table here after every "
                             "dataset, so an interrupted run keeps its measurements")
    parser.add_argument("--features-dir", default=None,
                        help="save the features each CNN-KMeans fit clustered (one .npz per "
                             "set and seed) for `benchmarks.choose_k`, `benchmarks.clustering_stages` "
                             "and `benchmarks.kernel_views`")
    parser.add_argument("--cnn-max-steps", type=int, default=None,
                        help="training budget of CNN-KMeans in the quality section")
    args = parser.parse_args(argv)
    only = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = set(only) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown section(s): {', '.join(sorted(unknown))}")
    cfg = Config.fast_size() if args.fast else Config.full_size()
    cfg.threads = args.threads
    cfg.verbose = True
    if args.datasets:
        from .panel import HOLDOUT

        names = [d.strip() for d in args.datasets.split(",") if d.strip()]
        cfg.datasets = tuple(d for n in names for d in (HOLDOUT if n == "holdout" else (n,)))
    if args.seeds:
        cfg.seeds = tuple(int(v) for v in args.seeds.split(","))
    if args.methods:
        from .quality import chosen_methods

        cfg.methods = tuple(m.strip() for m in args.methods.split(";") if m.strip())
        try:
            chosen_methods(cfg)
        except ValueError as exc:
            parser.error(str(exc))
    if args.cnn_max_steps:
        cfg.cnn_max_steps = args.cnn_max_steps
    if args.peer_budget is not None:
        cfg.peer_budget_s = args.peer_budget
    if args.partial_runs:
        cfg.extra["runs_path"] = args.partial_runs
    if args.features_dir:
        cfg.extra["features_dir"] = args.features_dir
    command = "python -m benchmarks.run " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
    load_start = load_average()
    t0 = time.perf_counter()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)

    summary = (Path(args.summary) if args.summary else
               None if args.fast else out.parent / "results_summary.md")
    fig_dir = None if args.figures == "none" else Path(args.figures or out.parent / "images")

    def write(sections):
        names = figures(sections, fig_dir) if fig_dir is not None else []
        text = render(sections, cfg, command.strip(), load_start, time.perf_counter() - t0)
        if names:
            rel = os.path.relpath(fig_dir, out.parent)
            text += "\n## Figures\n\n" + "\n\n".join(
                f"![{n}]({rel}/{n})" for n in names) + "\n"
        out.write_text(text)
        if summary is not None:
            summary.write_text(results_summary(sections, cfg))

    keys = [s for s in SECTIONS if s in only]
    done = []
    if args.quality_from:
        done.append(_quality_from(args.quality_from.split(","), cfg))
        keys = [k for k in keys if k != "quality"]
        write(done)

    def after(sections):
        if args.save_runs and sections[-1].key == "quality":
            runs = sections[-1].tables["runs"]
            info = sections[-1].tables["datasets"]
            runs.merge(info, on="dataset", how="left").assign(
                section_seconds=sections[-1].seconds).to_csv(args.save_runs, index=False)
        write(done + sections)

    run_sections(cfg, keys, after_each=after, keep_going=not args.fast)
    print(f"[bench] wrote {out} in {time.perf_counter() - t0:.0f} s")
    return 0


def _quality_from(paths, cfg: Config) -> Section:
    """The quality section from per-fit tables saved by earlier runs (``--save-runs``)."""
    import pandas as pd

    from .quality import section_from_runs

    frames = [pd.read_csv(p) for p in paths]
    table = pd.concat(frames, ignore_index=True)
    info_cols = ["dataset", "series", "channels", "length", "classes"]
    if "group" in table:
        info_cols.insert(1, "group")
    info = table[info_cols].drop_duplicates("dataset")
    from .panel import PANEL

    order = [d for d in (cfg.datasets or PANEL) if d in set(info.dataset)]
    info = info.set_index("dataset").loc[order].reset_index()
    runs = table.drop(columns=info_cols[1:] + ["section_seconds"])
    runs["status"] = runs.status.fillna("ok")
    cfg.datasets = tuple(order)
    seconds = float(sum(f.section_seconds.iloc[0] for f in frames))
    return section_from_runs(runs, info, cfg, seconds)


if __name__ == "__main__":
    sys.exit(main())
