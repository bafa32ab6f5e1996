"""Stalled REST clients, TLS or not, neither block other clients nor keep the server from stopping."""

from __future__ import annotations

import json
import signal
import socket
import ssl
import threading
import time

import grpc
import pytest

from tests.support.embedded_server import embedded_server
from tests.support.models import REFERENCE_INPUT, REFERENCE_MASK
from tests.support.rest_client import rest_json
from tests.test_server_tls import write_key_and_cert

STATUS = "/v1/models/threshold"


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory):
    directory = tmp_path_factory.mktemp("tls")
    _, _, key_path, cert_path = write_key_and_cert(directory, "localhost")
    return key_path, cert_path


def tls_server(model_dir, tls_files, *extra: str):
    key_path, cert_path = tls_files
    credentials = grpc.ssl_channel_credentials(root_certificates=cert_path.read_bytes())
    return embedded_server(
        model_dir, "--ssl-cert", str(cert_path), "--ssl-key", str(key_path), *extra, credentials=credentials
    )


def https_context(tls_files) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(tls_files[1]))


def test_an_idle_connection_neither_blocks_https_clients_nor_outlives_its_handshake_timeout(
    model_dir, tls_files
):
    with (
        tls_server(model_dir, tls_files, "--rest-timeout-seconds", "2") as handle,
        socket.create_connection(("127.0.0.1", handle.rest_port), timeout=60) as idle,
    ):
        # The idle socket never starts its TLS handshake; everyone else is served meanwhile.
        for _ in range(3):
            status, answer = rest_json(
                handle.rest_port, "GET", STATUS, context=https_context(tls_files), timeout=30
            )
            assert status == 200 and answer["model_version_status"][0]["state"] == "AVAILABLE"
        assert idle.recv(1024) == b""  # then its handshake deadline closes it


def test_sigterm_stops_the_server_while_a_tls_connection_idles(model_dir, tls_files):
    with (
        tls_server(model_dir, tls_files) as handle,
        socket.create_connection(("127.0.0.1", handle.rest_port), timeout=60),
    ):
        time.sleep(0.5)  # let the server accept it
        handle.process.send_signal(signal.SIGTERM)
        assert handle.process.wait(timeout=60) == 0
        assert handle.log().rstrip().endswith("serving.local: stopped")


def test_a_slow_client_cannot_keep_the_server_past_the_grace_period(model_dir):
    stop_trickling = threading.Event()
    flags = ("--shutdown-grace-seconds", "1", "--rest-timeout-seconds", "300")
    with embedded_server(model_dir, *flags) as handle:
        slow = socket.create_connection(("127.0.0.1", handle.rest_port), timeout=60)

        def trickle() -> None:  # a request whose body never ends: one byte every 0.2 s
            try:
                slow.sendall(
                    b"POST /v1/models/threshold:predict HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n"
                )
                while not stop_trickling.wait(0.2):
                    slow.sendall(b" ")
            except OSError:
                pass

        thread = threading.Thread(target=trickle)
        thread.start()
        try:
            time.sleep(1)  # the request is in flight
            handle.process.send_signal(signal.SIGTERM)
            exit_code = handle.process.wait(timeout=60)
        finally:
            stop_trickling.set()
            thread.join()
            slow.close()
        assert exit_code == 0
        log = handle.log()
    assert log.rstrip().endswith("serving.local: stopped") and "Traceback" not in log


def test_a_request_in_flight_at_sigterm_still_gets_its_answer(model_dir):
    body = json.dumps({"instances": [REFERENCE_INPUT]}).encode()
    head = f"POST /v1/models/threshold:predict HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n\r\n"
    with (
        embedded_server(model_dir) as handle,
        socket.create_connection(("127.0.0.1", handle.rest_port), timeout=60) as client,
    ):
        client.sendall(head.encode() + body[:10])
        time.sleep(0.5)  # the server has read the headers: the request is in flight
        handle.process.send_signal(signal.SIGTERM)
        time.sleep(1)
        client.sendall(body[10:])
        answer = b""
        while part := client.recv(65536):
            answer += part
        assert handle.process.wait(timeout=60) == 0
    head, _, payload = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200") and b"Connection: close" in head
    assert json.loads(payload) == {"predictions": [REFERENCE_MASK]}
