"""The REST listener on --rest-port: HTTP/1.1 (HTTPS with --ssl-cert) for TF Serving's REST API and metrics.

Built on the standard library's http.server request parsing, with what a public endpoint needs
around it: a deep listen backlog; one thread per connection (bounded), so the TLS handshake and a
slow client never hold up the accept loop or anyone else; a deadline on each stage of a
connection's life (handshake, reading a request, writing the answer, idling between requests);
a body-size limit answered with 413; Content-Length checked before anything is read; a cap on
how many requests are parsed and run at once, so REST load cannot starve the gRPC side; and a
stop that waits for requests in flight only until the grace period ends.
"""

from __future__ import annotations

import contextlib
import logging
import re
import socket
import ssl
import threading
import time
import zlib
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler

from serving.local.auth import read_token, token_error
from serving.local.config import read_metrics_path
from serving.local.errors import listen_failure
from serving.local.flags import ServerOptions
from serving.local.metrics import ServerMetrics
from serving.local.predict import Predictor
from serving.local.repository import ModelRepository
from serving.local.rest_api import API_ROUTE, RestApi, error_json
from serving.local.tls import rest_ssl_context

# http_rest_api_util.cc AddCORSHeaders, on the REST API's answers with --rest-api-enable-cors-support
CORS_HEADERS = (
    ("Access-Control-Allow-Origin", "*"),
    ("Access-Control-Allow-Methods", "POST, GET"),
    ("Access-Control-Allow-Headers", "Content-Type"),
)
LISTEN_BACKLOG = 1024  # connections the kernel queues before accept (capped by net.core.somaxconn)
MAX_CONNECTIONS = 512  # open connections at once; more are closed at accept
_CUT_SLACK_SECONDS = 1.0
_LINGER_SECONDS = 1.0  # after refusing a body, read (and drop) what the client still sends for this long
_NOT_FOUND = (
    b"<HTML><HEAD>\n<TITLE>404 Not Found</TITLE>\n</HEAD><BODY>\n<H1>Not Found</H1>\n"
    b"</BODY></HTML>\n"
)  # what TF Serving's HTTP server (libevent) answers outside /v1/
_SMALLER = "send fewer rows per request, or use gRPC"
_DIGITS = re.compile(r"[0-9]{1,20}")
log = logging.getLogger("serving.local")


@dataclass(frozen=True)
class RestLimits:
    """What one REST client may cost the server."""

    max_request_bytes: int  # largest request body (after de-chunking)
    timeout_seconds: float  # per stage: TLS handshake, reading a request, writing an answer, idling
    num_threads: int  # requests parsed and run at the same time

    @classmethod
    def from_options(cls, options: ServerOptions) -> RestLimits:
        return cls(
            max_request_bytes=options.rest_max_request_bytes,
            timeout_seconds=options.rest_timeout_seconds,
            num_threads=options.rest_api_num_threads,
        )


class _Connection:
    """One client socket and the deadline of the stage it is in (None while its request runs)."""

    def __init__(self, sock: socket.socket, address, timeout: float):
        self.sock = sock
        self.address = address
        self.timeout = timeout
        self.in_flight = False  # a request has been read past its headers: a graceful stop waits for it
        self.deadline: float | None = time.monotonic() + timeout + _CUT_SLACK_SECONDS

    def next_stage(self, timed: bool = True) -> None:
        # The socket's own timeout answers a client that goes silent (408); the deadline, a little
        # later, cuts one that trickles a byte at a time and so never lets that timeout fire.
        self.deadline = time.monotonic() + self.timeout + _CUT_SLACK_SECONDS if timed else None

    def close_now(self) -> None:
        """Wake whatever waits on the socket; its thread then ends the connection."""
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)


