"""The embedded server's transport: REST over TLS and mutual TLS, and --allow-insecure-remote."""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request

import pytest

from tests.support.embedded_server import embedded_server
from tests.support.grpc_calls import ServingStubs
from tests.support.models import REFERENCE_INPUT, REFERENCE_MASK
from tests.test_server_tls import reference_mask, write_key_and_cert


def rest(url: str, context: ssl.SSLContext | None = None, body: dict | None = None) -> tuple[int, dict]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data)
    with urllib.request.urlopen(request, timeout=30, context=context) as answer:
        return answer.status, json.loads(answer.read())


def trusting(ca_path, client_cert=None, client_key=None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(ca_path))
    if client_cert is not None:
        context.load_cert_chain(str(client_cert), str(client_key))
    return context


@pytest.fixture(scope="module")
def certificates(tmp_path_factory):
    directory = tmp_path_factory.mktemp("rest-tls")
    ca_key, ca_cert, _, ca_path = write_key_and_cert(directory, "test-ca", server=False)
    _, _, server_key, server_cert = write_key_and_cert(directory, "localhost", issuer=(ca_key, ca_cert))
    _, _, client_key, client_cert = write_key_and_cert(
        directory, "client", issuer=(ca_key, ca_cert), server=False
    )
    return {
        "ca": ca_path,
        "server_key": server_key,
        "server_cert": server_cert,
        "client_key": client_key,
        "client_cert": client_cert,
    }


def tls_server(model_dir, certificates, *extra: str):
    import grpc

    credentials = grpc.ssl_channel_credentials(
        certificates["ca"].read_bytes(),
        certificates["client_key"].read_bytes(),
        certificates["client_cert"].read_bytes(),
    )
    return embedded_server(
        model_dir,
        "--ssl-cert",
        str(certificates["server_cert"]),
        "--ssl-key",
        str(certificates["server_key"]),
        *extra,
        credentials=credentials,
    )


def test_rest_is_served_over_tls_with_the_grpc_certificate(model_dir, certificates):
    with tls_server(model_dir, certificates) as handle:
        base = f"https://localhost:{handle.rest_port}/v1/models/threshold"
        context = trusting(certificates["ca"])
        status, body = rest(base, context)
        assert status == 200 and body["model_version_status"][0]["state"] == "AVAILABLE"
        status, body = rest(base + ":predict", context, {"instances": [REFERENCE_INPUT]})
        assert status == 200 and body["predictions"] == [[float(v) for v in REFERENCE_MASK]]
        with pytest.raises((urllib.error.URLError, ConnectionError)):  # plain HTTP gets no HTTP answer
            rest(f"http://localhost:{handle.rest_port}/v1/models/threshold")
        with pytest.raises(urllib.error.URLError) as untrusted:  # system roots do not know the test CA
            rest(base, ssl.create_default_context())
        assert isinstance(untrusted.value.reason, ssl.SSLCertVerificationError)


def test_rest_with_mutual_tls_requires_a_client_certificate(model_dir, certificates):
    with tls_server(model_dir, certificates, "--ssl-client-ca", str(certificates["ca"])) as handle:
        base = f"https://localhost:{handle.rest_port}/v1/models/threshold"
        with_cert = trusting(certificates["ca"], certificates["client_cert"], certificates["client_key"])
        status, body = rest(base + ":predict", with_cert, {"instances": [REFERENCE_INPUT]})
        assert status == 200 and body["predictions"] == [[float(v) for v in REFERENCE_MASK]]
        with pytest.raises((urllib.error.URLError, ssl.SSLError, ConnectionError)):
            rest(base, trusting(certificates["ca"]))


def test_allow_insecure_remote_serves_plain_text_on_every_interface(model_dir):
    with embedded_server(model_dir, "--host", "0.0.0.0", "--allow-insecure-remote") as handle:
        stubs = ServingStubs(handle.address)  # 0.0.0.0 includes loopback
        try:
            assert reference_mask(stubs) == [REFERENCE_MASK]
        finally:
            stubs.close()
        status, _ = rest(f"http://127.0.0.1:{handle.rest_port}/v1/models/threshold")
        assert status == 200
        assert f"listening on grpc 0.0.0.0:{handle.grpc_port}" in handle.log()
