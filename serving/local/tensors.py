"""TensorProto <-> numpy as TensorFlow's Tensor::FromProto / AsProtoField / AsProtoTensorContent do it.

Decoding (tensorflow/core/framework/tensor.cc, ``Tensor::FromProto``): the shape must be valid
(known rank, at most 254 dimensions, none negative, an element count that fits int64); with
elements to fill, ``tensor_content`` must hold exactly their bytes, else the dtype's value
field is read: more values than elements are cut off, fewer repeat the last one, none means
zeros. ``tensor_content`` is never copied: the array is a read-only view of the request bytes.
Values expanded from a value field are the one way a small request can make the server
allocate a lot, so they are held to a byte budget before anything is allocated.

Encoding: a response tensor goes out either in its value field (``float_val``, ``int_val``, ...;
what TF Serving sends by default) or as ``tensor_content`` (``--enable_serialization_as_tensor_content``).
The value fields are packed repeated fields, so their bytes are written straight from numpy:
fixed-width types are their little-endian bytes, varint types are encoded with array operations.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from google.protobuf.internal.encoder import _VarintBytes
from tensorflow.core.framework import tensor_pb2, types_pb2

# dtype enum -> (numpy dtype in wire byte order, value field, its number, how its values are encoded)
_FIXED, _VARINT = "fixed", "varint"
_NUMERIC = {
    types_pb2.DT_FLOAT: (np.dtype("<f4"), "float_val", 5, _FIXED),
    types_pb2.DT_DOUBLE: (np.dtype("<f8"), "double_val", 6, _FIXED),
    types_pb2.DT_INT32: (np.dtype("<i4"), "int_val", 7, _VARINT),
    types_pb2.DT_INT16: (np.dtype("<i2"), "int_val", 7, _VARINT),
    types_pb2.DT_INT8: (np.dtype("i1"), "int_val", 7, _VARINT),
    types_pb2.DT_UINT8: (np.dtype("u1"), "int_val", 7, _VARINT),
    types_pb2.DT_UINT16: (np.dtype("<u2"), "int_val", 7, _VARINT),
    types_pb2.DT_INT64: (np.dtype("<i8"), "int64_val", 10, _VARINT),
    types_pb2.DT_BOOL: (np.dtype("?"), "bool_val", 11, _VARINT),
    types_pb2.DT_HALF: (np.dtype("<f2"), "half_val", 13, _VARINT),
    types_pb2.DT_UINT32: (np.dtype("<u4"), "uint32_val", 16, _VARINT),
    types_pb2.DT_UINT64: (np.dtype("<u8"), "uint64_val", 17, _VARINT),
}
_ENUM_OF_NUMPY = {np.dtype(dtype.type): enum for enum, (dtype, *_) in _NUMERIC.items()}
MAX_DIMS = 254  # TensorShape's kMaxDims
_INT64_MAX = (1 << 63) - 1
_TENSOR_CONTENT_FIELD = 4


class MalformedTensor(ValueError):
    """Tensor::FromProto would fail: TF Serving answers ``tensor parsing error: <alias>``."""


class TensorTooLarge(ValueError):
    """Decoding would allocate more than the server's budget (or more than any array can hold)."""


def dtype_name(enum: int) -> str:
    """DT_FLOAT for types_pb2.DT_FLOAT, as TF Serving writes dtypes in messages."""
    try:
        return types_pb2.DataType.Name(enum)
    except ValueError:
        return f"DataType({enum})"


def numpy_dtype(enum: int) -> np.dtype:
    """The numpy dtype for a DataType enum; MalformedTensor if this server does not support it."""
    if enum not in _NUMERIC:
        raise MalformedTensor(f"dtype {dtype_name(enum)} is not supported by this server")
    return np.dtype(_NUMERIC[enum][0].type)


def shape_of(proto: tensor_pb2.TensorProto) -> tuple[int, ...]:
    """The proto's shape if TensorShape::IsValid accepts it; MalformedTensor otherwise."""
    shape = proto.tensor_shape
    if shape.unknown_rank or len(shape.dim) > MAX_DIMS:
        raise MalformedTensor("invalid tensor_shape")
    dims = tuple(dim.size for dim in shape.dim)
    elements = 1
    for size in dims:  # in order, as TensorShape multiplies: an overflow before a 0 still counts
        elements *= size
        if size < 0 or elements > _INT64_MAX:
            raise MalformedTensor("invalid tensor_shape")
    return dims


@dataclass(frozen=True)
class TensorBudget:
    """How many bytes a request's value fields may make the server allocate (tensor_content is a view)."""

    max_bytes: int

    def check(self, alias: str, shape: tuple[int, ...], dtype: np.dtype) -> None:
        nbytes = math.prod(shape) * dtype.itemsize
        if nbytes > self.max_bytes:
            raise TensorTooLarge(
                f"input {alias} of shape {_shape_text(shape)} would take {nbytes} bytes, more than this "
                f"server allows a request to expand to ({self.max_bytes}; --max-request-tensor-bytes)")


UNLIMITED = TensorBudget(1 << 62)


def _shape_text(shape: tuple[int, ...]) -> str:
    return "[" + ",".join(map(str, shape)) + "]"


def _check_numpy_can_hold(alias: str, shape: tuple[int, ...], dtype: np.dtype) -> None:
    # numpy refuses shapes whose non-zero sizes multiply past its index range even with no elements.
    if math.prod(size for size in shape if size) * dtype.itemsize > _INT64_MAX:
        raise TensorTooLarge(f"input {alias} has shape {_shape_text(shape)}, which no array on this server "
                             "can hold (the product of its non-zero sizes is too large)")


