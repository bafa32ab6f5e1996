"""client.bench.load: the closed loop is bounded by count and by time and counts errors by code."""

from __future__ import annotations

import threading
import time

import grpc
import pytest

from client.bench.load import run_point


class FakeRpcError(grpc.RpcError):
    def code(self):
        return grpc.StatusCode.UNAVAILABLE


def test_run_point_sends_exactly_the_requested_count_after_the_warmup():
    calls = []
    lock = threading.Lock()

    def send():
        with lock:
            calls.append(1)

    point = run_point(send, 4, requests=50, duration=30, warmup_requests=10)
    assert point.requests == 50 and point.errors == 0 and len(point.latencies) == 50
    assert len(calls) == 60


def test_run_point_stops_at_the_duration():
    point = run_point(lambda: time.sleep(0.01), 2, requests=10**9, duration=0.2)
    assert 0 < point.requests < 10**9
    assert point.seconds < 10


def test_run_point_counts_rpc_errors_by_status_code_and_carries_on():
    state = {"n": 0}

    def send():
        state["n"] += 1
        if state["n"] % 2:
            raise FakeRpcError()

    point = run_point(send, 1, requests=10, duration=30)
    assert point.errors == 5 and point.requests == 5
    assert point.error_codes == {"UNAVAILABLE": 5}


def test_run_point_stops_everyone_on_a_wrong_answer():
    def send():
        raise ValueError("wrong shape")

    with pytest.raises(ValueError, match="wrong shape"):
        run_point(send, 3, requests=1000, duration=30)
