"""Hostile REST requests: each gets a clear 4xx and the server keeps answering, REST and gRPC alike."""

from __future__ import annotations

import gzip
import json
import shutil
import subprocess
import threading

import numpy as np
import pytest

from tests.support.embedded_server import embedded_server
from tests.support.grpc_calls import ServingStubs, predict_request
from tests.support.models import REFERENCE_INPUT, REFERENCE_MASK
from tests.support.rest_client import raw_exchange, rest_call, rest_json, status_of

PREDICT = "/v1/models/threshold:predict"
MAX_MESSAGE_BYTES = 1 << 20  # the REST limit is derived from it: 1 MiB / 16 = 64 KiB


@pytest.fixture(scope="module")
def small_server(model_dir):
    """A server with a 1 MiB gRPC limit (so a 64 KiB REST limit) and 2 s REST timeouts."""
    with embedded_server(
        model_dir, "--max-message-bytes", str(MAX_MESSAGE_BYTES), "--rest-timeout-seconds", "2"
    ) as handle:
        yield handle


def still_serves(handle) -> None:
    """REST and gRPC both still answer the reference request exactly."""
    status, answer = rest_json(handle.rest_port, "POST", PREDICT, {"instances": [REFERENCE_INPUT]})
    assert (status, answer) == (200, {"predictions": [REFERENCE_MASK]})
    stubs = ServingStubs(handle.address)
    try:
        response = stubs.prediction.Predict(
            predict_request(np.asarray([REFERENCE_INPUT], np.float32)), timeout=30
        )
        assert response.outputs["mask"].tensor_shape.dim[1].size == len(REFERENCE_INPUT)
    finally:
        stubs.close()


def predict_body(rows: int) -> bytes:
    return json.dumps({"instances": [REFERENCE_INPUT] * rows}).encode()


def test_a_body_over_the_limit_gets_413_and_the_limit_follows_the_grpc_limit(small_server):
    limit = MAX_MESSAGE_BYTES // 16
    small, large = predict_body(100), predict_body(2000)
    assert len(small) < limit < len(large)
    assert rest_call(small_server.rest_port, "POST", PREDICT, small)[0] == 200
    status, answer = rest_json(small_server.rest_port, "POST", PREDICT, large)
    assert status == 413
    assert answer["error"] == (
        f"request body of {len(large)} bytes is larger than the REST limit of {limit} "
        "bytes (--rest-max-request-bytes); send fewer rows per request, or use gRPC"
    )
    still_serves(small_server)


def test_a_body_over_the_limit_is_refused_before_it_is_sent(small_server):
    request = (
        f"POST {PREDICT} HTTP/1.1\r\nHost: x\r\nContent-Length: {10**9}\r\nExpect: 100-continue\r\n\r\n"
    ).encode()
    answer = raw_exchange(small_server.rest_port, request)  # no body follows: the answer comes first
    assert status_of(answer) == 413 and b"100 Continue" not in answer


def test_a_chunked_body_over_the_limit_gets_413(small_server):
    chunk = b"x" * 40000
    request = (
        b"POST "
        + PREDICT.encode()
        + b" HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        + (b"%x\r\n" % len(chunk) + chunk + b"\r\n") * 2
        + b"0\r\n\r\n"
    )
    assert status_of(raw_exchange(small_server.rest_port, request)) == 413
    body = json.dumps({"instances": [REFERENCE_INPUT]}).encode()
    request = (
        b"POST "
        + PREDICT.encode()
        + b" HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        + b"%x\r\n" % len(body)
        + body
        + b"\r\n0\r\n\r\n"
    )
    answer = raw_exchange(small_server.rest_port, request)
    assert status_of(answer) == 200 and json.loads(answer.split(b"\r\n\r\n", 1)[1]) == {
        "predictions": [REFERENCE_MASK]
    }


