"""client.wire: requests byte-identical to protobuf's encoding, responses decoded as protobuf does."""

from __future__ import annotations

import numpy as np
import pytest
from google.protobuf.message import DecodeError
from hypothesis import given, settings
from hypothesis import strategies as st

from client import wire
from client.protos import model_pb2, predict_pb2, types_pb2
from client.tensors import from_tensor_proto, to_tensor_proto


def proto_request(spec, input_name, batch, output_filter):
    request = predict_pb2.PredictRequest(model_spec=spec, output_filter=output_filter)
    request.inputs[input_name].CopyFrom(to_tensor_proto(batch))
    return request.SerializeToString()


def proto_decode(buffer: bytes) -> dict[str, np.ndarray]:
    response = predict_pb2.PredictResponse.FromString(buffer)
    return {name: from_tensor_proto(tensor) for name, tensor in response.outputs.items()}


@settings(max_examples=80, deadline=None)
@given(
    rows=st.integers(0, 300),
    cols=st.integers(0, 300),
    signature=st.sampled_from(["serving_default", "compact", ""]),
    model=st.sampled_from(["threshold", "m", "a-much-longer-model-name" * 8]),
    version=st.one_of(st.none(), st.integers(0, 2**40), st.text(min_size=1, max_size=12)),
    output_filter=st.lists(st.sampled_from(["mask", "low", "é"]), max_size=2),
    dtype=st.sampled_from([np.float32, np.uint8, np.float64]),
)
def test_request_frame_is_byte_identical_to_protobufs(
    rows, cols, signature, model, version, output_filter, dtype
):
    batch = np.arange(rows * cols).astype(dtype).reshape(rows, cols)
    spec = model_pb2.ModelSpec(name=model, signature_name=signature)
    if isinstance(version, int):
        spec.version.value = version
    elif version is not None:
        spec.version_label = version
    frame = wire.request_frame(spec, "x", batch.shape, batch.dtype, output_filter=output_filter)
    assert frame.encode(batch) == proto_request(spec, "x", batch, output_filter)


def test_request_frame_refuses_an_array_it_was_not_made_for():
    frame = wire.request_frame(model_pb2.ModelSpec(name="threshold"), "x", (2, 3))
    with pytest.raises(ValueError, match=r"float32 \(2, 3\)"):
        frame.encode(np.zeros((3, 2), np.float32))
    with pytest.raises(ValueError, match="C-contiguous"):
        frame.encode(np.zeros((3, 2), np.float32).T)


@pytest.mark.parametrize("dtype", [np.float32, np.uint8])
@pytest.mark.parametrize("version", [None, 0, 7, 2**40])
def test_large_responses_decode_as_views_equal_to_proto_decoding(dtype, version):
    mask = (np.random.default_rng(0).random((512, 64)) > 0.5).astype(dtype)
    response = predict_pb2.PredictResponse()
    response.model_spec.name = "threshold"
    response.model_spec.signature_name = "serving_default"
    if version is not None:
        response.model_spec.version.value = version
    response.outputs["mask"].CopyFrom(to_tensor_proto(mask))
    buffer = response.SerializeToString()
    assert len(buffer) >= wire.PROTO_DECODE_BELOW  # the fast path, not the fallback
    decoded = wire.decode_response(buffer)
    assert decoded.outputs.keys() == {"mask"}
    assert decoded.outputs["mask"].dtype == dtype and np.array_equal(decoded.outputs["mask"], mask)
    assert decoded.outputs["mask"].base is not None  # a view into the received bytes, no copy
    assert decoded.version == version


def test_typed_and_tensor_content_outputs_in_one_response_decode_as_protobuf_does():
    response = predict_pb2.PredictResponse()
    response.outputs["big"].CopyFrom(to_tensor_proto(np.ones((64, 128), np.float32)))
    typed = response.outputs["typed"]
    typed.dtype = types_pb2.DT_FLOAT
    typed.tensor_shape.dim.add().size = 3
    typed.float_val.extend([1.0, 2.0, 3.0])
    buffer = response.SerializeToString()
    decoded = wire.decode_response(buffer)
    expected = proto_decode(buffer)
    assert decoded.outputs.keys() == expected.keys() == {"big", "typed"}
    for key in expected:
        assert np.array_equal(decoded.outputs[key], expected[key])


def test_small_responses_decode_through_protobuf():
    response = predict_pb2.PredictResponse()
    response.model_spec.version.value = 3
    response.outputs["low"].CopyFrom(to_tensor_proto(np.float32(-0.1)))
    decoded = wire.decode_response(response.SerializeToString())
    assert decoded.outputs["low"].shape == () and decoded.outputs["low"] == np.float32(-0.1)
    assert decoded.version == 3


@pytest.mark.parametrize("garbage", [b"\xff" * 20_000, b"\x0a\xff\xff\xff\x0f" + b"\x00" * 20_000])
def test_bytes_that_are_no_response_raise_decode_error(garbage):
    with pytest.raises(DecodeError):
        wire.decode_response(garbage)


def test_a_content_size_that_disagrees_with_the_shape_is_a_tensor_error():
    response = predict_pb2.PredictResponse()
    tensor = response.outputs["mask"]
    tensor.dtype = types_pb2.DT_FLOAT
    tensor.tensor_shape.dim.add().size = 10_000
    tensor.tensor_content = b"\x00" * 39_996  # one value short
    with pytest.raises(ValueError, match="tensor_content holds 39996 bytes"):
        wire.decode_response(response.SerializeToString())


def test_large_responses_follow_from_proto_on_rank_and_bool_bytes():
    """tensor.cc / tensor_shape.cc, on the fast path too: unknown_rank is ignored, bool bytes are 0 or 1."""
    response = predict_pb2.PredictResponse()
    response.outputs["mask"].CopyFrom(to_tensor_proto(np.ones((128, 128), np.bool_)))
    response.outputs["mask"].tensor_shape.unknown_rank = True
    assert len(response.SerializeToString()) >= wire.PROTO_DECODE_BELOW
    assert wire.decode_response(response.SerializeToString()).outputs["mask"].all()
    response.outputs["mask"].tensor_content = b"\x01" * (128 * 128 - 1) + b"\x02"
    with pytest.raises(ValueError, match="DT_BOOL"):
        wire.decode_response(response.SerializeToString())
