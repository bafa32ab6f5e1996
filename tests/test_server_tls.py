"""TLS: a self-signed certificate made in the test; plain and mutual TLS round trips."""

from __future__ import annotations

import datetime
import ipaddress

import grpc
import numpy as np
import pytest

from tests.support.embedded_server import embedded_server
from tests.support.grpc_calls import ServingStubs, predict_request, tensor_array
from tests.support.models import REFERENCE_INPUT, REFERENCE_MASK


def write_key_and_cert(
    directory,
    name: str,
    issuer=None,
    server: bool = True,
    names: tuple[str, ...] = ("localhost", "127.0.0.1"),
):
    """A PEM key and certificate for ``names`` (DNS names or IPs), self-signed or signed by issuer."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    issuer_key, issuer_name = (issuer[0], issuer[1].subject) if issuer else (key, subject)
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=issuer is None, path_length=None), critical=True)
    )
    if server:

        def alternative(host: str):
            try:
                return x509.IPAddress(ipaddress.ip_address(host))
            except ValueError:
                return x509.DNSName(host)

        builder = builder.add_extension(
            x509.SubjectAlternativeName([alternative(n) for n in names]), critical=False
        )
    cert = builder.sign(issuer_key, hashes.SHA256())
    key_path, cert_path = directory / f"{name}.key", directory / f"{name}.pem"
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key, cert, key_path, cert_path


def reference_mask(stubs) -> list:
    request = predict_request(np.asarray([REFERENCE_INPUT], np.float32))
    response = stubs.prediction.Predict(request, timeout=30)
    return tensor_array(response.outputs["mask"]).tolist()


def test_tls_round_trip_with_a_self_signed_certificate(tmp_path, model_dir):
    _, _, key_path, cert_path = write_key_and_cert(tmp_path, "localhost")
    credentials = grpc.ssl_channel_credentials(root_certificates=cert_path.read_bytes())
    with embedded_server(
        model_dir, "--ssl-cert", str(cert_path), "--ssl-key", str(key_path), credentials=credentials
    ) as handle:
        stubs = ServingStubs(handle.address, credentials)
        assert reference_mask(stubs) == [REFERENCE_MASK]
        stubs.close()
        plain = ServingStubs(handle.address)
        with pytest.raises(grpc.RpcError) as error:
            reference_mask(plain)
        assert error.value.code() == grpc.StatusCode.UNAVAILABLE
        plain.close()
        assert "(TLS)" in handle.log()


def test_mutual_tls_requires_a_client_certificate(tmp_path, model_dir):
    ca_key, ca_cert, _, ca_path = write_key_and_cert(tmp_path, "test-ca", server=False)
    _, _, server_key, server_cert = write_key_and_cert(tmp_path, "localhost", issuer=(ca_key, ca_cert))
    _, _, client_key, client_cert = write_key_and_cert(
        tmp_path, "client", issuer=(ca_key, ca_cert), server=False
    )
    with_client_cert = grpc.ssl_channel_credentials(
        ca_path.read_bytes(), client_key.read_bytes(), client_cert.read_bytes()
    )
    with embedded_server(
        model_dir,
        "--ssl-cert",
        str(server_cert),
        "--ssl-key",
        str(server_key),
        "--ssl-client-ca",
        str(ca_path),
        credentials=with_client_cert,
    ) as handle:
        stubs = ServingStubs(handle.address, with_client_cert)
        assert reference_mask(stubs) == [REFERENCE_MASK]
        stubs.close()
        anonymous = ServingStubs(handle.address, grpc.ssl_channel_credentials(ca_path.read_bytes()))
        with pytest.raises(grpc.RpcError) as error:
            reference_mask(anonymous)
        assert error.value.code() == grpc.StatusCode.UNAVAILABLE
        anonymous.close()
