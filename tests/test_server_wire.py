"""client/wire.py, server side: reads requests as protobuf would, writes responses protobuf parses back."""

from __future__ import annotations

import numpy as np
import pytest
from google.protobuf.internal.encoder import _VarintBytes

from client.protos import model_pb2, predict_pb2, tensor_pb2, types_pb2
from client.tensors import encode_tensor, from_tensor_proto
from client.wire import parse_request, response_bytes
from serving.local.flags import parse_options

X = np.arange(12, dtype=np.float32).reshape(3, 4)


def _request(**tensor_fields) -> predict_pb2.PredictRequest:
    request = predict_pb2.PredictRequest(model_spec=model_pb2.ModelSpec(name="threshold", signature_name="s"))
    tensor = request.inputs["x"]
    tensor.dtype = types_pb2.DT_FLOAT
    for size in X.shape:
        tensor.tensor_shape.dim.add(size=size)
    for name, value in tensor_fields.items():
        if isinstance(value, list):
            getattr(tensor, name).extend(value)
        else:
            setattr(tensor, name, value)
    request.output_filter.append("mask")
    return request


def _request_around(tensor: bytes) -> bytes:
    """A request whose input x is exactly these TensorProto bytes."""
    entry = b"\n\x01x\x12" + _VarintBytes(len(tensor)) + tensor
    return predict_pb2.PredictRequest(model_spec=model_pb2.ModelSpec(name="t")).SerializeToString() + (
        b"\x12" + _VarintBytes(len(entry)) + entry
    )


def _same_as_protobuf(raw: bytes) -> None:
    expected = predict_pb2.PredictRequest.FromString(raw)
    parts = parse_request(raw)
    assert parts.model_spec == expected.model_spec
    assert parts.output_filter == list(expected.output_filter)
    assert set(parts.inputs) == set(expected.inputs)
    for alias, tensor in parts.inputs.items():
        np.testing.assert_array_equal(
            from_tensor_proto(tensor.proto, tensor.content), from_tensor_proto(expected.inputs[alias])
        )


def test_tensor_content_is_a_view_of_the_request_bytes():
    raw = _request(tensor_content=X.tobytes()).SerializeToString()
    parts = parse_request(raw)
    content = parts.inputs["x"].content
    assert isinstance(content, memoryview) and content.obj is raw
    assert not parts.inputs["x"].proto.tensor_content
    _same_as_protobuf(raw)


@pytest.mark.parametrize(
    "raw",
    [
        _request(float_val=X.ravel().tolist()).SerializeToString(),
        _request(tensor_content=X.tobytes()).SerializeToString() + b"\xa2\x06\x03abc",  # an unknown field
        # model_spec twice: protobuf merges the two
        _request(tensor_content=X.tobytes()).SerializeToString()
        + predict_pb2.PredictRequest(
            model_spec=model_pb2.ModelSpec(version_label="stable")
        ).SerializeToString(),
        # the same input twice: the last entry wins
        _request(float_val=[1.0]).SerializeToString()
        + _request(tensor_content=X.tobytes()).SerializeToString(),
        # tensor_content twice inside one tensor: the last wins
        _request_around(
            tensor_pb2.TensorProto(tensor_content=(X + 1).tobytes()).SerializeToString()
            + _request(tensor_content=X.tobytes()).inputs["x"].SerializeToString()
        ),
        _request(tensor_content=X.tobytes()).SerializeToString()[:-9],  # cut short
    ],
    ids=["float_val", "unknown-field", "two-model-specs", "input-twice", "content-twice", "truncated"],
)
def test_unusual_requests_mean_what_protobuf_says(raw):
    try:
        predict_pb2.PredictRequest.FromString(raw)
    except Exception:  # noqa: BLE001 - bytes protobuf refuses must be refused here too
        with pytest.raises(Exception):  # noqa: B017
            parse_request(raw)
        return
    _same_as_protobuf(raw)


def test_response_bytes_parse_back_as_the_outputs():
    spec = model_pb2.ModelSpec(name="threshold", signature_name="s")
    spec.version.value = 3
    for as_content in (True, False):
        raw = response_bytes(
            [("mask", encode_tensor(X, as_content)), ("n", encode_tensor(np.uint8(7), as_content))], spec
        )
        response = predict_pb2.PredictResponse.FromString(raw)
        assert response.model_spec == spec
        np.testing.assert_array_equal(from_tensor_proto(response.outputs["mask"]), X)
        assert from_tensor_proto(response.outputs["n"]).tolist() == 7
        assert bool(response.outputs["mask"].tensor_content) == as_content


def test_tensor_content_encoding_matches_protobuf():
    """AsProtoTensorContent: dtype, shape, then the raw little-endian bytes."""
    expected = tensor_pb2.TensorProto(dtype=types_pb2.DT_FLOAT, tensor_content=X.tobytes())
    for size in X.shape:
        expected.tensor_shape.dim.add(size=size)
    assert b"".join(encode_tensor(X, as_content=True)) == expected.SerializeToString()


def test_tensor_content_flag_has_an_environment_default(monkeypatch):
    assert not parse_options([]).enable_serialization_as_tensor_content
    monkeypatch.setenv("SERVING_LOCAL_ENABLE_SERIALIZATION_AS_TENSOR_CONTENT", "true")
    monkeypatch.setenv("SERVING_LOCAL_MAX_REQUEST_TENSOR_BYTES", "512")
    options = parse_options([])
    assert options.enable_serialization_as_tensor_content and options.request_tensor_budget == 512
    assert parse_options(["--max-message-bytes", "4096"]).request_tensor_budget == 512
    monkeypatch.delenv("SERVING_LOCAL_MAX_REQUEST_TENSOR_BYTES")
    assert parse_options(["--max-message-bytes", "4096"]).request_tensor_budget == 1024  # a quarter
