"""numpy arrays <-> TensorProto without TensorFlow: raw little-endian buffers both ways.

Requests always carry ``tensor_content`` (one ``tobytes`` copy, no per-element Python).
Responses are decoded with ``np.frombuffer`` when the server sends ``tensor_content`` (TF Serving
does) and from the typed repeated fields (``float_val``, ``int_val``, ...) when another server
sends those instead.
"""

from __future__ import annotations

import math

import numpy as np

from client.protos import tensor_pb2, tensor_shape_pb2, types_pb2

# DataType enum -> (numpy dtype, TensorProto field that holds its values when not in tensor_content)
_DTYPES = {
    types_pb2.DT_FLOAT: (np.dtype("<f4"), "float_val"),
    types_pb2.DT_DOUBLE: (np.dtype("<f8"), "double_val"),
    types_pb2.DT_HALF: (np.dtype("<f2"), "half_val"),
    types_pb2.DT_INT8: (np.dtype("i1"), "int_val"),
    types_pb2.DT_INT16: (np.dtype("<i2"), "int_val"),
    types_pb2.DT_INT32: (np.dtype("<i4"), "int_val"),
    types_pb2.DT_INT64: (np.dtype("<i8"), "int64_val"),
    types_pb2.DT_UINT8: (np.dtype("u1"), "int_val"),
    types_pb2.DT_UINT16: (np.dtype("<u2"), "int_val"),
    types_pb2.DT_UINT32: (np.dtype("<u4"), "uint32_val"),
    types_pb2.DT_UINT64: (np.dtype("<u8"), "uint64_val"),
    types_pb2.DT_BOOL: (np.dtype("?"), "bool_val"),
}
_ENUM_BY_DTYPE = {dtype: enum for enum, (dtype, _) in _DTYPES.items()}


class TensorDecodeError(ValueError):
    """A TensorProto that cannot be turned into an array (unknown dtype, sizes that disagree)."""


def dtype_name(enum: int) -> str:
    """'DT_FLOAT' for 1, and so on; the number itself for values this proto version lacks."""
    try:
        return types_pb2.DataType.Name(enum)
    except ValueError:
        return str(enum)


def numpy_dtype(enum: int) -> np.dtype:
    """The numpy dtype for a TensorFlow DataType enum value."""
    try:
        return _DTYPES[enum][0]
    except KeyError:
        raise TensorDecodeError(f"unsupported tensor dtype {dtype_name(enum)}") from None


def little_endian(dtype) -> np.dtype:
    """dtype in the byte order tensor_content uses (a big-endian dtype's little-endian twin)."""
    dtype = np.dtype(dtype)
    return dtype.newbyteorder("<") if dtype.byteorder == ">" else dtype


def dtype_enum(dtype) -> int:
    """The TensorFlow DataType enum value for a numpy dtype (either byte order)."""
    try:
        return _ENUM_BY_DTYPE[little_endian(dtype)]
    except KeyError:
        raise TypeError(f"cannot send arrays of dtype {dtype}") from None


def shape_proto(shape: tuple[int, ...]) -> tensor_shape_pb2.TensorShapeProto:
    """A TensorShapeProto for a concrete shape."""
    return tensor_shape_pb2.TensorShapeProto(
        dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=int(size)) for size in shape])


def to_tensor_proto(array: np.ndarray) -> tensor_pb2.TensorProto:
    """A TensorProto holding array's bytes in ``tensor_content`` (little-endian, C order)."""
    return fill_tensor_proto(tensor_pb2.TensorProto(), array)


def fill_tensor_proto(proto: tensor_pb2.TensorProto, array: np.ndarray) -> tensor_pb2.TensorProto:
    """Fill proto in place (e.g. ``request.inputs[key]``, sparing a CopyFrom of the bytes)."""
    array = np.asarray(array)
    dtype = little_endian(array.dtype)
    proto.dtype = dtype_enum(dtype)
    proto.tensor_shape.CopyFrom(shape_proto(array.shape))
    proto.tensor_content = np.ascontiguousarray(array, dtype=dtype).tobytes()
    return proto


def from_tensor_proto(proto: tensor_pb2.TensorProto) -> np.ndarray:
    """The array a TensorProto holds, from tensor_content or the typed value field."""
    dtype = numpy_dtype(proto.dtype)
    if proto.tensor_shape.unknown_rank:
        raise TensorDecodeError("tensor has unknown rank")
    shape = tuple(dim.size for dim in proto.tensor_shape.dim)
    if any(size < 0 for size in shape):
        raise TensorDecodeError(f"tensor has a negative dimension: {shape}")
    count = math.prod(shape)
    if proto.tensor_content:
        if len(proto.tensor_content) != count * dtype.itemsize:
            raise TensorDecodeError(
                f"tensor_content holds {len(proto.tensor_content)} bytes, but shape {shape} of "
                f"{dtype_name(proto.dtype)} needs {count * dtype.itemsize}")
        return np.frombuffer(proto.tensor_content, dtype=dtype).reshape(shape)
    return _from_value_field(proto, dtype, shape, count)


def _from_value_field(proto: tensor_pb2.TensorProto, dtype: np.dtype, shape: tuple[int, ...],
                      count: int) -> np.ndarray:
    field = _DTYPES[proto.dtype][1]
    values = getattr(proto, field)
    if field == "half_val":  # float16 bit patterns carried in int32s
        flat = np.fromiter(values, dtype=np.uint16, count=len(values)).view(np.float16)
    else:
        flat = np.fromiter(values, dtype=dtype, count=len(values))
    if len(flat) > count:
        raise TensorDecodeError(f"{field} holds {len(flat)} values, but shape {shape} has {count}")
    if 0 < len(flat) < count:  # TensorFlow's rule: the last value repeats to fill the shape
        flat = np.concatenate([flat, np.full(count - len(flat), flat[-1], dtype=flat.dtype)])
    elif len(flat) == 0:
        flat = np.zeros(count, dtype=dtype)
    return flat.astype(dtype, copy=False).reshape(shape)
