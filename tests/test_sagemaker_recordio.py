"""RecordIO-protobuf: hand-computed bytes, round trips, and agreement with a protobuf library."""

from __future__ import annotations

import io
import struct

import numpy as np
import pytest

from tsc_toolkit.sagemaker.shared.recordio import (
    MAGIC,
    RecordIOError,
    encode_record,
    frame,
    numpy_to_record_bytes,
    read_dense,
    read_records,
    write_numpy_to_dense_tensor,
)

VALUES_KEY = b"\x0a\x06values"  # map entry field 1 (key), length 6, "values"


def test_one_float32_row_hand_computed():
    data = numpy_to_record_bytes(np.array([[1.0, 2.0]], dtype=np.float32))
    floats = struct.pack("<ff", 1.0, 2.0)                  # 00 00 80 3f 00 00 00 40
    tensor = b"\x0a\x08" + floats                          # Float32Tensor.values, packed
    value = b"\x12\x0a" + tensor                           # Value.float32_tensor = 2
    entry = VALUES_KEY + b"\x12\x0c" + value               # map entry value = field 2
    payload = b"\x0a\x16" + entry                          # Record.features = 1, 22 bytes
    assert len(payload) == 24
    expected = b"\x0a\x23\xd7\xce" + b"\x18\x00\x00\x00" + payload  # no padding (24 % 4 == 0)
    assert data == expected


def test_int_label_and_padding_hand_computed():
    data = numpy_to_record_bytes(np.array([[1.0, 2.0]], dtype=np.float32), np.array([1]))
    features = b"\x0a\x16" + VALUES_KEY + b"\x12\x0c\x12\x0a\x0a\x08" + struct.pack("<ff", 1, 2)
    # numpy's default int is written as Int32Tensor (Value field 7), varint-packed
    label = b"\x12\x0f" + VALUES_KEY + b"\x12\x05" + b"\x3a\x03" + b"\x0a\x01\x01"
    payload = features + label
    assert len(payload) == 41
    assert data == struct.pack("<II", MAGIC, 41) + payload + b"\x00\x00\x00"


def test_float64_rows_and_negative_int_label_hand_computed():
    data = numpy_to_record_bytes(np.array([[0.5]]), np.array([-1]))
    # Float64Tensor is Value field 3
    features = b"\x0a\x16" + VALUES_KEY + b"\x12\x0c" + b"\x1a\x0a\x0a\x08" + struct.pack("<d", 0.5)
    # -1 as int32 is sign-extended to a ten-byte varint
    minus_one = b"\xff" * 9 + b"\x01"
    label = b"\x12\x18" + VALUES_KEY + b"\x12\x0e" + b"\x3a\x0c\x0a\x0a" + minus_one
    payload = features + label
    assert data == struct.pack("<II", MAGIC, len(payload)) + payload + b"\x00" * (-len(payload) % 4)
    X, y = read_dense(data, dtype=np.float64)
    assert X.tolist() == [[0.5]] and y.tolist() == [-1]


def test_several_rows_are_consecutive_frames():
    X = np.arange(12, dtype=np.float32).reshape(4, 3)
    data = numpy_to_record_bytes(X)
    one = numpy_to_record_bytes(X[:1])
    assert len(data) == 4 * len(one)
    assert data[: len(one)] == one
    assert data[len(one):].startswith(struct.pack("<I", MAGIC))


def test_round_trip_with_labels(rng):
    X = rng.normal(size=(50, 7)).astype(np.float32)
    labels = rng.integers(0, 5, size=50)
    buf = io.BytesIO()
    write_numpy_to_dense_tensor(buf, X, labels.astype(np.float32))
    X2, y2 = read_dense(buf.getvalue())
    np.testing.assert_array_equal(X2, X)
    np.testing.assert_array_equal(y2, labels.astype(np.float32))
    recs = read_records(io.BytesIO(buf.getvalue()))
    assert len(recs) == 50
    assert recs[3].features["values"].float32_tensor.values.tolist() == X[3].tolist()
    assert recs[3].label["values"].float32_tensor.values[0] == labels[3]
    assert len(recs[3].features["values"].float64_tensor.values) == 0


def test_encode_record_with_named_labels_like_kmeans_answers():
    payload = encode_record({}, {"closest_cluster": np.array([2.0], dtype=np.float32),
                                 "distance_to_cluster": np.array([0.25], dtype=np.float32)})
    (rec,) = read_records(frame(payload))
    assert rec.label["closest_cluster"].float32_tensor.values[0] == 2.0
    assert rec.label["distance_to_cluster"].float32_tensor.values[0] == 0.25
    assert rec.features == {}


