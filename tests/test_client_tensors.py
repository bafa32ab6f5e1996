"""The client's codec: numpy <-> TensorProto without TensorFlow, in every form a server may answer."""

from __future__ import annotations

import numpy as np
import pytest

from client.protos import tensor_pb2, types_pb2
from client.tensors import (
    TensorBudget,
    TensorDecodeError,
    TensorRankUnsupported,
    TensorTooLarge,
    encode_tensor,
    from_tensor_proto,
    shape_proto,
    to_tensor_proto,
)


@pytest.mark.parametrize(
    "dtype",
    [
        "float32",
        "float64",
        "float16",
        "int8",
        "int16",
        "int32",
        "int64",
        "uint8",
        "uint16",
        "uint32",
        "uint64",
        "bool",
    ],
)
def test_requests_carry_raw_bytes_that_decode_back_exactly(dtype):
    array = (np.arange(12).reshape(3, 4) % 2).astype(dtype)
    proto = to_tensor_proto(array)
    assert proto.tensor_content == array.tobytes()
    assert [d.size for d in proto.tensor_shape.dim] == [3, 4]
    decoded = from_tensor_proto(proto)
    assert decoded.dtype == array.dtype and np.array_equal(decoded, array)


def test_big_endian_and_strided_input_is_sent_little_endian_c_order():
    array = np.arange(12, dtype=">f4").reshape(3, 4)[:, ::2]
    decoded = from_tensor_proto(to_tensor_proto(array))
    assert decoded.dtype == np.dtype("<f4") and np.array_equal(decoded, array)


def test_scalars_and_empty_tensors_round_trip():
    assert from_tensor_proto(to_tensor_proto(np.float32(0.1))) == np.float32(0.1)
    empty = from_tensor_proto(to_tensor_proto(np.zeros((0, 0), np.float32)))
    assert empty.shape == (0, 0)


def test_typed_value_fields_are_decoded_like_tensorflow():
    """tensorflow/core/framework/tensor.cc, FromProtoField: fill, zeros, truncation."""
    shape = shape_proto((2, 3))
    floats = tensor_pb2.TensorProto(
        dtype=types_pb2.DT_FLOAT, tensor_shape=shape, float_val=[0, 1, 1, 0, 0, 1]
    )
    assert from_tensor_proto(floats).tolist() == [[0, 1, 1], [0, 0, 1]]
    uint8 = tensor_pb2.TensorProto(dtype=types_pb2.DT_UINT8, tensor_shape=shape, int_val=[1, 0, 1, 1, 0, 0])
    assert from_tensor_proto(uint8).dtype == np.uint8
    # TensorFlow repeats the last value to fill the shape, and an empty field means zeros.
    short = tensor_pb2.TensorProto(dtype=types_pb2.DT_FLOAT, tensor_shape=shape, float_val=[0, 1])
    assert from_tensor_proto(short).tolist() == [[0, 1, 1], [1, 1, 1]]
    none = tensor_pb2.TensorProto(dtype=types_pb2.DT_INT32, tensor_shape=shape)
    assert from_tensor_proto(none).tolist() == [[0, 0, 0], [0, 0, 0]]
    # More values than the shape holds: TensorFlow keeps the first ones (FromProtoField copies n).
    more = tensor_pb2.TensorProto(
        dtype=types_pb2.DT_FLOAT, tensor_shape=shape_proto((2,)), float_val=[1, 2, 3]
    )
    assert from_tensor_proto(more).tolist() == [1, 2]
    # int_val narrows to 8 bits as a C cast from int32 does.
    wide = tensor_pb2.TensorProto(
        dtype=types_pb2.DT_UINT8, tensor_shape=shape_proto((3,)), int_val=[300, -1, 7]
    )
    assert from_tensor_proto(wide).tolist() == [44, 255, 7]
    half = tensor_pb2.TensorProto(
        dtype=types_pb2.DT_HALF,
        tensor_shape=shape_proto((2,)),
        half_val=np.array([1.5, -2], np.float16).view(np.uint16).tolist(),
    )
    assert from_tensor_proto(half).tolist() == [1.5, -2.0]


