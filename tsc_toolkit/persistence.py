"""Model files: a folder with ``config.json`` and ``weights.safetensors``.

Nothing is ever unpickled: the configuration is JSON and the arrays are safetensors, so
opening a model file cannot run code. A format name and version are stored and checked,
and a damaged or foreign file gives a :class:`ModelFormatError` that says so.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

__all__ = ["ModelFormatError", "write_bundle", "read_bundle", "json_params", "FORMAT_VERSION",
           "CONFIG_FILE", "WEIGHTS_FILE"]

FORMAT_VERSION = 1
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "weights.safetensors"


class ModelFormatError(ValueError):
    """A model or checkpoint folder is missing, damaged, or of another format or version."""


def write_bundle(path: str | os.PathLike, kind: str, meta: dict, tensors: dict) -> Path:
    """Write ``meta`` (JSON-ready) and ``tensors`` (name -> array) to the folder ``path``.

    The folder is written beside its final place and renamed into it, so a crash while
    saving never leaves a half-written model where a complete one was.
    """
    import torch
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        config = {"format": kind, "format_version": FORMAT_VERSION, **meta}
        (tmp / CONFIG_FILE).write_text(json.dumps(config, indent=1, allow_nan=True),
                                       encoding="utf-8")
        arrays, seen = {}, set()
        for name, value in tensors.items():
            t = value.detach().cpu() if isinstance(value, torch.Tensor) else \
                torch.from_numpy(np.ascontiguousarray(value))
            t = t.contiguous()
            if t.numel() and t.data_ptr() in seen:  # safetensors refuses shared memory
                t = t.clone()
            seen.add(t.data_ptr())
            arrays[name] = t
        save_file(arrays, str(tmp / WEIGHTS_FILE), metadata={"format": kind})
        if path.exists():
            old = path.with_name(f".{path.name}.old")
            if old.exists():
                shutil.rmtree(old)
            path.rename(old)
            tmp.rename(path)
            shutil.rmtree(old)
        else:
            tmp.rename(path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return path


def read_bundle(path: str | os.PathLike, kind: str) -> tuple[dict, dict]:
    """Read a folder written by :func:`write_bundle`; returns ``(meta, tensors)``.

    Tensors come back as CPU torch tensors.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_dir():
        hint = " (it is a file; pass the model's folder)" if path.exists() else ""
        raise ModelFormatError(f"No model folder at {str(path)!r}{hint}.")
    config_path, weights_path = path / CONFIG_FILE, path / WEIGHTS_FILE
    for p in (config_path, weights_path):
        if not p.is_file():
            raise ModelFormatError(f"{str(path)!r} is not a complete model folder: "
                                   f"{p.name} is missing.")
    try:
        meta = json.loads(config_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ModelFormatError(f"{config_path} is damaged: it is not valid JSON ({err}).") \
            from None
    if not isinstance(meta, dict) or meta.get("format") != kind:
        found = meta.get("format") if isinstance(meta, dict) else type(meta).__name__
        raise ModelFormatError(f"{config_path} holds a {found!r}, not a {kind!r}.")
    version = meta.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION or version < 1:
        raise ModelFormatError(
            f"{config_path} has format version {version!r}; this version of tsc_toolkit reads "
            f"versions 1 to {FORMAT_VERSION}. Upgrade tsc_toolkit to open it.")
    try:
        tensors = load_file(str(weights_path))
    except (SafetensorError, OSError, ValueError) as err:
        raise ModelFormatError(f"{weights_path} is damaged: {err}.") from None
    return meta, tensors


def json_params(params: dict) -> dict:
    """``get_params()`` made JSON-ready: paths and devices as text, a RandomState as None."""
    params = dict(params)
    if params.get("checkpoint_dir") is not None:
        params["checkpoint_dir"] = str(params["checkpoint_dir"])
    if "device" in params:
        params["device"] = str(params["device"])
    if not isinstance(params.get("random_state"), (int, type(None))):
        params["random_state"] = None
    return params
