"""What `make serve` started, kept in .serve/ so `make stop` (another process) can end it.

The file's name and the directory's setting are the client's (``client/serve_state.py``), which
reads the same record to find a server started on another port.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from client.serve_state import STATE_FILE


@dataclass(frozen=True)
class ServeState:
    """The running server: a named container or an embedded process, and where it answers."""

    backend: str  # "docker" or "local"
    grpc_address: str
    container: str | None = None
    pid: int | None = None
    image: str | None = None  # the container's image
    rest_url: str | None = None  # http://host:port, None when REST is off
    log: str | None = None  # the embedded server's log file
    tls: bool = False  # TLS on the gRPC port


def read_state(state_dir: Path) -> ServeState | None:
    """The recorded server, or None if make serve recorded none (or the record is unreadable)."""
    try:
        return ServeState(**json.loads((Path(state_dir) / STATE_FILE).read_text()))
    except (OSError, ValueError, TypeError):
        return None


def write_state(state_dir: Path, state: ServeState) -> None:
    """Record the server that was just started."""
    Path(state_dir).mkdir(parents=True, exist_ok=True)
    (Path(state_dir) / STATE_FILE).write_text(json.dumps(asdict(state), indent=2) + "\n")


def clear_state(state_dir: Path) -> None:
    """Forget the recorded server (it was stopped or is gone)."""
    (Path(state_dir) / STATE_FILE).unlink(missing_ok=True)
