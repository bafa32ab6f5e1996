"""serving.local answers Predict like TF Serving: the threshold rule over real loopback gRPC."""

from __future__ import annotations

import numpy as np
import pytest

from client.protos import tensor_pb2, tensor_shape_pb2, types_pb2
from tests.support.grpc_calls import predict_request, tensor_array
from tests.support.models import REFERENCE_INPUT, REFERENCE_MASK


def predict(stubs, array, **spec):
    return stubs.prediction.Predict(predict_request(np.asarray(array, dtype=np.float32), **spec), timeout=30)


def test_reference_vector_gives_reference_mask(server_stubs):
    response = predict(server_stubs, [REFERENCE_INPUT])
    mask = tensor_array(response.outputs["mask"])
    assert mask.dtype == np.float32 and mask.tolist() == [REFERENCE_MASK]


def test_reply_uses_float_val_and_names_the_servable(server_stubs):
    response = predict(server_stubs, [REFERENCE_INPUT])
    assert response.outputs["mask"].float_val and not response.outputs["mask"].tensor_content
    assert (response.model_spec.name, response.model_spec.signature_name) == ("threshold", "serving_default")
    assert response.model_spec.version.value == 1


def test_boundaries_map_to_zero(server_stubs):
    mask = tensor_array(
        predict(server_stubs, [[-0.1, 0.1, np.nextafter(np.float32(0.1), np.float32(1))]]).outputs["mask"]
    )
    assert mask.tolist() == [[0, 0, 1]]


def test_nan_maps_to_zero_and_infinities_to_one(server_stubs):
    mask = tensor_array(predict(server_stubs, [[np.nan, np.inf, -np.inf]]).outputs["mask"])
    assert mask.tolist() == [[0, 1, 1]]


@pytest.mark.parametrize("shape", [(0, 8), (0, 0), (3, 0)])
def test_empty_batch_gives_empty_mask_of_the_same_shape(server_stubs, shape):
    mask = tensor_array(predict(server_stubs, np.zeros(shape)).outputs["mask"])
    assert mask.shape == shape


def test_many_rows_keep_their_order(server_stubs):
    x = np.linspace(-1, 1, 64 * 33, dtype=np.float32).reshape(64, 33)
    mask = tensor_array(predict(server_stubs, x).outputs["mask"])
    np.testing.assert_array_equal(mask, ((x < np.float32(-0.1)) | (x > np.float32(0.1))).astype(np.float32))


def test_compact_signature_answers_uint8(server_stubs):
    response = predict(server_stubs, [REFERENCE_INPUT], signature="compact")
    assert response.outputs["mask"].dtype == types_pb2.DT_UINT8
    assert tensor_array(response.outputs["mask"]).tolist() == [REFERENCE_MASK]
    assert response.model_spec.signature_name == "compact"


@pytest.mark.parametrize("shape", [(0, 0), (2, 3)])
def test_bounds_signature_reports_the_exported_bounds(server_stubs, shape):
    response = predict(server_stubs, np.zeros(shape), signature="bounds")
    assert set(response.outputs) == {"low", "high"}
    # one value per row of x, so that TF Serving's batching can split the answer (export/savedmodel.py)
    assert tensor_array(response.outputs["low"]).tolist() == [pytest.approx(-0.1)] * shape[0]
    assert tensor_array(response.outputs["high"]).tolist() == [pytest.approx(0.1)] * shape[0]


def test_repeated_float_val_form_is_accepted(server_stubs):
    request = predict_request(None)
    request.inputs["x"].CopyFrom(
        tensor_pb2.TensorProto(
            dtype=types_pb2.DT_FLOAT,
            float_val=REFERENCE_INPUT,
            tensor_shape=tensor_shape_pb2.TensorShapeProto(
                dim=[
                    tensor_shape_pb2.TensorShapeProto.Dim(size=1),
                    tensor_shape_pb2.TensorShapeProto.Dim(size=8),
                ]
            ),
        )
    )
    assert tensor_array(server_stubs.prediction.Predict(request).outputs["mask"]).tolist() == [REFERENCE_MASK]


def test_single_float_val_fills_the_shape_like_tensorflow(server_stubs):
    request = predict_request(None)
    request.inputs["x"].CopyFrom(
        tensor_pb2.TensorProto(
            dtype=types_pb2.DT_FLOAT,
            float_val=[0.5],
            tensor_shape=tensor_shape_pb2.TensorShapeProto(
                dim=[
                    tensor_shape_pb2.TensorShapeProto.Dim(size=2),
                    tensor_shape_pb2.TensorShapeProto.Dim(size=3),
                ]
            ),
        )
    )
    assert tensor_array(server_stubs.prediction.Predict(request).outputs["mask"]).tolist() == [[1] * 3] * 2


def test_output_filter_returns_only_the_named_outputs(server_stubs):
    request = predict_request(np.zeros((0, 0), np.float32), signature="bounds")
    request.output_filter.append("high")
    assert set(server_stubs.prediction.Predict(request).outputs) == {"high"}


def test_explicit_version_is_served(server_stubs):
    assert predict(server_stubs, [REFERENCE_INPUT], version=1).model_spec.version.value == 1