def test_inconsistent_tensors_are_refused_not_guessed():
    with pytest.raises(TensorDecodeError, match="needs 24"):
        from_tensor_proto(
            tensor_pb2.TensorProto(
                dtype=types_pb2.DT_FLOAT, tensor_shape=shape_proto((2, 3)), tensor_content=b"\0" * 20
            )
        )
    with pytest.raises(TensorDecodeError, match="DT_STRING"):
        from_tensor_proto(tensor_pb2.TensorProto(dtype=types_pb2.DT_STRING, string_val=[b"a"]))


def test_shapes_follow_tensor_shape_is_valid():
    """tensor_shape.cc TensorShape::IsValid: at most 254 dims, none negative, int64 count."""
    for dims in ((-1, 2), (1,) * 255, (2**62, 4)):
        with pytest.raises(TensorDecodeError, match="invalid tensor_shape"):
            from_tensor_proto(
                tensor_pb2.TensorProto(dtype=types_pb2.DT_FLOAT, tensor_shape=shape_proto(dims))
            )


def test_unknown_rank_is_ignored_and_the_dims_decide():
    """tensor_shape.cc: "TensorShape allows parsing protos with unknown_shape() set"."""
    unknown = tensor_pb2.TensorProto(dtype=types_pb2.DT_FLOAT, float_val=[0.5])
    unknown.tensor_shape.unknown_rank = True
    assert from_tensor_proto(unknown).shape == ()
    unknown.tensor_shape.dim.add(size=2)
    assert from_tensor_proto(unknown).tolist() == [0.5, 0.5]


def test_valid_ranks_past_numpys_are_refused_by_name():
    """tensor_shape.cc takes 254 dims, numpy arrays 64: a clear error, not numpy's ValueError."""
    deep = tensor_pb2.TensorProto(dtype=types_pb2.DT_FLOAT, tensor_shape=shape_proto((1,) * 65))
    with pytest.raises(TensorRankUnsupported, match="output 'mask' has 65 dimensions"):
        from_tensor_proto(deep, name="output 'mask'")


def test_bool_content_bytes_other_than_0_and_1_are_refused():
    """tensor.cc Helper<bool>::Decode: each byte must be 0 or 1."""
    proto = tensor_pb2.TensorProto(
        dtype=types_pb2.DT_BOOL, tensor_shape=shape_proto((3,)), tensor_content=b"\x00\x01\x01"
    )
    assert from_tensor_proto(proto).tolist() == [False, True, True]
    proto.tensor_content = b"\x00\x01\x02"
    with pytest.raises(TensorDecodeError, match="DT_BOOL"):
        from_tensor_proto(proto)


def test_no_elements_means_nothing_else_is_read():
    """tensor.cc Tensor::FromProto reads tensor_content and the value fields only when N > 0."""
    empty = tensor_pb2.TensorProto(
        dtype=types_pb2.DT_FLOAT, tensor_shape=shape_proto((0, 3)), tensor_content=b"\0" * 7
    )
    assert from_tensor_proto(empty).shape == (0, 3)


def test_a_budget_bounds_what_value_fields_expand_to_but_not_tensor_content():
    one_value = tensor_pb2.TensorProto(
        dtype=types_pb2.DT_FLOAT, tensor_shape=shape_proto((1024, 1024)), float_val=[1.0]
    )
    with pytest.raises(TensorTooLarge, match=r"input x of shape \[1024,1024\] would take 4194304 bytes"):
        from_tensor_proto(one_value, name="input x", budget=TensorBudget(1 << 20))
    content = to_tensor_proto(np.zeros((1024, 1024), np.float32))
    assert from_tensor_proto(content, budget=TensorBudget(16)).shape == (1024, 1024)


@pytest.mark.parametrize(
    "dtype",
    [
        "float32",
        "float64",
        "float16",
        "int8",
        "int16",
        "int32",
        "int64",
        "uint8",
        "uint16",
        "uint32",
        "uint64",
        "bool",
    ],
)
def test_value_field_encoding_decodes_back_exactly(dtype):
    """What the embedded server answers by default (AsProtoField) is what the client reads."""
    array = (np.arange(-6, 6).reshape(3, 4) * 37).astype(dtype)
    proto = tensor_pb2.TensorProto.FromString(b"".join(encode_tensor(array, as_content=False)))
    assert not proto.tensor_content
    decoded = from_tensor_proto(proto)
    assert decoded.dtype == array.dtype and np.array_equal(decoded, array)
