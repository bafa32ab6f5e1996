"""A version's warmup requests are replayed on load, before it is AVAILABLE, as TF Serving does.

TF Serving (tensorflow_serving/servables/tensorflow/saved_model_warmup.cc RunWarmupRequest and
saved_model_warmup_util.cc RunSavedModelWarmupUntracked, with --enable_model_warmup) reads
assets.extra/tf_serving_warmup_requests as a TFRecord file of PredictionLogs, runs each when it
loads a version and fails the load with the first error, which GetModelStatus then reports for
the version. Each broken file below sits in its own version of one server, next to a good
version 1 that keeps the server up.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import grpc
import numpy as np
import pytest
from tensorflow_serving.apis import (  # TF Serving's own classes for the logs the client never writes
    classification_pb2,
    inference_pb2,
    model_pb2,
    prediction_log_pb2,
    regression_pb2,
)

from client.protos import get_model_status_pb2
from tests.support.embedded_server import WITH_METRICS, config_server, embedded_server
from tests.support.grpc_calls import ServingStubs, predict_request, tensor_array
from tests.support.models import (
    REFERENCE_INPUT,
    REFERENCE_MASK,
    copy_version,
    models_config,
    write_warmup_file,
)
from tests.support.rest_client import rest_call

WARMUP_FILE = Path("assets.extra") / "tf_serving_warmup_requests"
MAX_RECORDS = 1000  # saved_model_warmup_util.h WarmupConsts::kMaxNumRecords
WRONG_KEY = predict_request(np.asarray([REFERENCE_INPUT], np.float32), key="nope")
GOOD = predict_request(np.asarray([REFERENCE_INPUT], np.float32))
SPEC = model_pb2.ModelSpec(name="threshold")
CLASSIFY = classification_pb2.ClassificationRequest(model_spec=SPEC)
REGRESS = regression_pb2.RegressionRequest(model_spec=SPEC)


def predict_log(request) -> bytes:
    log = prediction_log_pb2.PredictionLog()
    log.predict_log.request.ParseFromString(request.SerializeToString())  # the client's own message classes
    return log.SerializeToString()


def log_of(kind: str, request=None) -> bytes:
    log = prediction_log_pb2.PredictionLog()
    getattr(log, kind).SetInParent()
    if request is not None:
        getattr(log, kind).request.CopyFrom(request)
    return log.SerializeToString()


MULTI_INFERENCE = inference_pb2.MultiInferenceRequest(
    tasks=[inference_pb2.InferenceTask(model_spec=SPEC, method_name="tensorflow/serving/classify")]
)

# version -> the records of its warmup file (bytes: the file's whole content, not TFRecord)
BROKEN_VERSIONS = {
    2: [predict_log(WRONG_KEY)],
    3: [log_of("classify_log", CLASSIFY)],
    4: [log_of("regress_log", REGRESS)],
    5: [log_of("multi_inference_log", MULTI_INFERENCE)],
    6: [log_of("session_run_log")],
    7: [log_of("predict_streamed_log")],
    8: b"this is not a TFRecord file, only text\n",
    9: [b"not a prediction log"],
    10: [predict_log(GOOD)] * (MAX_RECORDS + 1),
    11: [predict_log(GOOD)] * MAX_RECORDS,
    12: [predict_log(GOOD), b"", predict_log(WRONG_KEY)],  # an empty log has no log_type: skipped
}
LATEST_GOOD = max(BROKEN_VERSIONS) + 1


@pytest.fixture(scope="module")
def warmup_server(model_dir, tmp_path_factory):
    models = tmp_path_factory.mktemp("warmup")
    copy_version(model_dir, models, 1)
    for version, records in BROKEN_VERSIONS.items():
        version_dir = copy_version(model_dir, models, 1, as_version=version)
        if isinstance(records, bytes):
            (version_dir / WARMUP_FILE).write_bytes(records)
        else:
            write_warmup_file(version_dir, records)
    # The latest version loads, or the server would not start (server_core.cc WaitUntilModelsAvailable).
    copy_version(model_dir, models, 1, as_version=LATEST_GOOD)
    config = models_config(models / "models.config", num_versions=2 + len(BROKEN_VERSIONS))
    with config_server(
        config,
        models,
        "--file-system-poll-wait-seconds",
        "0",
        "--max-num-load-retries",
        "0",
        *WITH_METRICS,
    ) as handle:
        stubs = ServingStubs(handle.address)
        yield stubs, models / "threshold", handle.rest_port
        stubs.close()


def version_status(stubs, version: int) -> tuple[int, grpc.StatusCode, str]:
    """(state, status code, message) GetModelStatus reports for one version."""
    request = get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = "threshold"
    request.model_spec.version.value = version
    (status,) = stubs.model.GetModelStatus(request, timeout=10).model_version_status
    code = next(c for c in grpc.StatusCode if c.value[0] == status.status.error_code)
    return status.state, code, status.status.error_message


def grpc_failure(call, request) -> tuple[grpc.StatusCode, str]:
    """What the server answers over gRPC for request (which must fail)."""
    with pytest.raises(grpc.RpcError) as error:
        call(request, timeout=30)
    return error.value.code(), error.value.details()


def _inference_call(stubs, method: str, request_class, response_class):
    return stubs.channel.unary_unary(
        f"/tensorflow.serving.PredictionService/{method}",
        request_serializer=request_class.SerializeToString,
        response_deserializer=response_class.FromString,
    )


END = get_model_status_pb2.ModelVersionStatus.END


def test_a_failing_warmup_request_fails_the_load_with_the_requests_own_status(warmup_server):
    """saved_model_warmup_util.cc: TF_RETURN_IF_ERROR(warmup_request_executor(prediction_log)),
    the Predict's status unchanged, as Predict answers it over gRPC."""
    stubs, _, _ = warmup_server
    expected = grpc_failure(stubs.prediction.Predict, WRONG_KEY)
    assert expected[0] == grpc.StatusCode.INVALID_ARGUMENT
    assert version_status(stubs, 2) == (END, *expected)


