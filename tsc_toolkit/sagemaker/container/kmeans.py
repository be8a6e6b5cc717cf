"""A local stand-in for SageMaker's built-in K-Means container (image ``kmeans:1``).

Training: ``python -m tsc_toolkit.sagemaker.container.kmeans train`` follows the container
contract. It reads the hyperparameters from ``/opt/ml/input/config/hyperparameters.json``
(the built-in algorithm's names: ``k``, ``feature_dim``, ``mini_batch_size``, ``epochs``,
``init_method``, ``extra_center_factor``, ``local_lloyd_max_iter``, ``local_lloyd_tol``,
``local_lloyd_init_method``, ``local_lloyd_num_trials``, ``half_life_time_size``,
``eval_metrics``, ``force_dense``), the ``train`` channel (and optional ``test`` channel) as
recordIO-protobuf or headerless CSV (``text/csv;label_size=0``), fits
:class:`tsc_toolkit.clustering.kmeans.WebScaleKMeans`, and writes a genuine ``model_algo-1`` (an MXNet
NDArray list holding the ``(k, feature_dim)`` centroids) into ``SM_MODEL_DIR``. It prints the
container's quality-metric lines (``#quality_metric: host=algo-1, train msd <loss>=...``). On
bad input it writes the reason to ``/opt/ml/output/failure`` and exits with status 1.
``SAGEMAKER_BASE_DIR`` moves ``/opt/ml`` elsewhere; ``SM_CHANNEL_TRAIN``, ``SM_CHANNEL_TEST``,
``SM_INPUT_CONFIG_DIR``, ``SM_MODEL_DIR`` and ``SM_OUTPUT_FAILURE`` override single paths (the
local runner of :mod:`tsc_toolkit.sagemaker.local.runner` sets them).

Inference: :func:`model_fn`, :func:`input_fn`, :func:`predict_fn`, :func:`output_fn` and
:func:`invoke` answer as the built-in container does:

- requests: ``text/csv`` (one row per line), ``application/json``
  (``{"instances": [{"features": [...]}, ...]}``, or ``{"data": {"features": {"values": [...]}}}``
  for one row), ``application/jsonlines`` (one such instance, or a bare list, per line) and
  ``application/x-recordio-protobuf``;
- responses: JSON ``{"predictions": [{"closest_cluster": 1.0, "distance_to_cluster": 0.3}]}``,
  JSON Lines (one object per line), CSV (``closest_cluster,distance_to_cluster`` per line) and
  recordIO-protobuf (one Record per row whose ``label`` holds both as float32 tensors).

Examples
--------
>>> import numpy as np
>>> from tsc_toolkit.clustering.kmeans import WebScaleKMeans
>>> from tsc_toolkit.sagemaker.container.kmeans import invoke
>>> km = WebScaleKMeans(k=2, device="cpu")
>>> km.cluster_centers_ = np.array([[0.0, 0.0], [10.0, 10.0]], dtype=np.float32)
>>> invoke(km, "0,1\\n9,10\\n", "text/csv", "text/csv")
('0.0,1.0\\n1.0,1.0\\n', 'text/csv')
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..shared.recordio import CONTENT_TYPE as RECORDIO
from ..shared.recordio import RecordIOError, encode_record, frame, read_dense
from .inference import RequestError, loads_json, max_payload_bytes

__all__ = ["train", "main", "read_channel", "parse_hyperparameters", "model_fn", "input_fn",
           "predict_fn", "output_fn", "invoke", "KMeansContainerError"]

CSV = "text/csv"
JSON = "application/json"
JSONLINES = "application/jsonlines"
_TYPES = {CSV: CSV, JSON: JSON, JSONLINES: JSONLINES, "application/x-jsonlines": JSONLINES,
          RECORDIO: RECORDIO, "application/x-protobuf": RECORDIO}

def _auto_int(v: str) -> int | str:
    return v if v == "auto" else _positive_int(v)


# Built-in hyperparameter name -> (WebScaleKMeans parameter, parser).
_HP = {
    "k": ("k", lambda v: _positive_int(v, minimum=2)),
    "mini_batch_size": ("mini_batch_size", lambda v: _positive_int(v)),
    "epochs": ("epochs", lambda v: _positive_int(v)),
    "init_method": ("init_method", lambda v: _choice(v, ("random", "kmeans++"))),
    "extra_center_factor": ("center_factor", _auto_int),
    "local_lloyd_max_iter": ("max_iterations", lambda v: _positive_int(v)),
    "local_lloyd_tol": ("tol", lambda v: _unit_float(v)),
    "local_lloyd_init_method": ("local_init_method", lambda v: _choice(v, ("random", "kmeans++"))),
    "local_lloyd_num_trials": ("num_trials", _auto_int),
    "half_life_time_size": ("half_life_time_size", lambda v: _positive_int(v, minimum=0)),
    "eval_metrics": ("eval_metrics", lambda v: _metrics(v)),
}
_IGNORED = {"feature_dim", "force_dense"}


class KMeansContainerError(ValueError):
    """A training job that cannot run; the message goes to the failure file."""


def _positive_int(v: str, minimum: int = 1) -> int:
    try:
        n = int(str(v).strip())
    except ValueError:
        raise KMeansContainerError(f"{v!r} is not an integer") from None
    if n < minimum:
        raise KMeansContainerError(f"{n} is less than {minimum}")
    return n


def _unit_float(v: str) -> float:
    try:
        x = float(v)
    except ValueError:
        raise KMeansContainerError(f"{v!r} is not a number") from None
    if not 0 <= x <= 1:
        raise KMeansContainerError(f"{x} is not in [0, 1]")
    return x


def _choice(v: str, options: Sequence[str]) -> str:
    if v not in options:
        raise KMeansContainerError(f"{v!r} is not one of {list(options)}")
    return v


def _metrics(v: str) -> list[str]:
    try:
        values = json.loads(v.replace("'", '"')) if v.strip().startswith("[") else [v]
    except ValueError:
        raise KMeansContainerError(f"{v!r} is not a JSON list") from None
    for m in values:
        _choice(m, ("msd", "ssd"))
    return list(values)


def parse_hyperparameters(hps: dict[str, str]) -> tuple[dict, int]:
    """WebScaleKMeans parameters and ``feature_dim`` from the built-in algorithm's
    hyperparameters (all strings); raises :class:`KMeansContainerError` naming the bad one."""
    params: dict = {}
    for name, raw in hps.items():
        if name.startswith(("sagemaker_", "_")) or name in _IGNORED:
            continue
        if name not in _HP:
            raise KMeansContainerError(
                f"Unknown hyperparameter {name!r}; the built-in K-Means takes "
                f"{', '.join(sorted([*_HP, *_IGNORED]))}.")
        key, parse = _HP[name]
        try:
            params[key] = parse(str(raw))
        except KMeansContainerError as err:
            raise KMeansContainerError(f"Hyperparameter {name}={raw!r}: {err}.") from None
    for required in ("k", "feature_dim"):
        if required not in hps:
            raise KMeansContainerError(f"Missing required hyperparameter {required!r}.")
    try:
        feature_dim = _positive_int(str(hps["feature_dim"]))
    except KMeansContainerError as err:
        raise KMeansContainerError(f"Hyperparameter feature_dim: {err}.") from None
    return params, feature_dim


# ------------------------------------------------------------------------- training

def _content_type(config_dir: Path, channel: str) -> str:
    try:
        config = json.loads((config_dir / "inputdataconfig.json").read_text())
    except (OSError, ValueError):
        return ""
    return str(config.get(channel, {}).get("ContentType", ""))


def read_channel(path: str | os.PathLike, content_type: str = "") -> np.ndarray:
    """Every row of the files of a channel folder (recordIO-protobuf or CSV), float32.

    The format comes from ``content_type`` (``text/csv;label_size=N`` drops the first N
    columns); without it each file's first bytes decide.
    """
    path = Path(path)
    files = sorted(p for p in (path.rglob("*") if path.is_dir() else [path])
                   if p.is_file() and not p.name.startswith("."))
    if not files:
        raise KMeansContainerError(f"The channel folder {str(path)!r} holds no data files.")
    media = content_type.split(";")[0].strip().lower()
    label_size = 0
    for param in content_type.split(";")[1:]:
        key, _, value = param.partition("=")
        if key.strip() == "label_size":
            label_size = _positive_int(value, minimum=0)
    blocks = []
    for f in files:
        data = f.read_bytes()
        if not data.strip():
            continue
        is_recordio = media == RECORDIO or (not media and data[:4] == frame(b"")[:4])
        try:
            if is_recordio:
                X, _ = read_dense(data)
            else:
                X = _parse_csv(data.decode("utf-8-sig"), str(f))[:, label_size:]
        except (RecordIOError, UnicodeDecodeError) as err:
            raise KMeansContainerError(f"{f.name}: {err}") from None
        blocks.append(X)
    if not blocks:
        raise KMeansContainerError(f"The channel folder {str(path)!r} holds no records.")
    widths = {b.shape[1] for b in blocks}
    if len(widths) != 1:
        raise KMeansContainerError(f"Files of {str(path)!r} have different numbers of "
                                   f"features: {sorted(widths)}.")
    return np.concatenate(blocks).astype(np.float32)


def _parse_csv(text: str, source: str) -> np.ndarray:
    rows = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rows.append([float(c) for c in line.split(",")])
        except ValueError:
            raise KMeansContainerError(f"{source}: line {lineno} holds a value that is not a "
                                       "number (the CSV must have no header).") from None
    widths = {len(r) for r in rows}
    if len(widths) > 1:
        raise KMeansContainerError(f"{source}: lines have different numbers of columns "
                                   f"{sorted(widths)}.")
    X = np.array(rows, dtype=np.float32)
    if not np.isfinite(X).all():
        raise KMeansContainerError(f"{source}: holds NaN or infinite values.")
    return X


def train(base_dir: str | os.PathLike | None = None, *, random_state: int | None = 0) -> int:
    """Run a training job in the ``/opt/ml`` layout under ``base_dir``; return the exit status.

    Without ``base_dir``, ``SAGEMAKER_BASE_DIR`` (default ``/opt/ml``) and the ``SM_CHANNEL_*``,
    ``SM_INPUT_CONFIG_DIR``, ``SM_MODEL_DIR`` and ``SM_OUTPUT_FAILURE`` variables say where
    things are.
    """
    # An explicit base_dir wins over the SM_* variables of the calling process.
    env = os.environ if base_dir is None else {}
    base = Path(base_dir or env.get("SAGEMAKER_BASE_DIR") or "/opt/ml")
    failure = Path(env.get("SM_OUTPUT_FAILURE") or base / "output" / "failure")
    model_dir = Path(env.get("SM_MODEL_DIR") or base / "model")
    config_dir = Path(env.get("SM_INPUT_CONFIG_DIR") or base / "input" / "config")
    try:
        from ...clustering.kmeans import WebScaleKMeans
        from ...io.ndarray_file import write_ndarray_list

        hp_file = config_dir / "hyperparameters.json"
        try:
            hps = json.loads(hp_file.read_text()) if hp_file.exists() else {}
        except ValueError as err:
            raise KMeansContainerError(f"{hp_file} is not valid JSON: {err}") from None
        params, feature_dim = parse_hyperparameters(hps)
        print(f"Final configuration: {json.dumps({**hps})}", flush=True)
        train_dir = env.get("SM_CHANNEL_TRAIN") or base / "input" / "data" / "train"
        if not Path(train_dir).exists():
            raise KMeansContainerError("The required channel 'train' is missing.")
        X = read_channel(train_dir, _content_type(config_dir, "train"))
        if X.shape[1] != feature_dim:
            raise KMeansContainerError(
                f"feature_dim={feature_dim} but the train channel's records have "
                f"{X.shape[1]} features.")
        if len(X) < params["k"]:
            raise KMeansContainerError(f"The train channel has {len(X)} records, fewer than "
                                       f"k={params['k']}.")
        km = WebScaleKMeans(**params, random_state=random_state, device="cpu").fit(X)
        train_msd = float((km.assign(X).distance_to_cluster.astype(np.float64) ** 2).mean())
        print(f"#quality_metric: host=algo-1, train msd <loss>={train_msd}", flush=True)
        test_dir = env.get("SM_CHANNEL_TEST") or base / "input" / "data" / "test"
        if Path(test_dir).exists():
            Xt = read_channel(test_dir, _content_type(config_dir, "test"))
            if Xt.shape[1] != feature_dim:
                raise KMeansContainerError(f"The test channel's records have {Xt.shape[1]} "
                                           f"features, not feature_dim={feature_dim}.")
            for name, value in km.evaluate(Xt).items():
                print(f"#quality_metric: host=algo-1, test {name} <loss>={value}", flush=True)
        model_dir.mkdir(parents=True, exist_ok=True)
        data = write_ndarray_list([np.asarray(km.cluster_centers_, dtype=np.float32)])
        (model_dir / "model_algo-1").write_bytes(data)
        print(f"Wrote model_algo-1 ({km.cluster_centers_.shape[0]}x{feature_dim}) to "
              f"{model_dir}", flush=True)
        return 0
    except Exception as err:  # the container reports every failure the same way
        reason = str(err) if isinstance(err, KMeansContainerError) else \
            f"{type(err).__name__}: {err}\n{traceback.format_exc()}"
        failure.parent.mkdir(parents=True, exist_ok=True)
        failure.write_text(reason)
        print(f"Training failed: {reason}", file=sys.stderr, flush=True)
        return 1


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m tsc_toolkit.sagemaker.container.kmeans train`` (or ``serve``)."""
    args = list(sys.argv[1:] if argv is None else argv)
    command = args[0] if args else "train"
    if command == "train":
        return train()
    if command == "serve":
        from .http_endpoint import HTTPEndpoint

        base = Path(os.environ.get("SAGEMAKER_BASE_DIR") or "/opt/ml")
        model = model_fn(base / "model")
        HTTPEndpoint(lambda body, ctype, accept: invoke(model, body, ctype, accept),
                     host=os.environ.get("SAGEMAKER_BIND_TO_HOST", "127.0.0.1"),
                     port=int(os.environ.get("SAGEMAKER_BIND_TO_PORT", "8080"))).serve_forever()
        return 0
    print(f"Unknown command {command!r}; use train or serve.", file=sys.stderr)
    return 2