def to_array(proto: tensor_pb2.TensorProto, content: memoryview | bytes | None = None, *,
             alias: str = "", budget: TensorBudget = UNLIMITED) -> np.ndarray:
    """The array Tensor::FromProto makes of proto; content, if given, stands for its tensor_content.

    Raises MalformedTensor where TensorFlow's parse fails, TensorTooLarge over budget.
    """
    shape = shape_of(proto)
    if proto.dtype == types_pb2.DT_INVALID:
        raise MalformedTensor("dtype DT_INVALID")
    if proto.dtype not in _NUMERIC:
        raise MalformedTensor(f"dtype {dtype_name(proto.dtype)} is not supported by this server")
    wire_dtype, field_name, _, _ = _NUMERIC[proto.dtype]
    native = np.dtype(wire_dtype.type)
    _check_numpy_can_hold(alias, shape, native)
    count = math.prod(shape)
    if count == 0:
        return np.empty(shape, dtype=native)
    if content is None:
        content = proto.tensor_content  # each read of the field copies the bytes: read it once
    if len(content):
        if len(content) != count * wire_dtype.itemsize:
            raise MalformedTensor(f"tensor_content has {len(content)} bytes, shape {_shape_text(shape)} "
                                  f"needs {count * wire_dtype.itemsize}")
        return np.frombuffer(content, dtype=wire_dtype).astype(native, copy=False).reshape(shape)
    budget.check(alias, shape, native)
    values = getattr(proto, field_name)
    if proto.dtype == types_pb2.DT_HALF:  # half_val holds the 16-bit patterns in int32s
        typed = np.asarray(values, dtype=np.int32).astype(np.uint16).view(np.float16)
    elif field_name == "int_val" and native != np.int32:  # int_val is int32: narrower types wrap
        typed = np.asarray(values, dtype=np.int32).astype(native)
    else:
        typed = np.asarray(values, dtype=native)
    if typed.size >= count:
        return typed[:count].reshape(shape)
    array = np.empty(count, dtype=native)
    array[: typed.size] = typed
    array[typed.size:] = typed[-1] if typed.size else 0
    return array.reshape(shape)


# --- encoding -------------------------------------------------------------------------------------

def tensor_enum(array: np.ndarray) -> int:
    """The DataType enum of an array this server can send; TypeError otherwise."""
    enum = _ENUM_OF_NUMPY.get(np.dtype(array.dtype.type))
    if enum is None:
        raise TypeError(f"cannot encode numpy dtype {array.dtype} as a TensorProto")
    return enum


def _tensor_head(array: np.ndarray, enum: int) -> bytes:
    head = tensor_pb2.TensorProto(dtype=enum)
    head.tensor_shape.SetInParent()  # AsProto always writes the shape, a scalar's empty one included
    for size in array.shape:
        head.tensor_shape.dim.add(size=size)
    return head.SerializeToString()


def _field_header(number: int, length: int) -> bytes:
    return _VarintBytes(number << 3 | 2) + _VarintBytes(length)


def varint_bytes(values: np.ndarray) -> np.ndarray:
    """Protobuf varints of integer values (negatives as 64-bit two's complement), as uint8 bytes."""
    if values.dtype.itemsize == 1 and values.dtype != np.int8 and not np.any(values.view(np.uint8) & 0x80):
        return values.reshape(-1).view(np.uint8)  # 0..127: every varint is the byte itself
    wide = values.reshape(-1).astype(np.int64).view(np.uint64)
    lengths = np.ones(wide.size, dtype=np.int64)
    for shift in range(7, 64, 7):
        lengths += wide >= np.uint64(1 << shift)
    ends = np.cumsum(lengths)
    out = np.empty(int(ends[-1]) if ends.size else 0, dtype=np.uint8)
    starts = ends - lengths
    for index in range(int(lengths.max()) if lengths.size else 0):
        holds = lengths > index
        chunk = (wide[holds] >> np.uint64(7 * index)) & np.uint64(0x7F)
        more = (lengths[holds] > index + 1).astype(np.uint64) << np.uint64(7)
        out[starts[holds] + index] = (chunk | more).astype(np.uint8)
    return out


def encode_tensor(array: np.ndarray, as_content: bool) -> list:
    """The serialized TensorProto of array as byte chunks to join (the payload is not copied here).

    as_content: AsProtoTensorContent (raw bytes in tensor_content); otherwise AsProtoField (the
    dtype's packed value field), TF Serving's default.
    """
    enum = tensor_enum(array)
    wire_dtype, _, number, kind = _NUMERIC[enum]
    head = _tensor_head(array, enum)
    if array.size == 0:
        return [head]
    if as_content or kind == _FIXED:
        payload = np.ascontiguousarray(array, dtype=wire_dtype).reshape(-1).view(np.uint8)
        number = _TENSOR_CONTENT_FIELD if as_content else number
    elif enum == types_pb2.DT_HALF:
        payload = varint_bytes(np.ascontiguousarray(array, dtype=wire_dtype).view(np.uint16))
    else:
        payload = varint_bytes(np.ascontiguousarray(array))
    return [head, _field_header(number, payload.size), memoryview(payload)]


def fill_tensor_proto(proto: tensor_pb2.TensorProto, array: np.ndarray,
                      as_content: bool = True) -> tensor_pb2.TensorProto:
    """Write array into proto (e.g. a response's output map entry) the way encode_tensor does."""
    proto.ParseFromString(b"".join(encode_tensor(np.asarray(array), as_content)))
    return proto


def to_tensor_proto(array: np.ndarray, as_content: bool = True) -> tensor_pb2.TensorProto:
    """A new TensorProto holding array (tensor_content by default)."""
    return fill_tensor_proto(tensor_pb2.TensorProto(), array, as_content)
