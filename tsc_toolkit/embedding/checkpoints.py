"""Training checkpoints of the T-Loss encoder (:class:`~tsc_toolkit.embedding.TLossEncoder`,
the encoder of :class:`~tsc_toolkit.CNNKMeans`): write one per epoch, resume the newest.

A checkpoint is a folder ``epoch-NNNNNN`` in the model's ``checkpoint_dir`` holding the same
JSON + safetensors bundle as a saved model, plus the optimizer state, the random generators'
states and a fingerprint of the training data, so that an interrupted ``fit`` continues exactly
where it stopped (and refuses to continue on other data). Nothing is pickled.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numpy as np

from ..hyperparameters import ARCHITECTURE_PARAMS
from ..persistence import json_params, read_bundle, write_bundle

__all__ = ["KIND", "list_checkpoints", "save_checkpoint", "resume", "fingerprint"]

KIND = "tsc_toolkit.CNNKMeans.checkpoint"
#: How many of the newest checkpoints are kept.
KEEP = 2


def fingerprint(X: np.ndarray) -> str:
    """A short hash of the training data's shape and values."""
    h = hashlib.blake2b(digest_size=16)
    h.update(str(X.shape).encode())
    h.update(np.ascontiguousarray(X).tobytes())
    return h.hexdigest()


def list_checkpoints(checkpoint_dir) -> list[Path]:
    """The checkpoint folders in ``checkpoint_dir``, oldest first (empty if there is none)."""
    root = Path(checkpoint_dir)
    if not root.is_dir():
        return []
    return sorted(p for p in root.glob("epoch-*") if p.is_dir())


def save_checkpoint(stage, optimizer, rngs: dict, X: np.ndarray, epoch: int) -> Path:
    """Write the full training state of the encoder ``stage`` after ``epoch`` and keep only
    the newest :data:`KEEP`."""
    from .. import __version__

    opt = optimizer.state_dict()
    state, tensors = stage.state()
    for pid, st in opt["state"].items():
        for key, value in st.items():
            tensors[f"optimizer.{pid}.{key}"] = value
    meta = {"library_version": __version__, "params": json_params(stage.get_params()),
            "state": state}
    meta["checkpoint"] = {
        "epoch": epoch,
        "param_groups": opt["param_groups"],
        "rngs": {name: rng.bit_generator.state for name, rng in rngs.items()},
        "data": fingerprint(X),
    }
    path = write_bundle(Path(stage.checkpoint_dir) / f"epoch-{epoch:06d}", KIND, meta, tensors)
    for old in list_checkpoints(stage.checkpoint_dir)[:-KEEP]:
        shutil.rmtree(old, ignore_errors=True)
    return path


def resume(stage, optimizer, rngs: dict, X: np.ndarray) -> int | None:
    """Restore the newest checkpoint into the encoder ``stage``, ``optimizer`` and ``rngs``
    (checkpoints written by a CNNKMeans before it had stages hold the same fields).

    Returns the number of epochs it had completed, or None when there is no checkpoint.

    Raises
    ------
    ValueError
        If the checkpoint was written on other data or for another architecture.
    """
    found = list_checkpoints(stage.checkpoint_dir)
    if not found:
        return None
    latest = found[-1]
    meta, tensors = read_bundle(latest, KIND)
    ck = meta.get("checkpoint", {})
    if ck.get("data") != fingerprint(X):
        raise ValueError(
            f"The checkpoint in {latest} was written while training on other data. "
            "Empty checkpoint_dir (or choose another) to start a new training.")
    saved = meta["params"]
    for name in ARCHITECTURE_PARAMS:
        if saved.get(name) != getattr(stage, name):
            raise ValueError(f"The checkpoint in {latest} has {name}={saved.get(name)!r} "
                             f"but this model has {getattr(stage, name)!r}.")
    params = {name: saved[name] for name in ARCHITECTURE_PARAMS}
    restored = type(stage).from_state(params, meta["state"], tensors, latest)
    stage.module_.load_state_dict(restored.module_.state_dict())
    stage.scaler_, stage.history_ = restored.scaler_, restored.history_
    stage.n_steps_ = restored.n_steps_
    state: dict = {}
    for key, value in tensors.items():
        if key.startswith("optimizer."):
            _, pid, name = key.split(".", 2)
            state.setdefault(int(pid), {})[name] = value
    optimizer.load_state_dict({"state": state, "param_groups": ck["param_groups"]})
    for name, rng in rngs.items():
        if name in ck["rngs"]:
            rng.bit_generator.state = ck["rngs"][name]
    if stage.verbose:
        print(f"Resuming from {latest} (epoch {ck['epoch']}).", flush=True)
    return int(ck["epoch"])
