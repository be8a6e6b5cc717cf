"""model_algo-1: the built-in K-Means model file, byte for byte, and its archive."""

import struct
import tarfile

import numpy as np
import pytest

from tsc_toolkit.clustering.kmeans import WebScaleKMeans
from tsc_toolkit.io.ndarray_file import read_ndarray_list, write_ndarray_list


def test_bytes_match_the_documented_layout():
    centers = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], dtype=np.float32)
    expected = (struct.pack("<Q", 0x112) + struct.pack("<Q", 0) + struct.pack("<Q", 1)
                + struct.pack("<I", 0xF993FAC9) + struct.pack("<i", 0)       # magic, dense
                + struct.pack("<i", 2) + struct.pack("<qq", 2, 3)            # ndim, dims
                + struct.pack("<ii", 1, 0) + struct.pack("<i", 0)            # cpu(0), float32
                + struct.pack("<6f", 1, 2, 3, 4, 5, 6)
                + struct.pack("<Q", 0))                                      # no names
    assert write_ndarray_list([centers]) == expected
    back = read_ndarray_list(expected)
    assert len(back) == 1 and back[0].dtype == np.float32
    np.testing.assert_array_equal(back[0], centers)


def test_reads_version_1_and_legacy_headers_and_names():
    v1 = (struct.pack("<QQQ", 0x112, 0, 1) + struct.pack("<Ii", 0xF993FAC8, 1)
          + struct.pack("<q", 2) + struct.pack("<iii", 1, 0, 1) + struct.pack("<2d", 7, 8)
          + struct.pack("<Q", 1) + struct.pack("<Q", 3) + b"abc")
    np.testing.assert_array_equal(read_ndarray_list(v1)[0], [7.0, 8.0])
    legacy = (struct.pack("<QQQ", 0x112, 0, 1) + struct.pack("<I", 1) + struct.pack("<I", 2)
              + struct.pack("<iii", 1, 0, 4) + struct.pack("<2i", 5, 6) + struct.pack("<Q", 0))
    np.testing.assert_array_equal(read_ndarray_list(legacy)[0], [5, 6])


@pytest.mark.parametrize("damage", ["truncate", "magic", "dims", "flag"])
def test_damaged_files_raise_value_errors(damage):
    data = bytearray(write_ndarray_list([np.ones((3, 4), dtype=np.float32)]))
    if damage == "truncate":
        data = data[:-20]
    elif damage == "magic":
        data[0] = 0x99
    elif damage == "dims":
        data[36:44] = struct.pack("<q", 10 ** 12)  # first dim: far more data than present
    else:
        data[60:64] = struct.pack("<i", 42)
    with pytest.raises(ValueError):
        read_ndarray_list(bytes(data))


def test_model_archive_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 5)).astype(np.float32)
    model = WebScaleKMeans(k=4, random_state=0, device="cpu").fit(X)
    path = model.save_sagemaker_model(tmp_path / "out")
    assert path.name == "model.tar.gz"
    with tarfile.open(path) as tar:
        assert tar.getnames() == ["model_algo-1"]
        raw = tar.extractfile("model_algo-1").read()
    assert raw == write_ndarray_list([model.cluster_centers_])
    loaded = WebScaleKMeans.load_sagemaker_model(path, device="cpu")
    assert loaded.k == 4
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    bare = tmp_path / "model_algo-1"
    bare.write_bytes(raw)
    np.testing.assert_array_equal(WebScaleKMeans.load_sagemaker_model(bare).cluster_centers_,
                                  model.cluster_centers_)


def test_archive_without_the_model_or_with_a_link_is_refused(tmp_path):
    other = tmp_path / "x.tar.gz"
    with tarfile.open(other, "w:gz") as tar:
        info = tarfile.TarInfo("model_algo-1")
        info.type = tarfile.SYMTYPE
        info.linkname = "/etc/passwd"
        tar.addfile(info)
    with pytest.raises(ValueError, match="not a regular file"):
        WebScaleKMeans.load_sagemaker_model(other)
    empty = tmp_path / "e.tar.gz"
    with tarfile.open(empty, "w:gz"):
        pass
    with pytest.raises(ValueError, match="holds no model_algo-1"):
        WebScaleKMeans.load_sagemaker_model(empty)
    with pytest.raises(ValueError, match="No such model file"):
        WebScaleKMeans.load_sagemaker_model(tmp_path / "missing.tar.gz")
