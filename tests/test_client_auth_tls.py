"""TLS and auth end to end: mutual TLS, a bearer token and an authority override, over real loopback.

One embedded server is started as a production endpoint behind an ingress would look to a
client: a certificate for an ingress host name only (not 127.0.0.1), client certificates
required (--ssl-client-ca), and a bearer token required (--auth-token-file). Each client flag is
then shown to be necessary: drop it and the call fails with its own exit code and message.
"""

from __future__ import annotations

import http.client
import json
import ssl
import subprocess
import time

import grpc
import numpy as np
import pytest

from client.errors import SERVER_NOT_STARTED
from tests.support.certificates import CertificateAuthority
from tests.support.embedded_server import WITH_METRICS
from tests.support.models import REFERENCE_INPUT
from tests.support.ports import free_port
from tests.support.processes import PYTHON, REPO, cli_env, run_module

INGRESS_HOST = "threshold.models.example"
TOKEN = "s3cr3t-token-0123456789abcdef"


class Endpoint:
    """The running server and everything a client needs to reach it."""

    def __init__(self, directory, model_dir):
        self.ca = CertificateAuthority(directory)
        self.server_pem = self.ca.issue("server", INGRESS_HOST)
        self.client_pem = self.ca.issue("client")
        token_file = directory / "token"
        token_file.write_text(TOKEN + "\n")
        self.grpc_port, self.rest_port = free_port(), free_port()
        self.address = f"127.0.0.1:{self.grpc_port}"
        self.log = directory / "server.log"
        self.data = directory / "x.npy"
        np.save(self.data, np.asarray([REFERENCE_INPUT], np.float32))
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(
                [
                    PYTHON,
                    "-m",
                    "serving.local",
                    "--port",
                    str(self.grpc_port),
                    "--rest-port",
                    str(self.rest_port),
                    "--model-base-path",
                    str(model_dir / "threshold"),
                    "--ssl-cert",
                    str(self.server_pem.cert),
                    "--ssl-key",
                    str(self.server_pem.key),
                    "--ssl-client-ca",
                    str(self.ca.pem.cert),
                    "--auth-token-file",
                    str(token_file),
                    "--enable-grpc-healthcheck-service",
                    *WITH_METRICS,
                ],
                cwd=REPO,
                env=cli_env(),
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def channel_credentials(self) -> grpc.ChannelCredentials:
        return grpc.ssl_channel_credentials(
            self.ca.pem.cert.read_bytes(), self.client_pem.key.read_bytes(), self.client_pem.cert.read_bytes()
        )

    def wait_until_serving(self, timeout: float = 90) -> None:
        """The health service is open without a token and answers once the models have loaded."""
        from grpc_health.v1 import health_pb2, health_pb2_grpc

        deadline = time.monotonic() + timeout
        options = [("grpc.ssl_target_name_override", INGRESS_HOST)]
        with grpc.secure_channel(self.address, self.channel_credentials(), options=options) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            while time.monotonic() < deadline:
                assert self.process.poll() is None, self.log.read_text()
                try:
                    if (
                        stub.Check(health_pb2.HealthCheckRequest(), timeout=2).status
                        == health_pb2.HealthCheckResponse.SERVING
                    ):
                        return
                except grpc.RpcError:
                    time.sleep(0.2)
        pytest.fail(f"the server did not start:\n{self.log.read_text()}")

    def predict(self, *flags: str, token: str | None = TOKEN):
        env = {
            key: value
            for key, value in cli_env().items()
            if key not in ("THRESHOLD_TOKEN", "THRESHOLD_SERVER")
        }
        if token is not None:
            env["THRESHOLD_TOKEN"] = token
        return run_module(
            "client.predict",
            self.data,
            "--server",
            self.address,
            "--json",
            "--retries",
            "0",
            *flags,
            env=env,
            timeout=120,
        )

    def full_flags(self, *, authority: bool = True, client_cert: bool = True) -> list[str]:
        flags = ["--ca-cert", str(self.ca.pem.cert)]
        if authority:
            flags += ["--authority", INGRESS_HOST]
        if client_cert:
            flags += ["--client-cert", str(self.client_pem.cert), "--client-key", str(self.client_pem.key)]
        return flags

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@pytest.fixture(scope="module")
def endpoint(tmp_path_factory, model_dir):
    handle = Endpoint(tmp_path_factory.mktemp("endpoint"), model_dir)
    try:
        handle.wait_until_serving()
        yield handle
    finally:
        handle.stop()


def _summary(result) -> dict:
    return json.loads(result.stdout.splitlines()[-1])


def test_mtls_token_and_authority_together_reach_the_model(endpoint):
    result = endpoint.predict(*endpoint.full_flags())
    assert result.returncode == 0, result.stderr
    assert _summary(result)["ok"] is True and _summary(result)["mismatches"] == 0


def test_the_token_can_come_as_a_header_flag(endpoint):
    result = endpoint.predict(
        *endpoint.full_flags(), "--header", f"Authorization: Bearer {TOKEN}", token=None
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    ("token", "reason"),
    [
        (None, "missing bearer token"),
        ("not-the-token", "invalid bearer token"),
    ],
)
def test_a_missing_or_wrong_token_is_unauthenticated(endpoint, token, reason):
    result = endpoint.predict(*endpoint.full_flags(), token=token)
    assert result.returncode == 9, result.stderr
    assert "UNAUTHENTICATED" in result.stderr and reason in result.stderr
    assert "THRESHOLD_TOKEN" in result.stderr  # says how to fix it
    assert "Traceback" not in result.stderr


def test_without_the_authority_override_the_certificate_does_not_match(endpoint):
    # The certificate names the ingress host only; 127.0.0.1 is not in it.
    result = endpoint.predict(*endpoint.full_flags(authority=False))
    assert result.returncode == 6, result.stderr


def test_without_a_client_certificate_the_handshake_is_refused(endpoint):
    result = endpoint.predict(*endpoint.full_flags(client_cert=False))
    assert result.returncode == 6, result.stderr


def test_grpc_calls_without_a_token_are_unauthenticated_but_health_checks_are_open(endpoint):
    from client.protos import get_model_status_pb2, model_pb2, model_service_pb2_grpc

    options = [("grpc.ssl_target_name_override", INGRESS_HOST)]
    with grpc.secure_channel(endpoint.address, endpoint.channel_credentials(), options=options) as channel:
        stub = model_service_pb2_grpc.ModelServiceStub(channel)
        request = get_model_status_pb2.GetModelStatusRequest(model_spec=model_pb2.ModelSpec(name="threshold"))
        with pytest.raises(grpc.RpcError) as refused:
            stub.GetModelStatus(request, timeout=10)
        assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
        answer = stub.GetModelStatus(request, timeout=10, metadata=[("authorization", f"Bearer {TOKEN}")])
        assert answer.model_version_status[0].version == 1


def _rest(endpoint, path: str, token: str | None) -> tuple[int, dict | str]:
    context = ssl.create_default_context(cafile=str(endpoint.ca.pem.cert))
    context.check_hostname = False  # the chain is still verified; the name is the ingress's
    context.load_cert_chain(str(endpoint.client_pem.cert), str(endpoint.client_pem.key))
    connection = http.client.HTTPSConnection("127.0.0.1", endpoint.rest_port, context=context, timeout=10)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        body = response.read().decode()
        return response.status, json.loads(body) if body.startswith("{") else body
    finally:
        connection.close()


def test_rest_wants_the_token_too_and_metrics_stay_open(endpoint):
    status, body = _rest(endpoint, "/v1/models/threshold", token=None)
    assert status == 401 and "missing bearer token" in body["error"]
    assert _rest(endpoint, "/v1/models/threshold", token="wrong")[0] == 401
    status, body = _rest(endpoint, "/v1/models/threshold", token=TOKEN)
    assert status == 200 and body["model_version_status"][0]["state"] == "AVAILABLE"
    assert _rest(endpoint, "/monitoring/prometheus/metrics", token=None)[0] == 200


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--header", "no-colon-here"], "a header is 'name: value'"),
        (["--header", "grpc-timeout: 1S"], "reserved by gRPC"),
        (["--client-cert", "me.pem"], "--client-cert and --client-key go together"),
    ],
)
def test_bad_security_flags_are_one_line_errors(flags, message):
    result = run_module("client.predict", "x.npy", *flags, timeout=60)
    assert result.returncode == 2 and message in result.stderr
    assert "Traceback" not in result.stderr


def test_an_unreadable_token_file_stops_the_server_at_once(tmp_path, model_dir):
    result = run_module(
        "serving.local",
        "--port",
        str(free_port()),
        "--rest-port",
        "0",
        "--model-base-path",
        model_dir / "threshold",
        "--auth-token-file",
        tmp_path / "absent",
        timeout=120,
    )
    assert result.returncode == SERVER_NOT_STARTED
    assert result.stderr.strip().splitlines() == [
        f"serving.local: error: cannot read --auth-token-file "
        f"{tmp_path / 'absent'}: No such file or directory"
    ]
