"""--enable-batching with --batching-parameters-file, as TF Serving reads and runs BatchingParameters.

model_servers/server.cc reads the file (and refuses it without --enable_batching);
servables/tensorflow/bundle_factory_util.{h,cc} GetQueueOptions and WrapSessionForBatching turn it
into the queue's options; tensorflow/core/kernels/batching_util/shared_batch_scheduler.h
(ValidateBatchTaskQueueCapacity, ScheduleWithoutOrEagerSplitImpl) refuses, queues and splits.
"""

from __future__ import annotations

import re
import time

import grpc
import numpy as np
import pytest

from client.errors import SERVER_NOT_STARTED
from tests.support.embedded_server import (
    WITH_METRICS,
    embedded_server,
    embedded_server_and_stubs,
    start_failure_log,
)
from tests.support.grpc_calls import predict_request, tensor_array
from tests.support.ports import free_port
from tests.support.processes import one_line_error, run_module
from tests.support.rest_client import rest_call

SPLITTING = """
max_batch_size { value: 8 }
enable_large_batch_splitting { value: true }
max_execution_batch_size { value: 3 }
"""
SLOW_TIMEOUT_S = 3  # long enough for a second request to find the first still queued
NO_SPLITTING_ONE_BATCH = f"""
max_batch_size {{ value: 4 }}
batch_timeout_micros {{ value: {SLOW_TIMEOUT_S * 1_000_000} }}
max_enqueued_batches {{ value: 1 }}
"""
SPLITTING_ONE_BATCH = f"""
max_batch_size {{ value: 8 }}
enable_large_batch_splitting {{ value: true }}
max_execution_batch_size {{ value: 4 }}
batch_timeout_micros {{ value: {SLOW_TIMEOUT_S * 1_000_000} }}
max_enqueued_batches {{ value: 1 }}
"""
BATCH_SIZES = re.compile(
    r'^:tensorflow:serving:batching_session:processed_batch_size_(sum|count)\{model_name="threshold",'
    r'signature="serving_default"\} (\S+)$',
    re.MULTILINE,
)


def _rows(count: int) -> np.ndarray:
    return np.linspace(-1, 1, count * 4, dtype=np.float32).reshape(count, 4)


def _mask(x: np.ndarray) -> list:
    return ((x < np.float32(-0.1)) | (x > np.float32(0.1))).astype(np.float32).tolist()


def _params(tmp_path, text: str) -> str:
    path = tmp_path / "batching.config"
    path.write_text(text)
    return str(path)


def _batching(tmp_path, text: str) -> tuple[str, ...]:
    """The flags of a server batching with text as its BatchingParameters, without warmup."""
    return ("--enable-batching", "--batching-parameters-file", _params(tmp_path, text), "--no-model-warmup")


def _failure(stubs, x: np.ndarray) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as error:
        stubs.prediction.Predict(predict_request(x), timeout=30)
    return error.value.code(), error.value.details()


def _batch_sizes(rest_port: int) -> tuple[float, float]:
    """(rows, batches) the serving_default signature has run in batches so far."""
    _, page = rest_call(rest_port, "GET", "/monitoring/prometheus/metrics")
    values = dict(BATCH_SIZES.findall(page))
    return float(values.get("sum", 0)), float(values.get("count", 0))


@pytest.fixture(scope="module")
def defaults(model_dir):
    """--enable-batching alone: QueueOptions' defaults."""
    with embedded_server_and_stubs(model_dir, "--enable-batching") as served:
        yield served


def test_without_a_file_a_request_over_1000_rows_is_refused(defaults):
    """QueueOptions::input_batch_size_limit defaults to 1000."""
    _, stubs = defaults
    assert _failure(stubs, _rows(1001)) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "Task size 1001 is larger than maximum input batch size 1000",
    )
    x = _rows(1000)
    assert tensor_array(
        stubs.prediction.Predict(predict_request(x), timeout=30).outputs["mask"]
    ).tolist() == _mask(x)


def test_a_split_request_comes_back_whole_from_batches_of_the_execution_size(model_dir, tmp_path):
    """GetQueueOptions with enable_large_batch_splitting: a 7-row request runs as 3 + 3 + 1 rows."""
    # No warmup: the export's warmup records hold more rows than this max_batch_size takes.
    flags = (*_batching(tmp_path, SPLITTING), *WITH_METRICS)
    with embedded_server_and_stubs(model_dir, *flags) as (handle, stubs):
        x = _rows(7)
        answer = stubs.prediction.Predict(predict_request(x), timeout=30)
        assert tensor_array(answer.outputs["mask"]).tolist() == _mask(x)
        assert _batch_sizes(handle.rest_port) == (7, 3)
        assert _failure(stubs, _rows(9)) == (
            grpc.StatusCode.INVALID_ARGUMENT,
            "Task size 9 is larger than maximum input batch size 8",
        )


FULL = "The batch scheduling queue to which this task was submitted is full; "


