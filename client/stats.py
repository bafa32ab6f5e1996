"""Run statistics: requests, time, throughput, latency percentiles, peak memory."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field


def peak_rss_mb() -> float | None:
    """This process's peak resident set size in MiB, where the platform reports it.

    Linux: VmHWM of this address space. (getrusage's ru_maxrss also keeps the peak of whatever
    ran in this process before exec, e.g. a large parent that spawned it, which would hide ours.)
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    try:
        import resource
    except ImportError:  # Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10  # bytes on macOS, KiB elsewhere


def percentile_of(values: list[float], percentile: float) -> float:
    """numpy's default (linear) percentile, in plain Python: np.percentile loads numpy.ma (8 ms)."""
    ordered = sorted(values)
    position = (len(ordered) - 1) * percentile / 100
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


@dataclass
class RunStats:
    """Counters for one run; ``record`` is called once per answered request."""

    started: float = field(default_factory=time.perf_counter)
    finished: float | None = None
    requests: int = 0
    values: int = 0
    retries: int = 0
    latencies: list[float] = field(default_factory=list, repr=False)

    def record(self, latency: float, values: int) -> None:
        self.requests += 1
        self.values += values
        self.latencies.append(latency)

    def finish(self) -> None:
        if self.finished is None:
            self.finished = time.perf_counter()

    @property
    def seconds(self) -> float:
        return (self.finished or time.perf_counter()) - self.started

    def latency_ms(self, percentile: float) -> float | None:
        """A request-latency percentile in milliseconds (None before any request)."""
        if not self.latencies:
            return None
        return percentile_of(self.latencies, percentile) * 1000

    def as_dict(self, total_values: int) -> dict:
        seconds = self.seconds
        return {
            "batches": self.requests,
            "seconds": round(seconds, 6),
            "values_per_second": round(total_values / seconds, 1) if seconds > 0 else None,
            "latency_p50_ms": self.latency_ms(50),
            "latency_p99_ms": self.latency_ms(99),
            "retries": self.retries,
            "peak_rss_mb": peak_rss_mb(),
        }


def counted(count: int, singular: str, plural: str | None = None) -> str:
    """'1 row', '2 rows', '0 retries': a count with its noun, singular for one."""
    return f"{count} {singular if count == 1 else plural or singular + 's'}"
