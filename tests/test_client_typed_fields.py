"""Typed value fields (float_val, int_val, bool_val, ...): TF Serving's default response encoding.

TF Serving answers Predict with ``Tensor::AsProtoField`` unless started with
``--enable_serialization_as_tensor_content`` (``tensorflow_serving/servables/tensorflow/
predict_util.cc``, ``model_servers/main.cc``), so a float32 mask comes back in ``float_val``
and the uint8 mask in ``int_val``. Values are read as TensorFlow's ``Tensor::FromProto`` reads
them (``tensorflow/core/framework/tensor.cc``, ``FromProtoField``): fewer values than the shape
holds repeat the last one, none mean zeros, more are truncated.

The fast decoder (``client.wire``) must equal protobuf's own decoding (``client.tensors`` on a
parsed message) of bytes that protobuf serialized, packed (proto3's default) and unpacked (which
every parser must accept), and both must equal TensorFlow's rule computed here from the values.
"""

from __future__ import annotations

import json
import math
import tracemalloc
from unittest import mock

import numpy as np
import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from hypothesis import given, settings
from hypothesis import strategies as st

from client import wire
from client.protos import predict_pb2, tensor_pb2, types_pb2
from client.tensors import TensorDecodeError, from_tensor_proto, shape_proto
from tests.support.embedded_server import embedded_server
from tests.support.grpc_calls import ServingStubs, predict_request
from tests.support.processes import run_module

INT32 = st.one_of(st.integers(0, 1), st.integers(-200, 300), st.integers(-(2**31), 2**31 - 1))
# dtype -> (DataType, value field, strategy for one value as the field holds it)
CASES = {
    "float32": (types_pb2.DT_FLOAT, "float_val", st.floats(width=32)),
    "float64": (types_pb2.DT_DOUBLE, "double_val", st.floats()),
    "float16": (types_pb2.DT_HALF, "half_val", st.integers(0, 2**16 - 1)),  # bit patterns
    "int8": (types_pb2.DT_INT8, "int_val", INT32),
    "int16": (types_pb2.DT_INT16, "int_val", INT32),
    "int32": (types_pb2.DT_INT32, "int_val", INT32),
    "uint8": (types_pb2.DT_UINT8, "int_val", INT32),
    "uint16": (types_pb2.DT_UINT16, "int_val", INT32),
    "int64": (types_pb2.DT_INT64, "int64_val", st.integers(-(2**63), 2**63 - 1)),
    "uint32": (types_pb2.DT_UINT32, "uint32_val", st.integers(0, 2**32 - 1)),
    "uint64": (types_pb2.DT_UINT64, "uint64_val", st.integers(0, 2**64 - 1)),
    "bool": (types_pb2.DT_BOOL, "bool_val", st.booleans()),
}


def _unpacked_messages():
    """Protobuf classes that serialize the same fields unpacked (proto2): a TensorProto twin, and a
    PredictResponse twin whose map entries carry the tensor as bytes (the same wire format)."""
    file = descriptor_pb2.FileDescriptorProto(
        name="unpacked_tensor_test.proto", package="unpacked", syntax="proto2"
    )
    tensor = file.message_type.add(name="Tensor")
    tensor.field.add(
        name="dtype",
        number=1,
        type=descriptor_pb2.FieldDescriptorProto.TYPE_INT32,
        label=descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL,
    )
    tensor.field.add(
        name="tensor_shape",
        number=2,
        type=descriptor_pb2.FieldDescriptorProto.TYPE_BYTES,
        label=descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL,
    )
    for field in tensor_pb2.TensorProto.DESCRIPTOR.fields:
        if field.name in {name for _, name, _ in CASES.values()}:
            tensor.field.add(
                name=field.name,
                number=field.number,
                type=field.type,
                label=descriptor_pb2.FieldDescriptorProto.LABEL_REPEATED,
            )
    entry = file.message_type.add(name="Entry")
    entry.field.add(
        name="key",
        number=1,
        type=descriptor_pb2.FieldDescriptorProto.TYPE_STRING,
        label=descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL,
    )
    entry.field.add(
        name="value",
        number=2,
        type=descriptor_pb2.FieldDescriptorProto.TYPE_BYTES,
        label=descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL,
    )
    response = file.message_type.add(name="Response")
    response.field.add(
        name="outputs",
        number=1,
        type=descriptor_pb2.FieldDescriptorProto.TYPE_MESSAGE,
        type_name=".unpacked.Entry",
        label=descriptor_pb2.FieldDescriptorProto.LABEL_REPEATED,
    )
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    return (
        message_factory.GetMessageClass(pool.FindMessageTypeByName("unpacked.Tensor")),
        message_factory.GetMessageClass(pool.FindMessageTypeByName("unpacked.Response")),
    )


