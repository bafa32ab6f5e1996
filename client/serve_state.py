"""What `make serve` recorded in .serve/, read by a client run from the checkout.

`make serve` (serving/serve_state.py) writes ``.serve/server.json`` with the gRPC address it
started, and ``.serve/config/models.config`` with the models it serves. A client started in the
same checkout without --server finds a server on a non-default port there, and, when the
model asked for does not exist, the model names to ask for instead: TF Serving has no call that
lists its models. Only the two fields needed are read, so the client imports nothing of serving.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

STATE_DIR_ENV = "SERVE_STATE_DIR"  # the same setting `make serve` reads
DEFAULT_STATE_DIR = ".serve"
STATE_FILE = "server.json"
MODELS_CONFIG = Path("config") / "models.config"
_MODEL_NAME = re.compile(r'^\s*name:\s*"([^"]+)"', re.MULTILINE)


def state_dir() -> Path:
    """Where `make serve` keeps its state, relative to the current directory."""
    return Path(os.environ.get(STATE_DIR_ENV, "").strip() or DEFAULT_STATE_DIR)


def recorded_server(directory: Path | None = None) -> str | None:
    """The gRPC address of the server `make serve` started here, or None if it recorded none."""
    path = (directory or state_dir()) / STATE_FILE
    try:
        address = json.loads(path.read_text()).get("grpc_address")
    except (OSError, ValueError, AttributeError):
        return None
    return address if isinstance(address, str) and address else None


def recorded_models(directory: Path | None = None) -> tuple[str, ...]:
    """The model names in the config `make serve` handed its server (empty if there is none)."""
    try:
        text = ((directory or state_dir()) / MODELS_CONFIG).read_text()
    except OSError:
        return ()
    return tuple(dict.fromkeys(_MODEL_NAME.findall(text)))
