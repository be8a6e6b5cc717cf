"""Export the README's figures to docs/images/ as PNG.

Needs the ``export`` extra (kaleido >= 1) and a Chromium on PATH (Debian:
``apt-get install chromium``; ``BROWSER_PATH`` points kaleido at another one). Not part
of the tests. Trains a small model on the bundled BasicMotions set (a few minutes on two
cores at most) and writes:

- ``projection.png``: embeddings (PCA) coloured by cluster;
- ``centroids.png``: per cluster, members, mean and 10-90% band, one row per channel
  (the three accelerometer channels);
- ``elbow.png``: the k-selection criteria with the suggested k marked;
- ``training_curves.png``, ``contingency.png``.

Usage: ``python docs/make_figures.py [--out docs/images] [--epochs 20]``.
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.cluster import KMeans
from sklearn.metrics import calinski_harabasz_score, davies_bouldin_score, silhouette_score

from tsc_toolkit import CNNKMeans, plots
from tsc_toolkit.io.datasets import load_dataset


def k_scores(embeddings: np.ndarray, k_range=range(2, 9)):
    """The k scan, from tsc_toolkit.clustering.selection when it is there, else computed here."""
    try:
        from tsc_toolkit.clustering.selection import scan_k
    except ImportError:
        rows = []
        for k in k_range:
            km = KMeans(k, n_init=10, random_state=0).fit(embeddings)
            rows.append({"k": k, "inertia": km.inertia_,
                         "silhouette": silhouette_score(embeddings, km.labels_),
                         "calinski_harabasz": calinski_harabasz_score(embeddings, km.labels_),
                         "davies_bouldin": davies_bouldin_score(embeddings, km.labels_)})
        return pd.DataFrame(rows)
    return scan_k(embeddings, k_range, random_state=0)


def shrink(path: Path, limit_kb: int = 150) -> None:
    """Re-save a PNG with a 256-colour palette when it is over ``limit_kb`` (needs Pillow)."""
    if path.stat().st_size <= limit_kb * 1024:
        return
    try:
        from PIL import Image
    except ImportError:
        print(f"{path} is over {limit_kb} KB; install Pillow to shrink it")
        return
    with Image.open(path) as img:
        small = img.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT)
    small.save(path, optimize=True)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(Path(__file__).parent / "images"))
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--dataset", default="BasicMotions")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    X, y = load_dataset(args.dataset)
    n_classes = len(np.unique(y))
    n_valid = len(X) // 5
    model = CNNKMeans(clusters=n_classes, blocks=3, filters=32, reduced_size=32,
                      output_size=64, epochs=args.epochs, random_state=0, device="cpu")
    model.fit(X[n_valid:], X_valid=X[:n_valid])
    labels = model.predict(X)
    embeddings = model.transform(X)

    figures = {
        "projection": plots.projection(embeddings, labels, color=y,
                                       title=f"{args.dataset}: embeddings coloured by class"),
        "centroids": plots.centroids(X, labels, max_members=6, channels=[0, 1, 2],
                                     title=f"{args.dataset}: cluster means"),
        "elbow": plots.elbow(k_scores(embeddings)),
        "training_curves": plots.training_curves(model, log_loss=True),
        "contingency": plots.contingency(labels, y),
    }
    import kaleido

    kaleido.start_sync_server()  # one browser for all images
    warnings.filterwarnings("ignore", message="The kopts argument is ignored")
    try:
        for name, fig in figures.items():
            width = 1100 if name in ("centroids", "elbow") else 800
            path = out / f"{name}.png"
            fig.write_image(path, width=width, height=fig.layout.height or 450, scale=1)
            shrink(path)
            print(f"{path} {path.stat().st_size / 1024:.0f} KB")
    finally:
        kaleido.stop_sync_server()


if __name__ == "__main__":
    main()
