"""--tls / --ca-cert reach a TLS server; a plaintext client is refused by it with exit 6."""

from __future__ import annotations

import datetime
import ipaddress

import pytest
from cryptography import x509

from tests.support.processes import run_module


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    """A self-signed certificate for localhost and 127.0.0.1: (key PEM, cert PEM, cert path)."""
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "threshold-test-ca")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    path = tmp_path_factory.mktemp("tls") / "ca.pem"
    path.write_bytes(cert_pem)
    return key_pem, cert_pem, path


@pytest.fixture
def tls_server(fake_server, certificate):
    import grpc

    key_pem, cert_pem, _ = certificate
    return fake_server(credentials=grpc.ssl_server_credentials([(key_pem, cert_pem)]))


def test_ca_cert_reaches_a_tls_server(tls_server, certificate, reference_file):
    result = run_module(
        "client.predict",
        reference_file,
        "--server",
        tls_server.address,
        "--ca-cert",
        certificate[2],
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[0 1 1 1 1 0 0 1]"


def test_plaintext_client_against_tls_server_is_unavailable(tls_server, reference_file):
    result = run_module(
        "client.predict",
        reference_file,
        "--server",
        tls_server.address,
        "--retries",
        "0",
        "--timeout",
        "5",
        timeout=60,
    )
    assert result.returncode == 6, result.stderr
    assert "Traceback" not in result.stderr


def test_missing_ca_cert_is_an_unreadable_file(tls_server, reference_file, tmp_path):
    result = run_module(
        "client.predict",
        reference_file,
        "--server",
        tls_server.address,
        "--ca-cert",
        tmp_path / "absent.pem",
        timeout=60,
    )
    assert result.returncode == 3 and "cannot read --ca-cert" in result.stderr


def test_tls_against_a_private_ca_names_the_certificate_problem(tls_server, reference_file):
    """Without --ca-cert the system roots cannot verify a private CA: say that, not '(OK)'."""
    result = run_module(
        "client.predict",
        reference_file,
        "--server",
        tls_server.address,
        "--tls",
        "--retries",
        "0",
        "--timeout",
        "5",
        timeout=60,
    )
    assert result.returncode == 6, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert "certificate" in lines[0] and "CERTIFICATE_VERIFY_FAILED" in lines[0] and "--ca-cert" in lines[0]
    assert "(OK)" not in lines[0]