def test_records_before_the_failing_one_are_replayed_and_empty_logs_skipped(warmup_server):
    """saved_model_warmup.cc RunWarmupRequest: a log without log_type falls to `default: break`."""
    stubs, _, _ = warmup_server
    assert version_status(stubs, 12) == (END, *grpc_failure(stubs.prediction.Predict, WRONG_KEY))


# what each example API takes and answers, and the request its warmup log carries
EXAMPLE_APIS = {
    "Classify": (
        classification_pb2.ClassificationRequest,
        classification_pb2.ClassificationResponse,
        CLASSIFY,
    ),
    "Regress": (regression_pb2.RegressionRequest, regression_pb2.RegressionResponse, REGRESS),
}


@pytest.mark.parametrize(
    "version,api",
    [(3, "Classify"), (4, "Regress"), (5, "Classify")],  # 5: multi_inference.cc checks its classify task
)
def test_classify_regress_and_multi_inference_logs_are_run_and_fail_as_over_grpc(warmup_server, version, api):
    """saved_model_warmup.cc RunWarmupRequest runs RunClassify / RunRegress / RunMultiInference: on
    this model's Predict signatures they fail as Classify and Regress do over gRPC."""
    stubs, _, _ = warmup_server
    request_class, response_class, request = EXAMPLE_APIS[api]
    expected = grpc_failure(_inference_call(stubs, api, request_class, response_class), request)
    assert expected[0] == grpc.StatusCode.INVALID_ARGUMENT
    assert version_status(stubs, version) == (END, *expected)


@pytest.mark.parametrize("version,case", [(6, 5), (7, 7)])
def test_session_run_and_streamed_logs_are_unimplemented(warmup_server, version, case):
    """saved_model_warmup.cc: "Unsupported log_type for warmup: " and log_type_case(), an enum that
    StrCat prints as its number (session_run_log = 5, predict_streamed_log = 7)."""
    stubs, _, _ = warmup_server
    assert version_status(stubs, version) == (
        END,
        grpc.StatusCode.UNIMPLEMENTED,
        f"Unsupported log_type for warmup: {case}",
    )


def test_a_file_that_is_not_tfrecord_is_data_loss(warmup_server):
    """saved_model_warmup_util.cc appends ". Please verify your warmup data is in TFRecord format."
    to the reader's DATA_LOSS (tsl/lib/io/record_reader.cc ReadChecksummed: a bad checksum at
    offset 0 adds " (Is this even a TFRecord file?)")."""
    stubs, _, _ = warmup_server
    assert version_status(stubs, 8) == (
        END,
        grpc.StatusCode.DATA_LOSS,
        "corrupted record at 0 (Is this even a TFRecord file?). "
        "Please verify your warmup data is in TFRecord format.",
    )


