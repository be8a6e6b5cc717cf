"""MXNet NDArray list files (what ``mx.nd.save`` writes), in pure numpy.

SageMaker's built-in K-Means stores its centroids as ``model_algo-1``, an NDArray list file
holding one float32 array of shape ``(k, feature_dim)``. Layout (little-endian)::

    uint64  0x112                 list magic
    uint64  0                     reserved
    uint64  n                     number of arrays
    n times:
        uint32  0xF993FAC9        array magic (V2; V1 = 0xF993FAC8 has no storage type)
        int32   stype             0 = dense (V2 only)
        int32   ndim, then int64 dims[ndim]   (V1: uint32 dims)
        int32   dev_type, int32 dev_id
        int32   type_flag         0 f32, 1 f64, 2 f16, 3 u8, 4 i32, 5 i8, 6 i64
        raw data
    uint64  nkeys, then nkeys x (uint64 length, bytes)   names (empty for K-Means)

Reading checks every size against the bytes at hand, so a truncated or hostile file raises a
``ValueError`` instead of allocating or reading past the end.

Examples
--------
>>> import numpy as np
>>> from tsc_toolkit.io.ndarray_file import read_ndarray_list, write_ndarray_list
>>> data = write_ndarray_list([np.eye(2, dtype=np.float32)])
>>> len(data), data[:8].hex()
(88, '1201000000000000')
>>> read_ndarray_list(data)[0].tolist()
[[1.0, 0.0], [0.0, 1.0]]
"""

from __future__ import annotations

import struct

import numpy as np

__all__ = ["write_ndarray_list", "read_ndarray_list", "LIST_MAGIC", "ARRAY_MAGIC_V2"]

LIST_MAGIC = 0x112
ARRAY_MAGIC_V2 = 0xF993FAC9
ARRAY_MAGIC_V1 = 0xF993FAC8
_DTYPES = {0: np.float32, 1: np.float64, 2: np.float16, 3: np.uint8, 4: np.int32, 5: np.int8,
           6: np.int64}
_FLAGS = {np.dtype(v): k for k, v in _DTYPES.items()}
_MAX_DIMS = 32


def write_ndarray_list(arrays: list[np.ndarray]) -> bytes:
    """Bytes of an NDArray list file holding ``arrays`` (dense, on CPU, no names)."""
    parts = [struct.pack("<QQQ", LIST_MAGIC, 0, len(arrays))]
    for arr in arrays:
        arr = np.ascontiguousarray(arr)
        if arr.dtype not in _FLAGS:
            raise ValueError(f"dtype {arr.dtype} cannot be stored in an NDArray file.")
        parts.append(struct.pack("<Iii", ARRAY_MAGIC_V2, 0, arr.ndim))
        parts.append(struct.pack(f"<{arr.ndim}q", *arr.shape))
        parts.append(struct.pack("<iii", 1, 0, _FLAGS[arr.dtype]))  # cpu(0)
        parts.append(arr.astype(arr.dtype.newbyteorder("<"), copy=False).tobytes())
    parts.append(struct.pack("<Q", 0))
    return b"".join(parts)


class _Reader:
    def __init__(self, data: bytes, source: str):
        self.data, self.pos, self.source = data, 0, source

    def take(self, fmt: str):
        size = struct.calcsize(fmt)
        if self.pos + size > len(self.data):
            raise ValueError(f"{self.source} is truncated (needs {size} more bytes at offset "
                             f"{self.pos}).")
        values = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += size
        return values

    def raw(self, size: int) -> bytes:
        if size < 0 or self.pos + size > len(self.data):
            raise ValueError(f"{self.source} is truncated: an array needs {size} bytes at "
                             f"offset {self.pos}, {len(self.data) - self.pos} are left.")
        out = self.data[self.pos:self.pos + size]
        self.pos += size
        return out


def read_ndarray_list(data: bytes, source: str = "the model file") -> list[np.ndarray]:
    """Arrays stored in an NDArray list file (see the module docstring for the layout)."""
    r = _Reader(bytes(data), source)
    magic, _reserved = r.take("<QQ")
    if magic != LIST_MAGIC:
        raise ValueError(f"{source} is not an MXNet NDArray file (magic {magic:#x}, expected "
                         f"{LIST_MAGIC:#x}).")
    (count,) = r.take("<Q")
    if count > len(data):
        raise ValueError(f"{source} claims {count} arrays, more than it could hold.")
    arrays = [_read_array(r) for _ in range(count)]
    (nkeys,) = r.take("<Q")
    if nkeys not in (0, count):
        raise ValueError(f"{source} has {nkeys} names for {count} arrays.")
    for _ in range(nkeys):
        (length,) = r.take("<Q")
        r.raw(length)
    return arrays


def _read_array(r: _Reader) -> np.ndarray:
    (magic,) = r.take("<I")
    if magic == ARRAY_MAGIC_V2:
        (stype,) = r.take("<i")
        if stype != 0:
            raise ValueError(f"{r.source} holds a sparse array (storage type {stype}); only "
                             "dense arrays are supported.")
        (ndim,) = r.take("<i")
        dims = r.take(f"<{ndim}q") if 0 <= ndim <= _MAX_DIMS else None
    elif magic == ARRAY_MAGIC_V1:
        (ndim,) = r.take("<i")
        dims = r.take(f"<{ndim}q") if 0 <= ndim <= _MAX_DIMS else None
    else:  # legacy layout: the first uint32 is ndim, dims are uint32
        ndim = magic
        dims = r.take(f"<{ndim}I") if ndim <= _MAX_DIMS else None
    if dims is None:
        raise ValueError(f"{r.source} holds an array with {ndim} dimensions; is it damaged?")
    if any(d < 0 for d in dims):
        raise ValueError(f"{r.source} holds an array with a negative dimension {dims}.")
    r.take("<ii")  # device type and id
    (flag,) = r.take("<i")
    if flag not in _DTYPES:
        raise ValueError(f"{r.source} holds an array of unknown type flag {flag}.")
    dtype = np.dtype(_DTYPES[flag]).newbyteorder("<")
    size = int(np.prod(dims, dtype=np.int64)) if dims else 1
    raw = r.raw(size * dtype.itemsize)
    return np.frombuffer(raw, dtype=dtype).reshape(dims).astype(dtype.newbyteorder("="))
