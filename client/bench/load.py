"""Closed-loop load: N workers, each sending its next request as soon as the last one answers.

The loop is bounded twice (a request count and a wall-clock duration, whichever comes first) and
starts with an unrecorded warmup, so a run always ends and never times connection set-up.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import grpc
import numpy as np

PERCENTILES = (50, 90, 95, 99)

#: One request: sends it, waits for the answer, raises grpc.RpcError on failure.
Send = Callable[[], object]


@dataclass
class PointResult:
    """What one concurrency level measured: counts, wall time and latencies in seconds."""

    concurrency: int
    requests: int
    errors: int
    seconds: float
    latencies: np.ndarray = field(repr=False)
    error_codes: dict[str, int] = field(default_factory=dict)

    @property
    def requests_per_s(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else 0.0

    def latency_ms(self, percentile: float) -> float:
        """Latency of successful requests at ``percentile`` (0-100), in milliseconds; NaN if none."""
        if not len(self.latencies):
            return float("nan")
        return float(np.percentile(self.latencies, percentile)) * 1e3


def run_point(
    send: Send, concurrency: int, *, requests: int, duration: float, warmup_requests: int = 0
) -> PointResult:
    """Drive ``send`` from ``concurrency`` threads until ``requests`` answered or ``duration`` passed.

    ``warmup_requests`` are sent first (across the same threads) and not recorded. Failed requests
    count as errors, by gRPC status code; the loop carries on so one bad answer does not hide the rest.
    """
    if concurrency < 1 or requests < 1 or duration <= 0:
        raise ValueError("concurrency and requests must be >= 1 and duration > 0")
    if warmup_requests:
        _drive(send, concurrency, warmup_requests, duration, record=None)
    latencies: list[list[float]] = [[] for _ in range(concurrency)]
    errors: Counter[str] = Counter()
    started = time.perf_counter()
    _drive(send, concurrency, requests, duration, record=(latencies, errors))
    seconds = time.perf_counter() - started
    flat = np.fromiter(itertools.chain.from_iterable(latencies), dtype=np.float64)
    return PointResult(
        concurrency=concurrency,
        requests=len(flat),
        errors=sum(errors.values()),
        seconds=seconds,
        latencies=flat,
        error_codes=dict(errors),
    )


def _drive(
    send: Send,
    concurrency: int,
    requests: int,
    duration: float,
    record: tuple[list[list[float]], Counter[str]] | None,
) -> None:
    tickets = itertools.count()  # next() on a count is atomic under the GIL: no lock on the hot path
    deadline = time.perf_counter() + duration
    lock = threading.Lock()
    failures: list[BaseException] = []

    def worker(index: int) -> None:
        nonlocal tickets
        clock = time.perf_counter
        mine = record[0][index] if record else None
        while next(tickets) < requests:
            begin = clock()
            if begin >= deadline:
                return
            try:
                send()
            except grpc.RpcError as exc:
                if record:
                    code = exc.code() if callable(getattr(exc, "code", None)) else None
                    with lock:
                        record[1][code.name if code else "UNKNOWN"] += 1
                continue
            except Exception as exc:  # a wrong answer (shape, dtype): stop everyone and say why
                failures.append(exc)
                tickets = itertools.repeat(requests)
                return
            if mine is not None:
                mine.append(clock() - begin)

    threads = [
        threading.Thread(target=worker, args=(i,), name=f"bench-{i}", daemon=True) for i in range(concurrency)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise failures[0]
