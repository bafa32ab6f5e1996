"""One error class per failure a user can act on, each with the CLI exit code it maps to.

``EXIT_CODES`` is the one table of exit codes: every CLI of the project (client.predict,
client.bench, serving.launch behind make serve/stop/status, serving.local) exits with these
numbers for these kinds of failure (export, which imports nothing of ours, uses 0, 1 and 2 alike).

gRPC status codes are translated here and nowhere else (``from_rpc_error``), so library callers
catch ``ServerUnavailable`` or ``ModelNotFound`` instead of inspecting ``grpc.RpcError``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # grpc is imported lazily so `--help` (which prints EXIT_CODES) stays fast
    import grpc


class ThresholdClientError(Exception):
    """Base class: every failure the client reports. ``exit_code`` is the CLI's exit status.

    The message says what failed; ``kind`` names the case within the class ("unreachable",
    "deadline", ...), from which a CLI adds how to fix it with its flags (``client.cli_hints``).
    """

    exit_code = 1

    def __init__(self, message: str, *, kind: str = ""):
        super().__init__(message)
        self.kind = kind


class InputFileError(ThresholdClientError):
    """The input file is missing or cannot be read (permissions, a directory, an I/O error)."""

    exit_code = 3


class InputFormatError(ThresholdClientError):
    """The file is not a plain .npy/.npz array: pickled objects, corrupt or truncated, wrong key."""

    exit_code = 4


class InvalidInput(ThresholdClientError):
    """The array cannot be filtered: object/string/complex dtype, more than 2-D, or an empty shape."""

    exit_code = 5


class ServerUnavailable(ThresholdClientError):
    """No server answered at the address (after retries), or the connection dropped mid-run."""

    exit_code = 6


class ModelNotFound(ThresholdClientError):
    """The server has no such model, version, label or signature."""

    exit_code = 7


class DeadlineExceeded(ThresholdClientError):
    """A request took longer than the per-request timeout."""

    exit_code = 8


class RequestRejected(ThresholdClientError):
    """The server refused or failed a request for another reason (its status code is in the message)."""

    exit_code = 9


class ResponseMismatch(ThresholdClientError):
    """The server's answers failed the check: wrong shape or dtype, or values that break the rule."""

    exit_code = 10

    def __init__(self, message: str, report: object = None, *, kind: str = ""):
        super().__init__(message, kind=kind)
        self.report = report


class OutputFileError(ThresholdClientError):
    """The output file cannot be written."""

    exit_code = 11


#: A server could not be started, stopped or built: a port taken, a bad config, no model version,
#: no Docker engine, a container or process that exited (make serve/stop/image, serving.local).
SERVER_NOT_STARTED = 12

EXIT_CODES = {
    0: "success: every response passed the check (or --no-check)",
    1: "unexpected internal error (please report it)",
    2: "bad command-line arguments or environment values",
    InputFileError.exit_code: "input file missing or unreadable",
    InputFormatError.exit_code: "input file pickled, corrupt, truncated, or --key not in the .npz",
    InvalidInput.exit_code: "input array unusable: object/string/complex dtype, >2-D, or empty",
    ServerUnavailable.exit_code: "server unreachable, or it went away mid-run (after retries)",
    ModelNotFound.exit_code: "model, version, label or signature not found",
    DeadlineExceeded.exit_code: "a request exceeded --timeout (make serve: no AVAILABLE model in time)",
    RequestRejected.exit_code: "the server rejected a request (other gRPC status)",
    ResponseMismatch.exit_code: "check failed: a response had the wrong shape, dtype or values",
    OutputFileError.exit_code: "output file cannot be written",
    SERVER_NOT_STARTED: "a server could not be started, stopped or built (make serve, serving.local)",
    130: "interrupted (Ctrl-C, SIGINT): the partial output is removed",
    143: "terminated (SIGTERM): the partial output is removed",
}


def rpc_details(error: grpc.RpcError) -> str:
    """The server's or gRPC's message, one line; for refused connections just gRPC's last word."""
    text = (error.details() if hasattr(error, "details") else None) or str(error)
    lines = text.strip().splitlines()
    line = lines[0] if lines else ""
    if "failed to connect" in line:  # "...; last error: UNAVAILABLE: ipv4:...: Connection refused[: OK]"
        return line.removesuffix(": OK").rsplit(": ", 1)[-1]
    return line


def tls_failure(error: grpc.RpcError) -> str | None:
    """What went wrong in a failed TLS handshake ('CERTIFICATE_VERIFY_FAILED: self signed
    certificate'), or None when the error is no handshake failure."""
    text = (error.details() if hasattr(error, "details") else None) or str(error)
    if "handshake failed" not in text.lower():
        return None
    reason = text.strip().splitlines()[0].removesuffix(": OK")
    return (
        reason.split("OPENSSL_internal:", 1)[-1]
        if "OPENSSL_internal:" in reason
        else reason.rsplit(": ", 1)[-1]
    )


def from_rpc_error(
    error: grpc.RpcError, *, address: str, what: str, timeout: float | None = None
) -> ThresholdClientError:
    """Translate a failed RPC into the error class a user can act on."""
    import grpc

    code = error.code() if hasattr(error, "code") else grpc.StatusCode.UNKNOWN
    details = rpc_details(error)
    if code == grpc.StatusCode.CANCELLED:  # we never cancel a call we still wait on: the server did
        return ServerUnavailable(
            f"the model server at {address} cancelled the call ({details or 'cancelled'}): it is shutting "
            "down or restarting",
            kind="unreachable",
        )
    tls = tls_failure(error) if code == grpc.StatusCode.UNAVAILABLE else None
    if tls is not None and "CERTIFICATE_VERIFY_FAILED" in tls:
        return ServerUnavailable(
            f"TLS handshake with {address} failed: the server's certificate is not signed by a CA this "
            f"client trusts ({tls})",
            kind="untrusted_certificate",
        )
    if tls is not None:
        return ServerUnavailable(f"TLS handshake with {address} failed ({tls})", kind="tls_handshake")
    if code == grpc.StatusCode.UNAVAILABLE:
        return ServerUnavailable(
            f"cannot reach a model server at {address} ({details or 'unavailable'})", kind="unreachable"
        )
    if code == grpc.StatusCode.NOT_FOUND:
        return ModelNotFound(f"{what}: not found on {address} ({details})")
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        limit = f" of {timeout:g} s" if timeout is not None else ""
        return DeadlineExceeded(
            f"{what}: no answer from {address} within the timeout{limit}", kind="deadline"
        )
    if code in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED):
        return RequestRejected(
            f"{what}: server at {address} answered {code.name} ({details})", kind="credentials"
        )
    if code == grpc.StatusCode.RESOURCE_EXHAUSTED:
        return RequestRejected(f"{what}: message too large for {address} ({details})", kind="too_large")
    return RequestRejected(f"{what}: server at {address} answered {code.name} ({details})")
