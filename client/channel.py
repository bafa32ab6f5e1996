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


def open_channel(address: str, *, tls: bool = False, ca_cert: str | Path | None = None,
                 server_name: str | None = None, options: Sequence[tuple[str, object]] = ()) -> grpc.Channel:
    """A channel to address: plaintext, or TLS when tls or ca_cert is given; options are added."""
    options = [*_CHANNEL_OPTIONS, *options]
    if not (tls or ca_cert):
        return grpc.insecure_channel(address, options=options)
    root = None
    if ca_cert is not None:
        try:
            root = Path(ca_cert).read_bytes()
        except OSError as exc:
            raise InputFileError(f"cannot read --ca-cert {ca_cert}: {exc.strerror or exc}") from None
    if server_name:
        options.append(("grpc.ssl_target_name_override", server_name))
    return grpc.secure_channel(address, grpc.ssl_channel_credentials(root_certificates=root), options=options)


#: UNAVAILABLE: no connection, or the server refused the call. CANCELLED from the server's side: it
#: was shutting down with the call in flight (a rolling restart); another replica may answer.
RETRIED = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED)


class RetryCounter:
    """Counts retries across threads (an int += is atomic enough under the GIL for a statistic)."""

    def __init__(self) -> None:
        self.count = 0


def call_with_retries(call: Callable[[], T], *, retries: int, counter: RetryCounter | None = None,
                      base_delay: float = 0.1, max_delay: float = 2.0) -> T:
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
            time.sleep(min(max_delay, base_delay * 2 ** attempt) * random.uniform(0.5, 1.0))
    raise AssertionError("unreachable")
