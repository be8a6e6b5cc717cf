"""Request handlers for serving a CNN-KMeans model: SageMaker's PyTorch inference contract.

The SageMaker PyTorch inference container imports ``code/inference.py`` from the model
archive and calls :func:`model_fn` once, then :func:`input_fn`, :func:`predict_fn` and
:func:`output_fn` for every ``POST /invocations``. :mod:`tsc_toolkit.sagemaker.deploy` ships a
two-line ``code/inference.py`` that re-exports these functions; :mod:`.server` and
:mod:`tsc_toolkit.sagemaker.local.serving` call the same functions, so a model answers the same everywhere.

Request formats (``Content-Type``)
----------------------------------
``text/csv``
    fg-research's contract: one series per line, no header, empty cells are missing values,
    lines may have different lengths. For a model trained on ``C`` channels, each series takes
    ``C`` consecutive lines (prefer JSON Lines for multivariate batch transforms, because a
    batch transform may cut a request between any two lines).
``application/json``
    ``{"instances": [instance, ...]}`` or a bare list of instances, where an instance is a list
    of numbers (a univariate series), a list of lists of numbers (one list per channel), or an
    object ``{"series": ...}`` (``"features"`` is accepted as an alias) holding either form.
    ``null`` is a missing value; channels and series may have different lengths.
``application/jsonlines``
    One instance per line, in the same per-instance shape.

Response formats (``Accept``)
-----------------------------
``text/csv``
    fg-research's contract: the cluster label (as a float), then the embedding, one line per
    series.
``application/json``
    ``{"predictions": [{"closest_cluster": 0, "distance_to_cluster": 0.12,
    "embedding": [...]}, ...]}``.
``application/jsonlines``
    One such prediction object per line.

``*/*`` or no ``Accept`` means ``SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT`` when set, else the
request's own format. One series in gives one line (or one JSON prediction) out, in order,
which is what a batch transform with ``SplitType=Line`` and ``AssembleWith=Line`` needs.

Bad requests raise :class:`RequestError`, whose ``status`` is the HTTP status to answer with
(400 bad data, 406 unsupported ``Accept``, 413 payload too large, 415 unsupported
``Content-Type``). Requests larger than ``TSC_TOOLKIT_MAX_PAYLOAD_MB`` megabytes (default 6,
the limit of SageMaker real-time endpoints) are refused.

Examples
--------
>>> from tsc_toolkit.sagemaker.container.inference import input_fn, RequestError
>>> req = input_fn('{"instances": [[1, 2, 3], [[1, 2], [3, null, 5]]]}', "application/json")
>>> [s.shape for s in req.series]
[(1, 3), (2, 3)]
>>> try:
...     input_fn("1,2", "image/png")
... except RequestError as err:
...     print(err.status)
415
"""

from __future__ import annotations

import json
import math
import os
import threading
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

import numpy as np

__all__ = ["RequestError", "SeriesRequest", "Prediction", "model_fn", "input_fn",
           "predict_fn", "output_fn", "invoke", "max_payload_bytes", "loads_json", "CONTENT_TYPES",
           "ACCEPT_TYPES"]

CSV = "text/csv"
JSON = "application/json"
JSONLINES = "application/jsonlines"
#: Request formats understood by :func:`input_fn` (aliases map to the canonical name).
CONTENT_TYPES = {CSV: CSV, JSON: JSON, JSONLINES: JSONLINES,
                 "application/x-jsonlines": JSONLINES, "application/jsonl": JSONLINES}
#: Response formats written by :func:`output_fn`.
ACCEPT_TYPES = dict(CONTENT_TYPES)

MAX_PAYLOAD_ENV = "TSC_TOOLKIT_MAX_PAYLOAD_MB"
DEFAULT_MAX_PAYLOAD_MB = 6.0
DEVICE_ENV = "TSC_TOOLKIT_DEVICE"

# One prediction at a time per model: torch already uses every core for one batch, and
# interleaving threads would only thrash them.
_PREDICT_LOCK = threading.Lock()


try:  # inside SageMaker's inference containers: errors of this base class keep their status
    from sagemaker_inference.errors import BaseInferenceToolkitError as _ToolkitError
except ImportError:  # anywhere else
    class _ToolkitError(Exception):
        """Stands in for ``sagemaker_inference.errors.BaseInferenceToolkitError``."""


class RequestError(_ToolkitError, ValueError):
    """A request the model cannot answer; ``status`` is the HTTP status (4xx) to reply with.

    In SageMaker's inference containers it is a ``BaseInferenceToolkitError`` (with
    ``status_code``, ``message`` and ``phrase``), so the container answers with ``status``
    instead of 500.
    """

    def __init__(self, message: str, status: int = 400):
        Exception.__init__(self, message)
        self.status = self.status_code = int(status)
        self.message = message
        try:
            self.phrase = HTTPStatus(self.status).phrase
        except ValueError:
            self.phrase = "Bad Request"

    def __str__(self) -> str:
        return self.message

    def to_json(self) -> str:
        """The error as the JSON body of an HTTP reply."""
        return json.dumps({"error": self.message, "status": self.status})


