"""Prometheus metrics as TF Serving exports them: its names, labels, buckets and text format.

TF Serving records (servables/tensorflow/util.cc, model_servers/prediction_service_impl.cc):
``/tensorflow/serving/request_count`` {model_name, status} for every Predict, Classify and
Regress; ``/tensorflow/serving/request_latency`` {model_name, API, entrypoint} in microseconds for
the successful ones; ``/tensorflow/serving/runtime_latency`` {model_name, API, runtime} around the
session call. util/prometheus_exporter.cc writes them with ``/`` turned into ``:``, a ``# TYPE``
line per metric and no ``# HELP``, counters without a ``_total`` suffix, histogram buckets at
10 * 1.8**i (33 of them, then +Inf) and numbers printed with six significant digits.

One deliberate difference: only models the server serves get a label. TF Serving labels
whatever name a request carries, so one request with a huge model name would grow the page for
good; here requests for unknown models are not recorded.
"""

from __future__ import annotations

import bisect
import threading
import time
from collections.abc import Callable
from contextlib import contextmanager

from serving.local.errors import RequestError

LATENCY_BUCKETS_US = tuple(10 * 1.8**i for i in range(33))
BATCH_SIZE_BUCKETS = tuple(float(2**i) for i in range(21))
REQUEST_COUNT = ":tensorflow:serving:request_count"
REQUEST_LATENCY = ":tensorflow:serving:request_latency"
RUNTIME_LATENCY = ":tensorflow:serving:runtime_latency"
BATCH_SIZE = ":tensorflow:serving:batching_session:processed_batch_size"
# batching_session.cc: wall time a request waits in the batch queue, in microseconds, per thread pool
QUEUING_LATENCY = ":tensorflow:serving:batching_session:queuing_latency"
QUEUING_BUCKETS_US = tuple(100 * 1.2**i for i in range(52))
BATCH_THREAD_POOL = "batch_threads"  # BasicBatchScheduler's default thread_pool_name
# tensorflow/cc/saved_model/loader.cc: every SavedModel load, by export dir and "success" / "fail"
LOAD_ATTEMPT_COUNT = ":tensorflow:cc:saved_model:load_attempt_count"
# saved_model_warmup_util.cc: a warmup that read its file to the end (or failed reading it), by
# export dir and status: its wall time in microseconds, and the records it read
WARMUP_LATENCY = ":tensorflow:serving:model_warmup_latency"
WARMUP_RECORDS = ":tensorflow:serving:model_warmup_records_read"
# the samplers whose first label is a model name (only served models are labelled)
_MODEL_LABELLED = (REQUEST_LATENCY, RUNTIME_LATENCY, BATCH_SIZE)


def _number(value: float) -> str:
    """absl::StrCat of a double: six significant digits, like printf's %g."""
    return f"{value:.6g}"


def _label_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


def _labels_text(names: tuple[str, ...], values: tuple[str, ...]) -> str:
    return ",".join(f'{name}="{_label_value(value)}"' for name, value in zip(names, values, strict=True))


def _counter_lines(
    metric: str, label_names: tuple[str, ...], counts: dict[tuple[str, ...], int]
) -> list[str]:
    """A counter's ``# TYPE`` line and one sample per label set, sorted."""
    return [f"# TYPE {metric} counter"] + [
        f"{metric}{{{_labels_text(label_names, labels)}}} {count}" for labels, count in sorted(counts.items())
    ]


class _Histogram:
    """TensorFlow's monitoring::Sampler: counts per bucket (a value lands in the first limit above it)."""

    def __init__(self, limits: tuple[float, ...]):
        self.limits = limits
        self.counts = [0] * (len(limits) + 1)
        self.total = 0.0

    def add(self, value: float) -> None:
        self.counts[bisect.bisect_right(self.limits, value)] += 1
        self.total += value


