"""REST answers for tensors JSON has no conversion for, and several outputs in a row, as TF Serving 2.21.

TF Serving's util/json_tensor.cc reads a JSON value into a tensor in AddValueToTensor and writes
one in AddSingleValueAndAdvance; neither has a case for float16 ("half"), bfloat16 or uint16.
A real ``serving.local`` serves a SavedModel built here whose signatures take or answer such
tensors, and one with two outputs, called over loopback REST.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from client.protos import types_pb2
from tests.support.embedded_server import embedded_server
from tests.support.grpc_calls import ServingStubs, predict_request
from tests.support.rest_client import rest_call

UNCONVERTED = ["half", "bfloat16", "uint16"]  # DataTypeString of float16, bfloat16, uint16


def save_dtype_model(model_dir) -> None:
    """model_dir/threshold/1: ``<dtype>_in`` takes x of that dtype, ``<dtype>_out`` answers y of
    that dtype (x cast), and ``serving_default`` answers two float outputs for one x."""
    import tensorflow as tf

    dtypes = {"half": tf.float16, "bfloat16": tf.bfloat16, "uint16": tf.uint16}
    floats = tf.TensorSpec([None, None], tf.float32, name="x")

    class DtypeModel(tf.Module):
        @tf.function(input_signature=[floats])
        def two_outputs(self, x):
            return {"doubled": x * 2, "negated": -x}

    module = DtypeModel()
    signatures = {"serving_default": module.two_outputs.get_concrete_function()}
    for name, dtype in dtypes.items():
        takes = tf.function(
            lambda x: {"y": tf.cast(x, tf.float32)},
            input_signature=[tf.TensorSpec([None, None], dtype, name="x")],
        )
        answers = tf.function(_cast_to(tf, dtype), input_signature=[floats])
        setattr(module, f"{name}_in", takes)
        setattr(module, f"{name}_out", answers)
        signatures[f"{name}_in"] = takes.get_concrete_function()
        signatures[f"{name}_out"] = answers.get_concrete_function()
    tf.saved_model.save(module, str(model_dir / "threshold" / "1"), signatures=signatures)


def _cast_to(tf, dtype):
    return lambda x: {"y": tf.cast(x, dtype)}


@pytest.fixture(scope="module")
def dtype_server(tmp_path_factory):
    model_dir = tmp_path_factory.mktemp("dtype-model")
    save_dtype_model(model_dir)
    with embedded_server(model_dir) as handle:
        yield handle


def predict(server, body: dict) -> tuple[int, str]:
    return rest_call(server.rest_port, "POST", "/v1/models/threshold:predict", json.dumps(body))


def error_of(server, body: dict) -> tuple[int, str]:
    status, text = predict(server, body)
    answer = json.loads(text)
    assert set(answer) == {"error"}, answer  # MakeJsonFromStatus
    return status, answer["error"]


@pytest.mark.parametrize("dtype", UNCONVERTED)
def test_an_input_of_a_dtype_json_has_no_conversion_for_is_unimplemented(dtype_server, dtype):
    """json_tensor.cc AddValueToTensor, default case: errors::Unimplemented("Conversion of JSON
    Value: ", value, " to type: ", DataTypeString(dtype)) for the first value FillTensorProto
    reaches; FillTensorMapFromInputsMap returns it as it is, and http_server.cc ToHTTPStatusCode
    maps UNIMPLEMENTED to 501."""
    body = {"signature_name": f"{dtype}_in", "inputs": [[1.5, 2]]}
    assert error_of(dtype_server, body) == (501, f"Conversion of JSON Value: 1.5 to type: {dtype}")


@pytest.mark.parametrize("dtype", UNCONVERTED)
def test_in_the_row_format_the_unimplemented_conversion_is_wrapped_as_a_bad_instance(dtype_server, dtype):
    """json_tensor.cc FillTensorMapFromInstancesList: an AddInstanceItem failure becomes
    InvalidArgument("Failed to process element: <n> [key: <name> ]of 'instances' list. Error: ",
    status.ToString()), so the answer is 400 and names the UNIMPLEMENTED status inside."""
    conversion = f"UNIMPLEMENTED: Conversion of JSON Value: 7 to type: {dtype}"
    plain = {"signature_name": f"{dtype}_in", "instances": [[7, 8]]}
    assert error_of(dtype_server, plain) == (
        400,
        f"Failed to process element: 0 of 'instances' list. Error: {conversion}",
    )
    named = {"signature_name": f"{dtype}_in", "instances": [{"x": [7, 8]}]}
    assert error_of(dtype_server, named) == (
        400,
        f"Failed to process element: 0 key: x of 'instances' list. Error: {conversion}",
    )


def test_an_object_for_such_an_input_is_a_type_error_naming_the_dtype(dtype_server):
    """json_tensor.cc FillTensorProto: an object leaf for a non-string dtype is TypeError(val, dtype)
    ("... Type: Object is not of expected type: <DataTypeString>"), before any conversion."""
    body = {"signature_name": "bfloat16_in", "inputs": [[{"a": 1}]]}
    assert error_of(dtype_server, body) == (
        400,
        'JSON Value: {\n    "a": 1\n} Type: Object is not of expected type: bfloat16',
    )


@pytest.mark.parametrize("dtype", UNCONVERTED)
@pytest.mark.parametrize("key", ["inputs", "instances"])
def test_an_output_of_a_dtype_json_cannot_write_is_a_bad_request(dtype_server, dtype, key):
    """json_tensor.cc AddSingleValueAndAdvance, default case: InvalidArgument("Failed to write JSON
    value for tensor type: ", DataTypeString(dtype)), in the columnar and the row format alike."""
    body = {"signature_name": f"{dtype}_out", key: [[0.5, 1]]}
    assert error_of(dtype_server, body) == (400, f"Failed to write JSON value for tensor type: {dtype}")


def test_an_output_of_such_a_dtype_with_no_values_is_written(dtype_server):
    """json_tensor.cc AddTensorValues: the error comes from writing a value; a tensor with none is
    written as its nested empty lists."""
    status, text = predict(dtype_server, {"signature_name": "half_out", "inputs": [[], []]})
    assert (status, json.loads(text)) == (200, {"outputs": [[], []]})


def test_several_outputs_in_the_row_format_are_one_object_a_row_each_on_its_own_lines(dtype_server):
    """json_tensor.cc MakeRowFormatJsonFromTensors: each row is an object of every output's value,
    its StartObject written before SetFormatOptions(kFormatSingleLineArray), so the object and each
    member start a line of their own and each value stays on one line."""
    status, text = predict(dtype_server, {"instances": [[1, 2], [3, 4]]})
    assert status == 200
    assert text == (
        "{\n"
        '    "predictions": [\n'
        "        {\n"
        '            "doubled": [2.0, 4.0],\n'
        '            "negated": [-1.0, -2.0]\n'
        "        },\n"
        "        {\n"
        '            "doubled": [6.0, 8.0],\n'
        '            "negated": [-3.0, -4.0]\n'
        "        }\n"
        "    ]\n"
        "}"
    )


def test_several_outputs_in_the_columnar_format_are_an_object_of_tensors(dtype_server):
    """json_tensor.cc MakeColumnarFormatJsonFromTensors: {"outputs": {name: tensor, ...}}."""
    status, text = predict(dtype_server, {"inputs": [[1, 2]]})
    assert (status, json.loads(text)) == (
        200,
        {"outputs": {"doubled": [[2.0, 4.0]], "negated": [[-1.0, -2.0]]}},
    )


def test_a_bfloat16_output_is_answered_over_grpc_as_its_bits_in_half_val(dtype_server):
    """tensorflow/core/framework/tensor.cc ProtoHelper<bfloat16> (AsProtoField): each value's 16
    bits in half_val. REST refuses to write the tensor; Predict over gRPC answers it."""
    stubs = ServingStubs(dtype_server.address)
    try:
        request = predict_request(np.array([[1.0, -2.5]], np.float32), signature="bfloat16_out")
        answer = stubs.prediction.Predict(request, timeout=30).outputs["y"]
    finally:
        stubs.close()
    assert answer.dtype == types_pb2.DT_BFLOAT16
    assert [dim.size for dim in answer.tensor_shape.dim] == [1, 2]
    assert list(answer.half_val) == [0x3F80, 0xC020]  # the high 16 bits of float32 1.0 and -2.5
