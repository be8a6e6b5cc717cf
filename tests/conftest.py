"""Shared fixtures: small seeded data, and moto's real AWS API server on 127.0.0.1."""

from __future__ import annotations

import os

import numpy as np
import pytest

# Tests share two cores; one torch thread per worker keeps them from fighting.
os.environ.setdefault("OMP_NUM_THREADS", "1")
try:  # torch is a dependency, but keep collection cheap when a test does not need it
    import torch

    torch.set_num_threads(1)
except ImportError:  # pragma: no cover
    pass


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """Each test starts on one torch thread, whatever the test before it set (a benchmark's
    command line sets its own count). A fit on more threads than one picks its count from the
    cores other processes leave free, so two fits that a test expects to be equal could run on
    different counts and round differently."""
    if "torch" in globals():
        torch.set_num_threads(1)
    yield


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """Make (once per session and channel count) a tiny trained model folder; return its path."""

    def make(channels: int = 1):
        path = tmp_path_factory.getbasetemp() / f"tiny-model-{channels}"
        if not (path / "config.json").exists():
            from tsc_toolkit import CNNKMeans
            from tsc_toolkit.io.datasets import make_series

            X, _ = make_series(20, n_clusters=2, length=24, random_state=0)
            if channels > 1:
                X = np.concatenate([X] * channels, axis=1)
            CNNKMeans(clusters=2, blocks=1, filters=4, reduced_size=4, output_size=4, epochs=1,
                      n_init=1, random_state=0, device="cpu").fit(X).save(path)
        return path

    return make


@pytest.fixture(scope="session")
def moto_server():
    """Start moto's server on a free loopback port for the session; yield its URL.

    The server stops by itself when the session ends.
    """
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def aws_env(moto_server, monkeypatch, tmp_path):
    """Point boto3 (and the SageMaker SDK) at the moto server with dummy credentials."""
    from moto.server import ThreadedMotoServer  # noqa: F401  (moto must be importable)

    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("SAGEMAKER_VALIDATE_ROLE", "false")
    cfg = tmp_path / "sagemaker-config.yaml"
    cfg.write_text("SchemaVersion: '1.0'\nSageMaker:\n  PythonSDK:\n    Modules:\n"
                   "      TelemetryOptOut: true\n")
    monkeypatch.setenv("SAGEMAKER_USER_CONFIG_OVERRIDE", str(cfg))
    # Each test gets a clean slate of AWS resources.
    import urllib.request

    urllib.request.urlopen(urllib.request.Request(f"{moto_server}/moto-api/reset",
                                                  method="POST")).read()
    return moto_server
