"""Failures a user can act on: one line, a distinct exit code, and never a partial output file."""

from __future__ import annotations

import signal
import subprocess
import time

import numpy as np
import pytest

from client import ModelNotFound, ServerUnavailable, SignatureNotFound, ThresholdClient
from tests.support.models import REFERENCE_INPUT
from tests.support.ports import free_port
from tests.support.processes import PYTHON, REPO, cli_env, one_line_error, run_module


@pytest.fixture
def data_file(tmp_path):
    path = tmp_path / "data.npy"
    np.save(path, np.random.default_rng(0).normal(size=(400, 50)).astype(np.float32))
    return path


def predict_cli(server_address, *args):
    return run_module("client.predict", *args, "--server", server_address, timeout=60)


def test_server_down_names_the_address_and_how_to_start_one(data_file):
    address = f"127.0.0.1:{free_port()}"
    started = time.monotonic()
    result = predict_cli(address, data_file, "--retries", "2")
    one_line_error(result, 6, f"cannot reach a model server at {address}", "make serve", "Connection refused")
    assert time.monotonic() - started < 10


def test_the_library_error_says_what_failed_and_the_cli_says_how_to_fix_it(data_file):
    """A program calling ThresholdClient has no --server flag or make target: no such advice in its error."""
    address = f"127.0.0.1:{free_port()}"
    with ThresholdClient(address, retries=0) as client, pytest.raises(ServerUnavailable) as caught:
        client.predict(np.zeros((1, 4), np.float32))
    assert f"cannot reach a model server at {address}" in str(caught.value)
    assert "make serve" not in str(caught.value) and "--server" not in str(caught.value)
    assert caught.value.kind == "unreachable"


def test_server_stopped_mid_run_leaves_no_output(fake_server, data_file, tmp_path):
    server = fake_server(delay=lambda index, x: 0.05, stop_after=4)
    result = predict_cli(
        server.address,
        data_file,
        "--batch-size",
        "10",
        "--concurrency",
        "2",
        "--retries",
        "1",
        "-o",
        tmp_path / "mask.npy",
    )
    one_line_error(result, 6, server.address)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.npy"]


def test_server_that_keeps_cancelling_is_reported_as_going_away(fake_server, data_file, tmp_path):
    server = fake_server(fault="cancelled", fail_first=100)
    result = predict_cli(server.address, data_file, "--retries", "1", "-o", tmp_path / "mask.npy")
    one_line_error(result, 6, f"the model server at {server.address} cancelled the call", "shutting down")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.npy"]


def test_interrupt_exits_130_and_leaves_no_output(fake_server, data_file, tmp_path):
    server = fake_server(delay=lambda index, x: 0.2 if index else 0.0)
    process = subprocess.Popen(
        [
            PYTHON,
            "-m",
            "client.predict",
            data_file,
            "--server",
            server.address,
            "--batch-size",
            "5",
            "-o",
            tmp_path / "mask.npy",
        ],
        cwd=REPO,
        env=cli_env(),
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 20
    while server.predicts < 3 and time.monotonic() < deadline:
        time.sleep(0.02)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr and "interrupted" in stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.npy"]


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("--model", "nope"), "model 'nope': not found"),
        (("--version", "9"), "model 'threshold' version 9: not found"),
        (("--signature", "nope"), "has no signature 'nope'; it has: bounds, compact, serving_default"),
    ],
)
def test_missing_model_version_or_signature_is_exit_7(fake_server, data_file, args, fragment):
    server = fake_server()
    one_line_error(predict_cli(server.address, data_file, *args), 7, fragment)


def test_unwritable_output_is_exit_11(fake_server, data_file, tmp_path):
    server = fake_server()
    one_line_error(
        predict_cli(server.address, data_file, "-o", tmp_path / "no" / "such" / "m.npy"),
        11,
        "cannot write output",
    )
    one_line_error(predict_cli(server.address, data_file, "-o", tmp_path), 11, "is a directory")


def test_bad_flags_are_usage_errors():
    result = run_module("client.predict", "x.npy", "--concurrency", "0", timeout=60)
    assert result.returncode == 2 and "must be a positive integer" in result.stderr
    result = run_module("client.predict", "x.npy", "--version", "1", "--label", "stable", timeout=60)
    assert result.returncode == 2 and "not allowed with" in result.stderr


def test_library_errors_are_typed(fake_server):
    with ThresholdClient(f"127.0.0.1:{free_port()}", retries=0) as client, pytest.raises(ServerUnavailable):
        client.predict(np.array(REFERENCE_INPUT))
    server = fake_server()
    with ThresholdClient(server.address, model="other") as client, pytest.raises(ModelNotFound):
        client.model_info()
    with ThresholdClient(server.address) as client, pytest.raises(SignatureNotFound):
        client.predict(np.array(REFERENCE_INPUT), signature="classify")