@pytest.mark.parametrize(
    "config,rows,message",
    [
        (
            NO_SPLITTING_ONE_BATCH,
            (3, 3),
            lambda queued, refused: f"{FULL}currently 1 batches enqueued and max_enqueued_batches is 1",
        ),
        (
            SPLITTING_ONE_BATCH,
            (3, 2),
            lambda queued, refused: (
                f"{FULL}task size is {refused} but scheduling capacity is only {4 - queued} "
                f"(num_enqueued_batches=1, max_enqueued_batches=1, open_batch_size={queued}, "
                "max_execution_batch_size=4)"
            ),
        ),
    ],
)
def test_a_full_queue_answers_unavailable_at_once(model_dir, tmp_path, config, rows, message):
    """ValidateBatchTaskQueueCapacity: the first request waits in the only batch the queue may hold,
    so the second does not fit (without splitting: 3 + 3 > max_batch_size 4; with it: more rows
    than the open batch has left) and is refused at once; the queued one is answered when its
    timeout ends. Which of the two reaches the queue first is up to the machine: each order has
    its own words."""
    with embedded_server_and_stubs(model_dir, *_batching(tmp_path, config)) as (_, stubs):
        inputs = [_rows(count) for count in rows]
        calls = [stubs.prediction.Predict.future(predict_request(inputs[0]), timeout=30)]
        time.sleep(SLOW_TIMEOUT_S / 6)  # most often, the first is queued by now
        calls.append(stubs.prediction.Predict.future(predict_request(inputs[1]), timeout=30))
        try:  # a refusal comes at once; a queued request waits for its batch's timeout
            quick = calls[1].exception(timeout=SLOW_TIMEOUT_S / 2) is not None
        except grpc.FutureTimeoutError:
            quick = False
        outcomes = []
        for call in calls:
            try:
                outcomes.append(tensor_array(call.result().outputs["mask"]).tolist())
            except grpc.RpcError as error:
                outcomes.append((error.code(), error.details()))
        refused = [index for index, outcome in enumerate(outcomes) if isinstance(outcome, tuple)]
        assert len(refused) == 1, outcomes
        (index,) = refused
        queued = 1 - index
        assert outcomes[queued] == _mask(inputs[queued])
        assert outcomes[index] == (grpc.StatusCode.UNAVAILABLE, message(rows[queued], rows[index]))
        assert quick == (index == 1)  # the second, if refused, was refused before any timeout ended


def test_requests_of_different_widths_in_one_batch_fail_together(model_dir, tmp_path):
    """batching_session.cc MergeInputTensors: without padding, a task whose tensor differs from the
    first task's past dimension 0 fails the batch, for every task in it (FAILED_PRECONDITION)."""
    config = f"batch_timeout_micros {{ value: {SLOW_TIMEOUT_S * 1_000_000} }}\n"
    with embedded_server_and_stubs(model_dir, *_batching(tmp_path, config)) as (_, stubs):
        narrow = np.zeros((2, 4), np.float32)
        calls = [stubs.prediction.Predict.future(predict_request(narrow), timeout=30)]
        time.sleep(SLOW_TIMEOUT_S / 6)  # both requests land in the batch its timeout holds open
        calls.append(
            stubs.prediction.Predict.future(predict_request(np.zeros((2, 5), np.float32)), timeout=30)
        )
        for call in calls:
            error = call.exception()
            assert error is not None and error.code() == grpc.StatusCode.FAILED_PRECONDITION
            assert error.details() == (
                "Tensors with name 'serving_default_x:0' from different tasks have different shapes "
                "and padding is turned off. Set pad_variable_length_inputs to true, or ensure that "
                "all tensors with the same name have equal dimensions starting with the first dim."
            )
        # one width at a time batches fine
        answer = stubs.prediction.Predict(predict_request(narrow), timeout=30)
        assert tensor_array(answer.outputs["mask"]).tolist() == _mask(narrow)


def test_allowed_batch_sizes_must_end_at_max_batch_size_or_no_version_loads(model_dir, tmp_path):
    """WrapSessionForBatching fails the load, so the server does not start."""
    config = _params(
        tmp_path, "max_batch_size { value: 4 }\nallowed_batch_sizes: 1\nallowed_batch_sizes: 2\n"
    )
    flags = ("--enable-batching", "--batching-parameters-file", config, "--max-num-load-retries", "0")
    log = start_failure_log(embedded_server(model_dir, *flags, wait=False))
    assert (
        "1 model(s) did not become available: {{{name: threshold version: 1} due to error: "
        "INVALID_ARGUMENT: Last entry in allowed_batch_sizes must match max_batch_size; last entry "
        "was 2; expected 4}, }" in log
    ), log


@pytest.mark.parametrize(
    "text,flags,fragment",
    [
        ("max_batch_size { value: 8 }\n", (), "server_options.batching_parameters_file is set without"),
        ("max_batch_size: 8\n", ("--enable-batching",), "Invalid protobuf file: '"),
    ],
)
def test_a_file_without_enable_batching_or_that_does_not_parse_fails_the_start(
    tmp_path, text, flags, fragment
):
    """server.cc: the file needs --enable_batching; ParseProtoTextFile's words for a bad one."""
    result = run_module(
        "serving.local",
        "--batching-parameters-file",
        _params(tmp_path, text),
        *flags,
        "--model-base-path",
        tmp_path,
        "--port",
        str(free_port()),
        timeout=60,
    )
    one_line_error(result, SERVER_NOT_STARTED, fragment, prefix="serving.local: error: ")
