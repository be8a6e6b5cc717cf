"""SageMaker's container HTTP contract for one request handler: ``GET /ping``, ``POST /invocations``.

:class:`HTTPEndpoint` serves any ``handler(body, content_type, accept) -> (body,
content_type)`` on a thread; :mod:`.server` picks the handler of a model folder.

Why the standard library's :class:`http.server.ThreadingHTTPServer`: it is maintained with
CPython, adds no dependency to the toolkit, handles each connection in its own (daemon)
thread, and is all a loopback test endpoint needs. SageMaker's own containers put nginx and
gunicorn in front of the handlers for production traffic; this server is not meant to face
the internet, which is why it binds ``127.0.0.1`` unless told otherwise.

Errors: a bad request gets its 4xx status and a JSON body ``{"error": ..., "status": ...}``;
an unexpected failure gets 500 with the same shape. Either way the server keeps serving.
A refused request's body is read and dropped before the answer goes out (up to
:data:`DRAIN_LIMIT_BYTES`; beyond that the connection is closed after the answer), so a
client still sending gets to read its 413 or 404 instead of a reset connection; a client
that sends ``Expect: 100-continue`` gets the 413 before it sends the body. A connection
that sends nothing for :data:`READ_TIMEOUT_SECONDS` is closed.

Examples
--------
>>> from tsc_toolkit.sagemaker.container.http_endpoint import HTTPEndpoint
>>> echo = lambda body, ctype, accept: (body, ctype)
>>> with HTTPEndpoint(echo, port=0) as srv:
...     import urllib.request
...     urllib.request.urlopen(srv.url + "/ping").status
200
"""

from __future__ import annotations

import json
import logging
import threading
import traceback
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from .inference import RequestError, max_payload_bytes

__all__ = ["HTTPEndpoint", "Handler"]

logger = logging.getLogger(__name__)

#: A refused request body up to this size is read (and dropped) so the client reads the answer.
DRAIN_LIMIT_BYTES = 64 * 1024 * 1024
#: Seconds a connection may stay silent (headers or body) before it is closed.
READ_TIMEOUT_SECONDS = 60.0
_CHUNK = 64 * 1024

#: ``handler(body: bytes, content_type, accept) -> (body, content_type)``; raises RequestError.
Handler = Callable[[bytes, "str | None", "str | None"], "tuple[str | bytes, str]"]


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "tsc-toolkit-serve"
    timeout = READ_TIMEOUT_SECONDS  # socket timeout: a stalled client does not hold a thread
    # An answer leaves at once: with Nagle's algorithm on, its last small segment waited for
    # the client's delayed acknowledgement (about 40 ms per request on Linux).
    disable_nagle_algorithm = True

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

    def _content_length(self) -> int | None:
        length = self.headers.get("Content-Length")
        if length is None or not length.strip().isdigit():
            return None
        return int(length)

    def _too_large(self, size: int) -> str:
        return (f"The request body has {size} bytes, more than the limit of "
                f"{max_payload_bytes()} bytes; split it into several requests.")

    def handle_expect_100(self) -> bool:
        # Refuse an oversized body before the client sends it (curl sends this header for
        # bodies above 1 KiB); otherwise let it come.
        size = self._content_length()
        if size is not None and size > max_payload_bytes():
            self.close_connection = True
            self._error(413, self._too_large(size))
            return False
        return super().handle_expect_100()

    def _drain(self, size: int) -> None:
        """Read and drop a body we will not use, so the client can read the answer."""
        if size > DRAIN_LIMIT_BYTES:
            self.close_connection = True  # not worth reading: answer, then close
            return
        left = size
        while left > 0:
            chunk = self.rfile.read(min(_CHUNK, left))
            if not chunk:
                self.close_connection = True
                return
            left -= len(chunk)

    def do_POST(self):  # noqa: N802
        route = self.path.split("?", 1)[0]
        size = self._content_length()
        if size is None:
            # No length (or chunked): the body's end is unknown, so the connection ends here.
            self.close_connection = True
            self._error(411, "POST /invocations needs a Content-Length header.")
            return
        if route != "/invocations":
            self._drain(size)
            self._error(404, f"No route {route!r}; use POST /invocations.")
            return
        if size > max_payload_bytes():
            self._drain(size)
            self._error(413, self._too_large(size))
            return
        body = self.rfile.read(size)
        if len(body) < size:  # the client went away mid-body
            self.close_connection = True
            return
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
    # Connections waiting to be accepted: the default of 5 made clients that connected
    # together wait for a SYN retry (1 s) or fail.
    request_queue_size = 128
    handler: Handler


class HTTPEndpoint:
    """An HTTP endpoint with SageMaker's ``/ping`` and ``/invocations`` routes, on a thread.

    Parameters
    ----------
    handler : callable
        ``handler(body, content_type, accept) -> (body, content_type)``; raises
        :class:`~tsc_toolkit.sagemaker.container.inference.RequestError` for a bad request.
    host : str, default="127.0.0.1"
    port : int, default=8080
        0 picks a free port; read the one chosen from :attr:`port` or :attr:`url`.

    Use as a context manager, or call :meth:`start` and :meth:`stop`.
    """

    def __init__(self, handler: Handler, *, host: str = "127.0.0.1", port: int = 8080):
        self._httpd = _Server((host, port), _RequestHandler)
        self._httpd.handler = handler
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    @property
    def url(self) -> str:
        host = self._httpd.server_address[0]
        return f"http://{host}:{self.port}"

    def start(self) -> HTTPEndpoint:
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

    def __enter__(self) -> HTTPEndpoint:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
