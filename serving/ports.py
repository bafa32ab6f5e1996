"""Whether a port can be taken, asked before a slow start so a clash fails at once."""

from __future__ import annotations

import socket

from serving.errors import PortInUse


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


def host_port(host: str, port: int) -> str:
    """host:port, with an IPv6 host in brackets."""
    return f"[{host}]:{port}" if ":" in host and not host.startswith("[") else f"{host}:{port}"


def require_free_port(host: str, port: int, what: str, flag: str = "") -> None:
    """PortInUse now, before a slow start, if something already listens on host:port (0: any port)."""
    if port == 0:
        return
    reason = bind_error(host, port)
    if reason is not None:
        raise PortInUse(f"{what} port {host_port(host, port)} is taken ({reason})", flag)
