"""Replay a version's assets.extra/tf_serving_warmup_requests before it is AVAILABLE, as TF Serving does.

Follows saved_model_warmup_util.cc (RunSavedModelWarmupUntracked: the TFRecord reading, the
record limit, the wording of its errors) and saved_model_warmup.cc (RunWarmupRequest: what each
log type runs). The first error fails the load with its own status, which GetModelStatus then
reports for the version.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
from google.protobuf.message import DecodeError
from tensorflow_serving.apis import prediction_log_pb2

from export.quiet_tensorflow import import_tensorflow
from serving.local.errors import RequestError
from serving.local.example_apis import check_classify_or_regress, check_multi_inference
from serving.local.predict import ModelRunner, Predictor, RuntimeRecorder, run_directly
from serving.local.servable import Servable, status_code

WARMUP_FILE = Path("assets.extra") / "tf_serving_warmup_requests"
MAX_RECORDS = 1000  # saved_model_warmup_util.h WarmupConsts::kMaxNumRecords
# RunWarmupRequest refuses these; StrCat prints log_type_case(), the oneof field's number
UNSUPPORTED_LOG_TYPES = ("session_run_log", "predict_streamed_log")

log = logging.getLogger("serving.local")


# (export dir, absl::Status::ToString(), microseconds, records read): the warmup metrics
WarmupRecorder = Callable[[str, str, float, int], None]


class WarmupFailed(Exception):
    """Warmup failed: the version is broken, so it is not made AVAILABLE.

    code and the message are the status TF Serving's load fails with, which the version's
    status then reports.
    """

    def __init__(self, message: str, code: grpc.StatusCode):
        super().__init__(message)
        self.code = code


class _ReadFailed(WarmupFailed):
    """The TFRecord reader failed; status is its own status, as the warmup metrics label it."""

    def __init__(self, message: str, code: grpc.StatusCode, status: str):
        super().__init__(message, code)
        self.status = status


def replay_warmup(
    servable: Servable,
    run: ModelRunner = run_directly,
    *,
    iterations: int = 1,
    record_runtime: RuntimeRecorder | None = None,
    record_warmup: WarmupRecorder | None = None,
) -> int:
    """Run every warmup record on servable, each `iterations` times; the number of records read.

    Raises WarmupFailed with the first error's status, as RunSavedModelWarmupUntracked returns it.
    record_warmup gets the warmup's time and records when the file was read to its end or the
    reader failed; TF Serving returns before its metrics on the other failures.
    """
    start = time.monotonic()
    path = Path(servable.path) / WARMUP_FILE
    if not path.exists():  # Env::FilesExist: having warmup data is optional
        return 0
    predictor = Predictor(None, run, record_runtime=record_runtime)
    records = 0

    def measured(status: str) -> None:
        if record_warmup is not None:
            record_warmup(str(servable.path), status, (time.monotonic() - start) * 1e6, records)

    try:
        for record in _tfrecords(path):
            records = _replay_record(record, path, servable, predictor, iterations, records)
    except _ReadFailed as failed:
        measured(failed.status)
        raise
    measured("OK")
    log.info(
        "Finished reading warmup data for model at %s. Number of warmup records read: %d. "
        "Elapsed time (microseconds): %d.",
        path,
        records,
        (time.monotonic() - start) * 1e6,
    )
    return records


def _replay_record(
    record: bytes, path: Path, servable: Servable, predictor: Predictor, iterations: int, records: int
) -> int:
    """Run one record `iterations` times; the count of records read after it."""
    prediction_log = prediction_log_pb2.PredictionLog()
    try:
        prediction_log.ParseFromString(record)
    except DecodeError:
        raise WarmupFailed(
            f"Failed to parse warmup record: {_printable(record)} from {path}",
            grpc.StatusCode.INVALID_ARGUMENT,
        ) from None
    for _ in range(iterations):
        _run_warmup_request(prediction_log, servable, predictor)
    records += 1
    if records > MAX_RECORDS:  # checked after the record ran, as TF Serving does
        raise WarmupFailed(
            f"Number of warmup records exceeds the maximum ({MAX_RECORDS}) at {path}",
            grpc.StatusCode.INVALID_ARGUMENT,
        )
    return records


def _tfrecords(path: Path) -> Iterator[bytes]:
    """The file's records, read one at a time with TensorFlow's own TFRecord reader."""
    tf = import_tensorflow()
    from tensorflow.python.util import deprecation  # the TF1 reader streams; tf.data would read ahead

    try:
        with deprecation.silence():
            reader = tf.compat.v1.io.tf_record_iterator(str(path))
        yield from reader
    except tf.errors.OpError as exc:
        code = status_code(exc.error_code)
        status = f"{code.name}: {exc.message}"
        if code == grpc.StatusCode.DATA_LOSS:
            raise _ReadFailed(
                f"{exc.message}. Please verify your warmup data is in TFRecord format.", code, status
            ) from None
        raise _ReadFailed(exc.message, code, status) from None


def _printable(record: bytes) -> str:
    """The record as StrCat puts it in the message: its bytes; ones that are no UTF-8 as escapes,
    so the status stays a valid proto string."""
    return record.decode("utf-8", errors="backslashreplace")


def _run_warmup_request(
    prediction_log: prediction_log_pb2.PredictionLog, servable: Servable, predictor: Predictor
) -> None:
    """RunWarmupRequest: the log's request run on servable; WarmupFailed with its status if it fails."""
    kind = prediction_log.WhichOneof("log_type")
    if kind in UNSUPPORTED_LOG_TYPES:
        number = prediction_log.DESCRIPTOR.fields_by_name[kind].number
        raise WarmupFailed(f"Unsupported log_type for warmup: {number}", grpc.StatusCode.UNIMPLEMENTED)
    try:
        if kind == "predict_log":
            predictor.predict(prediction_log.predict_log.request, servable)
        elif kind == "classify_log":
            check_classify_or_regress(
                servable.signature_defs, prediction_log.classify_log.request.model_spec, "Classify"
            )
        elif kind == "regress_log":
            check_classify_or_regress(
                servable.signature_defs, prediction_log.regress_log.request.model_spec, "Regress"
            )
        elif kind == "multi_inference_log":
            check_multi_inference(servable.signature_defs, prediction_log.multi_inference_log.request)
        # no log_type: nothing to run (RunWarmupRequest's `default: break`)
    except RequestError as exc:
        raise WarmupFailed(exc.message, exc.code) from None
