"""Batches in flight at once, answered out of order, land in input order; retries and deadlines."""

from __future__ import annotations

import time

import numpy as np
import pytest

from client import DeadlineExceeded, ThresholdClient
from client.checker import expected_mask
from tests.support.models import REFERENCE_INPUT, REFERENCE_MASK
from tests.support.processes import run_module


def test_reference_vector_over_the_cli(fake_server, tmp_path):
    server = fake_server()
    np.save(tmp_path / "ref.npy", np.array(REFERENCE_INPUT, np.float32))
    result = run_module("client.predict", tmp_path / "ref.npy", "--server", server.address, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[0 1 1 1 1 0 0 1]"
    assert "all 8 values match (x < -0.1) | (x > 0.1)" in result.stderr


def test_out_of_order_answers_are_written_in_input_order(fake_server, tmp_path):
    # Earlier requests sleep longer, so later ones finish first.
    server = fake_server(delay=lambda index, x: max(0.0, 0.25 - 0.03 * index))
    rng = np.random.default_rng(7)
    x = rng.normal(scale=0.3, size=(80, 33)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    result = run_module(
        "client.predict",
        tmp_path / "x.npy",
        "--server",
        server.address,
        "--batch-size",
        "10",
        "--concurrency",
        "8",
        "-o",
        tmp_path / "mask.npy",
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    data = [i for i in server.answered if i > 0]  # request 0 is the bounds signature
    assert data != sorted(data), "the test should have forced out-of-order completion"
    assert np.array_equal(np.load(tmp_path / "mask.npy"), expected_mask(x, -0.1, 0.1).astype(np.float32))


@pytest.mark.parametrize("concurrency", [1, 3, 16])
def test_random_data_matches_the_numpy_rule(fake_server, concurrency):
    server = fake_server()
    x = np.random.default_rng(concurrency).normal(scale=0.2, size=(1000, 37))
    x[::7, ::5] = np.nan
    x[3, :4] = [-0.1, 0.1, np.inf, -np.inf]
    with ThresholdClient(server.address) as client:
        mask = client.predict(x, batch_size=64, concurrency=concurrency)
    assert mask.dtype == np.float32 and mask.shape == x.shape
    assert np.array_equal(mask, expected_mask(x.astype(np.float32), -0.1, 0.1))
    assert len(server.batch_shapes) == 16  # ceil(1000 / 64)


def test_compact_signature_gives_uint8_in_the_input_shape(fake_server, tmp_path):
    server = fake_server()
    np.save(tmp_path / "ref.npy", np.array(REFERENCE_INPUT))
    result = run_module(
        "client.predict",
        tmp_path / "ref.npy",
        "--server",
        server.address,
        "--compact",
        "-o",
        tmp_path / "mask.npy",
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    mask = np.load(tmp_path / "mask.npy")
    assert mask.dtype == np.uint8 and mask.tolist() == REFERENCE_MASK
    assert "compact" in result.stderr


def test_rows_bigger_than_the_message_budget_are_sent_in_slices(fake_server):
    server = fake_server()
    x = np.random.default_rng(3).normal(size=(3, 70_000)).astype(np.float32)
    with ThresholdClient(server.address, max_message_bytes=128 * 1024) as client:
        mask = client.predict(x, compact=True)
    assert np.array_equal(mask, expected_mask(x, -0.1, 0.1))
    assert max(shape[1] for shape in server.batch_shapes) < 70_000 and len(server.batch_shapes) > 4


@pytest.mark.parametrize("fault", ["unavailable", "cancelled"])  # refused, or cut off by a draining server
def test_unavailable_is_retried_with_backoff(fake_server, tmp_path, fault):
    server = fake_server(fault=fault, fail_first=4)
    arrivals = []
    answer = server._predict

    def predict(request, context):
        arrivals.append(time.monotonic())
        return answer(request, context)

    server._predict = predict
    np.save(tmp_path / "ref.npy", np.array(REFERENCE_INPUT))
    result = run_module(
        "client.predict",
        tmp_path / "ref.npy",
        "--server",
        server.address,
        "--json",
        "--retries",
        "5",
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert '"retries": 4' in result.stdout
    # Attempt k waits at least half of 0.1 s * 2**k (jittered exponential backoff), so the gaps
    # between attempts have doubling lower bounds, and the last wait is longer than the first.
    gaps = [later - earlier for earlier, later in zip(arrivals, arrivals[1:5], strict=False)]
    assert len(gaps) == 4
    for attempt, gap in enumerate(gaps):
        assert gap >= 0.05 * 2**attempt, f"wait {attempt} was {gap:.3f} s: {gaps}"
    assert gaps[-1] > gaps[0], gaps


def test_slow_answers_hit_the_per_request_deadline(fake_server, tmp_path):
    server = fake_server(delay=lambda index, x: 3.0 if index > 0 else 0.0)
    np.save(tmp_path / "ref.npy", np.array(REFERENCE_INPUT))
    result = run_module(
        "client.predict",
        tmp_path / "ref.npy",
        "--server",
        server.address,
        "--timeout",
        "0.3",
        "-o",
        tmp_path / "out.npy",
        timeout=60,
    )
    assert result.returncode == 8, result.stderr
    assert result.stderr.count("\n") == 1 and "within the timeout of 0.3 s" in result.stderr
    assert not (tmp_path / "out.npy").exists()
    with ThresholdClient(server.address, timeout=0.3) as client, pytest.raises(DeadlineExceeded):
        client.predict(np.array(REFERENCE_INPUT))


def test_an_in_memory_array_goes_in_as_few_requests_as_fit(fake_server):
    """predict() has no reading to overlap: one request for ~1 MiB, message-sized ones beyond."""
    server = fake_server()
    x = np.random.default_rng(5).normal(scale=0.2, size=(1024, 256)).astype(np.float32)
    with ThresholdClient(server.address) as client:
        client.bounds()
        before = server.predicts
        mask = client.predict(x)
        assert server.predicts - before == 1
        mask[0, 0] = 7  # the caller's own array
        big = np.tile(x, (5, 1))  # 5 MiB: more than one 4 MB message
        before = server.predicts
        assert np.array_equal(client.predict(big), expected_mask(big, -0.1, 0.1))
        assert server.predicts - before == 2
        before = server.predicts
        client.predict(x, batch_size=256)  # an explicit batch size is kept
        assert server.predicts - before == 4
