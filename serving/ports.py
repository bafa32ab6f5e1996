"""Whether a port can be taken, asked before a slow start so a clash fails at once."""

from __future__ import annotations

import socket


def bind_error(host: str, port: int) -> str | None:
    """Why ``host:port`` cannot be bound right now (the OS's words), or None when it is free."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as servers bind: TIME_WAIT is free
        try:
            probe.bind((host, port))
        except OSError as exc:
            return exc.strerror or str(exc)
    return None
