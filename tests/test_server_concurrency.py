"""Many parallel clients: every answer is correct and belongs to its own request, batching on or off."""

from __future__ import annotations

import re
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from tests.support.embedded_server import WITH_METRICS, embedded_server
from tests.support.grpc_calls import ServingStubs, predict_request, tensor_array

CLIENTS = 16
REQUESTS_PER_CLIENT = 25


# Long enough that a queued request almost always finds company among 16 closed-loop clients,
# however slowly a shared machine schedules them; short enough that the test stays quick.
BATCH_TIMEOUT_MICROS = 20_000


@pytest.fixture(scope="module")
def batching_server(model_dir):
    with embedded_server(
        model_dir, "--enable-batching", "--batch-timeout-micros", str(BATCH_TIMEOUT_MICROS), *WITH_METRICS
    ) as handle:
        yield handle


def hammer(address: str, widths: list[int]) -> list[str]:
    """CLIENTS threads, each with its own channel, sending distinct inputs; mismatches described."""

    def client(index: int) -> list[str]:
        rng = np.random.default_rng(index)
        stubs = ServingStubs(address)
        problems = []
        try:
            for n in range(REQUESTS_PER_CLIENT):
                rows, width = int(rng.integers(1, 5)), widths[n % len(widths)]
                x = rng.uniform(-0.3, 0.3, (rows, width)).astype(np.float32)
                x[0, 0] = index + n / 1000  # unique per request: a swapped answer cannot pass
                signature = "compact" if n % 3 == 0 else None
                response = stubs.prediction.Predict(predict_request(x, signature=signature), timeout=60)
                mask = tensor_array(response.outputs["mask"])
                expected = (x < np.float32(-0.1)) | (x > np.float32(0.1))
                if mask.shape != x.shape or not np.array_equal(mask.astype(bool), expected):
                    problems.append(f"client {index} request {n}: wrong answer")
        finally:
            stubs.close()
        return problems

    with ThreadPoolExecutor(CLIENTS) as pool:
        return [p for problems in pool.map(client, range(CLIENTS)) for p in problems]


def test_parallel_clients_get_their_own_answers(server):
    assert hammer(server.address, widths=[8, 3, 17]) == []


def test_batched_answers_are_split_back_to_their_requests(batching_server):
    # One row width: requests of different widths in one batch fail together, as in TF Serving
    # (tests/test_server_batching_parameters.py); rows and signatures still vary per request.
    assert hammer(batching_server.address, widths=[8]) == []
    url = f"http://127.0.0.1:{batching_server.rest_port}/monitoring/prometheus/metrics"
    metrics = urllib.request.urlopen(url, timeout=10).read().decode()
    batches = sum(
        float(v)
        for v in re.findall(
            r"^:tensorflow:serving:batching_session:processed_batch_size_count\{.*\} (\S+)$", metrics, re.M
        )
    )
    requests = CLIENTS * REQUESTS_PER_CLIENT
    # Every request here is batchable, so each went through exactly one model call of the batcher.
    assert batches > 0, "no request went through the batcher"
    assert requests / batches >= 4, (
        f"{requests} requests in {batches:.0f} model calls: merging should be the rule, not the exception"
    )