# ------------------------------------------------------------------------ inference

def model_fn(model_dir: str | os.PathLike):
    """The :class:`~tsc_toolkit.clustering.kmeans.WebScaleKMeans` of a ``model_algo-1``, a
    ``model.tar.gz``, or a folder holding either."""
    from ...clustering.kmeans import WebScaleKMeans

    path = Path(model_dir)
    if path.is_dir():
        for name in ("model_algo-1", "model.tar.gz"):
            if (path / name).is_file():
                path = path / name
                break
        else:
            raise ValueError(f"{str(model_dir)!r} holds no model_algo-1 or model.tar.gz.")
    return WebScaleKMeans.load_sagemaker_model(path, device="cpu")


def _media(value: str | None) -> str:
    return (value or "").split(";", 1)[0].strip().lower()


def input_fn(request_body: str | bytes, request_content_type: str | None) -> np.ndarray:
    """Rows of a request as a float32 array of shape (n, feature_dim)."""
    ctype = _TYPES.get(_media(request_content_type))
    if ctype is None:
        raise RequestError(f"Unsupported Content-Type {request_content_type!r}; use text/csv, "
                           "application/json, application/jsonlines or "
                           f"{RECORDIO}.", status=415)
    data = request_body.encode("utf-8") if isinstance(request_body, str) else \
        bytes(request_body or b"")
    limit = max_payload_bytes()
    if len(data) > limit:
        raise RequestError(f"The request body has {len(data)} bytes, more than the limit of "
                           f"{limit} bytes.", status=413)
    if not data.strip():
        raise RequestError("The request body is empty.")
    if ctype == RECORDIO:
        try:
            X, _ = read_dense(data)
        except RecordIOError as err:
            raise RequestError(str(err)) from None
        return X
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise RequestError("The request body is not UTF-8 text.") from None
    if ctype == CSV:
        try:
            return _parse_csv(text, "the request")
        except KMeansContainerError as err:
            raise RequestError(str(err)) from None
    if ctype == JSON:
        rows = _json_rows(loads_json(text, "The request body"))
    else:
        rows = [r for lineno, line in enumerate(text.splitlines(), start=1) if line.strip()
                for r in _json_rows(loads_json(line, f"Line {lineno}"))]
    return _rows_array(rows)


