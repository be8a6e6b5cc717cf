"""fg-research's hyperparameter names (kebab-case strings) to and from CNNKMeans arguments.

SageMaker passes hyperparameters to a training script as ``--name value`` strings, with
fg-research's names (``kernel-size``, ``batch-size``, ...). This module is the one place that
knows the mapping, the types and the allowed values, so the CLI, the SageMaker entry point
and the notebook launcher agree.

Examples
--------
>>> from tsc_toolkit.hyperparameters import parse_hyperparameters, to_hyperparameters
>>> kwargs = parse_hyperparameters({"clusters": "3", "kernel-size": "5", "lr": "0.01"})
>>> kwargs["clusters"], kwargs["kernel_size"], kwargs["lr"]
(3, 5, 0.01)
>>> to_hyperparameters({"clusters": 3, "batch_size": 64})
{'clusters': '3', 'batch-size': '64'}
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .clustering.graph_clustering import GRAPH_WEIGHTS
from .embedding.scaling import SCALING_METHODS

__all__ = ["HyperparameterError", "HYPERPARAMETERS", "METRIC_DEFINITIONS",
           "ARCHITECTURE_PARAMS", "parse_hyperparameters", "to_hyperparameters"]


class HyperparameterError(ValueError):
    """A hyperparameter is unknown or its value cannot be used."""


@dataclass(frozen=True)
class _Spec:
    kwarg: str
    parse: Callable[[str], Any]
    check: Callable[[Any], bool]
    expected: str
    fg: bool = False  # one of fg-research's eleven


def _int(text: str) -> int:
    value = float(text)
    if not value.is_integer():
        raise ValueError(text)
    return int(value)


def _optional_int(text: str):
    return None if text.strip().lower() in ("", "none", "null") else _int(text)


def _int_or_auto(text: str):
    return "auto" if text.strip().lower() == "auto" else _int(text)


def _bool(text: str) -> bool:
    low = text.strip().lower()
    if low in ("1", "true", "yes", "on"):
        return True
    if low in ("0", "false", "no", "off"):
        return False
    raise ValueError(text)


def _optional_str(text: str):
    return None if text.strip().lower() in ("", "none", "null") else text.strip()


def _positive(v) -> bool:
    return v >= 1


def _one_of(values) -> str:
    """``'a', 'b' or 'c'``: the allowed values, as an error message lists them."""
    quoted = [repr(v) for v in values]
    return ", ".join(quoted[:-1]) + " or " + quoted[-1] if len(quoted) > 1 else quoted[0]


_SPECS: dict[str, _Spec] = {
    "clusters": _Spec("clusters", _int, _positive, "an integer >= 1", True),
    "algorithm": _Spec("algorithm", str.strip, lambda v: v in ("lloyd", "elkan", "webscale"),
                       "'lloyd', 'elkan' or 'webscale'", True),
    "blocks": _Spec("blocks", _int, lambda v: v >= 0, "an integer >= 0", True),
    "filters": _Spec("filters", _int, _positive, "an integer >= 1", True),
    "kernel-size": _Spec("kernel_size", _int, _positive, "an integer >= 1", True),
    "reduced-size": _Spec("reduced_size", _int, _positive, "an integer >= 1", True),
    "output-size": _Spec("output_size", _int, _positive, "an integer >= 1", True),
    "negative-samples": _Spec("negative_samples", _int, _positive, "an integer >= 1", True),
    "lr": _Spec("lr", float, lambda v: 0 < v < float("inf"), "a number > 0", True),
    "batch-size": _Spec("batch_size", _int, _positive, "an integer >= 1", True),
    "epochs": _Spec("epochs", _optional_int, lambda v: v is None or v >= 0,
                    "an integer >= 0 or 'none'", True),
    # The toolkit's own.
    "random-state": _Spec("random_state", _optional_int, lambda v: v is None or v >= 0,
                          "an integer >= 0 or 'none'"),
    "scaling": _Spec("scaling", str.strip, lambda v: v in SCALING_METHODS,
                     _one_of(SCALING_METHODS)),
    "normalize": _Spec("normalize", _optional_str, lambda v: v in (None, "l2", "standard"),
                       "'l2', 'standard' or 'none'"),
    "compared-length": _Spec("compared_length", _optional_int, lambda v: v is None or v >= 1,
                             "an integer >= 1 or 'none'"),
    "max-steps": _Spec("max_steps", _optional_int, lambda v: v is None or v >= 1,
                       "an integer >= 1 or 'none'"),
    "score-sample-size": _Spec("score_sample_size", _int, lambda v: v >= 0,
                               "an integer >= 0"),
    "n-init": _Spec("n_init", _int, _positive, "an integer >= 1"),
    "kernel-features": _Spec("kernel_features", _int, lambda v: v >= 0, "an integer >= 0"),
    "clustering": _Spec("clustering", str.strip, lambda v: v in ("spectral", "kmeans"),
                        "'spectral' or 'kmeans'"),
    "n-neighbors": _Spec("n_neighbors", _int_or_auto, lambda v: v == "auto" or v >= 1,
                         "an integer >= 1 or 'auto'"),
    "graph-weights": _Spec("graph_weights", str.strip, lambda v: v in GRAPH_WEIGHTS,
                           _one_of(GRAPH_WEIGHTS)),
    "device": _Spec("device", str.strip, lambda v: bool(v), "'auto', 'cpu', 'cuda' or 'mps'"),
    # fg-research trains from random weights; 'auto' starts from the encoder shipped with the
    # package (docs/pretrained_encoder.md), a folder from one written by `tsc-toolkit pretrain`
    "pretrained": _Spec("pretrained", _optional_str, lambda v: v is None or bool(v),
                        "'auto', a folder, or 'none'"),
    "channel-mode": _Spec("channel_mode", str.strip,
                          lambda v: v in ("auto", "joint", "separate"),
                          "'auto', 'joint' or 'separate'"),
    "verbose": _Spec("verbose", _int, lambda v: v >= 0, "an integer >= 0"),
    "channels": _Spec("channels", _int, _positive, "an integer >= 1"),
}

#: kebab-case name -> CNNKMeans keyword (``channels`` is read by the CSV reader, not the model).
HYPERPARAMETERS = {name: spec.kwarg for name, spec in _SPECS.items()}
_BY_KWARG = {spec.kwarg: name for name, spec in _SPECS.items()}

#: Settings that fix the encoder's shape; a model that continues training keeps its own.
ARCHITECTURE_PARAMS = ("blocks", "filters", "kernel_size", "reduced_size", "output_size")

#: SageMaker metric definitions for the per-epoch lines printed by ``CNNKMeans(verbose=1)``.
METRIC_DEFINITIONS = [
    {"Name": name, "Regex": rf"{name}: ([-+0-9.eE]+|nan)"}
    for name in ("train_loss", "train_score", "valid_loss", "valid_score")
] + [{"Name": "epoch", "Regex": r"^epoch: ([0-9]+) "}]


#: fg-research's defaults where the estimator's differ: the command line and the SageMaker
#: entry point keep fg-research's behaviour (100 epochs) when ``epochs`` is not given.
FG_DEFAULTS = {"epochs": 100}


def parse_hyperparameters(values: dict[str, Any], fg_defaults: bool = False) -> dict[str, Any]:
    """Turn ``{"kernel-size": "3", ...}`` into ``{"kernel_size": 3, ...}``, checking each.

    Keys may use fg-research's kebab-case names or the snake_case keywords; values may be
    strings (as SageMaker sends them) or already typed. With ``fg_defaults``, a missing
    ``epochs`` becomes fg-research's 100 (:data:`FG_DEFAULTS`).

    Raises
    ------
    HyperparameterError
        Naming every unknown key, or the first value that cannot be used and what it should be.
    """
    unknown = sorted(k for k in values if _lookup(k) is None)
    if unknown:
        known = ", ".join(_SPECS)
        raise HyperparameterError(f"Unknown hyperparameter(s): {', '.join(unknown)}. "
                                  f"Known: {known}.")
    out: dict[str, Any] = {}
    for key, raw in values.items():
        name = _lookup(key)
        spec = _SPECS[name]
        try:
            value = spec.parse(str(raw)) if not isinstance(raw, bool) or spec.parse is _bool \
                else raw
            ok = spec.check(value)
        except (ValueError, TypeError):
            ok = False
        if not ok:
            raise HyperparameterError(f"Hyperparameter {name} must be {spec.expected}; "
                                      f"got {raw!r}.")
        out[spec.kwarg] = value
    if fg_defaults:
        for kwarg, value in FG_DEFAULTS.items():
            out.setdefault(kwarg, value)
    return out


def to_hyperparameters(params: Any) -> dict[str, str]:
    """SageMaker-ready strings with fg-research's names, from keywords or a model.

    Only the toolkit's known keywords are kept; ``None`` becomes ``"none"``.
    """
    if hasattr(params, "get_params"):
        params = params.get_params()
    out = {}
    for kwarg, value in params.items():
        name = _BY_KWARG.get(kwarg)
        if name is None:
            continue
        out[name] = "none" if value is None else str(value)
    return out


def _lookup(key: str) -> str | None:
    if key in _SPECS:
        return key
    return _BY_KWARG.get(key) or (key.replace("_", "-") if key.replace("_", "-") in _SPECS
                                  else None)
