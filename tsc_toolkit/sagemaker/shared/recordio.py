"""RecordIO-protobuf, the data format of SageMaker's built-in algorithms, without dependencies.

SDK v3 dropped the writer (its ``write_numpy_to_dense_tensor`` raises NotImplementedError);
this module brings it back, byte for byte as v2 wrote it, and adds a reader.

Layout. A file is a sequence of MXNet RecordIO frames: ``uint32 0xCED7230A`` (little-endian),
``uint32 length``, ``length`` bytes of payload, then zero bytes up to a multiple of 4. Each
payload is the protobuf message ``aialgs.data.Record``::

    message Float32Tensor { repeated float  values = 1 [packed]; repeated uint64 keys = 2 [packed];
                            repeated uint64 shape = 3 [packed]; }
    message Float64Tensor { repeated double values = 1 [packed]; ... keys = 2; shape = 3; }
    message Int32Tensor   { repeated int32  values = 1 [packed]; ... keys = 2; shape = 3; }
    message Value  { oneof value { Float32Tensor float32_tensor = 2; Float64Tensor float64_tensor = 3;
                                   Int32Tensor int32_tensor = 7; Bytes bytes = 9; } }
    message Record { map<string, Value> features = 1; map<string, Value> label = 2;
                     string uid = 3; string metadata = 4; string configuration = 5; }

A dense row is ``features["values"]``; its label (if any) is ``label["values"]``. The built-in
K-Means answers ``application/x-recordio-protobuf`` with ``label["closest_cluster"]`` and
``label["distance_to_cluster"]``.

Examples
--------
>>> import io
>>> import numpy as np
>>> from tsc_toolkit.sagemaker.shared.recordio import write_numpy_to_dense_tensor, read_records
>>> buf = io.BytesIO()
>>> write_numpy_to_dense_tensor(buf, np.array([[1.0, 2.0]], dtype=np.float32))
>>> buf.getvalue().hex()
'0a23d7ce180000000a160a0676616c756573120c120a0a080000803f00000040'
>>> (rec,) = read_records(buf.getvalue())
>>> rec.features["values"].float32_tensor.values.tolist()
[1.0, 2.0]
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import IO

import numpy as np

__all__ = ["MAGIC", "CONTENT_TYPE", "Tensor", "Value", "Record", "encode_record",
           "frame", "write_numpy_to_dense_tensor", "numpy_to_record_bytes", "read_records",
           "read_dense", "RecordIOError"]

MAGIC = 0xCED7230A
CONTENT_TYPE = "application/x-recordio-protobuf"

# Value's oneof field numbers, and the numpy dtype of each tensor's values.
_TENSOR_FIELDS = {"float32_tensor": (2, np.dtype("<f4")), "float64_tensor": (3, np.dtype("<f8")),
                  "int32_tensor": (7, np.dtype("<i4"))}
_FIELD_TO_KIND = {num: kind for kind, (num, _) in _TENSOR_FIELDS.items()}


class RecordIOError(ValueError):
    """Raised when bytes are not valid RecordIO-protobuf."""


# ------------------------------------------------------------------------- writing

def _varint(n: int) -> bytes:
    if n < 0:
        n += 1 << 64  # negative int32 values are sign-extended to ten bytes
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited field (wire type 2)."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _tensor_kind(dtype: np.dtype) -> str:
    # The dtypes v2 accepted: numpy's default int (written as int32 values), float64, float32.
    dtype = np.dtype(dtype)
    if dtype == np.dtype(int) or dtype == np.dtype(np.int32):
        return "int32_tensor"
    if dtype == np.dtype(np.float64):
        return "float64_tensor"
    if dtype == np.dtype(np.float32):
        return "float32_tensor"
    raise ValueError(f"Unsupported dtype {dtype} on array; use float32, float64 or int.")


def _value(values: np.ndarray, kind: str | None = None) -> bytes:
    values = np.asarray(values).ravel()
    kind = kind or _tensor_kind(values.dtype)
    number, dtype = _TENSOR_FIELDS[kind]
    if kind == "int32_tensor":
        ints = values.astype(np.int64)
        if ints.size and (ints.min() < -(1 << 31) or ints.max() >= 1 << 31):
            raise ValueError("Integer values must fit in int32.")
        packed = b"".join(_varint(int(v)) for v in ints)
    else:
        packed = values.astype(dtype).tobytes()
    tensor = _field(1, packed) if values.size else b""
    return _field(number, tensor)


def _map_entry(number: int, key: str, value: bytes) -> bytes:
    return _field(number, _field(1, key.encode("utf-8")) + _field(2, value))


def encode_record(features: dict[str, np.ndarray], label: dict[str, np.ndarray] | None = None,
                  ) -> bytes:
    """The protobuf bytes of one ``Record`` whose tensors hold the given arrays (flattened).

    The tensor type follows each array's dtype: float32, float64, or int (int32 values).
    """
    out = b"".join(_map_entry(1, k, _value(v)) for k, v in features.items())
    return out + b"".join(_map_entry(2, k, _value(v)) for k, v in (label or {}).items())


def frame(payload: bytes) -> bytes:
    """Wrap one payload in a RecordIO frame (magic, length, payload, zero padding to 4)."""
    pad = -len(payload) % 4
    return struct.pack("<II", MAGIC, len(payload)) + payload + b"\x00" * pad


def write_numpy_to_dense_tensor(file: IO[bytes], array: np.ndarray,
                                labels: np.ndarray | None = None) -> None:
    """Write each row of a 2-D array (and its label) as one record, as SDK v2 did.

    Same signature, checks and bytes as ``sagemaker.amazon.common.write_numpy_to_dense_tensor``.
    """
    if len(array.shape) != 2:
        raise ValueError("Array must be a Matrix")
    if labels is not None:
        if len(labels.shape) != 1:
            raise ValueError("Labels must be a Vector")
        if labels.shape[0] not in array.shape:
            raise ValueError(f"Label shape {labels.shape} not compatible with array shape "
                             f"{array.shape}")
        label_kind = _tensor_kind(labels.dtype)
    kind = _tensor_kind(array.dtype)
    for index, vector in enumerate(array):
        payload = _field(1, _field(1, b"values") + _field(2, _value(vector, kind)))
        if labels is not None:
            payload += _field(2, _field(1, b"values")
                              + _field(2, _value(np.asarray([labels[index]]), label_kind)))
        file.write(frame(payload))


def numpy_to_record_bytes(array: np.ndarray, labels: np.ndarray | None = None) -> bytes:
    """:func:`write_numpy_to_dense_tensor` into bytes."""
    import io

    buf = io.BytesIO()
    write_numpy_to_dense_tensor(buf, array, labels)
    return buf.getvalue()


# ------------------------------------------------------------------------- reading

@dataclass
class Tensor:
    """A decoded tensor: ``values`` (numpy array), ``keys`` and ``shape`` (sparse data)."""

    values: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.float32))
    keys: list[int] = field(default_factory=list)
    shape: list[int] = field(default_factory=list)


@dataclass
class Value:
    """One map value of a Record. The set tensor is the one named by ``kind``; reading another
    one gives an empty tensor, as protobuf does."""

    kind: str
    tensor: Tensor

    def _get(self, kind: str) -> Tensor:
        return self.tensor if self.kind == kind else Tensor()

    @property
    def float32_tensor(self) -> Tensor:
        return self._get("float32_tensor")

    @property
    def float64_tensor(self) -> Tensor:
        return self._get("float64_tensor")

    @property
    def int32_tensor(self) -> Tensor:
        return self._get("int32_tensor")

    @property
    def values(self) -> np.ndarray:
        """The values of whichever tensor is set."""
        return self.tensor.values


@dataclass
class Record:
    """A decoded ``aialgs.data.Record``: ``features`` and ``label`` map names to :class:`Value`.

    Read a K-Means answer as ``record.label["closest_cluster"].float32_tensor.values[0]``,
    as with SDK v2's ``KMeansPredictor``.
    """

    features: dict[str, Value] = field(default_factory=dict)
    label: dict[str, Value] = field(default_factory=dict)
    uid: str = ""
    metadata: str = ""
    configuration: str = ""


class _Buf:
    def __init__(self, data: bytes):
        self.data = data
        self.pos = 0

    def varint(self) -> int:
        shift = result = 0
        while True:
            if self.pos >= len(self.data):
                raise RecordIOError("Truncated protobuf varint.")
            b = self.data[self.pos]
            self.pos += 1
            result |= (b & 0x7F) << shift
            if not b & 0x80:
                return result
            shift += 7
            if shift > 63:
                raise RecordIOError("Protobuf varint too long.")

    def varints(self):
        """Yield the varints of a packed field until the end of the buffer."""
        while self.pos < len(self.data):
            yield self.varint()

    def fields(self):
        """Yield (number, wire type, value) until the end of the buffer."""
        while self.pos < len(self.data):
            key = self.varint()
            number, wire = key >> 3, key & 7
            if wire == 0:
                yield number, wire, self.varint()
            elif wire == 2:
                n = self.varint()
                if self.pos + n > len(self.data):
                    raise RecordIOError("Truncated protobuf field.")
                yield number, wire, self.data[self.pos:self.pos + n]
                self.pos += n
            elif wire in (1, 5):
                n = 8 if wire == 1 else 4
                yield number, wire, self.data[self.pos:self.pos + n]
                self.pos += n
            else:
                raise RecordIOError(f"Unsupported protobuf wire type {wire}.")


def _signed32(v: int) -> int:
    v &= (1 << 64) - 1
    return v - (1 << 64) if v >= 1 << 63 else v


def _tensor(data: bytes, kind: str) -> Tensor:
    dtype = _TENSOR_FIELDS[kind][1]
    chunks: list[np.ndarray] = []
    keys: list[int] = []
    shape: list[int] = []
    for number, wire, v in _Buf(data).fields():
        if number == 1:
            if kind == "int32_tensor":
                raw = _Buf(v).varints() if wire == 2 else [v]
                ints = [_signed32(x) for x in raw]
                chunks.append(np.array(ints, dtype=np.int32))
            elif wire == 2:
                if len(v) % dtype.itemsize:
                    raise RecordIOError("Packed tensor values of a wrong size.")
                chunks.append(np.frombuffer(v, dtype=dtype))
            else:
                chunks.append(np.frombuffer(v, dtype=dtype))
        elif number in (2, 3):
            ints = list(_Buf(v).varints()) if wire == 2 else [v]
            (keys if number == 2 else shape).extend(ints)
    values = np.concatenate(chunks) if chunks else np.empty(0, dtype=dtype)
    return Tensor(values.astype(dtype.newbyteorder("=")), keys, shape)


def _value_from(data: bytes) -> Value:
    for number, _, v in _Buf(data).fields():
        if number in _FIELD_TO_KIND:
            kind = _FIELD_TO_KIND[number]
            return Value(kind, _tensor(v, kind))
    return Value("none", Tensor())


def _record(payload: bytes) -> Record:
    rec = Record()
    for number, wire, v in _Buf(payload).fields():
        if number in (1, 2) and wire == 2:
            key, value = "", Value("none", Tensor())
            for n2, _, v2 in _Buf(v).fields():
                if n2 == 1:
                    key = bytes(v2).decode("utf-8")
                elif n2 == 2:
                    value = _value_from(v2)
            (rec.features if number == 1 else rec.label)[key] = value
        elif number in (3, 4, 5) and wire == 2:
            setattr(rec, {3: "uid", 4: "metadata", 5: "configuration"}[number],
                    bytes(v).decode("utf-8"))
    return rec


def _payloads(data: bytes):
    pos = 0
    while pos < len(data):
        if pos + 8 > len(data):
            raise RecordIOError(f"Truncated RecordIO header at byte {pos}.")
        magic, length = struct.unpack_from("<II", data, pos)
        if magic != MAGIC:
            raise RecordIOError(f"Bad RecordIO magic 0x{magic:08X} at byte {pos}; "
                                "is this recordIO-protobuf data?")
        # The upper 3 bits of the length word flag multi-part records; they are unused here.
        length &= (1 << 29) - 1
        start = pos + 8
        if start + length > len(data):
            raise RecordIOError(f"Truncated RecordIO record at byte {pos}.")
        yield data[start:start + length]
        pos = start + length + (-length % 4)


def read_records(data: bytes | IO[bytes]) -> list[Record]:
    """Decode every record of RecordIO-protobuf bytes (or a binary file object)."""
    if hasattr(data, "read"):
        data = data.read()
    return [_record(p) for p in _payloads(bytes(data))]


def read_dense(data: bytes | IO[bytes], *, dtype=np.float32
               ) -> tuple[np.ndarray, np.ndarray | None]:
    """The ``features["values"]`` rows as a 2-D array, and the ``label["values"]`` (or None).

    Raises
    ------
    RecordIOError
        If the data is not RecordIO-protobuf, holds no records, or rows differ in length.
    """
    records = read_records(data)
    if not records:
        raise RecordIOError("The RecordIO data holds no records.")
    rows, labels = [], []
    for i, rec in enumerate(records):
        if "values" not in rec.features:
            raise RecordIOError(f"Record {i} has no features['values'] tensor.")
        val = rec.features["values"]
        if val.tensor.keys:
            raise RecordIOError(f"Record {i} is sparse; only dense tensors are supported.")
        rows.append(val.values)
        if "values" in rec.label:
            labels.append(rec.label["values"].values[:1])
    widths = {len(r) for r in rows}
    if len(widths) != 1:
        raise RecordIOError(f"Records have different numbers of features: {sorted(widths)}.")
    X = np.stack(rows).astype(dtype)
    y = np.concatenate(labels) if len(labels) == len(rows) else None
    return X, y