UnpackedTensor, UnpackedResponse = _unpacked_messages()


def serialize(dtype: str, shape: tuple[int, ...], values: list, *, packed: bool) -> bytes:
    """A PredictResponse with output 'y' holding ``values`` in its typed field, serialized by protobuf."""
    enum, field, _ = CASES[dtype]
    if packed:
        response = predict_pb2.PredictResponse()
        response.outputs["y"].CopyFrom(
            tensor_pb2.TensorProto(dtype=enum, tensor_shape=shape_proto(shape), **{field: values})
        )
        return response.SerializeToString()
    tensor = UnpackedTensor(
        dtype=enum, tensor_shape=shape_proto(shape).SerializeToString(), **{field: values}
    )
    response = UnpackedResponse()
    response.outputs.add(key="y", value=tensor.SerializeToString())
    return response.SerializeToString()


def tensorflow_rule(dtype: str, shape: tuple[int, ...], values: list) -> np.ndarray:
    """What Tensor::FromProto makes of the values, computed independently of the client."""
    _, field, _ = CASES[dtype]
    if field == "int_val":
        flat = np.array(values, dtype=np.int32).astype(dtype)  # static_cast from int32: the low bits
    elif field == "half_val":
        flat = np.array(values, dtype=np.uint16).view(np.float16)
    else:
        flat = np.array(values, dtype=dtype)
    count = math.prod(shape)
    if len(flat) == 0:
        flat = np.zeros(count, dtype=dtype)
    elif len(flat) < count:
        flat = np.concatenate([flat, np.repeat(flat[-1:], count - len(flat))])
    return flat[:count].reshape(shape)


def assert_identical(got: np.ndarray, expected: np.ndarray) -> None:
    assert got.dtype == expected.dtype and got.shape == expected.shape
    assert got.tobytes() == expected.tobytes()  # bit for bit: NaN payloads, -0.0


