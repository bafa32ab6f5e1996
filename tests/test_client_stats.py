"""Run statistics: latency percentiles agree with numpy's, without loading numpy.ma."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from client.stats import RunStats, percentile_of
from tests.support.processes import run_module


@given(
    values=st.lists(st.floats(0, 1e3, allow_nan=False), min_size=1, max_size=200),
    percentile=st.floats(0, 100),
)
def test_percentiles_match_numpys_linear_method(values, percentile):
    expected = np.percentile(values, percentile)
    assert np.isclose(percentile_of(values, percentile), expected, rtol=1e-9, atol=1e-9)


def test_latency_percentiles_are_in_milliseconds_and_none_before_any_request():
    stats = RunStats()
    assert stats.latency_ms(50) is None
    for latency in (0.001, 0.002, 0.003, 0.010):
        stats.record(latency, values=8)
    assert stats.latency_ms(50) == 2.5 and np.isclose(stats.latency_ms(100), 10.0)
    assert stats.requests == 4 and stats.values == 32


def test_the_run_summary_counts_one_row_batch_and_retry_in_the_singular(fake_server, tmp_path):
    """`python -m client.predict` on one row: "1 row", "1 batch", "1 retry", never "1 rows"."""
    server = fake_server(fault="unavailable", fail_first=1)  # one retried call
    np.save(tmp_path / "one.npy", np.float32([0.5, 0.0, -0.5]))
    result = run_module("client.predict", tmp_path / "one.npy", "--server", server.address)
    assert result.returncode == 0, result.stderr
    assert "1 row x 3 = 3 values" in result.stderr, result.stderr
    assert "  1 batch of <= 1 row in " in result.stderr, result.stderr
    assert ", 1 retry" in result.stderr, result.stderr
    for plural in ("1 rows", "1 batches", "1 retries"):
        assert plural not in result.stderr, result.stderr


def test_a_bulk_run_counts_a_one_batch_input_in_the_singular(fake_server, tmp_path):
    server = fake_server()
    inputs = tmp_path / "in"
    inputs.mkdir()
    for name in ("a", "b"):
        np.save(inputs / f"{name}.npy", np.float32([[0.5, 0.0]]))
    result = run_module("client.predict", inputs, "-o", tmp_path / "out", "--server", server.address)
    assert result.returncode == 0, result.stderr
    assert result.stderr.count(": 2 values, 1 batch, ") == 2, result.stderr
    assert "1 batches" not in result.stderr, result.stderr
