"""Random-kernel views compared next to the saved embeddings of the default CNN-KMeans fits.

The quality benchmark run with ``--features-dir`` keeps, for every set and seed, what the
default model clustered: the 320-d T-Loss embedding, then the 50-d random-kernel view. This
script keeps each fit's embedding, computes the second view again with one change, and
clusters the pair with the default stage (spectral clustering of the 10-nearest-neighbour
graph, the fit's own seed), so a change of the view is measured on the whole panel and every
seed without training the encoder again::

    python -m benchmarks.run --only quality --features-dir build/panel_features
    python -m benchmarks.kernel_views --features build/panel_features

``default`` recomputes the estimator's own view and reproduces the quality table's
CNN-KMeans numbers. It writes docs/benchmarks_views.md and the per-fit table next to it (.csv).
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import normalized_mutual_info_score
from sklearn.utils import check_random_state

from .clustering_stages import EMBEDDING
from .common import REPO, set_threads, to_markdown
from .panel import group
from .quality import load_features, saved_features
from .report import cpu_count, cpu_model, load_average


def fit_seed(seed: int) -> int:
    """The seed a ``CNNKMeans(random_state=seed)`` fit hands to its view and its clustering."""
    return int(check_random_state(seed).randint(np.iinfo(np.int32).max))


def default_kernels() -> int:
    """Random-kernel features of a default ``CNNKMeans``."""
    from tsc_toolkit import CNNKMeans

    return CNNKMeans().kernel_features


def _view(n_features=None, n_components=50, weight=1.0):
    def make(S, seed):
        from tsc_toolkit.random_kernels import RandomKernelFeatures

        n_features_ = default_kernels() if n_features is None else n_features
        return weight * RandomKernelFeatures(n_features_, n_components,
                                             random_state=seed).fit_transform(S)
    return make


def _with_differences(n_features=None, n_components=50):
    """The view of the series beside the view of their first differences (as MultiRocket)."""
    def make(S, seed):
        from tsc_toolkit.random_kernels import RandomKernelFeatures

        D = np.diff(S, axis=2)
        n_features_ = default_kernels() if n_features is None else n_features
        a = RandomKernelFeatures(n_features_, n_components, random_state=seed).fit_transform(S)
        b = RandomKernelFeatures(n_features_, n_components,
                                 random_state=seed + 1).fit_transform(D)
        return np.hstack([a, b]) / np.sqrt(2.0)
    return make


def _with_mpv(n_features=None, n_components=50):
    """PPV and MultiRocket's mean of positive values (MPV) of every kernel and bias."""
    def make(S, seed):
        import torch

        from tsc_toolkit.random_kernels import RandomKernelFeatures

        class WithMPV(RandomKernelFeatures):
            def _ppv(self, filled, lengths):
                n, _, length = filled.shape
                steps = np.arange(0, length, self._stride(length))
                valid = torch.from_numpy(steps[None, :] < lengths[:, None])
                count = valid.sum(dim=1).clamp(min=1).to(torch.float32)[:, None]
                feats = []
                for d, dilation in enumerate(self.dilations_):
                    y = torch.from_numpy(self._convolve(filled, d, dilation))
                    y = torch.where(valid[:, None, :], y, torch.tensor(-torch.inf))
                    b = torch.from_numpy(self.biases_[d])
                    for i in range(b.shape[1]):
                        above = y > b[None, :, i, None]
                        hits = above.sum(dim=2).to(torch.float32)
                        excess = torch.where(above, y - b[None, :, i, None], 0.0).sum(dim=2)
                        feats += [hits / count, excess / hits.clamp(min=1)]
                return torch.cat(feats, dim=1).numpy()

        n_features_ = default_kernels() if n_features is None else n_features
        return WithMPV(n_features_ // 2, n_components, random_state=seed).fit_transform(S)
    return make


VIEWS = {
    "default": _view(),
    "2000 kernels": _view(2000),
    "4000 kernels": _view(4000),
    "10000 kernels": _view(10000),
    "20 components": _view(n_components=20),
    "100 components": _view(n_components=100),
    "with differences": _with_differences(),
    "PPV + MPV": _with_mpv(),
}
DEFAULT = "default"


def run(folder: Path, views=tuple(VIEWS), log=print, data=None) -> pd.DataFrame:
    """NMI of every view on every saved fit; ``data`` maps a set to its series (default: the
    panel's own)."""
    from tsc_toolkit.graph_clustering import spectral_labels
    from tsc_toolkit.scaling import SeriesScaler

    from . import panel

    rows, scaled = [], {}
    for name, seed, path in saved_features(folder):
        Z, y = load_features(path)
        if name not in scaled:  # one set at a time in memory
            X = data[name] if data and name in data else panel.load(name)[0]
            scaled = {name: SeriesScaler("series").fit_transform(X)}
        S, k, s = scaled[name], len(np.unique(y)), fit_seed(seed)
        for view in views:
            tic = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                f = np.hstack([Z[:, :EMBEDDING], VIEWS[view](S, s)]).astype(np.float32)
                labels = spectral_labels(f, k, 10, s, 10)
            rows.append({"dataset": name, "group": group(name), "seed": seed, "view": view,
                         "nmi": normalized_mutual_info_score(y, labels),
                         "seconds": time.perf_counter() - tic})
        log(f"[views] {name} seed {seed}: " + " ".join(
            f"{r['nmi']:.3f}" for r in rows[-len(views):]))
    if not rows:
        raise SystemExit(f"no saved fits in {folder}: run `python -m benchmarks.run --only "
                         f"quality --features-dir {folder}` first")
    return pd.DataFrame(rows)


def tables(runs: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Panel, group and per-set means (over seeds) of each view's NMI, and its seconds."""
    views = list(dict.fromkeys(runs.view))
    per = runs.groupby(["dataset", "view"], sort=False).nmi.mean().unstack()[views]
    panel = per.mean()
    by_group = (runs.groupby(["group", "view"], sort=False).nmi.mean().unstack()[views]
                .reset_index())
    seconds = runs.groupby("view", sort=False).seconds.median()[views]
    summary = pd.DataFrame({"view": views, "panel mean NMI": panel.to_numpy(),
                            "vs default": (panel - panel.get(DEFAULT, np.nan)).to_numpy(),
                            "median s (view + clustering)": seconds.to_numpy()})
    return {"summary": summary, "groups": by_group, "sets": per.reset_index()}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--features", default=str(REPO / "build" / "panel_features"))
    parser.add_argument("--out", default=str(REPO / "docs" / "benchmarks_views.md"))
    parser.add_argument("--views", default=",".join(VIEWS))
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    views = [s.strip() for s in args.views.split(",") if s.strip()]
    unknown = set(views) - set(VIEWS)
    if unknown:
        parser.error(f"unknown view(s): {', '.join(sorted(unknown))}")
    set_threads(args.threads)
    load_start, tic = load_average(), time.perf_counter()
    runs = run(Path(args.features), views)
    out = Path(args.out)
    runs.to_csv(out.with_suffix(".csv"), index=False)
    t = tables(runs)
    command = "python -m benchmarks.kernel_views " + " ".join(
        argv if argv is not None else sys.argv[1:])
    out.write_text("\n".join([
        "# Random-kernel views on the saved embeddings of the development panel",
        "",
        "Written by `python -m benchmarks.kernel_views`; do not edit by hand. Every default "
        "CNN-KMeans fit of the quality benchmark keeps its 320-d T-Loss embedding; the second "
        "view is computed again with one change and the pair is clustered by the default "
        f"stage with the fit's seed. `{DEFAULT}` is the estimator's own view "
        f"({default_kernels():,} PPV features, PCA to 50) and reproduces the quality table. NMI against the classes, "
        "mean over seeds, then over sets.",
        "",
        f"Command: `{command.strip()}`. Machine: {cpu_model()}, {cpu_count()} cores; load "
        f"average at start {load_start}, at end {load_average()}. Fits: "
        f"{runs[['dataset', 'seed']].drop_duplicates().shape[0]}. Run time: "
        f"{time.perf_counter() - tic:.0f} s.",
        "",
        "## Panel", "", to_markdown(t["summary"]), "",
        "## Groups", "", to_markdown(t["groups"]), "",
        "## Sets", "", to_markdown(t["sets"]), "",
    ]))
    print(f"[views] wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