class _BodyRefused(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


class _Handler(BaseHTTPRequestHandler):
    server_version = "serving.local"
    protocol_version = "HTTP/1.1"
    rest: RestServer
    connection_state: _Connection

    def log_message(self, format, *args):  # noqa: A002 - quiet: one log line per lifecycle event only
        pass

    def setup(self) -> None:
        self.connection_state = self.rest.current.connection
        super().setup()

    def handle_one_request(self) -> None:
        state = self.connection_state
        state.in_flight = False
        state.next_stage()
        if self.rest.stopping:
            self.close_connection = True
            return
        super().handle_one_request()

    def do_GET(self):  # noqa: N802
        self._dispatch("GET")

    def do_POST(self):  # noqa: N802
        self._dispatch("POST")

    def do_PUT(self):  # noqa: N802
        self._dispatch("PUT")

    def do_DELETE(self):  # noqa: N802
        self._dispatch("DELETE")

    def do_PATCH(self):  # noqa: N802
        self._dispatch("PATCH")

    def do_OPTIONS(self):  # noqa: N802
        self._dispatch("OPTIONS")

    def do_HEAD(self):  # noqa: N802
        self._dispatch("HEAD")

    def _dispatch(self, method: str) -> None:
        state = self.connection_state
        state.in_flight = True
        try:
            body = self._read_body()
            if "gzip" in self.headers.get("Content-Encoding", ""):  # as TF Serving's auto_uncompress_input
                body = _gunzip(body, self.rest.limits.max_request_bytes)
        except _BodyRefused as refused:
            self.close_connection = True
            self._send(refused.status, error_json(refused.message), "application/json")
            self._linger()
            return
        except (TimeoutError, OSError):
            self.close_connection = True
            return
        state.next_stage(timed=False)
        try:
            status, payload, content_type = self._answer(method, self.path, body)
            headers = self.rest.cors_headers(self.path)
        except Exception as exc:  # noqa: BLE001 - answer, never drop the connection
            log.exception("internal error (REST)")
            status, content_type = 500, "application/json"
            payload = error_json(f"internal error in serving.local: {type(exc).__name__}: {exc}")
            headers = ()
        state.next_stage()
        if self.rest.stopping:
            self.close_connection = True
        self._send(status, b"" if method == "HEAD" else payload, content_type, len(payload), headers)

    def _answer(self, method: str, path: str, body: bytes) -> tuple[int, bytes, str]:
        """path is the request target with its query, as evhttp_request.cc's path_and_query: the
        metrics handler is chosen by the path alone, everything else sees the query too."""
        metrics_path = self.rest.metrics_path
        if metrics_path and path.split("?", 1)[0].split("#", 1)[0] == metrics_path:
            if path != metrics_path:  # http_server.cc ProcessPrometheusRequest
                return 400, f"Unexpected path: {path}. Should be {metrics_path}".encode(), "text/plain"
            return 200, self.rest.metrics.render(), "text/plain"
        refused = self.rest.token and token_error(self.headers.get("Authorization"), self.rest.token)
        if refused:
            return 401, error_json(refused), "application/json"
        if not API_ROUTE.fullmatch(path):
            return 404, _NOT_FOUND, "text/html"
        if method == "OPTIONS":  # a CORS preflight, answered as TF Serving's dispatcher does
            origin = self.headers.get("Origin", "")
            return (200 if re.search(r"https?://", origin) else 400), b"", "application/json"
        with self.rest.work_slots:
            status, payload = self.rest.api.answer(method, path, body)
        return status, payload, "application/json"

    def _declared_length(self) -> int | None:
        """Content-Length, checked before a byte of the body is read; None for a chunked body."""
        limit = self.rest.limits.max_request_bytes
        encoding = self.headers.get("Transfer-Encoding")
        if encoding is not None:
            if encoding.strip().lower() != "chunked":
                raise _BodyRefused(501, f"Transfer-Encoding {encoding!r} is not supported (only chunked)")
            return None
        lengths = self.headers.get_all("Content-Length") or []
        if not lengths:
            return 0
        if len(set(lengths)) != 1 or not _DIGITS.fullmatch(lengths[0].strip()):
            raise _BodyRefused(400, f"Content-Length {', '.join(lengths)!r} is not a byte count")
        length = int(lengths[0])
        if length > limit:
            raise _BodyRefused(
                413,
                f"request body of {length} bytes is larger than the REST limit of "
                f"{limit} bytes (--rest-max-request-bytes); {_SMALLER}",
            )
        return length

    def _read_body(self) -> bytes:
        """The request body, refused (413, 400, 408) before it can cost more than the limit allows."""
        length = self._declared_length()
        if length is None:
            return self._read_chunked(self.rest.limits.max_request_bytes)
        return self._read_exactly(length)

    def handle_expect_100(self) -> bool:
        """Refuse a body before the client sends it (curl asks first for bodies over 1 KiB)."""
        try:
            self._declared_length()
        except _BodyRefused as refused:
            self.close_connection = True
            self._send(refused.status, error_json(refused.message), "application/json")
            return False
        return super().handle_expect_100()

    def _read_exactly(self, length: int) -> bytes:
        parts, received = [], 0
        while received < length:
            try:
                part = self.rfile.read1(min(length - received, 1 << 20))
            except TimeoutError:
                raise _BodyRefused(
                    408,
                    f"timed out reading the request body: {received} of {length} bytes "
                    f"(Content-Length) arrived",
                ) from None
            if not part:
                raise _BodyRefused(
                    400, f"request body ended after {received} of {length} bytes (Content-Length)"
                )
            parts.append(part)
            received += len(part)
        return b"".join(parts)

    def _read_chunked(self, limit: int) -> bytes:
        parts, received = [], 0
        while True:
            line = self.rfile.readline(1024)
            size_text = line.split(b";", 1)[0].strip()
            if not line.endswith(b"\n") or not re.fullmatch(rb"[0-9a-fA-F]{1,16}", size_text):
                raise _BodyRefused(400, "malformed chunked request body")
            size = int(size_text, 16)
            if size == 0:
                while self.rfile.readline(1024).strip():  # trailers
                    pass
                return b"".join(parts)
            received += size
            if received > limit:
                raise _BodyRefused(
                    413,
                    f"request body is larger than the REST limit of {limit} bytes "
                    f"(--rest-max-request-bytes); {_SMALLER}",
                )
            parts.append(self._read_exactly(size))
            self.rfile.readline(3)

    def _send(
        self,
        status: int,
        payload: bytes,
        content_type: str,
        length: int | None = None,
        headers: tuple[tuple[str, str], ...] = (),
    ) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(payload) if length is None else length))
            for name, value in headers:
                self.send_header(name, value)
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(payload)
        except OSError:
            self.close_connection = True

    def _linger(self) -> None:
        """Read and drop what the client still sends, briefly, so closing does not reset the connection
        (and destroy the answer) while the refused body is still arriving."""
        sock = self.connection_state.sock
        try:
            sock.shutdown(socket.SHUT_WR)
            end = time.monotonic() + _LINGER_SECONDS
            while (left := end - time.monotonic()) > 0:
                sock.settimeout(left)
                if not sock.recv(1 << 16):
                    break
        except (OSError, ValueError):
            pass


