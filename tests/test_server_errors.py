"""Every bad request gets TF Serving's status code and a message that says what was wrong."""

from __future__ import annotations

import grpc
import numpy as np
import pytest

from client.protos import (
    get_model_metadata_pb2,
    model_pb2,
    predict_pb2,
    tensor_pb2,
    tensor_shape_pb2,
    types_pb2,
)
from tests.support.grpc_calls import predict_request
from tests.support.models import REFERENCE_INPUT

GOOD = np.asarray([REFERENCE_INPUT], dtype=np.float32)


def failure(stubs, request) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as error:
        stubs.prediction.Predict(request, timeout=30)
    return error.value


def shape(*sizes):
    return tensor_shape_pb2.TensorShapeProto(
        dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=size) for size in sizes]
    )


def test_unknown_model_is_not_found_latest(server_stubs):
    error = failure(server_stubs, predict_request(GOOD, model="nope"))
    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert error.details() == "Servable not found for request: Latest(nope)"


def test_unknown_version_is_not_found_specific(server_stubs):
    error = failure(server_stubs, predict_request(GOOD, version=42))
    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert error.details() == "Servable not found for request: Specific(threshold, 42)"


def test_unknown_version_label_is_invalid_argument(server_stubs):
    error = failure(server_stubs, predict_request(GOOD, label="nightly"))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.details() == "Unrecognized servable version label: nightly"


def test_unknown_signature_is_failed_precondition(server_stubs):
    error = failure(server_stubs, predict_request(GOOD, signature="classify"))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error.details() == 'Serving signature key "classify" not found.'


def test_missing_model_spec_and_empty_name_are_invalid(server_stubs):
    error = failure(server_stubs, predict_pb2.PredictRequest())
    assert (error.code(), error.details()) == (grpc.StatusCode.INVALID_ARGUMENT, "Missing ModelSpec")
    error = failure(server_stubs, predict_pb2.PredictRequest(model_spec=model_pb2.ModelSpec()))
    assert (error.code(), error.details()) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "ModelSpec has no name specified.",
    )


def test_missing_input_names_the_expected_key(server_stubs):
    error = failure(server_stubs, predict_request(None))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "input size does not match signature: 0!=1" in error.details()
    assert "Missing but required: {x}" in error.details()


def test_wrong_input_key_names_both_keys(server_stubs):
    error = failure(server_stubs, predict_request(GOOD, key="inputs"))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "Signature input alias: x(feed name: serving_default_x:0) not found in request" in error.details()
    assert "{inputs}" in error.details()


def test_extra_input_key_is_named(server_stubs):
    request = predict_request(GOOD)
    request.inputs["y"].CopyFrom(request.inputs["x"])
    error = failure(server_stubs, request)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "input size does not match signature: 2!=1 len({x,y}) != len({x})" in error.details()
    assert "Sent extra: {y}" in error.details()


def test_string_input_fails_in_the_runtime(server_stubs):
    """No dtype check before Session::Run (predict_util.cc); the call frame names both types."""
    request = predict_request(None)
    request.inputs["x"].CopyFrom(
        tensor_pb2.TensorProto(dtype=types_pb2.DT_STRING, tensor_shape=shape(1), string_val=[b"0.5"])
    )
    error = failure(server_stubs, request)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_unknown_output_filter_lists_the_outputs(server_stubs):
    request = predict_request(GOOD)
    request.output_filter.append("probabilities")
    error = failure(server_stubs, request)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.details() == (
        "output tensor alias not found in signature: probabilities Outputs expected to be in the set {mask}."
    )


def test_duplicate_output_filter_is_invalid(server_stubs):
    request = predict_request(GOOD)
    request.output_filter.extend(["mask", "mask"])
    error = failure(server_stubs, request)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.details() == "duplicate output tensor alias: mask"


def test_metadata_needs_the_signature_def_field(server_stubs):
    spec = model_pb2.ModelSpec(name="threshold")
    for fields, message in (
        ([], "GetModelMetadataRequest must specify at least one metadata_field"),
        (["graph"], "Metadata field graph is not supported"),
    ):
        with pytest.raises(grpc.RpcError) as error:
            server_stubs.prediction.GetModelMetadata(
                get_model_metadata_pb2.GetModelMetadataRequest(model_spec=spec, metadata_field=fields)
            )
        assert (error.value.code(), error.value.details()) == (grpc.StatusCode.INVALID_ARGUMENT, message)


def test_metadata_of_unknown_model_is_not_found(server_stubs):
    with pytest.raises(grpc.RpcError) as error:
        server_stubs.prediction.GetModelMetadata(
            get_model_metadata_pb2.GetModelMetadataRequest(
                model_spec=model_pb2.ModelSpec(name="nope"), metadata_field=["signature_def"]
            )
        )
    assert error.value.code() == grpc.StatusCode.NOT_FOUND
    assert error.value.details() == "Servable not found for request: Latest(nope)"
