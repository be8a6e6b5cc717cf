"""Random-kernel views compared next to the saved embeddings of the default CNN-KMeans fits.

The quality benchmark run with ``--features-dir`` keeps, for every set and seed, what the
default model clustered: the T-Loss embedding, then the 50-d random-kernel view. This
script keeps each fit's embedding, computes the second view again with one change, and
clusters the pair with the default stage (spectral clustering of the kNN graph with the
default model's neighbour count, the fit's own seed), so a change of the view is measured on the whole panel and every
seed without training the encoder again::

    python -m benchmarks.run --only quality --features-dir build/panel_features
    python -m benchmarks.kernel_views --features build/panel_features

``default`` recomputes the estimator's own view and reproduces the quality table's
CNN-KMeans numbers. It writes docs/benchmarks_views.md and the per-fit table next to it (.csv).
"""

from __future__ import annotations

import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import normalized_mutual_info_score

from . import comparison
from .panel import group
from .quality import embedding_width, load_features, saved_features


def default_kernels() -> int:
    """Random-kernel features of a default ``CNNKMeans``."""
    from tsc_toolkit import CNNKMeans

    return CNNKMeans().kernel_features


def _kernel_view(n_features, n_components, seed, cls=None):
    """An unfitted view: ``n_features`` None means the estimator's default."""
    from tsc_toolkit.views.random_kernels import RandomKernelFeatures

    return (cls or RandomKernelFeatures)(
        default_kernels() if n_features is None else n_features, n_components,
        random_state=seed)


def _view(n_features=None, n_components=50):
    def make(S, seed):
        return _kernel_view(n_features, n_components, seed).fit_transform(S)
    return make


def _with_differences(n_features=None, n_components=50):
    """The view of the series beside the view of their first differences (as MultiRocket)."""
    def make(S, seed):
        a = _kernel_view(n_features, n_components, seed).fit_transform(S)
        b = _kernel_view(n_features, n_components, seed + 1).fit_transform(np.diff(S, axis=2))
        return np.hstack([a, b]) / np.sqrt(2.0)
    return make


def _with_mpv(n_features=None, n_components=50):
    """PPV and MultiRocket's mean of positive values (MPV) of every kernel and bias."""
    def make(S, seed):
        import torch

        from tsc_toolkit.views.random_kernels import RandomKernelFeatures

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

        half = (default_kernels() if n_features is None else n_features) // 2
        return _kernel_view(half, n_components, seed, WithMPV).fit_transform(S)
    return make


VIEWS = {
    "default": _view(),
    "2000 kernels": _view(2000),
    "4000 kernels": _view(4000),
    "20 components": _view(n_components=20),
    "100 components": _view(n_components=100),
    "with differences": _with_differences(),
    "PPV + MPV": _with_mpv(),
}
DEFAULT = "default"


def run(folder: Path, views=tuple(VIEWS), log=print, data=None) -> pd.DataFrame:
    """NMI of every view on every saved fit; ``data`` maps a set to its series (default: the
    panel's own)."""
    from tsc_toolkit import CNNKMeans
    from tsc_toolkit.cnn_kmeans import fit_seed
    from tsc_toolkit.embedding.scaling import SeriesScaler

    from . import panel

    default = CNNKMeans()  # the default model's stage
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
                f = np.hstack([Z[:, :embedding_width(path)], VIEWS[view](S, s)]).astype(
                    np.float32)
                labels = default.make_clusterer(k, s).fit(f).labels_
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
    return comparison.tables(runs, "view", DEFAULT, "median s (view + clustering)",
                             peers=comparison.best_peer())


def _intro() -> str:
    return ("Every default CNN-KMeans fit of the quality benchmark keeps its 320-d T-Loss "
            "embedding; the second view is computed again with one change and the pair is "
            f"clustered by the default stage with the fit's seed. `{DEFAULT}` is the "
            f"estimator's own view ({default_kernels():,} PPV features, PCA to 50) and "
            "reproduces the quality table. NMI against the classes, mean over seeds, then over "
            "sets.")


def main(argv=None) -> int:
    return comparison.main(
        argv, module="benchmarks.kernel_views", description=__doc__.split("\n\n")[0],
        option="views", choices=VIEWS, out="benchmarks_views.md", run=run, tables=tables,
        title="Random-kernel views on the saved embeddings of the development panel",
        intro=_intro)


if __name__ == "__main__":
    sys.exit(main())