@st.composite
def typed_tensors(draw):
    dtype = draw(st.sampled_from(sorted(CASES)))
    shape = tuple(draw(st.lists(st.integers(0, 7), max_size=3)))
    count = math.prod(shape)
    how_many = draw(st.sampled_from(["exact", "fewer", "none", "more"]))
    size = {"exact": count, "fewer": max(count - 1, 0) // 2, "none": 0, "more": count + 3}[how_many]
    values = draw(st.lists(CASES[dtype][2], min_size=size, max_size=size))
    return dtype, shape, values


@settings(max_examples=400, deadline=None)
@given(case=typed_tensors(), packed=st.booleans())
def test_fast_decoder_equals_protobuf_and_tensorflows_rule(case, packed):
    dtype, shape, values = case
    buffer = serialize(dtype, shape, values, packed=packed)
    by_protobuf = from_tensor_proto(predict_pb2.PredictResponse.FromString(buffer).outputs["y"])
    assert_identical(by_protobuf, tensorflow_rule(dtype, shape, values))
    # Every size on the fast path; packed values must never need the proto decoder.
    proto_decoder = wire._decode_proto if not packed else mock.Mock(side_effect=AssertionError("fell back"))
    with (
        mock.patch.object(wire, "PROTO_DECODE_BELOW", 0),
        mock.patch.object(wire, "_decode_proto", proto_decoder),
    ):
        decoded = wire.decode_response(buffer)
    assert_identical(decoded.outputs["y"], by_protobuf)
    with mock.patch.object(wire, "PROTO_DECODE_BELOW", 0):
        assert_identical(wire.decode_response(buffer, {"y": shape}).outputs["y"], by_protobuf)


@pytest.mark.parametrize("dtype", ["float32", "uint8", "int8", "bool", "float64"])
def test_masks_in_typed_fields_decode_as_views_of_the_received_bytes(dtype):
    """The two masks TF Serving sends by default (float_val, int_val 0/1) cost no copy at all."""
    mask = (np.random.default_rng(0).random((512, 64)) > 0.5).astype(dtype)
    values = mask.ravel().tolist()
    buffer = serialize(dtype, mask.shape, values, packed=True)
    with mock.patch.object(wire, "_decode_proto", side_effect=AssertionError("fell back")):
        decoded = wire.decode_response(buffer, {"y": mask.shape}).outputs["y"]
    assert_identical(decoded, mask)
    assert isinstance(decoded.base, np.ndarray) and decoded.base.base is buffer  # a view, no copy


def test_multi_byte_varints_in_a_uint8_mask_fall_back_to_exact_values():
    """Values above 127 are two-byte varints: the bytes are no longer the values."""
    values = [0, 1, 200, 255, 127, 128, 300, -1] * 4096
    buffer = serialize("uint8", (len(values),), values, packed=True)
    decoded = wire.decode_response(buffer).outputs["y"]
    assert_identical(decoded, np.array(values, np.int32).astype(np.uint8))


def test_a_hostile_shape_with_one_value_is_refused_before_anything_is_allocated():
    """[16384, 16384] with one float_val: TensorFlow's rule would make 1 GiB of it."""
    buffer = serialize("float32", (16384, 16384), [1.0], packed=True)
    for threshold in (0, wire.PROTO_DECODE_BELOW):  # the fast path and the proto path
        tracemalloc.start()
        try:
            with (
                mock.patch.object(wire, "PROTO_DECODE_BELOW", threshold),
                pytest.raises(TensorDecodeError, match=r"has shape \(16384, 16384\), expected \(4, 8\)"),
            ):
                wire.decode_response(buffer, {"y": (4, 8)})
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert peak < 1 << 20


def test_outputs_not_asked_for_are_listed_but_not_decoded():
    response = predict_pb2.PredictResponse()
    response.outputs["y"].CopyFrom(
        tensor_pb2.TensorProto(dtype=types_pb2.DT_FLOAT, tensor_shape=shape_proto((2,)), float_val=[1, 0])
    )
    response.outputs["huge"].CopyFrom(
        tensor_pb2.TensorProto(dtype=types_pb2.DT_FLOAT, tensor_shape=shape_proto((1 << 40,)), float_val=[1])
    )
    decoded = wire.decode_response(response.SerializeToString(), {"y": (2,)})
    assert set(decoded.names) == {"y", "huge"} and decoded.outputs.keys() == {"y"}
    assert decoded.outputs["y"].tolist() == [1, 0]


@pytest.mark.parametrize("compact", [False, True], ids=["float_val", "compact-int_val"])
@pytest.mark.parametrize("tensor_content", [False, True], ids=["typed", "tensor_content"])
def test_cli_gets_exact_masks_in_both_response_encodings(fake_server, tmp_path, compact, tensor_content):
    """Through the CLI over loopback gRPC, against a server answering as TF Serving does by default
    (typed fields) and as it does with --enable_serialization_as_tensor_content."""
    server = fake_server(tensor_content=tensor_content)
    x = np.random.default_rng(3).normal(0, 0.2, (300, 256)).astype(np.float32)
    x[0, :4] = [np.nan, np.inf, -0.1, 0.1]
    np.save(tmp_path / "x.npy", x)
    flags = ["--batch-size", "100", *(["--compact"] if compact else [])]
    result = run_module(
        "client.predict",
        tmp_path / "x.npy",
        "-o",
        tmp_path / "mask.npy",
        "--json",
        "--server",
        server.address,
        *flags,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["check"]["checked"] == x.size
    mask = np.load(tmp_path / "mask.npy")
    assert mask.dtype == (np.uint8 if compact else np.float32)
    assert np.array_equal(mask, (x < np.float32(-0.1)) | (x > np.float32(0.1)))


CONTENT_FLAG = "--enable-serialization-as-tensor-content"


@pytest.fixture(scope="module", params=["typed", "tensor_content"])
def encoding_server(request):
    """The embedded server answering in one encoding: TF Serving's default typed fields, or
    tensor_content with the flag (``--enable_serialization_as_tensor_content`` in TF Serving)."""
    flags = [CONTENT_FLAG] if request.param == "tensor_content" else []
    with embedded_server(request.getfixturevalue("model_dir"), *flags) as handle:
        yield request.param, handle


@pytest.mark.parametrize("compact", [False, True], ids=["float32", "compact"])
def test_the_embedded_server_in_either_encoding_gives_exact_masks(encoding_server, tmp_path, compact):
    encoding, handle = encoding_server
    stubs = ServingStubs(handle.address)
    try:
        request = predict_request(np.zeros((2, 3), np.float32), signature="compact" if compact else None)
        reply = stubs.prediction.Predict(request, timeout=60)
    finally:
        stubs.close()
    tensor = next(iter(reply.outputs.values()))
    field = "int_val" if compact else "float_val"
    assert bool(tensor.tensor_content) == (encoding == "tensor_content")
    assert len(getattr(tensor, field)) == (0 if encoding == "tensor_content" else 6)
    x = np.random.default_rng(4).normal(0, 0.2, (300, 256)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    flags = ["--batch-size", "100", *(["--compact"] if compact else [])]
    result = run_module(
        "client.predict",
        tmp_path / "x.npy",
        "-o",
        tmp_path / "mask.npy",
        "--server",
        handle.address,
        *flags,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert np.array_equal(np.load(tmp_path / "mask.npy"), (x < np.float32(-0.1)) | (x > np.float32(0.1)))