def test_an_unparsable_record_is_invalid_argument_naming_the_record_and_file(warmup_server):
    """saved_model_warmup_util.cc: StrCat("Failed to parse warmup record: ", record, " from ", path)."""
    stubs, base_path, _ = warmup_server
    assert version_status(stubs, 9) == (
        END,
        grpc.StatusCode.INVALID_ARGUMENT,
        f"Failed to parse warmup record: not a prediction log from {base_path / '9' / WARMUP_FILE}",
    )


def test_more_than_1000_records_fail_the_load(warmup_server):
    """saved_model_warmup_util.cc: the count is checked after each record runs, so 1001 fail."""
    stubs, base_path, _ = warmup_server
    assert version_status(stubs, 10) == (
        END,
        grpc.StatusCode.INVALID_ARGUMENT,
        f"Number of warmup records exceeds the maximum (1000) at {base_path / '10' / WARMUP_FILE}",
    )


def test_1000_records_load(warmup_server):
    stubs, _, _ = warmup_server
    assert version_status(stubs, 11) == (
        get_model_status_pb2.ModelVersionStatus.AVAILABLE,
        grpc.StatusCode.OK,
        "",
    )


def _warmup_metrics(rest_port: int) -> dict[tuple[str, str, str], str]:
    """(metric, model_path, status) -> value of the warmup samples on the metrics page."""
    _, page = rest_call(rest_port, "GET", "/monitoring/prometheus/metrics")
    pattern = re.compile(
        r"^:tensorflow:serving:(model_warmup_records_read|model_warmup_latency_count)"
        r'\{model_path="([^"]*)",status="([^"]*)"\} (\S+)$',
        re.MULTILINE,
    )
    return {(metric, path, status): value for metric, path, status, value in pattern.findall(page)}


def test_warmup_metrics_count_warmups_read_to_the_end_or_failed_reading(warmup_server):
    """saved_model_warmup_util.cc records model_warmup_latency and model_warmup_records_read by
    export dir and status.ToString() after the read loop (OUT_OF_RANGE at the end is OK); a record
    that fails to parse or to run, or one past the limit, returns before them."""
    _, base_path, rest_port = warmup_server
    samples = _warmup_metrics(rest_port)
    loss = "DATA_LOSS: corrupted record at 0 (Is this even a TFRecord file?)"
    read = ((1, "OK", "4"), (LATEST_GOOD, "OK", "4"), (11, "OK", str(MAX_RECORDS)), (8, loss, "0"))
    for version, status, records in read:
        path = str(base_path / str(version))
        assert samples[("model_warmup_records_read", path, status)] == records
        assert samples[("model_warmup_latency_count", path, status)] == "1"
    recorded = {path for _, path, _ in samples}
    for version in (2, 9, 10, 12):  # a request failed, a record that does not parse, too many
        assert str(base_path / str(version)) not in recorded


def test_a_version_whose_warmup_fails_keeps_the_server_from_starting(model_dir, tmp_path):
    """The warm-up is part of the load, so it is retried with it (loader_harness.cc Load); when
    the only version still fails, the server does not start (server_core.cc
    WaitUntilModelsAvailable)."""
    models = tmp_path / "models"
    write_warmup_file(copy_version(model_dir, models, 1), [predict_log(WRONG_KEY)])
    retries = ("--max-num-load-retries", "1", "--load-retry-interval-micros", "-1")
    with embedded_server(models, *retries, wait=False) as handle:
        deadline = time.monotonic() + 120
        while handle.process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert handle.process.returncode not in (None, 0), handle.log()
        log = handle.log()
        assert log.count("Signature input alias: x(feed name: ") >= 2
        assert (
            "Retrying of Loading servable: {name: threshold version: 1} exhausted max_num_retries: 1" in log
        )
        assert (
            "serving.local: error: 1 model(s) did not become available: {{{name: threshold version: 1} "
            "due to error: INVALID_ARGUMENT: Signature input alias: x(feed name: " in log
        )


def test_without_warmup_the_same_version_loads_and_answers(model_dir, tmp_path):
    models = tmp_path / "models"
    write_warmup_file(copy_version(model_dir, models, 1), [predict_log(WRONG_KEY)])
    with embedded_server(models, "--no-model-warmup") as handle:
        stubs = ServingStubs(handle.address)
        try:
            response = stubs.prediction.Predict(GOOD, timeout=30)
        finally:
            stubs.close()
        assert tensor_array(response.outputs["mask"]).tolist() == [REFERENCE_MASK]