@dataclass
class SeriesRequest:
    """A decoded request: the CSV text (parsed once the model's channel count is known), or
    the series of a JSON request, each an array of shape (n_channels, length)."""

    content_type: str
    text: str | None = None
    series: list[np.ndarray] = field(default_factory=list)


@dataclass
class Prediction:
    """What :func:`predict_fn` returns: one entry per series, in request order."""

    closest_cluster: np.ndarray
    distance_to_cluster: np.ndarray
    embedding: np.ndarray

    def __len__(self) -> int:
        return len(self.closest_cluster)


def max_payload_bytes() -> int:
    """Largest request body accepted, from ``TSC_TOOLKIT_MAX_PAYLOAD_MB`` (default 6 MB)."""
    raw = os.environ.get(MAX_PAYLOAD_ENV, "")
    try:
        mb = float(raw) if raw.strip() else DEFAULT_MAX_PAYLOAD_MB
    except ValueError:
        mb = DEFAULT_MAX_PAYLOAD_MB
    if not mb > 0 or math.isinf(mb):
        mb = DEFAULT_MAX_PAYLOAD_MB
    return int(mb * 1024 * 1024)


def _media_type(value: str | None) -> str:
    return (value or "").split(";", 1)[0].strip().lower()


# ------------------------------------------------------------------------- handlers

def model_fn(model_dir: str | os.PathLike):
    """Load the model saved in ``model_dir`` (a folder written by ``CNNKMeans.save``).

    Nothing is unpickled: the folder holds JSON and safetensors. The torch device is
    ``TSC_TOOLKIT_DEVICE`` when set, else ``"auto"`` (the GPU when there is one).
    """
    from ...cnn_kmeans import CNNKMeans

    return CNNKMeans.load(model_dir, device=os.environ.get(DEVICE_ENV) or "auto")


def input_fn(request_body: str | bytes, request_content_type: str | None) -> SeriesRequest:
    """Decode a request body into a :class:`SeriesRequest`; raise :class:`RequestError`."""
    ctype = CONTENT_TYPES.get(_media_type(request_content_type))
    if ctype is None:
        raise RequestError(
            f"Unsupported Content-Type {request_content_type!r}; use one of "
            f"{', '.join(sorted({CSV, JSON, JSONLINES}))}.", status=415)
    if request_body is None:
        request_body = b""
    size = len(request_body.encode("utf-8") if isinstance(request_body, str) else request_body)
    limit = max_payload_bytes()
    if size > limit:
        raise RequestError(
            f"The request body has {size} bytes, more than the limit of {limit} bytes "
            f"({MAX_PAYLOAD_ENV}); split it into several requests.", status=413)
    if isinstance(request_body, (bytes, bytearray, memoryview)):
        try:
            text = bytes(request_body).decode("utf-8-sig")
        except UnicodeDecodeError as err:
            raise RequestError(f"The request body is not UTF-8 text (byte {err.start} cannot "
                               "be decoded).") from None
    else:
        text = request_body
    if not text.strip():
        raise RequestError("The request body is empty: send at least one series.")
    if ctype == CSV:
        return SeriesRequest(CSV, text=text)
    if ctype == JSON:
        payload = loads_json(text, "The request body")
        instances = _instances(payload)
        series = [_instance(obj, f"instance {i}") for i, obj in enumerate(instances)]
    else:
        series = []
        for lineno, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            obj = loads_json(line, f"Line {lineno}")
            series.append(_instance(obj, f"line {lineno}"))
    if not series:
        raise RequestError("The request holds no series.")
    return SeriesRequest(ctype, series=series)


def predict_fn(input_object: SeriesRequest | np.ndarray, model) -> Prediction:
    """Cluster, distance to its center and embedding of every series of the request."""
    from ...data import TimeSeriesValueError, check_dataset

    channels = int(model.n_channels_)
    try:
        if isinstance(input_object, SeriesRequest) and input_object.text is not None:
            from ...io.csvio import parse_csv_text

            X = parse_csv_text(input_object.text, channels=channels, source="the request")
        else:
            X = _stack(input_object.series if isinstance(input_object, SeriesRequest)
                       else input_object, channels)
            X = check_dataset(X, name="the request", where=lambda i: f"series {i}")
    except TimeSeriesValueError as err:
        raise RequestError(str(err)) from None
    with _PREDICT_LOCK:
        try:
            result = model.assign(X)
        except TimeSeriesValueError as err:
            raise RequestError(str(err)) from None
    return Prediction(np.asarray(result.closest_cluster), np.asarray(result.distance_to_cluster),
                      np.asarray(result.embedding))


def output_fn(prediction: Prediction, accept: str | None) -> str:
    """Encode predictions in the ``accept`` format (one line or object per series)."""
    fmt = _resolve_accept(accept, fallback=JSON)
    if fmt == CSV:
        from ...io.csvio import format_predictions_csv

        return format_predictions_csv(prediction.closest_cluster, prediction.embedding)
    rows = [{"closest_cluster": int(c), "distance_to_cluster": float(d),
             "embedding": [float(v) for v in e]}
            for c, d, e in zip(prediction.closest_cluster, prediction.distance_to_cluster,
                               np.asarray(prediction.embedding, dtype=np.float32))]
    if fmt == JSON:
        return json.dumps({"predictions": rows})
    return "".join(json.dumps(r) + "\n" for r in rows)