def _json_rows(obj) -> list:
    if isinstance(obj, dict):
        if "instances" in obj:
            if not isinstance(obj["instances"], list):
                raise RequestError('"instances" must be a list.')
            return [_features(i) for i in obj["instances"]]
        return [_features(obj)]
    if isinstance(obj, list):
        if obj and all(isinstance(v, list) for v in obj):
            return obj
        return [obj]
    raise RequestError("Each JSON instance must be an object with features, or a list.")


def _features(inst) -> list:
    if isinstance(inst, dict):
        if "features" in inst:
            return inst["features"]
        data = inst.get("data")
        features = data.get("features") if isinstance(data, dict) else None
        values = features.get("values") if isinstance(features, dict) else None
        if values is not None:
            return values
        raise RequestError('A JSON instance needs "features" (or data.features.values).')
    return inst


def _rows_array(rows: list) -> np.ndarray:
    if not rows:
        raise RequestError("The request holds no records.")
    widths = {len(r) if isinstance(r, list) else -1 for r in rows}
    if -1 in widths or len(widths) != 1:
        raise RequestError("Every record must be a list of numbers of the same length.")
    try:
        X = np.array(rows, dtype=np.float32)
    except (TypeError, ValueError, OverflowError):
        raise RequestError("A record holds a value that is not a number (or one too large)."
                           ) from None
    if not np.isfinite(X).all():
        raise RequestError("A record holds NaN or infinite values.")
    return X


