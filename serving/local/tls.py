"""Transport security: TLS credentials for gRPC and REST, and the rule that plain text stays on loopback."""

from __future__ import annotations

import ipaddress
import socket
import ssl
from pathlib import Path

import grpc

from serving.local.errors import InsecureRemoteHost, TlsFilesUnreadable
from serving.local.flags import ServerOptions


def is_loopback(host: str) -> bool:
    """host is a loopback address or resolves only to loopback addresses (localhost)."""
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None)
    except socket.gaierror:
        return False
    return bool(infos) and all(ipaddress.ip_address(info[4][0]).is_loopback for info in infos)


def require_safe_host(options: ServerOptions) -> None:
    """InsecureRemoteHost for plain text on a non-loopback host, unless explicitly allowed."""
    if not options.tls and not options.allow_insecure_remote and not is_loopback(options.host):
        raise InsecureRemoteHost(
            f"refusing to serve plain text on {options.host}: anyone who reaches it can call the model. "
            "Pass --ssl-cert/--ssl-key, bind 127.0.0.1, or pass --allow-insecure-remote"
        )


def _read(path: Path, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise TlsFilesUnreadable(f"cannot read {what} {path}: {exc.strerror}") from None


def require_usable_tls(options: ServerOptions) -> None:
    """TlsFilesUnreadable unless --ssl-cert/--ssl-key hold a PEM certificate and its private key.

    Checked at start-up, before the slow model load: gRPC takes any bytes as credentials and only
    fails when the port is added, with no word of why.
    """
    if not options.tls:
        return
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(str(options.ssl_cert), str(options.ssl_key))
        if options.ssl_client_ca:
            context.load_verify_locations(str(options.ssl_client_ca))
    except ssl.SSLError as exc:
        files = f"--ssl-cert {options.ssl_cert}, --ssl-key {options.ssl_key}"
        if options.ssl_client_ca:
            files += f", --ssl-client-ca {options.ssl_client_ca}"
        raise TlsFilesUnreadable(
            f"{files}: cannot be loaded as a PEM certificate with its private key "
            f"(and CA certificates): {exc.reason or exc}"
        ) from None
    except OSError as exc:
        raise TlsFilesUnreadable(f"cannot read the TLS files: {exc.strerror or exc}") from None


def grpc_server_credentials(options: ServerOptions) -> grpc.ServerCredentials | None:
    """TLS credentials (mutual TLS with --ssl-client-ca), or None for plain text."""
    if not options.tls:
        return None
    key, cert = _read(options.ssl_key, "--ssl-key"), _read(options.ssl_cert, "--ssl-cert")
    require_usable_tls(options)
    client_ca = _read(options.ssl_client_ca, "--ssl-client-ca") if options.ssl_client_ca else None
    return grpc.ssl_server_credentials(
        [(key, cert)], root_certificates=client_ca, require_client_auth=client_ca is not None
    )


def rest_ssl_context(options: ServerOptions) -> ssl.SSLContext | None:
    """The same certificate for the REST port, so TLS covers both ports or neither."""
    if not options.tls:
        return None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(str(options.ssl_cert), str(options.ssl_key))
        if options.ssl_client_ca:
            context.load_verify_locations(str(options.ssl_client_ca))
            context.verify_mode = ssl.CERT_REQUIRED
    except (OSError, ssl.SSLError) as exc:
        raise TlsFilesUnreadable(f"cannot use --ssl-cert/--ssl-key for REST: {exc}") from None
    return context
