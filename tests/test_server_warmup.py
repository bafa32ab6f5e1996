"""A version's warmup requests are replayed on load, before it is AVAILABLE, as TF Serving does.

TF Serving (tensorflow_serving/servables/tensorflow/saved_model_warmup.cc, with
--enable_model_warmup) runs every PredictionLog in assets.extra/tf_serving_warmup_requests
when it loads a version and fails the load if one fails. A warmup request with a wrong input
key proves the replay: the version cannot load with it, and loads with --no-model-warmup.
"""

from __future__ import annotations

import time

import numpy as np

from tests.support.embedded_server import embedded_server
from tests.support.grpc_calls import ServingStubs, predict_request, tensor_array
from tests.support.models import REFERENCE_INPUT, REFERENCE_MASK, copy_version


def broken_warmup_version(model_dir, target):
    from tensorflow_serving.apis import prediction_log_pb2

    from export.quiet_tensorflow import import_tensorflow

    version = copy_version(model_dir, target, 1)
    log = prediction_log_pb2.PredictionLog()
    request = predict_request(np.asarray([REFERENCE_INPUT], np.float32), key="nope")
    log.predict_log.request.ParseFromString(request.SerializeToString())  # the client's own message classes
    tf = import_tensorflow()
    with tf.io.TFRecordWriter(str(version / "assets.extra" / "tf_serving_warmup_requests")) as writer:
        writer.write(log.SerializeToString())
    return target


def test_a_failing_warmup_request_keeps_the_version_from_loading(model_dir, tmp_path):
    """The warm-up is part of the load, so it is retried with it (loader_harness.cc Load); when
    the only version still fails, the server does not start (server_core.cc
    WaitUntilModelsAvailable)."""
    models = broken_warmup_version(model_dir, tmp_path / "models")
    retries = ("--max-num-load-retries", "1", "--load-retry-interval-micros", "-1")
    with embedded_server(models, *retries, wait=False) as handle:
        deadline = time.monotonic() + 120
        while handle.process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert handle.process.returncode not in (None, 0), handle.log()
        log = handle.log()
        assert log.count("warmup request 1 failed") >= 2
        assert (
            "Retrying of Loading servable: {name: threshold version: 1} exhausted max_num_retries: 1" in log
        )


def test_without_warmup_the_same_version_loads_and_answers(model_dir, tmp_path):
    models = broken_warmup_version(model_dir, tmp_path / "models")
    with embedded_server(models, "--no-model-warmup") as handle:
        stubs = ServingStubs(handle.address)
        try:
            response = stubs.prediction.Predict(
                predict_request(np.asarray([REFERENCE_INPUT], np.float32)), timeout=30
            )
        finally:
            stubs.close()
        assert tensor_array(response.outputs["mask"]).tolist() == [REFERENCE_MASK]
