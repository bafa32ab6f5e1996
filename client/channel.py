"""gRPC channels to a model server, and RPCs retried with backoff while it is UNAVAILABLE or cancels.

Channels lift gRPC's 4 MB receive limit (the most reported TF Serving client failure:
"Received message larger than max"); what we *send* is kept under the server's limit by sizing
batches instead (see ``client.api``). Reconnect backoff is shortened so that a retry after a
refused connection actually dials again instead of failing fast inside gRPC's default 1 s
backoff window.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

import grpc

from client.errors import InputFileError
from client.replicas import is_target_uri

DEFAULT_PORT = 8500
T = TypeVar("T")

_CHANNEL_OPTIONS = [
    ("grpc.max_send_message_length", -1),
    ("grpc.max_receive_message_length", -1),
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1000),
]


def normalize_address(address: str) -> str:
    """'host:port'; a bare host gets TF Serving's gRPC port 8500. gRPC target URIs pass unchanged."""
    address = address.strip()
    if is_target_uri(address):  # dns:///name:8500, ipv4:a:p,b:p (client.replicas)
        return address
    if address.startswith("["):  # [ipv6]:port
        return address if "]:" in address else f"{address}:{DEFAULT_PORT}"
    return address if ":" in address else f"{address}:{DEFAULT_PORT}"


def parse_header(text: str) -> tuple[str, str]:
    """'name: value' as gRPC metadata (name lower-cased); ValueError says what is wrong."""
    name, sep, value = text.partition(":")
    name, value = name.strip().lower(), value.strip()
    if not sep or not name or not value:
        raise ValueError(f"a header is 'name: value', got {text!r}")
    if name.startswith("grpc-") or name.startswith(":") or name.endswith("-bin"):
        raise ValueError(f"header {name!r} is reserved by gRPC or binary; send a plain text header")
    if any(not (c.isalnum() or c in "-_.") for c in name):
        raise ValueError(f"header name {name!r} may hold only letters, digits, '-', '_' and '.'")
    return name, value


def bearer_header(token: str) -> tuple[str, str]:
    """The metadata a bearer-token-protected server (or ingress) expects."""
    return "authorization", f"Bearer {token.strip()}"


class _CallDetails(grpc.ClientCallDetails):
    def __init__(self, details: grpc.ClientCallDetails, metadata: tuple) -> None:
        self.method, self.timeout, self.credentials = details.method, details.timeout, details.credentials
        self.wait_for_ready, self.compression = details.wait_for_ready, details.compression
        self.metadata = metadata


class _MetadataInterceptor(grpc.UnaryUnaryClientInterceptor):
    """Adds fixed metadata (auth headers) to every call: plain-text channels take no call credentials."""

    def __init__(self, metadata: tuple[tuple[str, str], ...]) -> None:
        self._metadata = metadata

    def intercept_unary_unary(self, continuation, client_call_details, request):
        metadata = tuple(client_call_details.metadata or ()) + self._metadata
        return continuation(_CallDetails(client_call_details, metadata), request)


def _read_pem(path: str | Path, flag: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise InputFileError(f"cannot read {flag} {path}: {exc.strerror or exc}") from None


def open_channel(
    address: str,
    *,
    tls: bool = False,
    ca_cert: str | Path | None = None,
    server_name: str | None = None,
    client_cert: str | Path | None = None,
    client_key: str | Path | None = None,
    authority: str | None = None,
    metadata: tuple[tuple[str, str], ...] = (),
    options: Sequence[tuple[str, object]] = (),
) -> grpc.Channel:
    """A channel to address: plaintext, or TLS when tls, ca_cert or a client certificate is given.

    Args:
        client_cert, client_key: PEM files for mutual TLS (both or neither).
        authority: the :authority (HTTP/2 host) to send, e.g. the host name an ingress routes on;
            with TLS it is also the name the server's certificate must carry, unless server_name
            says otherwise.
        metadata: (name, value) pairs sent with every call, e.g. ("authorization", "Bearer ...").
        options: further channel options (e.g. a load-balancing policy).
    """
    options = [*_CHANNEL_OPTIONS, *options]
    if authority:
        options.append(("grpc.default_authority", authority))
    if (client_cert is None) != (client_key is None):
        raise ValueError("a client certificate needs its key (and a key its certificate)")
    if not (tls or ca_cert or client_cert):
        channel = grpc.insecure_channel(address, options=options)
    else:
        root = _read_pem(ca_cert, "--ca-cert") if ca_cert is not None else None
        chain = _read_pem(client_cert, "--client-cert") if client_cert is not None else None
        key = _read_pem(client_key, "--client-key") if client_key is not None else None
        if server_name:
            options.append(("grpc.ssl_target_name_override", server_name))
        credentials = grpc.ssl_channel_credentials(
            root_certificates=root, private_key=key, certificate_chain=chain
        )
        channel = grpc.secure_channel(address, credentials, options=options)
    if metadata:
        # An interceptor, not call credentials: those are refused on plaintext channels, and a
        # token to a server on loopback (or behind a TLS-terminating proxy) is plaintext.
        channel = grpc.intercept_channel(channel, _MetadataInterceptor(tuple(metadata)))
    return channel


#: UNAVAILABLE: no connection, or the server refused the call. CANCELLED from the server's side: it
#: was shutting down with the call in flight (a rolling restart); another replica may answer.
RETRIED = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED)


class RetryCounter:
    """Counts retries across threads (an int += is atomic enough under the GIL for a statistic)."""

    def __init__(self) -> None:
        self.count = 0


def call_with_retries(
    call: Callable[[], T],
    *,
    retries: int,
    counter: RetryCounter | None = None,
    base_delay: float = 0.1,
    max_delay: float = 2.0,
) -> T:
    """call(), retried with jittered exponential backoff while it fails with UNAVAILABLE or CANCELLED.

    Only for idempotent calls (Predict on this model, metadata): a retried request may have
    reached the server already.
    """
    for attempt in range(retries + 1):
        try:
            return call()
        except grpc.RpcError as error:
            if error.code() not in RETRIED or attempt == retries:
                raise
            if counter is not None:
                counter.count += 1
            time.sleep(min(max_delay, base_delay * 2**attempt) * random.uniform(0.5, 1.0))
    raise AssertionError("unreachable")
