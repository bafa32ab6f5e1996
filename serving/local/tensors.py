"""TensorProto <-> numpy without per-element Python: tensor_content via np.frombuffer, typed fields too.

Decoding follows TensorFlow's Tensor::FromProto: tensor_content must hold exactly the shape's
bytes; a typed field (float_val, ...) with fewer values than elements repeats its last value
(how make_tensor_proto encodes a constant fill), with none it is all zeros, and with more
values than elements the proto is malformed.
"""

from __future__ import annotations

import numpy as np
from tensorflow.core.framework import tensor_pb2, types_pb2

# dtype enum -> (numpy dtype, the TensorProto field that holds its values in typed form)
_NUMERIC = {
    types_pb2.DT_FLOAT: (np.float32, "float_val"),
    types_pb2.DT_DOUBLE: (np.float64, "double_val"),
    types_pb2.DT_INT32: (np.int32, "int_val"),
    types_pb2.DT_INT16: (np.int16, "int_val"),
    types_pb2.DT_INT8: (np.int8, "int_val"),
    types_pb2.DT_UINT8: (np.uint8, "int_val"),
    types_pb2.DT_UINT16: (np.uint16, "int_val"),
    types_pb2.DT_INT64: (np.int64, "int64_val"),
    types_pb2.DT_UINT32: (np.uint32, "uint32_val"),
    types_pb2.DT_UINT64: (np.uint64, "uint64_val"),
    types_pb2.DT_BOOL: (np.bool_, "bool_val"),
    types_pb2.DT_HALF: (np.float16, "half_val"),
}
_ENUM_OF_NUMPY = {np.dtype(numpy_type): enum for enum, (numpy_type, _) in _NUMERIC.items()}
MAX_ELEMENTS = 1 << 40  # any real request is far below; a bigger product is a malformed shape


class MalformedTensor(ValueError):
    """The TensorProto cannot be turned into a tensor; the message says why."""


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
    return np.dtype(_NUMERIC[enum][0])


def shape_of(proto: tensor_pb2.TensorProto) -> tuple[int, ...]:
    """The proto's shape; MalformedTensor for unknown rank or negative sizes."""
    shape = proto.tensor_shape
    if shape.unknown_rank:
        raise MalformedTensor("tensor_shape has unknown_rank set")
    dims = tuple(dim.size for dim in shape.dim)
    if any(size < 0 for size in dims):
        raise MalformedTensor(f"tensor_shape {list(dims)} has a negative dimension")
    if int(np.prod(dims, dtype=object)) > MAX_ELEMENTS:
        raise MalformedTensor(f"tensor_shape {list(dims)} has too many elements")
    return dims


def to_array(proto: tensor_pb2.TensorProto) -> np.ndarray:
    """A numpy array with the proto's dtype and shape; MalformedTensor if the proto is inconsistent."""
    if proto.dtype not in _NUMERIC:
        raise MalformedTensor(f"dtype {dtype_name(proto.dtype)} is not supported by this server")
    numpy_type, field_name = _NUMERIC[proto.dtype]
    dtype = np.dtype(numpy_type).newbyteorder("<")
    shape = shape_of(proto)
    count = int(np.prod(shape, dtype=np.int64))
    content = proto.tensor_content  # each read of the field copies the bytes: read it once
    if content:
        if len(content) != count * dtype.itemsize:
            raise MalformedTensor(f"tensor_content has {len(content)} bytes; shape {list(shape)} of "
                                  f"{dtype_name(proto.dtype)} needs {count * dtype.itemsize}")
        return np.frombuffer(content, dtype=dtype).astype(numpy_type, copy=False).reshape(shape)
    values = getattr(proto, field_name)
    if proto.dtype == types_pb2.DT_HALF:  # half_val holds the raw 16-bit patterns as ints
        typed = np.asarray(values, dtype=np.uint16).view(np.float16)
    else:
        typed = np.asarray(values, dtype=numpy_type)
    if typed.size == count:
        return typed.reshape(shape)
    if typed.size > count:
        raise MalformedTensor(f"{field_name} has {typed.size} values; shape {list(shape)} holds {count}")
    array = np.zeros(count, dtype=numpy_type)
    if typed.size:
        array[: typed.size] = typed
        array[typed.size:] = typed[-1]
    return array.reshape(shape)


def fill_tensor_proto(proto: tensor_pb2.TensorProto, array: np.ndarray) -> tensor_pb2.TensorProto:
    """Write array into proto (e.g. a response's output map entry) as dtype, shape and tensor_content.

    Filling the message in place saves a copy of the payload over building one and CopyFrom-ing it.
    """
    array = np.asarray(array)
    enum = _ENUM_OF_NUMPY.get(np.dtype(array.dtype.type))
    if enum is None:
        raise TypeError(f"cannot encode numpy dtype {array.dtype} as a TensorProto")
    proto.dtype = enum
    for size in array.shape:
        proto.tensor_shape.dim.add(size=size)
    proto.tensor_content = array.astype(array.dtype.newbyteorder("<"), copy=False).tobytes()
    return proto


def to_tensor_proto(array: np.ndarray) -> tensor_pb2.TensorProto:
    """A new TensorProto with tensor_content (little-endian raw bytes), as TF Serving replies."""
    return fill_tensor_proto(tensor_pb2.TensorProto(), array)
