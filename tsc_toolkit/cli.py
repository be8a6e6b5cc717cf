"""The ``tsc-toolkit`` command: fit a model on fg-style CSV files and predict with it.

Examples (shell)::

    tsc-toolkit fit data/train.csv --valid data/valid.csv --model-dir model --clusters 3 \\
        --epochs 20 --random-state 0
    tsc-toolkit predict model data/test.csv --output predictions.csv
    tsc-toolkit serve model --port 8080      # GET /ping, POST /invocations on 127.0.0.1
    tsc-toolkit notebooks my-notebooks       # copy the tutorial notebooks out of the package

``predict`` writes fg-research's output contract: the cluster label (as a float) in the first
column, then the embedding. It reads its input a chunk at a time and writes as it goes, so a
file larger than memory streams through (Parquet and ``.npy`` in and out as well as CSV).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from .hyperparameters import HYPERPARAMETERS, HyperparameterError, parse_hyperparameters
from .io.sources import CHUNK_SIZE

__all__ = ["main", "build_parser"]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``tsc-toolkit`` (``fit``, ``pretrain``, ``predict``, ``serve``,
    ``notebooks``)."""
    parser = argparse.ArgumentParser(
        prog="tsc-toolkit",
        description="Cluster time series with a T-Loss CNN encoder and K-Means.")
    sub = parser.add_subparsers(dest="command", required=True)

    fit = sub.add_parser("fit", help="train a model on a CSV file of series",
                         description="Train CNN-KMeans on fg-style CSV files. Hyperparameters "
                                     "use fg-research's names, e.g. --kernel-size 3.")
    fit.add_argument("train", help="training CSV (one series per row)")
    fit.add_argument("--valid", help="validation CSV (adds valid_loss and valid_score)")
    fit.add_argument("--model-dir", required=True, help="folder to save the model in")
    fit.add_argument("--checkpoint-dir", help="save training state every epoch and resume")
    hp = fit.add_argument_group("hyperparameters")
    for name in HYPERPARAMETERS:
        if name != "verbose":
            hp.add_argument(f"--{name}", dest=f"hp:{name}", metavar="VALUE")
    fit.add_argument("--quiet", action="store_true", help="do not print per-epoch lines")

    pre = sub.add_parser("pretrain", help="pretrain the encoder on a collection of series",
                         description="Fit the T-Loss encoder on windows drawn evenly from each "
                                     "data file (.npy or fg-style CSV; labels are never read) "
                                     "and save it; `fit --pretrained DIR` and "
                                     "CNNKMeans(pretrained=DIR) start from it.")
    pre.add_argument("data", nargs="+", help="data files, one per data set")
    pre.add_argument("--output", "-o", required=True, help="folder to save the encoder in")
    pre.add_argument("--steps", type=int, default=4000, help="optimisation steps (4000)")
    pre.add_argument("--windows", type=int, default=3000, help="windows drawn (3000)")
    pre.add_argument("--window-length", type=int, default=512, help="longest window (512)")
    pre.add_argument("--seed", type=int, default=0, help="random seed (0)")
    pre.add_argument("--device", default="auto", help="torch device (default: auto)")
    pre.add_argument("--quiet", action="store_true", help="do not print per-epoch lines")

    pred = sub.add_parser("predict", help="cluster the series of a CSV file",
                          description="Write the cluster label and embedding of each series.")
    pred.add_argument("model_dir", help="a folder written by `tsc-toolkit fit` or model.save")
    pred.add_argument("input", help="series to cluster: a CSV file or folder, Parquet (long or "
                                    "wide layout), Arrow, or a .npy file; read in chunks")
    pred.add_argument("--output", "-o", help="output file, written chunk by chunk: .csv "
                                             "(fg's contract), .parquet or .npy (default: "
                                             "CSV on standard output)")
    pred.add_argument("--channels", type=int, default=None,
                      help="rows per series (default: as the model was trained)")
    pred.add_argument("--layout", choices=("auto", "long", "wide"), default="auto",
                      help="Parquet/Arrow layout (default: auto)")
    pred.add_argument("--chunk-size", type=int, default=CHUNK_SIZE,
                      help=f"series per chunk, what bounds the memory (default: {CHUNK_SIZE})")
    pred.add_argument("--device", default="cpu", help="torch device (default: cpu)")

    srv = sub.add_parser("serve", help="serve a model over HTTP like a SageMaker endpoint",
                         description="Answer GET /ping and POST /invocations (text/csv, "
                                     "application/json, application/jsonlines) until Ctrl-C.")
    srv.add_argument("model_dir", help="a CNN-KMeans model folder, or a built-in K-Means "
                                       "model_algo-1 / model.tar.gz")
    srv.add_argument("--port", type=int, default=8080, help="port (default: 8080)")
    srv.add_argument("--host", default="127.0.0.1", help="address (default: 127.0.0.1)")

    nbs = sub.add_parser("notebooks", help="copy the tutorial notebooks into a folder",
                         description="Copy the tutorial notebooks that come with this "
                                     "installation (wheel or checkout) into DEST.")
    nbs.add_argument("dest", help="folder to copy them into (created when missing)")
    nbs.add_argument("--overwrite", action="store_true",
                     help="replace notebooks already in DEST")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``tsc-toolkit``; returns the exit status (0 on success, 2 on bad input)."""
    args = build_parser().parse_args(argv)
    try:
        if args.command == "fit":
            return _fit(args)
        if args.command == "serve":
            from .sagemaker.container.server import serve

            serve(args.model_dir, host=args.host, port=args.port)
            return 0
        if args.command == "notebooks":
            return _notebooks(args)
        if args.command == "pretrain":
            return _pretrain(args)
        return _predict(args)
    except (HyperparameterError, ValueError, FileExistsError) as err:
        print(f"tsc-toolkit {args.command}: error: {err}", file=sys.stderr)
        return 2


def _fit(args) -> int:
    from .cnn_kmeans import CNNKMeans
    from .io.csvio import read_csv

    given = {k[3:]: v for k, v in vars(args).items() if k.startswith("hp:") and v is not None}
    kwargs = parse_hyperparameters(given, fg_defaults=True)
    channels = kwargs.pop("channels", 1)
    kwargs.setdefault("verbose", 0 if args.quiet else 1)
    if args.checkpoint_dir:
        kwargs["checkpoint_dir"] = args.checkpoint_dir
    X = read_csv(args.train, channels=channels)
    Xv = read_csv(args.valid, channels=channels) if args.valid else None
    model = CNNKMeans(**kwargs)
    if not args.quiet:
        print(f"Training on {len(X)} time series with {X.shape[1]} channel(s).", flush=True)
    model.fit(X, X_valid=Xv)
    path = model.save(args.model_dir)
    if not args.quiet:
        print(f"Model saved to {path}", flush=True)
    return 0


def _pretrain(args) -> int:
    from .embedding.pretrain import pretrain

    for path in args.data:
        if not Path(path).is_file():
            raise ValueError(f"{path}: no such file.")
    encoder = pretrain(args.data, args.output, steps=args.steps, n_windows=args.windows,
                       window_length=args.window_length, random_state=args.seed,
                       device=args.device, verbose=0 if args.quiet else 1)
    if not args.quiet:
        print(f"Encoder trained for {encoder.n_steps_} steps on {args.windows} windows of "
              f"{len(args.data)} data set(s), saved to {args.output}", flush=True)
    return 0


def _predict(args) -> int:
    from . import streaming
    from .cnn_kmeans import CNNKMeans
    from .io.sources import open_series

    model = CNNKMeans.load(args.model_dir, device=args.device)
    source = open_series(args.input, channels=args.channels or model.n_channels_,
                         layout=args.layout)
    # a progress bar on standard error when the results go to a file
    streaming.assign(model, source, args.output or sys.stdout, chunk_size=args.chunk_size,
                     progress=args.output is not None)
    return 0


def _notebooks(args) -> int:
    from .resources import copy_notebooks

    written = copy_notebooks(args.dest, overwrite=args.overwrite)
    for path in written:
        print(path)
    print(f"Open them with: jupyter lab {args.dest}", file=sys.stderr)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