class ServerMetrics:
    """The server's metrics, rendered by the REST port's /monitoring/prometheus/metrics.

    Args:
        is_served: whether a model name belongs to a served model (others are not labelled).
    """

    def __init__(self, is_served: Callable[[str], bool] = lambda _name: True) -> None:
        self._is_served = is_served
        self._lock = threading.Lock()
        self._counts: dict[tuple[str, str], int] = {}
        self._load_attempts: dict[tuple[str, str], int] = {}
        self._warmup_records: dict[tuple[str, str], int] = {}
        self._samplers: dict[str, dict[tuple[str, ...], _Histogram]] = {
            REQUEST_LATENCY: {},
            RUNTIME_LATENCY: {},
            BATCH_SIZE: {},
            QUEUING_LATENCY: {},
            WARMUP_LATENCY: {},
        }
        self._labels = {
            REQUEST_LATENCY: ("model_name", "API", "entrypoint"),
            RUNTIME_LATENCY: ("model_name", "API", "runtime"),
            BATCH_SIZE: ("model_name", "signature"),
            QUEUING_LATENCY: ("thread_pool_name",),
            WARMUP_LATENCY: ("model_path", "status"),
        }

    def _observe(self, metric: str, labels: tuple[str, ...], value: float) -> None:
        if metric in _MODEL_LABELLED and not self._is_served(labels[0]):
            return
        limits = {BATCH_SIZE: BATCH_SIZE_BUCKETS, QUEUING_LATENCY: QUEUING_BUCKETS_US}.get(
            metric, LATENCY_BUCKETS_US
        )
        with self._lock:
            histogram = self._samplers[metric].get(labels)
            if histogram is None:
                histogram = self._samplers[metric][labels] = _Histogram(limits)
            histogram.add(value)

    def count_request(self, model_name: str, status: str) -> None:
        if not self._is_served(model_name):
            return
        with self._lock:
            self._counts[model_name, status] = self._counts.get((model_name, status), 0) + 1

    def record_runtime(self, model_name: str, api: str, runtime: str, micros: float) -> None:
        self._observe(RUNTIME_LATENCY, (model_name, api, runtime), micros)

    def record_batch(self, model_name: str, signature: str, rows: int) -> None:
        self._observe(BATCH_SIZE, (model_name, signature), rows)

    def record_queuing(self, micros: float) -> None:
        """How long one request waited in the batch queue before its batch ran."""
        self._observe(QUEUING_LATENCY, (BATCH_THREAD_POOL,), micros)

    def record_load_attempt(self, export_dir: str, ok: bool) -> None:
        """One SavedModel load of a version directory of the config's models (so labels are bounded)."""
        key = (export_dir, "success" if ok else "fail")
        with self._lock:
            self._load_attempts[key] = self._load_attempts.get(key, 0) + 1

    def record_warmup(self, export_dir: str, status: str, micros: float, records: int) -> None:
        """One warmup of a version directory that read its file to the end, or failed reading it:
        status is absl::Status::ToString() ("OK", or "DATA_LOSS: ...")."""
        self._observe(WARMUP_LATENCY, (export_dir, status), micros)
        key = (export_dir, status)
        with self._lock:
            self._warmup_records[key] = self._warmup_records.get(key, 0) + records

    def first_point(self, registry_name: str) -> int:
        """The int64 value GetMetrics (model_service_impl.cc) reads for a metric: its first point,
        the one with the smallest labels (a tsl Counter keeps its cells in a std::map). 0 for a
        metric with no points, one whose points hold no int64 (histograms), or an unknown name."""
        counters = {LOAD_ATTEMPT_COUNT: self._load_attempts, REQUEST_COUNT: self._counts}
        cells = counters.get(registry_name.replace("/", ":"))
        with self._lock:
            return cells[min(cells)] if cells else 0

    @contextmanager
    def observe_request(self, model_name: str, api: str, entrypoint: str):
        """Count one request by its status (OK or the RequestError's code); time it if it succeeds."""
        start = time.perf_counter()
        status = "OK"
        try:
            yield
        except RequestError as exc:
            status = exc.code.name
            raise
        except Exception:
            status = "INTERNAL"
            raise
        finally:
            self.count_request(model_name, status)
            if status == "OK":
                self._observe(
                    REQUEST_LATENCY, (model_name, api, entrypoint), (time.perf_counter() - start) * 1e6
                )

    def render(self) -> bytes:
        """The Prometheus text page, as TF Serving's PrometheusExporter writes it (metrics by name)."""
        lines = []
        with self._lock:
            if self._load_attempts:
                lines += _counter_lines(LOAD_ATTEMPT_COUNT, ("model_path", "status"), self._load_attempts)
            lines += self._histogram_metric(BATCH_SIZE)
            lines += self._histogram_metric(QUEUING_LATENCY)
            lines += self._histogram_metric(WARMUP_LATENCY)
            lines += _counter_lines(WARMUP_RECORDS, ("model_path", "status"), self._warmup_records)
            lines += _counter_lines(REQUEST_COUNT, ("model_name", "status"), self._counts)
            lines += self._histogram_metric(REQUEST_LATENCY)
            lines += self._histogram_metric(RUNTIME_LATENCY)
        return ("\n".join(lines) + "\n").encode()

    def _histogram_metric(self, metric: str) -> list[str]:
        lines = [f"# TYPE {metric} histogram"]
        for labels, histogram in sorted(self._samplers[metric].items()):
            lines += self._histogram_lines(metric, labels, histogram)
        return lines

    def _histogram_lines(self, metric: str, labels: tuple[str, ...], histogram: _Histogram) -> list[str]:
        pairs = _labels_text(self._labels[metric], labels)
        lines, cumulative = [], 0
        limits = [_number(limit) for limit in histogram.limits] + ["+Inf"]
        for limit, count in zip(limits, histogram.counts, strict=True):
            cumulative += count
            lines.append(f'{metric}_bucket{{{pairs},le="{limit}"}} {cumulative}')
        lines.append(f"{metric}_sum{{{pairs}}} {_number(histogram.total)}")
        lines.append(f"{metric}_count{{{pairs}}} {cumulative}")
        return lines