def predict_fn(input_object: np.ndarray, model):
    """``ClusterAssignment(closest_cluster, distance_to_cluster)`` of each row."""
    dim = model.cluster_centers_.shape[1]
    if input_object.ndim != 2 or input_object.shape[1] != dim:
        raise RequestError(f"Records have {input_object.shape[-1]} features but the model "
                           f"has feature_dim={dim}.")
    return model.assign(input_object)


def output_fn(prediction, accept: str | None) -> str | bytes:
    """Encode ``closest_cluster`` and ``distance_to_cluster`` as the built-in container does."""
    fmt = _accept(accept)
    labels = np.asarray(prediction.closest_cluster, dtype=np.float32)
    dists = np.asarray(prediction.distance_to_cluster, dtype=np.float32)
    if fmt == RECORDIO:
        return b"".join(frame(encode_record({}, {"closest_cluster": np.array([c], np.float32),
                                                  "distance_to_cluster": np.array([d], np.float32)}))
                        for c, d in zip(labels, dists))
    if fmt == CSV:
        return "".join(f"{float(c)!r},{float(d)!r}\n" for c, d in zip(labels, dists))
    rows = [{"closest_cluster": float(c), "distance_to_cluster": float(d)}
            for c, d in zip(labels, dists)]
    if fmt == JSON:
        return json.dumps({"predictions": rows})
    return "".join(json.dumps(r) + "\n" for r in rows)


def _accept(accept: str | None) -> str:
    wanted = [_media(a) for a in (accept or "").split(",") if a.strip()]
    if not wanted or all(a == "*/*" for a in wanted):
        return JSON
    for a in wanted:
        if a in _TYPES:
            return _TYPES[a]
    raise RequestError(f"Unsupported Accept {accept!r}.", status=406)


def invoke(model, body: str | bytes, content_type: str | None,
           accept: str | None = None) -> tuple[str | bytes, str]:
    """Answer one request as the built-in container does; return (body, content type)."""
    fmt = _accept(accept)
    return output_fn(predict_fn(input_fn(body, content_type), model), fmt), fmt


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
