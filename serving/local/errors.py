"""Failures of the embedded server: start-up problems a user fixes, and request errors clients see.

Start-up errors end the process with their one-line message. Request errors carry the gRPC
status code and the wording TF Serving uses for the same failure, so a client cannot tell
the two servers apart by their errors.
"""

from __future__ import annotations

import grpc

from serving.errors import PortInUse, ServeError


class StartupError(ServeError):
    """The server cannot start; the message says what is wrong."""


class ConfigFileMissing(StartupError):
    """--model-config-file names a file that does not exist."""


class InvalidServerConfig(StartupError):
    """The model config file does not parse or asks for something this server cannot do."""


class ConfigRefused(InvalidServerConfig):
    """ServerCore::ReloadConfig refused a config: nothing changed. ``code`` is TF Serving's status
    code for it, what HandleReloadConfigRequest answers."""

    def __init__(self, message: str, code: grpc.StatusCode = grpc.StatusCode.INVALID_ARGUMENT):
        super().__init__(message)
        self.message = message
        self.code = code


class LabelOnUnavailableVersion(ConfigRefused):
    """A version label points at a version that is not AVAILABLE (UpdateModelVersionLabelMap)."""

    def __init__(self, message: str):
        super().__init__(message, grpc.StatusCode.FAILED_PRECONDITION)


class NoModelVersions(StartupError):
    """A model has no version to serve: none on disk, or its latest failed to load at start-up."""


class CannotListen(StartupError):
    """A listener cannot be opened on --host for a reason other than a taken port."""


def listen_failure(what: str, flag: str, host: str, port: int, reason: str) -> ServeError:
    """The error for a listener that did not open: PortInUse only if the port is what is taken."""
    from serving.ports import bind_error, host_port

    taken = bind_error(host, port) if port else None
    if taken is not None:
        return PortInUse(f"{what} port {host_port(host, port)} is taken ({taken})", flag)
    return CannotListen(
        f"cannot listen for {what} on {host_port(host, port)}: {reason}; check --host (an "
        "address of this machine)"
    )


class InsecureRemoteHost(StartupError):
    """A non-loopback bind host was asked for without TLS."""


class TlsFilesUnreadable(StartupError):
    """A --ssl-* file cannot be read."""


class RequestError(Exception):
    """A request failed; code and message are what TF Serving answers for the same failure."""

    code = grpc.StatusCode.UNKNOWN

    def __init__(self, message: str, code: grpc.StatusCode | None = None):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class InvalidRequest(RequestError):
    """The request is malformed: missing spec, bad inputs, bad output filter."""

    code = grpc.StatusCode.INVALID_ARGUMENT


class ServableNotFound(RequestError):
    """No AVAILABLE version matches the request's model and version."""

    code = grpc.StatusCode.NOT_FOUND


class SignatureKeyNotFound(RequestError):
    """The servable has no signature of the requested key, answered FAILED_PRECONDITION as TF Serving
    does. (``client.SignatureNotFound`` is the client's own check of the model's metadata.)"""

    code = grpc.StatusCode.FAILED_PRECONDITION


class ServerShuttingDown(RequestError):
    """The batching queue no longer takes work because the server is stopping."""

    code = grpc.StatusCode.UNAVAILABLE
