"""Prometheus metrics under TF Serving's names: request count by status, request and runtime latency.

prometheus_client appends ``_total`` to counters, so the count scrapes as
``:tensorflow:serving:request_count_total``; the labels are TF Serving's. Latencies are in
microseconds with TF Serving's buckets (10 * 1.8**i), so its dashboards read them unchanged.
"""

from __future__ import annotations

import time
from contextlib import contextmanager

import grpc
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
)

from serving.local.errors import RequestError

LATENCY_BUCKETS_US = tuple(10 * 1.8 ** i for i in range(33))
disable_created_metrics()


class ServerMetrics:
    """The server's own registry (not the process-global one), rendered for the REST endpoint."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.request_count = Counter(":tensorflow:serving:request_count", "The total number of requests.",
                                     ["model_name", "status"], registry=self.registry)
        self.request_latency = Histogram(
            ":tensorflow:serving:request_latency",
            "Distribution of wall time (in microseconds) for Tensorflow Serving request.",
            ["model_name", "API", "entrypoint", "status"], buckets=LATENCY_BUCKETS_US, registry=self.registry)
        self.runtime_latency = Histogram(
            ":tensorflow:serving:runtime_latency",
            "Distribution of wall time (in microseconds) for Tensorflow runtime.",
            ["model_name", "API", "runtime"], buckets=LATENCY_BUCKETS_US, registry=self.registry)
        self.batch_size = Histogram(
            ":tensorflow:serving:batching_session:processed_batch_size",
            "Rows per model call when batching merges requests.", ["model_name", "signature"],
            buckets=tuple(2 ** i for i in range(21)), registry=self.registry)

    @contextmanager
    def observe_request(self, model_name: str, api: str, entrypoint: str):
        """Count and time one request; the status is the RequestError's code, or OK."""
        start = time.perf_counter()
        status = "OK"
        try:
            yield
        except RequestError as exc:
            status = exc.code.name
            raise
        except Exception:
            status = grpc.StatusCode.INTERNAL.name
            raise
        finally:
            micros = (time.perf_counter() - start) * 1e6
            self.request_count.labels(model_name, status).inc()
            self.request_latency.labels(model_name, api, entrypoint, status).observe(micros)

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        return generate_latest(self.registry)
