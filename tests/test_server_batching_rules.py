"""With --enable-batching every Predict runs in a batch, as in TF Serving, whose rules hold for every
signature: inputs need a leading dimension of one size, outputs one the batch can be split along.

TF Serving: tensorflow_serving/servables/tensorflow/saved_model_bundle_factory.cc wraps the session
for every signature (bundle_factory_util.cc WrapSessionForBatching, with a default scheduler for
other feed/fetch sets); tensorflow_serving/batching/batching_session.cc (SplitOutputTensors) and
batching_util.h (ComputeTensorBatchSize) word the failures. So a scalar output, such as the bounds
this project's exports answered before they gave one value per row, fails under TF Serving's
batching, and the client could not learn the bounds from a production server.
"""

from __future__ import annotations

import json
import shutil
import time

import grpc
import numpy as np
import pytest

from tests.support.embedded_server import embedded_server, embedded_server_and_stubs
from tests.support.grpc_calls import ServingStubs, predict_request, tensor_array
from tests.support.models import REFERENCE_INPUT, REFERENCE_MASK, save_scalar_output_model
from tests.support.processes import run_module
from tests.support.rest_client import rest_json

PREDICT = "/v1/models/threshold:predict"


@pytest.fixture(scope="module")
def scalar_model(tmp_path_factory):
    directory = tmp_path_factory.mktemp("scalar-outputs")
    save_scalar_output_model(directory)
    return directory


@pytest.fixture(scope="module")
def plain(scalar_model):
    """The scalar-output model served without batching."""
    with embedded_server_and_stubs(scalar_model) as served:
        yield served


@pytest.fixture(scope="module")
def batching(scalar_model):
    """The same model served with --enable-batching."""
    with embedded_server_and_stubs(scalar_model, "--enable-batching") as served:
        yield served


def rpc_error(stubs: ServingStubs, request) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as caught:
        stubs.prediction.Predict(request, timeout=30)
    return caught.value


def test_a_scalar_output_cannot_be_split_from_a_batch(plain, batching):
    """batching_session.cc SplitOutputTensors: a scalar output is FAILED_PRECONDITION."""
    request = predict_request(np.ones((2, 3), np.float32), signature="total")
    assert float(tensor_array(plain[1].prediction.Predict(request, timeout=30).outputs["total"])) == 6.0
    error = rpc_error(batching[1], request)
    assert (error.code(), error.details()) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "Batched output tensor has 0 dimensions",
    )


def test_an_output_must_have_a_row_per_batched_row(batching):
    """batching_session.cc SplitOutputTensors: the output's 0th dimension must be the batch's rows."""
    _, stubs = batching
    one_row = predict_request(np.ones((1, 3), np.float32), signature="first_row")
    assert tensor_array(stubs.prediction.Predict(one_row, timeout=30).outputs["row"]).tolist() == [[1.0] * 3]
    error = rpc_error(stubs, predict_request(np.ones((3, 3), np.float32), signature="first_row"))
    assert (error.code(), error.details()) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "Batched output tensor's 0th dimension does not equal the sum of the 0th dimension sizes of "
        "the input tensors",
    )


def test_an_input_needs_a_batch_dimension(batching):
    """batching_util.h ComputeTensorBatchSize: a scalar input is refused before the model runs."""
    error = rpc_error(batching[1], predict_request(np.float32(0.5)))
    assert (error.code(), error.details()) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "Batching Run() input tensors must have at least one dimension",
    )


def test_an_export_whose_bounds_are_scalars_cannot_be_checked_under_batching(plain, batching, reference_file):
    """Without batching the client reads scalar bounds; with it TF Serving fails the bounds call, so
    the client says what the server answered instead of checking against bounds it never got."""
    handle, _ = plain
    result = run_module("client.predict", reference_file, "--server", handle.address, "--json", timeout=120)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["low"] == pytest.approx(-0.1)
    handle, _ = batching
    result = run_module("client.predict", reference_file, "--server", handle.address, timeout=120)
    assert result.returncode != 0
    assert "Batched output tensor has 0 dimensions" in result.stderr


def test_the_exported_model_serves_the_client_under_batching(model_dir, reference_file):
    """This project's export answers its bounds one per row: the warmup replay (which TF Serving runs
    through the batching session, saved_model_bundle_source_adapter.cc) and the client's bounds
    call both pass through the batch."""
    with embedded_server(model_dir, "--enable-batching") as handle:
        result = run_module(
            "client.predict", reference_file, "--server", handle.address, "--json", timeout=120
        )
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["ok"] and (summary["low"], summary["high"]) == (
        pytest.approx(-0.1),
        pytest.approx(0.1),
    )


def test_scalar_outputs_carry_an_empty_shape_and_one_value(plain):
    """tensorflow/core/framework/tensor.cc AsProtoField writes the shape (empty for a scalar) and
    every element."""
    response = plain[1].prediction.Predict(
        predict_request(np.ones((2, 3), np.float32), signature="total"), timeout=30
    )
    total = response.outputs["total"]
    assert total.HasField("tensor_shape") and not total.tensor_shape.dim
    assert list(total.float_val) == [6.0]


def test_row_format_of_scalar_outputs_fails(plain):
    """util/json_tensor.cc MakeRowFormatJsonFromTensors: a rank-0 output has no batch dimension."""
    handle, _ = plain
    status, answer = rest_json(
        handle.rest_port, "POST", PREDICT, {"signature_name": "bounds", "instances": [[0.0]]}
    )
    assert status == 400 and set(answer) == {"error"}
    assert answer["error"] in (
        "Tensor name: low has no shape information ",
        "Tensor name: high has no shape information ",
    )


def test_the_scalar_model_computes_the_rule(plain):
    """The stand-in for an earlier export answers as the exported model does."""
    response = plain[1].prediction.Predict(
        predict_request(np.asarray([REFERENCE_INPUT], np.float32)), timeout=30
    )
    assert tensor_array(response.outputs["mask"]).tolist() == [REFERENCE_MASK]


def with_warmup_on(scalar_model, target, signature: str):
    """A copy of the scalar-output model whose warmup file holds one request on signature."""
    from tensorflow_serving.apis import prediction_log_pb2

    from export.quiet_tensorflow import import_tensorflow

    version = target / "threshold" / "1"
    shutil.copytree(scalar_model / "threshold" / "1", version)
    log = prediction_log_pb2.PredictionLog()
    request = predict_request(np.ones((2, 3), np.float32), signature=signature)
    log.predict_log.request.ParseFromString(request.SerializeToString())
    (version / "assets.extra").mkdir(exist_ok=True)
    tf = import_tensorflow()
    with tf.io.TFRecordWriter(str(version / "assets.extra" / "tf_serving_warmup_requests")) as writer:
        writer.write(log.SerializeToString())
    return target


def test_warmup_runs_through_the_batch(scalar_model, tmp_path):
    """saved_model_bundle_source_adapter.cc warms a version up on the bundle's session, which
    saved_model_bundle_factory.cc has already wrapped for batching: a warmup request on a scalar
    output loads without batching and fails the load with it."""
    models = with_warmup_on(scalar_model, tmp_path / "models", "total")
    with embedded_server(models) as handle:
        assert handle.process.poll() is None
    no_retries = ("--max-num-load-retries", "0")
    with embedded_server(models, "--enable-batching", *no_retries, wait=False) as handle:
        deadline = time.monotonic() + 120
        while handle.process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert handle.process.returncode not in (None, 0), handle.log()
        assert "Batched output tensor has 0 dimensions" in handle.log()
