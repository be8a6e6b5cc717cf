"""A local model endpoint: a model folder served over SageMaker's container HTTP contract.

``tsc-toolkit serve MODEL_DIR --port 8080`` (or :func:`serve` / :class:`InferenceServer` in
Python) answers requests with the same handlers the SageMaker container runs
(:mod:`tsc_toolkit.sagemaker.container.inference` for a CNN-KMeans model folder, and
:mod:`tsc_toolkit.sagemaker.container.kmeans` for a built-in K-Means ``model_algo-1`` or
``model.tar.gz``), so a model can be tried with ``curl`` before it is deployed::

    curl -s localhost:8080/ping
    curl -s -H 'Content-Type: text/csv' -H 'Accept: application/json' \\
         --data-binary @data/test.csv localhost:8080/invocations

The HTTP side is :class:`~tsc_toolkit.sagemaker.container.http_endpoint.HTTPEndpoint`.

Examples
--------
>>> from tsc_toolkit.sagemaker.container.server import InferenceServer
>>> echo = lambda body, ctype, accept: (body, ctype)
>>> with InferenceServer(handler=echo, port=0) as srv:
...     import urllib.request
...     urllib.request.urlopen(srv.url + "/ping").status
200
"""

from __future__ import annotations

import os
import sys
from functools import partial
from pathlib import Path

from . import inference, kmeans
from .http_endpoint import Handler, HTTPEndpoint

__all__ = ["InferenceServer", "serve", "load_handler"]


def load_handler(model_dir: str | os.PathLike) -> Handler:
    """The request handler for the model in ``model_dir``.

    A folder written by ``CNNKMeans.save`` (``config.json``) is served by
    :func:`tsc_toolkit.sagemaker.container.inference.invoke`; a built-in K-Means model
    (``model_algo-1`` or ``model.tar.gz`` holding it) by
    :func:`tsc_toolkit.sagemaker.container.kmeans.invoke`.
    """
    path = Path(model_dir)
    if not path.exists():
        raise ValueError(f"No such model folder: {str(path)!r}.")
    if path.is_dir() and (path / "config.json").is_file():
        return partial(inference.invoke, inference.model_fn(path))
    if path.is_file() or (path / "model_algo-1").is_file() or (path / "model.tar.gz").is_file():
        return partial(kmeans.invoke, kmeans.model_fn(path))
    raise ValueError(f"{str(path)!r} holds neither a CNN-KMeans model (config.json) nor a "
                     "built-in K-Means model (model_algo-1 or model.tar.gz).")


class InferenceServer(HTTPEndpoint):
    """An HTTP endpoint with SageMaker's ``/ping`` and ``/invocations`` routes, on a thread.

    Parameters
    ----------
    model_dir : str or path-like, optional
        The model to serve (see :func:`load_handler`).
    host : str, default="127.0.0.1"
    port : int, default=8080
        0 picks a free port; read the one chosen from :attr:`port` or :attr:`url`.
    handler : callable, optional
        ``handler(body, content_type, accept) -> (body, content_type)``, instead of
        ``model_dir``.

    Use as a context manager, or call :meth:`start` and :meth:`stop`.
    """

    def __init__(self, model_dir: str | os.PathLike | None = None, *, host: str = "127.0.0.1",
                 port: int = 8080, handler: Handler | None = None):
        if (model_dir is None) == (handler is None):
            raise ValueError("Pass either model_dir or handler.")
        super().__init__(handler if handler is not None else load_handler(model_dir),
                         host=host, port=port)


def serve(model_dir: str | os.PathLike, *, host: str = "127.0.0.1", port: int = 8080) -> None:
    """Serve ``model_dir`` until interrupted (what ``tsc-toolkit serve`` runs)."""
    server = InferenceServer(model_dir, host=host, port=port)
    print(f"Serving {model_dir} on {server.url} (GET /ping, POST /invocations); "
          "Ctrl-C to stop.", file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