def _gunzip(body: bytes, limit: int) -> bytes:
    """The decompressed body, refused with 413 past the limit (a small bomb cannot inflate without
    bound); a corrupt stream reads as empty, as TF Serving's ZLib fallback leaves it."""
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        data = inflater.decompress(body, limit + 1)
    except zlib.error:
        return b""
    if len(data) > limit or inflater.unconsumed_tail:
        raise _BodyRefused(
            413,
            f"request body is larger than the REST limit of {limit} bytes once "
            f"decompressed (--rest-max-request-bytes); {_SMALLER}",
        )
    return data


class RestServer:
    """TF Serving's REST API on --rest-port; start(), then stop_accepting() and wait_and_close() to stop."""

    def __init__(
        self,
        options: ServerOptions,
        repository: ModelRepository,
        predictor: Predictor,
        metrics: ServerMetrics,
    ):
        self.metrics = metrics
        self.metrics_path = (
            read_metrics_path(options.monitoring_config_file) if options.monitoring_config_file else None
        )
        self._cors = options.rest_api_enable_cors_support
        self.token = read_token(options.auth_token_file) if options.auth_token_file else None
        self.api = RestApi(repository, predictor, metrics)
        self.limits = RestLimits.from_options(options)
        self.work_slots = threading.BoundedSemaphore(self.limits.num_threads)
        self.stopping = False
        self._grace_seconds = options.shutdown_grace_seconds
        self._stop_deadline: float | None = None
        self._ssl = rest_ssl_context(options)
        self._listener = _listen(options.host, options.rest_port)
        self._connections: set[_Connection] = set()
        self._lock = threading.Lock()
        self._handler = type("Handler", (_Handler,), {"rest": self})
        self._accepting = threading.Thread(target=self._accept_loop, name="rest-accept", daemon=True)
        self._reaper = threading.Thread(target=self._reap, name="rest-deadlines", daemon=True)
        self._closed = threading.Event()
        self.current = threading.local()  # the _Connection a connection thread serves

    @property
    def port(self) -> int:
        return self._listener.getsockname()[1]

    def start(self) -> None:
        self._accepting.start()
        self._reaper.start()

    def cors_headers(self, target: str) -> tuple[tuple[str, str], ...]:
        """The CORS headers for an answer to target: on every REST API answer (errors too) with
        --rest-api-enable-cors-support, none on metrics or unknown paths (http_server.cc adds them
        in RestApiRequestDispatcher::ProcessRequest only)."""
        if self._cors and API_ROUTE.fullmatch(target):
            return CORS_HEADERS
        return ()

    def stop_accepting(self) -> None:
        """Refuse new connections, close idle ones; requests in flight may finish within the grace period."""
        self.stopping = True
        self._stop_deadline = time.monotonic() + self._grace_seconds
        self._accepting.join()
        with self._lock:
            for connection in self._connections:
                if not connection.in_flight:
                    connection.close_now()

    def wait_and_close(self, _grace_seconds: float) -> None:
        """Wait for requests in flight until the grace period (counted from stop_accepting) ends, then
        cut every connection that is left: no client can keep the server running longer."""
        deadline = self._stop_deadline if self._stop_deadline is not None else time.monotonic()
        while time.monotonic() < deadline:
            with self._lock:
                if not any(connection.in_flight for connection in self._connections):
                    break
            time.sleep(0.05)
        with self._lock:
            for connection in self._connections:
                connection.close_now()
        self._closed.set()

    def _accept_loop(self) -> None:
        self._listener.settimeout(0.25)
        try:
            while not self.stopping:
                try:
                    sock, address = self._listener.accept()
                except TimeoutError:
                    continue
                except OSError:  # e.g. out of file descriptors: the queue keeps the client waiting
                    time.sleep(0.05)
                    continue
                with self._lock:
                    if len(self._connections) >= MAX_CONNECTIONS:
                        sock.close()
                        continue
                    connection = _Connection(sock, address, self.limits.timeout_seconds)
                    self._connections.add(connection)
                threading.Thread(
                    target=self._serve, args=(connection,), name="rest-connection", daemon=True
                ).start()
        finally:
            self._listener.close()

    def _serve(self, connection: _Connection) -> None:
        sock = connection.sock
        try:
            sock.settimeout(connection.timeout)
            if self._ssl is not None:
                sock = self._ssl.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
                connection.sock = sock
                sock.do_handshake()  # here, not in the accept loop: a silent client stalls only itself
            self.current.connection = connection
            self._handler(sock, connection.address, self)
        except (OSError, ssl.SSLError, ValueError):
            pass  # the client went away, timed out or spoke no TLS: nothing to answer
        finally:
            with self._lock:
                self._connections.discard(connection)
            with contextlib.suppress(OSError):
                sock.close()

    def _reap(self) -> None:
        """Cut connections whose stage outlived its deadline (a stalled handshake, a slow request)."""
        while not self._closed.wait(0.25):
            now = time.monotonic()
            with self._lock:
                for connection in self._connections:
                    if connection.deadline is not None and now > connection.deadline:
                        connection.close_now()


def _listen(host: str, port: int) -> socket.socket:
    host = host.strip("[]")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        return socket.create_server((host, port), family=family, backlog=LISTEN_BACKLOG)
    except OSError as exc:
        raise listen_failure("REST", "--rest-port", host, port, exc.strerror or str(exc)) from None
