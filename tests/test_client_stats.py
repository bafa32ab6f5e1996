"""Run statistics: latency percentiles agree with numpy's, without loading numpy.ma."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from client.stats import RunStats, percentile_of


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
