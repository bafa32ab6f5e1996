"""Replay a version's assets.extra/tf_serving_warmup_requests before it is AVAILABLE, as TF Serving does."""

from __future__ import annotations

import grpc
from tensorflow_serving.apis import prediction_log_pb2

from serving.local.predict import ModelRunner, predict_on, run_directly
from serving.local.servable import Servable, warmup_records


class WarmupFailed(Exception):
    """A warmup request failed: the version is broken, so it is not made AVAILABLE.

    code is the failed request's status, which the version's status then reports.
    """

    def __init__(self, message: str, code: grpc.StatusCode = grpc.StatusCode.UNKNOWN):
        super().__init__(message)
        self.code = code


def replay_warmup(servable: Servable, run: ModelRunner = run_directly) -> int:
    """Run every Predict warmup record on servable; the number replayed. WarmupFailed on any error."""
    replayed = 0
    for record in warmup_records(servable.path):
        log = prediction_log_pb2.PredictionLog()
        log.ParseFromString(record)
        if log.WhichOneof("log_type") != "predict_log":
            continue  # classify/regress/multi_inference logs: this server answers only Predict
        try:
            predict_on(servable, log.predict_log.request, run)
        except Exception as exc:  # noqa: BLE001 - any failure means the version cannot serve
            raise WarmupFailed(
                f"warmup request {replayed + 1} failed: {exc}", getattr(exc, "code", grpc.StatusCode.UNKNOWN)
            ) from None
        replayed += 1
    return replayed