def invoke(model, body: str | bytes, content_type: str | None,
           accept: str | None = None) -> tuple[str, str]:
    """Run the four handlers on one request, as the container does; return (body, type).

    ``accept`` of ``None`` or ``*/*`` means ``SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT`` when set,
    else the request's format. Raises :class:`RequestError` for a bad request.
    """
    fmt = _resolve_accept(accept, fallback=CONTENT_TYPES.get(_media_type(content_type), JSON))
    request = input_fn(body, content_type)
    return output_fn(predict_fn(request, model), fmt), fmt


def _resolve_accept(accept: str | None, fallback: str) -> str:
    wanted = [_media_type(a) for a in (accept or "").split(",") if a.strip()]
    if not wanted or all(a in ("*/*", "") for a in wanted):
        default = _media_type(os.environ.get("SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT"))
        return ACCEPT_TYPES.get(default, fallback)
    for a in wanted:
        if a in ACCEPT_TYPES:
            return ACCEPT_TYPES[a]
    raise RequestError(f"Unsupported Accept {accept!r}; use one of "
                       f"{', '.join(sorted({CSV, JSON, JSONLINES}))}.", status=406)


# ------------------------------------------------------------------ JSON decoding

def loads_json(text: str, what: str) -> Any:
    """``json.loads`` for a request; raises :class:`RequestError` (400) for what it refuses.

    Deep nesting (``[`` x 5000) makes the decoder recurse past Python's limit; that is the
    client's malformed input, not a server failure.
    """
    try:
        return json.loads(text)
    except RecursionError:
        raise RequestError(f"{what} nests JSON arrays or objects too deeply; a request is a "
                           "list of instances, each a list of numbers (or of such lists, one "
                           "per channel).") from None
    except ValueError as err:
        raise RequestError(f"{what} is not valid JSON: {err}.") from None


def _instances(payload: Any) -> list:
    if isinstance(payload, dict):
        if "instances" not in payload:
            raise RequestError('A JSON request must be {"instances": [...]} or a list of '
                               f"instances; got an object with keys {sorted(payload)[:5]}.")
        payload = payload["instances"]
        if not isinstance(payload, list):
            raise RequestError('"instances" must be a list.')
        return payload
    if isinstance(payload, list):
        # A bare list of numbers is one univariate series; otherwise a list of instances.
        if payload and all(_is_scalar(v) for v in payload):
            return [payload]
        return payload
    raise RequestError('A JSON request must be {"instances": [...]} or a list of instances.')


def _is_scalar(v: Any) -> bool:
    return v is None or (isinstance(v, (int, float)) and not isinstance(v, bool))


def _instance(obj: Any, where: str) -> np.ndarray:
    if isinstance(obj, dict):
        key = "series" if "series" in obj else "features" if "features" in obj else None
        if key is None:
            raise RequestError(f'{where}: an object instance needs a "series" key.')
        obj = obj[key]
    if not isinstance(obj, list) or not obj:
        raise RequestError(f"{where}: a series must be a non-empty list of numbers, or a list "
                           "of such lists (one per channel).")
    channels = obj if isinstance(obj[0], list) else [obj]
    rows = []
    for ch, values in enumerate(channels):
        if not isinstance(values, list):
            raise RequestError(f"{where}, channel {ch}: expected a list of numbers.")
        for t, v in enumerate(values):
            if not _is_scalar(v):
                raise RequestError(f"{where}, channel {ch}, step {t}: {v!r} is not a number "
                                   "(use null for a missing value).")
        try:
            rows.append(np.array([np.nan if v is None else v for v in values], dtype=np.float64))
        except OverflowError:  # an integer beyond float64's range
            raise RequestError(f"{where}, channel {ch}: a number is too large.") from None
    length = max(len(r) for r in rows)
    out = np.full((len(rows), length), np.nan, dtype=np.float32)
    for ch, r in enumerate(rows):
        out[ch, : len(r)] = r
    return out


def _stack(series, channels: int) -> np.ndarray:
    if isinstance(series, np.ndarray):
        X = series[:, None, :] if series.ndim == 2 and channels == 1 else series
        if X.ndim != 3 or X.shape[1] != channels:
            raise RequestError(f"Expected series with {channels} channel(s); got an array "
                               f"of shape {series.shape}.")
        return X
    for i, s in enumerate(series):
        if s.shape[0] != channels:
            raise RequestError(f"Series {i} has {s.shape[0]} channel(s) but the model was "
                               f"trained on {channels}.")
    length = max(s.shape[1] for s in series)
    X = np.full((len(series), channels, length), np.nan, dtype=np.float32)
    for i, s in enumerate(series):
        X[i, :, : s.shape[1]] = s
    return X
