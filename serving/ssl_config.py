"""TF Serving's ``--ssl_config_file``: an SSLConfig text proto holding the PEM texts themselves.

The message (tensorflow_serving/config/ssl_config.proto) has server_key, server_cert, custom_ca
and client_verify; model_servers/server.cc builds the gRPC server's credentials from it, with
client certificates required when client_verify is set. It covers the gRPC port only: TF
Serving's REST port (health probes, metrics) stays plain HTTP. The file holds a private key, so
it is written owner-readable only, and never under .serve/config/ (which serving/Dockerfile
bakes into the image).
"""

from __future__ import annotations

import os
from pathlib import Path

from google.protobuf import text_encoding

from serving.errors import ServeError

SSL_CONFIG_NAME = "ssl.config"


class TlsFilesUnusable(ServeError):
    """A --tls-* file is missing, unreadable or not PEM."""


def _pem(path: Path, flag: str, marker: str) -> str:
    try:
        text = Path(path).read_text()
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or exc
        raise TlsFilesUnusable(f"cannot read {flag} {path}: {reason}") from None
    if f"{marker}-----" not in text:  # "PRIVATE KEY-----" also matches EC and RSA keys
        raise TlsFilesUnusable(f"{flag} {path} is not a PEM {marker.lower()}")
    return text


def render_ssl_config(cert: Path, key: Path, client_ca: Path | None = None) -> str:
    """The SSLConfig text proto for a certificate and key, requiring client certificates from client_ca."""
    fields = [
        ("server_key", _pem(key, "--tls-key", "PRIVATE KEY")),
        ("server_cert", _pem(cert, "--tls-cert", "CERTIFICATE")),
    ]
    if client_ca is not None:
        fields.append(("custom_ca", _pem(client_ca, "--tls-client-ca", "CERTIFICATE")))
    lines = ["# SSLConfig for tensorflow_model_server --ssl_config_file. Holds a private key."]
    lines += [f'{name}: "{text_encoding.CEscape(value, as_utf8=False)}"' for name, value in fields]
    if client_ca is not None:
        lines.append("client_verify: true")
    return "\n".join(lines) + "\n"


def write_ssl_config(directory: Path, text: str) -> Path:
    """Write text to directory/ssl.config, owner-only (0600), via a temp file renamed into place."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    os.chmod(directory, 0o700)
    target = directory / SSL_CONFIG_NAME
    temp = directory / f".{SSL_CONFIG_NAME}.partial"
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as file:
        file.write(text)
    os.replace(temp, target)
    return target
