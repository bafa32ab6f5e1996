"""A concurrency sweep against one Predict endpoint, and the numbers each point reports."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from client.bench.load import PERCENTILES, PointResult, Send, run_point
from client.bench.workload import PredictWorkload, Target, connect, make_batch


@dataclass(frozen=True)
class Load:
    """How hard and how long to push: bounded by request count and by time, whichever ends first."""

    concurrency: tuple[int, ...] = (1, 2, 4, 8)
    requests: int = 100_000
    duration: float = 5.0
    warmup_requests: int = 20


@dataclass
class Sweep:
    """A sweep's setting and one PointResult per concurrency level."""

    server: str
    target: Target
    rows: int
    cols: int
    request_bytes: int
    response_bytes: int
    outputs: dict[str, str]
    points: list[PointResult] = field(default_factory=list)

    def row(self, point: PointResult) -> dict[str, float | int]:
        """One point as the flat record the table, CSV and JSON all show."""
        rps = point.requests_per_s
        record: dict[str, float | int] = {
            "concurrency": point.concurrency,
            "requests": point.requests,
            "errors": point.errors,
            "seconds": round(point.seconds, 4),
            "requests_per_s": rps,
            "elements_per_s": rps * self.rows * self.cols,
            "mb_per_s": rps * (self.request_bytes + self.response_bytes) / 1e6,
        }
        for percentile in PERCENTILES:
            record[f"p{percentile}_ms"] = point.latency_ms(percentile)
        return record

    def to_dict(self) -> dict:
        """Everything about the sweep, JSON-ready."""
        return {
            "server": self.server,
            "model": self.target.model_name,
            "signature": self.target.signature_name,
            "input": self.target.input_name,
            "rows": self.rows,
            "cols": self.cols,
            "request_bytes": self.request_bytes,
            "response_bytes": self.response_bytes,
            "outputs": self.outputs,
            "points": [dict(self.row(p), error_codes=p.error_codes) for p in self.points],
        }


def sweep_send(
    send: Send, load: Load, on_point: Callable[[PointResult], None] | None = None
) -> list[PointResult]:
    """Run ``send`` at each concurrency level of ``load``, in order."""
    results = []
    for concurrency in load.concurrency:
        point = run_point(
            send,
            concurrency,
            requests=load.requests,
            duration=load.duration,
            warmup_requests=load.warmup_requests,
        )
        results.append(point)
        if on_point:
            on_point(point)
    return results


def run_sweep(
    server: str,
    target: Target,
    rows: int,
    cols: int,
    load: Load,
    on_point: Callable[[PointResult], None] | None = None,
    connect_wait: float = 10.0,
) -> Sweep:
    """Benchmark Predict on ``server`` with a float32 [rows, cols] batch at each concurrency level."""
    channel = connect(server, wait=connect_wait)
    try:
        workload = PredictWorkload(channel, target, make_batch(rows, cols))
        outputs = workload.probe()
        sweep = Sweep(
            server=server,
            target=target,
            rows=rows,
            cols=cols,
            request_bytes=workload.request_bytes,
            response_bytes=workload.response_bytes,
            outputs={name: f"{a.dtype}{list(a.shape)}" for name, a in outputs.items()},
        )
        sweep.points = sweep_send(workload.send, load, on_point)
        return sweep
    finally:
        channel.close()


def parse_concurrency(text: str) -> tuple[int, ...]:
    """'1,2,4,8' -> (1, 2, 4, 8); ValueError on anything not a positive integer list."""
    levels = tuple(int(part) for part in text.split(",") if part.strip())
    if not levels or any(level < 1 for level in levels):
        raise ValueError(f"expected positive integers separated by commas, got {text!r}")
    return levels