def test_writer_checks_like_v2():
    with pytest.raises(ValueError, match="Matrix"):
        numpy_to_record_bytes(np.zeros(3, dtype=np.float32))
    with pytest.raises(ValueError, match="Vector"):
        numpy_to_record_bytes(np.zeros((2, 2), dtype=np.float32), np.zeros((2, 1)))
    with pytest.raises(ValueError, match="not compatible"):
        numpy_to_record_bytes(np.zeros((2, 3), dtype=np.float32), np.zeros(5))
    with pytest.raises(ValueError, match="Unsupported dtype"):
        numpy_to_record_bytes(np.zeros((2, 2), dtype=np.float16))


def test_reader_rejects_bad_data():
    with pytest.raises(RecordIOError, match="magic"):
        read_records(b"1,2,3\n4,5,6\n")
    good = numpy_to_record_bytes(np.ones((2, 2), dtype=np.float32))
    with pytest.raises(RecordIOError, match="Truncated"):
        read_records(good[:-5])
    with pytest.raises(RecordIOError, match="no records"):
        read_dense(b"")
    ragged = numpy_to_record_bytes(np.ones((1, 2), dtype=np.float32)) + \
        numpy_to_record_bytes(np.ones((1, 3), dtype=np.float32))
    with pytest.raises(RecordIOError, match="different numbers"):
        read_dense(ragged)


def _protobuf_record_class():
    """aialgs.data.Record built at run time with the protobuf library (no generated code)."""
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    f = descriptor_pb2.FileDescriptorProto(name="tsc_test_record.proto",
                                           package="aialgs.data", syntax="proto2")
    T = descriptor_pb2.FieldDescriptorProto

    def tensor(name, vtype):
        m = f.message_type.add(name=name)
        m.field.add(name="values", number=1, type=vtype, label=T.LABEL_REPEATED,
                    options=descriptor_pb2.FieldOptions(packed=True))
        for n, num in (("keys", 2), ("shape", 3)):
            m.field.add(name=n, number=num, type=T.TYPE_UINT64, label=T.LABEL_REPEATED,
                        options=descriptor_pb2.FieldOptions(packed=True))

    tensor("Float32Tensor", T.TYPE_FLOAT)
    tensor("Float64Tensor", T.TYPE_DOUBLE)
    tensor("Int32Tensor", T.TYPE_INT32)
    v = f.message_type.add(name="Value")
    v.oneof_decl.add(name="value")
    for name, num, tname in (("float32_tensor", 2, "Float32Tensor"),
                             ("float64_tensor", 3, "Float64Tensor"),
                             ("int32_tensor", 7, "Int32Tensor")):
        v.field.add(name=name, number=num, type=T.TYPE_MESSAGE, type_name=f".aialgs.data.{tname}",
                    label=T.LABEL_OPTIONAL, oneof_index=0)
    r = f.message_type.add(name="Record")
    for name, num in (("features", 1), ("label", 2)):
        entry = r.nested_type.add(name=name.capitalize() + "Entry")
        entry.options.map_entry = True
        entry.field.add(name="key", number=1, type=T.TYPE_STRING, label=T.LABEL_OPTIONAL)
        entry.field.add(name="value", number=2, type=T.TYPE_MESSAGE,
                        type_name=".aialgs.data.Value", label=T.LABEL_OPTIONAL)
        r.field.add(name=name, number=num, type=T.TYPE_MESSAGE, label=T.LABEL_REPEATED,
                    type_name=f".aialgs.data.Record.{entry.name}")
    pool = descriptor_pool.DescriptorPool()
    pool.Add(f)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("aialgs.data.Record"))


@pytest.mark.parametrize("dtype,label_dtype", [(np.float32, None), (np.float32, np.int64),
                                               (np.float64, np.float32),
                                               (np.int64, np.float64)])
def test_bytes_equal_a_protobuf_library_serialization(rng, dtype, label_dtype):
    pytest.importorskip("google.protobuf")
    Record = _protobuf_record_class()
    X = (rng.normal(size=(5, 4)) * 10).astype(dtype)
    labels = None if label_dtype is None else rng.integers(-3, 3, size=5).astype(label_dtype)
    kinds = {np.dtype(np.float32): "float32_tensor", np.dtype(np.float64): "float64_tensor",
             np.dtype(np.int64): "int32_tensor"}
    expected = b""
    for i, row in enumerate(X):
        rec = Record()
        getattr(rec.features["values"], kinds[np.dtype(dtype)]).values.extend(row.tolist())
        if labels is not None:
            getattr(rec.label["values"], kinds[np.dtype(label_dtype)]).values.extend(
                [labels[i].item()])
        expected += frame(rec.SerializeToString())
    assert numpy_to_record_bytes(X, labels) == expected
