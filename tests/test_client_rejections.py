"""What the server says that the client refuses: a rejected request (exit 9) and unusable bounds."""

from __future__ import annotations

import grpc
import numpy as np
import pytest

from client import RequestRejected, ThresholdClient
from tests.support.models import REFERENCE_INPUT
from tests.support.processes import one_line_error, run_module


def rejecting(fake_server, code: grpc.StatusCode, details: str):
    """A server whose data signatures fail every Predict with ``code`` (bounds still answer)."""
    server = fake_server()
    original = server._predict

    def predict(request, context):
        if request.model_spec.signature_name != "bounds":
            context.abort(code, details)
        return original(request, context)

    server._predict = predict
    return server


@pytest.mark.parametrize(
    ("code", "details"),
    [
        (grpc.StatusCode.INVALID_ARGUMENT, "input tensor alias not found in signature: x"),
        (grpc.StatusCode.FAILED_PRECONDITION, 'Serving signature key "serving_default" not found.'),
        (grpc.StatusCode.INTERNAL, "the model crashed"),
    ],
)
def test_a_request_the_server_rejects_is_exit_9_with_its_code_and_words(
    fake_server, reference_file, tmp_path, code, details
):
    server = rejecting(fake_server, code, details)
    line = one_line_error(
        run_module(
            "client.predict",
            reference_file,
            "--server",
            server.address,
            "-o",
            tmp_path / "mask.npy",
            timeout=60,
        ),
        9,
    )
    assert f"server at {server.address} answered {code.name} ({details})" in line
    assert not (tmp_path / "mask.npy").exists()


@pytest.mark.parametrize(
    ("low", "high"),
    [(0.5, -0.5), (float("nan"), 0.1), (-0.1, float("inf"))],
    ids=["low-above-high", "nan", "infinite"],
)
def test_bounds_that_cannot_define_a_band_are_refused_before_any_data_is_sent(
    fake_server, reference_file, low, high
):
    server = fake_server(low=low, high=high)
    line = one_line_error(
        run_module("client.predict", reference_file, "--server", server.address, timeout=60), 9
    )
    assert "the server reported unusable bounds" in line and f"low={np.float32(low)}" in line
    assert server.batch_shapes == []  # only the bounds call: no data was sent
    with ThresholdClient(server.address) as client, pytest.raises(RequestRejected):
        client.predict(np.array(REFERENCE_INPUT))


def test_no_check_does_not_ask_for_bounds(fake_server, reference_file):
    server = fake_server(low=0.5, high=-0.5)
    result = run_module(
        "client.predict", reference_file, "--server", server.address, "--no-check", timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert server.batch_shapes == [(1, 8)]
