"""A local model endpoint: SageMaker's container HTTP contract (``GET /ping``, ``POST /invocations``).

``tsc-toolkit serve MODEL_DIR --port 8080`` (or :func:`serve` / :class:`InferenceServer` in
Python) answers requests with the same handlers the SageMaker container runs
(:mod:`tsc_toolkit.sagemaker.inference` for a CNN-KMeans model folder, and
:mod:`tsc_toolkit.sagemaker.kmeans_container` for a built-in K-Means ``model_algo-1`` or
``model.tar.gz``), so a model can be tried with ``curl`` before it is deployed::

    curl -s localhost:8080/ping
    curl -s -H 'Content-Type: text/csv' -H 'Accept: application/json' \\
         --data-binary @data/test.csv localhost:8080/invocations

Why the standard library's :class:`http.server.ThreadingHTTPServer`: it is maintained with
CPython, adds no dependency to the toolkit, handles each connection in its own (daemon)
thread, and is all a loopback test endpoint needs. SageMaker's own containers put nginx and
gunicorn in front of the handlers for production traffic; this server is not meant to face
the internet, which is why it binds ``127.0.0.1`` unless told otherwise.

Errors: a bad request gets its 4xx status and a JSON body ``{"error": ..., "status": ...}``;
an unexpected failure gets 500 with the same shape. Either way the server keeps serving.

Examples
--------
>>> from tsc_toolkit.sagemaker.server import InferenceServer
>>> echo = lambda body, ctype, accept: (body, ctype)
>>> with InferenceServer(handler=echo, port=0) as srv:
...     import urllib.request
...     urllib.request.urlopen(srv.url + "/ping").status
200
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
import traceback
from collections.abc import Callable
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from .inference import RequestError, max_payload_bytes

__all__ = ["InferenceServer", "serve", "load_handler"]

logger = logging.getLogger(__name__)

#: ``handler(body: bytes, content_type, accept) -> (body, content_type)``; raises RequestError.
Handler = Callable[[bytes, "str | None", "str | None"], "tuple[str | bytes, str]"]


def load_handler(model_dir: str | os.PathLike) -> Handler:
    """The request handler for the model in ``model_dir``.

    A folder written by ``CNNKMeans.save`` (``config.json``) is served by
    :func:`tsc_toolkit.sagemaker.inference.invoke`; a built-in K-Means model (``model_algo-1``
    or ``model.tar.gz`` holding it) by :func:`tsc_toolkit.sagemaker.kmeans_container.invoke`.
    """
    path = Path(model_dir)
    if not path.exists():
        raise ValueError(f"No such model folder: {str(path)!r}.")
    if path.is_dir() and (path / "config.json").is_file():
        from . import inference

        return partial(inference.invoke, inference.model_fn(path))
    if path.is_file() or (path / "model_algo-1").is_file() or (path / "model.tar.gz").is_file():
        from . import kmeans_container

        return partial(kmeans_container.invoke, kmeans_container.model_fn(path))
    raise ValueError(f"{str(path)!r} holds neither a CNN-KMeans model (config.json) nor a "
                     "built-in K-Means model (model_algo-1 or model.tar.gz).")


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "tsc-toolkit-serve"

    def log_message(self, format, *args):  # noqa: A002  (the base class's name)
        logger.info("%s - %s", self.address_string(), format % args)

    def _reply(self, status: int, body: bytes | str, content_type: str) -> None:
        data = body.encode("utf-8") if isinstance(body, str) else bytes(body)
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)

    def _error(self, status: int, message: str) -> None:
        self._reply(status, json.dumps({"error": message, "status": status}), "application/json")

    def do_GET(self):  # noqa: N802  (http.server's naming)
        route = self.path.split("?", 1)[0]
        if route == "/ping":
            self._reply(200, "", "text/plain")
        elif route == "/execution-parameters":
            # What a batch transform asks the container before it sends records.
            limit_mb = max(1, max_payload_bytes() // (1024 * 1024))
            self._reply(200, json.dumps({"MaxConcurrentTransforms": 1,
                                         "BatchStrategy": "MULTI_RECORD",
                                         "MaxPayloadInMB": limit_mb}), "application/json")
        else:
            self._error(404, f"No route {route!r}; use GET /ping or POST /invocations.")

    def do_POST(self):  # noqa: N802
        route = self.path.split("?", 1)[0]
        if route != "/invocations":
            self.close_connection = True
            self._error(404, f"No route {route!r}; use POST /invocations.")
            return
        length = self.headers.get("Content-Length")
        if length is None or not length.strip().isdigit():
            self.close_connection = True
            self._error(411, "POST /invocations needs a Content-Length header.")
            return
        size, limit = int(length), max_payload_bytes()
        if size > limit:
            # The body is not read: answer and drop the connection.
            self.close_connection = True
            self._error(413, f"The request body has {size} bytes, more than the limit of "
                             f"{limit} bytes; split it into several requests.")
            return
        body = self.rfile.read(size)
        try:
            out, out_type = self.server.handler(body, self.headers.get("Content-Type"),
                                                self.headers.get("Accept"))
        except RequestError as err:
            self._error(err.status, err.message)
            return
        except Exception as err:  # keep serving whatever the model does
            logger.error("POST /invocations failed:\n%s", traceback.format_exc())
            self._error(500, f"{type(err).__name__}: {err}")
            return
        self._reply(200, out, out_type)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    handler: Handler


class InferenceServer:
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
        self._httpd = _Server((host, port), _RequestHandler)
        self._httpd.handler = handler if handler is not None else load_handler(model_dir)
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    @property
    def url(self) -> str:
        host = self._httpd.server_address[0]
        return f"http://{host}:{self.port}"

    def start(self) -> InferenceServer:
        """Serve on a daemon thread; returns at once."""
        self._thread = threading.Thread(target=self._httpd.serve_forever,
                                        name="tsc-toolkit-serve", daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve on this thread until interrupted."""
        try:
            self._httpd.serve_forever()
        finally:
            self._httpd.server_close()

    def stop(self) -> None:
        """Stop serving and release the port."""
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join(timeout=10)
            self._thread = None
        self._httpd.server_close()

    def __enter__(self) -> InferenceServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def serve(model_dir: str | os.PathLike, *, host: str = "127.0.0.1", port: int = 8080) -> None:
    """Serve ``model_dir`` until interrupted (what ``tsc-toolkit serve`` runs)."""
    server = InferenceServer(model_dir, host=host, port=port)
    print(f"Serving {model_dir} on {server.url} (GET /ping, POST /invocations); "
          "Ctrl-C to stop.", file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
