"""One error class per serving failure a user can act on; each message says what to do."""

from __future__ import annotations

from client.errors import SERVER_NOT_STARTED, DeadlineExceeded


class ServeError(Exception):
    """Base class: `make serve` / `make stop` could not do what was asked.

    ``exit_code`` is the CLI's exit status, from the project's one table (client.errors.EXIT_CODES).
    """

    exit_code = SERVER_NOT_STARTED


class InvalidModelConfig(ServeError):
    """serving/models.config cannot be turned into a config TF Serving would accept."""


class ExportFailed(ServeError):
    """No model version existed and exporting the first one failed."""


class DockerUnavailable(ServeError):
    """SERVER=docker was asked for, but no Docker engine answers."""


class PortInUse(ServeError):
    """A port a server needs is already taken on the bind address (make serve's and the embedded
    server's alike); ``flag`` names the option that picks it, for the CLI's hint."""

    def __init__(self, message: str, flag: str = ""):
        super().__init__(message)
        self.flag = flag


class ServerExitedEarly(ServeError):
    """The container or embedded process exited before the model became AVAILABLE."""


class ModelNotAvailable(ServeError):
    """The server runs, but the model did not become AVAILABLE in time."""

    exit_code = DeadlineExceeded.exit_code