def test_gzip_bodies_are_inflated_up_to_the_limit(small_server):
    """TF Serving inflates Content-Encoding: gzip bodies (net_http evhttp_request.cc, auto_uncompress_input);
    here the REST limit applies to the inflated size, so a small bomb gets 413."""
    headers = {"Content-Encoding": "gzip"}
    body = gzip.compress(json.dumps({"instances": [REFERENCE_INPUT]}).encode())
    assert rest_json(small_server.rest_port, "POST", PREDICT, body, headers=headers) == (
        200,
        {"predictions": [REFERENCE_MASK]},
    )
    bomb = gzip.compress(b" " * (MAX_MESSAGE_BYTES * 4))
    assert len(bomb) < MAX_MESSAGE_BYTES // 16
    assert rest_json(small_server.rest_port, "POST", PREDICT, bomb, headers=headers)[0] == 413
    assert rest_json(small_server.rest_port, "POST", PREDICT, b"not gzip", headers=headers) == (
        400,
        {"error": "JSON Parse error: The document is empty"},
    )


@pytest.mark.parametrize(
    "length,status,fragment",
    [
        ("abc", 400, "Content-Length 'abc' is not a byte count"),
        ("-1", 400, "Content-Length '-1' is not a byte count"),
        (str(10**12), 413, f"request body of {10**12} bytes is larger than the REST limit"),
        ("100", 400, "request body ended after 10 of 100 bytes (Content-Length)"),
    ],
)
def test_a_bad_content_length_gets_an_answer(small_server, length, status, fragment):
    request = (f"POST {PREDICT} HTTP/1.1\r\nHost: x\r\nContent-Length: {length}\r\n\r\n").encode() + b"{" * 10
    answer = raw_exchange(small_server.rest_port, request, half_close=True)
    assert status_of(answer) == status, answer
    assert fragment in json.loads(answer.split(b"\r\n\r\n", 1)[1])["error"]
    still_serves(small_server)


def test_a_body_shorter_than_its_content_length_times_out_with_408(small_server):
    request = f"POST {PREDICT} HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n".encode() + b"{" * 10
    answer = raw_exchange(small_server.rest_port, request)  # the client waits; --rest-timeout-seconds 2
    assert status_of(answer) == 408
    assert "timed out reading the request body" in json.loads(answer.split(b"\r\n\r\n", 1)[1])["error"]


@pytest.mark.parametrize(
    "body",
    [
        "[" * 100_000 + "]" * 100_000,
        '{"instances": ' + "[" * 100_000 + "]" * 100_000 + "}",
        '{"instances": ' + "[" * 40 + "0.5" + "]" * 40 + "}",
        '{"instances": [[1' + "0" * 400 + "]]}",
        '{"instances": [[1' + "0" * 5000 + "]]}",
    ],
)
def test_deep_or_huge_json_is_a_bad_request(server, body):
    status, answer = rest_json(server.rest_port, "POST", PREDICT, body)
    assert status == 400 and "internal error" not in answer["error"], answer
    still_serves(server)


def test_two_hundred_simultaneous_requests_are_all_answered(small_server):
    barrier = threading.Barrier(200)
    results: list[object] = []

    def call() -> None:
        barrier.wait()
        try:
            body = {"instances": [REFERENCE_INPUT]}
            results.append(rest_json(small_server.rest_port, "POST", PREDICT, body, timeout=120))
        except OSError as exc:
            results.append(exc)

    threads = [threading.Thread(target=call) for _ in range(200)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [(200, {"predictions": [REFERENCE_MASK]})] * 200


@pytest.mark.skipif(shutil.which("ss") is None, reason="needs ss (iproute2) to read the listen backlog")
def test_the_listen_backlog_holds_hundreds_of_connections(small_server):
    listing = subprocess.run(
        ["ss", "-ltnH", f"sport = :{small_server.rest_port}"], capture_output=True, text=True, check=True
    ).stdout.split()
    assert int(listing[2]) >= 1024  # ss shows a listening socket's backlog as Send-Q


def test_a_slow_client_does_not_hold_up_others(small_server):
    import socket

    with socket.create_connection(("127.0.0.1", small_server.rest_port), timeout=60) as slow:
        slow.sendall(f"POST {PREDICT} HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{{".encode())
        still_serves(small_server)  # while the slow request is open
        assert slow.recv(65536).split(b" ", 2)[1] == b"408"  # its own deadline ends it
