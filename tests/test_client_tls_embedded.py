"""`--tls`, `--ca-cert` and `--tls-server-name` against the embedded server serving TLS.

The server's certificate, signed by a CA made here, names only ``localhost`` (no IP), so
connecting to 127.0.0.1 verifies only with ``--tls-server-name localhost``.
"""

from __future__ import annotations

import grpc
import numpy as np
import pytest

from tests.support.embedded_server import embedded_server
from tests.support.models import REFERENCE_INPUT
from tests.support.processes import run_module
from tests.test_server_tls import write_key_and_cert


@pytest.fixture(scope="module")
def tls(tmp_path_factory, model_dir):
    directory = tmp_path_factory.mktemp("tls")
    ca_key, ca_cert, _, ca_path = write_key_and_cert(directory, "test-ca", server=False)
    _, _, key_path, cert_path = write_key_and_cert(
        directory, "server", issuer=(ca_key, ca_cert), names=("localhost",)
    )
    np.save(directory / "ref.npy", np.array(REFERENCE_INPUT, np.float32))
    credentials = grpc.ssl_channel_credentials(root_certificates=ca_path.read_bytes())
    with embedded_server(
        model_dir, "--ssl-cert", str(cert_path), "--ssl-key", str(key_path), credentials=credentials
    ) as handle:
        yield handle, ca_path, directory / "ref.npy"


def predict(tls, *args: str, host: str = "127.0.0.1"):
    handle, _, reference = tls
    return run_module(
        "client.predict", reference, "--server", f"{host}:{handle.grpc_port}", *args, timeout=60
    )


def test_ca_cert_and_tls_server_name_verify_the_server(tls):
    result = predict(tls, "--ca-cert", str(tls[1]), "--tls-server-name", "localhost")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[0 1 1 1 1 0 0 1]"


def test_ca_cert_alone_verifies_the_name_in_server(tls):
    assert predict(tls, "--ca-cert", str(tls[1]), host="localhost").returncode == 0


@pytest.mark.parametrize(
    "args",
    [
        ("--ca-cert", "CA"),  # 127.0.0.1 is not a name in the certificate
        ("--ca-cert", "CA", "--tls-server-name", "other.example"),
        ("--tls", "--tls-server-name", "localhost"),  # system roots do not trust the test CA
        (),  # plain text to a TLS port
    ],
    ids=["ip-not-in-certificate", "wrong-server-name", "untrusted-ca", "plaintext"],
)
def test_a_connection_that_cannot_be_verified_is_exit_6(tls, args):
    args = tuple(str(tls[1]) if arg == "CA" else arg for arg in args)
    result = predict(tls, *args, "--retries", "0")
    assert result.returncode == 6, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "127.0.0.1" in lines[0], result.stderr
