"""A server that answers wrongly (over real gRPC, with real metadata) fails the check, loudly."""

from __future__ import annotations

import json
import tracemalloc

import numpy as np
import pytest

from client import ResponseMismatch, ThresholdClient
from tests.support.models import REFERENCE_INPUT
from tests.support.processes import run_module


def predict_cli(server, *args):
    return run_module("client.predict", *args, "--server", server.address, timeout=60)


@pytest.fixture
def data_file(tmp_path):
    path = tmp_path / "data.npy"
    np.save(path, np.linspace(-1, 1, 64 * 16, dtype=np.float32).reshape(64, 16))
    return path


@pytest.mark.parametrize(
    ("fault", "report"),
    [
        ("flip", "row 0, col 0: x=-1.0 got 0.0, expected 1"),
        ("shape", "shape (64, 15), expected (64, 16)"),
        ("dtype", "dtype int32, the signature declares float32"),
    ],
)
def test_wrong_answers_fail_the_check_with_a_report_and_no_output(
    fake_server, data_file, tmp_path, fault, report
):
    server = fake_server(fault=fault)
    output = tmp_path / "mask.npy"
    result = predict_cli(server, data_file, "--output", output)
    assert result.returncode == 10, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("error: check failed")
    assert report in result.stderr
    assert "no output written" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.npy"]


def test_every_flipped_answer_is_counted_in_the_json_summary(fake_server, data_file):
    server = fake_server(fault="flip")
    result = predict_cli(server, data_file, "--batch-size", "8", "--json")
    assert result.returncode == 10
    summary = json.loads(result.stdout)
    assert summary["ok"] is False and summary["exit_code"] == 10
    assert summary["mismatches"] == 8 and summary["batches"] == 8  # one flipped value per batch
    assert summary["check"]["examples"][0] == {"row": 0, "col": 0, "x": -1.0, "got": 0.0, "expected": 1}


def test_answers_checked_on_many_threads_at_once_are_all_counted(fake_server, tmp_path):
    # Answers are decoded and checked on the worker threads: the report must still count each one.
    path = tmp_path / "many.npy"
    np.save(path, np.linspace(-1, 1, 400 * 16, dtype=np.float32).reshape(400, 16))
    server = fake_server(fault="flip")
    result = predict_cli(server, path, "--batch-size", "2", "--concurrency", "8", "--json")
    assert result.returncode == 10, result.stderr
    summary = json.loads(result.stdout)
    assert summary["batches"] == 200 and summary["mismatches"] == 200  # one flipped value per batch
    assert summary["check"]["checked"] == 400 * 16
    assert [example["row"] for example in summary["check"]["examples"]] == [0, 2, 4, 6, 8]


def test_no_check_keeps_what_the_server_said(fake_server, data_file, tmp_path):
    server = fake_server(fault="flip")
    output = tmp_path / "mask.npy"
    result = predict_cli(server, data_file, "--no-check", "--output", output)
    assert result.returncode == 0, result.stderr
    assert "not checked" in result.stderr
    assert np.load(output)[0, 0] == 0  # the flipped value, as served


def test_no_check_still_refuses_answers_that_do_not_fit(fake_server, data_file, tmp_path):
    server = fake_server(fault="shape")
    result = predict_cli(server, data_file, "--no-check", "--output", tmp_path / "mask.npy")
    assert result.returncode == 10 and "has shape (64, 15), expected (64, 16)" in result.stderr
    assert not (tmp_path / "mask.npy").exists()


def test_library_raises_response_mismatch_with_the_report(fake_server):
    server = fake_server(fault="flip")
    with ThresholdClient(server.address) as client, pytest.raises(ResponseMismatch) as caught:
        client.predict(np.array(REFERENCE_INPUT))
    assert caught.value.report.mismatches == 1 and caught.value.report.examples[0].col == 0


def test_a_response_declaring_a_huge_shape_is_refused_without_allocating_it(fake_server):
    """[16384, 16384] with one float_val: 1 GiB if expanded by TensorFlow's rule before a check."""
    server = fake_server(fault="huge")
    with ThresholdClient(server.address) as client:
        client.bounds()  # metadata and bounds first, so only the Predict is measured
        tracemalloc.start()
        try:
            with pytest.raises(ResponseMismatch) as caught:
                client.predict(np.array(REFERENCE_INPUT))
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert "has shape (16384, 16384), expected (1, 8)" in caught.value.report.problems[0]
    assert peak < 16 << 20


def test_bounds_come_from_the_server_not_from_defaults(fake_server):
    server = fake_server(low=-1.0, high=1.0)
    x = np.array([-1.5, -1.0, 0.5, 1.0, 1.01], np.float32)
    with ThresholdClient(server.address) as client:
        assert client.bounds() == (-1.0, 1.0)
        assert client.predict(x).tolist() == [1, 0, 0, 0, 1]
