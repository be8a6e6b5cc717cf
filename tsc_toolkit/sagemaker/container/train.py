"""Training entry point for SageMaker training containers (and any machine).

Run it as ``python -m tsc_toolkit.sagemaker.train --clusters 4 --epochs 20 ...``. It follows
the SageMaker training container contract:

* hyperparameters arrive as ``--name value`` arguments with fg-research's kebab-case names
  (``clusters``, ``kernel-size``, ``batch-size``, ...; see
  :data:`tsc_toolkit.hyperparameters.HYPERPARAMETERS`), plus ``channels`` (rows per series in
  the CSV files) and ``checkpoint-dir`` (``none`` turns checkpoints off); when no argument is
  given, ``SM_HPS`` (a JSON object) is read instead;
* channel ``training`` (required) and ``validation`` (optional) hold one or many fg-style CSV
  files (one series per line, no header, empty cells missing); their folders come from
  ``SM_CHANNEL_TRAINING`` / ``SM_CHANNEL_VALIDATION``, by default
  ``/opt/ml/input/data/<channel>``;
* an optional ``model`` channel (``SM_CHANNEL_MODEL``) holding an earlier model (a saved model
  folder or a ``model.tar.gz``) makes the job continue training that model (incremental
  training);
* the model is written to ``SM_MODEL_DIR`` (default ``/opt/ml/model``, or ``./model`` when
  there is no ``/opt/ml``) in the toolkit's format, so :meth:`CNNKMeans.load` opens it;
* every epoch prints fg-research's metric line (``epoch: 3 train_loss: ... train_score:
  ...``), which :data:`~tsc_toolkit.hyperparameters.METRIC_DEFINITIONS` parse, and writes a
  checkpoint to ``SM_CHECKPOINT_DIR`` (default ``/opt/ml/checkpoints`` when ``/opt/ml``
  exists); a restarted job (managed spot training) resumes from the newest checkpoint;
* under ``torchrun`` (``WORLD_SIZE`` > 1) it joins the process group (NCCL on GPUs, gloo on
  CPUs), each process trains on its share of the batches, and rank 0 alone writes the model;
* on failure (bad hyperparameter, unreadable data, missing channel) the reason goes to
  ``SM_OUTPUT_FAILURE`` (default ``/opt/ml/output/failure``) and the exit status is 1.

Examples
--------
>>> from tsc_toolkit.sagemaker.container.train import parse_arguments
>>> hps, paths = parse_arguments(["--clusters", "3", "--kernel-size=5",
...                                "--checkpoint-dir", "none"])
>>> hps
{'clusters': '3', 'kernel-size': '5'}
>>> paths
{'checkpoint-dir': 'none'}
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tarfile
import tempfile
import traceback
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ...hyperparameters import ARCHITECTURE_PARAMS
from ...io.archives import extract_tar

__all__ = ["main", "parse_arguments", "read_channel", "find_model", "ARCHITECTURE_PARAMS"]


_PATH_ARGS = ("checkpoint-dir",)
_OPT_ML = Path("/opt/ml")


class TrainingError(Exception):
    """A reason to stop the job, written to the failure file."""


def parse_arguments(argv: Sequence[str]) -> tuple[dict[str, str], dict[str, str]]:
    """Split ``--name value`` / ``--name=value`` arguments into hyperparameters and paths.

    Returns ``(hyperparameters, paths)``: both map the name (without ``--``) to its string.
    Raises :class:`TrainingError` on an argument that is not of that form.
    """
    hps: dict[str, str] = {}
    paths: dict[str, str] = {}
    items = list(argv)
    i = 0
    while i < len(items):
        arg = items[i]
        if not arg.startswith("--") or len(arg) < 3:
            raise TrainingError(f"Expected --name value arguments, got {arg!r}.")
        name = arg[2:]
        if "=" in name:
            name, value = name.split("=", 1)
            i += 1
        else:
            if i + 1 >= len(items):
                raise TrainingError(f"Hyperparameter {name} has no value.")
            value = items[i + 1]
            i += 2
        name = name.replace("_", "-")
        (paths if name in _PATH_ARGS else hps)[name] = value
    return hps, paths


def read_channel(path: str | os.PathLike, *, channels: int = 1) -> np.ndarray:
    """Read every file of a channel folder (or one file) into one array.

    Files are read in name order (hidden files are skipped, sub-folders included); series
    of different lengths across files are padded with NaN at the end. A file is fg-style CSV
    unless it ends in ``.parquet``/``.pq`` or ``.arrow``/``.feather`` (long or wide layout,
    read by record batch; needs pyarrow) or ``.npy``.
    """
    from ...io.csvio import read_csv
    from ...io.sources import open_series

    def read(f: Path) -> np.ndarray:
        if f.suffix.lower() not in _CHUNKED_SUFFIXES:
            return read_csv(f, channels=channels)
        X = open_series(f, channels=channels).read().X
        if X.shape[1] != channels:
            raise TrainingError(f"{f.name} holds {X.shape[1]} channel(s), not {channels}.")
        return X

    path = Path(path)
    if path.is_file():
        files = [path]
    elif path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file()
                       and not any(part.startswith(".") for part in p.relative_to(path).parts))
    else:
        raise TrainingError(f"No data at {path}.")
    if not files:
        raise TrainingError(f"The channel folder {path} holds no file.")
    arrays = []
    for f in files:
        try:
            arrays.append(read(f))
        except ValueError as err:
            raise TrainingError(f"{f.name}: {err}") from None
    length = max(a.shape[2] for a in arrays)
    out = np.full((sum(len(a) for a in arrays), channels, length), np.nan, dtype=np.float32)
    row = 0
    for a in arrays:
        out[row:row + len(a), :, :a.shape[2]] = a
        row += len(a)
    return out


_CHUNKED_SUFFIXES = (".parquet", ".pq", ".arrow", ".feather", ".npy")


def find_model(path: str | os.PathLike, workdir: str | os.PathLike) -> Path | None:
    """The model folder inside a ``model`` channel: a saved folder or a ``*.tar.gz``.

    Archives are unpacked under ``workdir``. Returns ``None`` when the channel is empty.
    """
    path = Path(path)
    if not path.exists():
        return None
    candidates = [path] if path.is_file() else sorted(path.rglob("*"))
    for c in [path, *candidates]:
        if c.is_dir() and (c / "config.json").is_file():
            return c
    for c in candidates:
        if c.is_file() and c.name.endswith((".tar.gz", ".tgz", ".tar")):
            target = Path(workdir) / c.name.split(".")[0]
            target.mkdir(parents=True, exist_ok=True)
            with tarfile.open(c) as tar:
                extract_tar(tar, target)
            found = find_model(target, workdir)
            if found is not None:
                return found
    if path.is_dir() and not any(path.iterdir()):
        return None
    raise TrainingError(f"The model channel {path} holds no model saved by the toolkit "
                        "(a folder with config.json, or a model.tar.gz of one).")


def _env_path(var: str, default: Path | None, fallback: str | None = None) -> Path | None:
    if os.environ.get(var):
        return Path(os.environ[var])
    if _OPT_ML.is_dir() and default is not None:
        return default
    return None if fallback is None else Path(fallback)


def _failure_file() -> Path:
    if os.environ.get("SM_OUTPUT_FAILURE"):
        return Path(os.environ["SM_OUTPUT_FAILURE"])
    if os.environ.get("SM_OUTPUT_DIR"):
        return Path(os.environ["SM_OUTPUT_DIR"]) / "failure"
    return _OPT_ML / "output" / "failure"


def _write_failure(message: str) -> None:
    path = _failure_file()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a", encoding="utf-8") as f:
            f.write(message.rstrip() + "\n")
    except OSError:
        pass  # not in a container and no writable place: stderr has the message


def _init_distributed(device: str):
    """Join the torchrun process group when there is one; returns the device to train on."""
    import torch

    world = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = torch.cuda.is_available() and device in ("auto", "cuda")
    if world > 1 and not torch.distributed.is_initialized():
        if use_cuda:
            torch.cuda.set_device(local_rank)
        torch.distributed.init_process_group("nccl" if use_cuda else "gloo")
    if use_cuda and world > 1:
        return f"cuda:{local_rank}"
    return device


def _rank() -> int:
    return int(os.environ.get("RANK", "0"))


def _build_model(kwargs: dict, model_dir: Path | None):
    from ...cnn_kmeans import CNNKMeans

    if model_dir is None:
        return CNNKMeans(**kwargs), False
    model = CNNKMeans.load(model_dir)
    clash = [f"{k}={kwargs[k]!r} (the model has {getattr(model, k)!r})"
             for k in ARCHITECTURE_PARAMS if k in kwargs and kwargs[k] != getattr(model, k)]
    if clash:
        raise TrainingError("The model channel's model has another encoder shape than the "
                            "hyperparameters ask for: " + ", ".join(clash) + ". Leave these "
                            "out to continue training it.")
    model.set_params(**{k: v for k, v in kwargs.items() if k not in ARCHITECTURE_PARAMS},
                     warm_start=True)
    return model, True


def run(argv: Sequence[str]) -> None:
    """Train as the job asks; raises on failure (see :func:`main`)."""
    from ...hyperparameters import parse_hyperparameters

    hps, paths = parse_arguments(argv)
    if not argv and os.environ.get("SM_HPS"):
        raw = json.loads(os.environ["SM_HPS"])
        hps = {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in raw.items()}
        if "checkpoint-dir" in hps:
            paths["checkpoint-dir"] = hps.pop("checkpoint-dir")
    kwargs = parse_hyperparameters(hps, fg_defaults=True)
    channels = kwargs.pop("channels", 1)
    kwargs.setdefault("verbose", 1)

    data_root = _OPT_ML / "input" / "data"
    train_path = _env_path("SM_CHANNEL_TRAINING", data_root / "training")
    if train_path is None or not train_path.exists():
        raise TrainingError("The training channel is missing: set SM_CHANNEL_TRAINING or "
                            f"put the CSV files in {data_root / 'training'}.")
    valid_path = _env_path("SM_CHANNEL_VALIDATION", data_root / "validation")
    model_channel = _env_path("SM_CHANNEL_MODEL", data_root / "model")
    model_out = _env_path("SM_MODEL_DIR", _OPT_ML / "model", "model")
    checkpoint = paths.get("checkpoint-dir") or os.environ.get("SM_CHECKPOINT_DIR") or (
        str(_OPT_ML / "checkpoints") if _OPT_ML.is_dir() else None)
    if checkpoint and checkpoint.strip().lower() in ("none", "null", ""):
        checkpoint = None

    requested_device = kwargs.get("device", "auto")
    kwargs["device"] = _init_distributed(requested_device)
    is_main = _rank() == 0
    X = read_channel(train_path, channels=channels)
    Xv = read_channel(valid_path, channels=channels) \
        if valid_path is not None and valid_path.exists() else None
    with tempfile.TemporaryDirectory(prefix="tsc-train-") as work:
        previous = find_model(model_channel, work) if model_channel is not None else None
        model, continuing = _build_model(kwargs, previous)
        if checkpoint:
            model.set_params(checkpoint_dir=checkpoint)
        if is_main:
            what = (f"Continuing the model from {previous} ({len(model.history_)} epochs so "
                    "far)" if continuing else "Training a new model")
            print(f"{what} on {len(X)} time series with {X.shape[1]} channel(s) and up to "
                  f"{X.shape[2]} steps" + (f"; {len(Xv)} validation series." if Xv is not None
                                          else "."), flush=True)
        model.fit(X, X_valid=Xv)
        if is_main:
            # the saved model runs wherever it is opened (not on this job's cuda:N)
            model.set_params(checkpoint_dir=None, warm_start=False, device=requested_device)
            saved = model.save(Path(work) / "saved")
            model_out.mkdir(parents=True, exist_ok=True)
            for f in saved.iterdir():
                shutil.copy2(f, model_out / f.name)
            print(f"Model saved to {model_out}", flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the entry point; returns the exit status (0 done, 1 failed)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    from ...hyperparameters import HyperparameterError

    status = 0
    try:
        run(argv)
    except (TrainingError, HyperparameterError, ValueError) as err:
        message = str(err) or type(err).__name__
        print(f"Training failed: {message}", file=sys.stderr, flush=True)
        _write_failure(message)
        status = 1
    except Exception as err:  # noqa: BLE001 - every failure must reach the failure file
        traceback.print_exc()
        _write_failure(f"{type(err).__name__}: {err}")
        status = 1
    finally:
        import torch

        if torch.distributed.is_available() and torch.distributed.is_initialized():
            try:
                if status == 0:
                    torch.distributed.barrier()
            finally:
                torch.distributed.destroy_process_group()
    return status


if __name__ == "__main__":
    sys.exit(main())
