"""--num-request-iterations-for-warmup runs each warmup record that many times, as TF Serving's
--num_request_iterations_for_warmup does.

TF Serving: model_servers/main.cc defines the flag (default 0), server.cc sets
ModelWarmupOptions.num_request_iterations only when it is > 0, and saved_model_warmup_util.cc
runs each record num_request_iterations times (1 when unset). Each Predict run counts once in
the runtime latency metric (predict_util.cc RunPredict calls RecordRuntimeLatency), which the
server exports before any client request arrives.
"""

from __future__ import annotations

import re
import urllib.request

import numpy as np
import pytest
from tensorflow_serving.apis import prediction_log_pb2

from tests.support.embedded_server import WITH_METRICS, embedded_server
from tests.support.grpc_calls import predict_request
from tests.support.models import REFERENCE_INPUT, copy_version, write_warmup_file
from tests.support.processes import run_module

RECORDS = 2
RUNTIME_COUNT = re.compile(
    r"^:tensorflow:serving:runtime_latency_count"
    r'\{model_name="threshold",API="Predict",runtime="TF1"\} (\d+)$',
    re.MULTILINE,
)


def warmed_up_model(model_dir, target):
    log = prediction_log_pb2.PredictionLog()
    request = predict_request(np.asarray([REFERENCE_INPUT], np.float32))
    log.predict_log.request.ParseFromString(request.SerializeToString())  # the client's own message classes
    write_warmup_file(copy_version(model_dir, target, 1), [log.SerializeToString()] * RECORDS)
    return target


def predict_runs_after_load(handle) -> int:
    """How many Predict session calls the metrics page counts (no client has called yet)."""
    url = f"http://127.0.0.1:{handle.rest_port}/monitoring/prometheus/metrics"
    with urllib.request.urlopen(url, timeout=30) as answer:
        match = RUNTIME_COUNT.search(answer.read().decode())
    assert match, "no runtime latency count for threshold"
    return int(match.group(1))


@pytest.mark.parametrize(
    "flags,runs",
    [
        ((), RECORDS),
        (("--num-request-iterations-for-warmup=0",), RECORDS),  # server.cc: only a value > 0 counts
        (("--num-request-iterations-for-warmup", "3"), 3 * RECORDS),
    ],
)
def test_each_warmup_record_runs_the_given_number_of_times(model_dir, tmp_path, flags, runs):
    with embedded_server(warmed_up_model(model_dir, tmp_path / "models"), *flags, *WITH_METRICS) as handle:
        assert predict_runs_after_load(handle) == runs


def test_a_negative_iteration_count_is_a_usage_error():
    result = run_module("serving.local", "--num-request-iterations-for-warmup", "-1", timeout=60)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "--num-request-iterations-for-warmup" in result.stderr
