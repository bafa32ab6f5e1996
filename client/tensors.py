"""numpy arrays <-> TensorProto without TensorFlow: raw little-endian buffers both ways.

Requests always carry ``tensor_content`` (one ``tobytes`` copy, no per-element Python).
Responses are decoded with ``np.frombuffer`` when the server sends ``tensor_content`` (TF Serving
started with ``--enable_serialization_as_tensor_content``) and from the typed repeated fields
(``float_val``, ``int_val``, ...) otherwise, which is TF Serving's default. Typed values follow
TensorFlow's ``Tensor::FromProto`` (``tensorflow/core/framework/tensor.cc``): fewer values than the
shape holds repeat the last one, none means zeros, more are truncated; ``int_val`` narrows to
8/16-bit dtypes as a C cast does. ``client.wire`` decodes the same fields from the wire bytes
without protobuf objects and must agree with this module.
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


def value_field(enum: int) -> str:
    """The TensorProto field that holds a dtype's values outside tensor_content ('float_val', ...)."""
    numpy_dtype(enum)  # the error for an unsupported dtype
    return _DTYPES[enum][1]


def check_declared_shape(name: str, shape: tuple[int, ...], expected: tuple[int, ...] | None) -> None:
    """Refuse a tensor whose declared shape is not the expected one, before anything is allocated.

    A typed-field tensor may declare any shape with a single value (TensorFlow repeats it), so a
    declared shape is a promise of memory; only the caller knows how much it asked for.
    """
    if expected is not None and tuple(shape) != tuple(expected):
        raise TensorDecodeError(f"{name} has shape {tuple(shape)}, expected {tuple(expected)}")


def fill_to_shape(flat: np.ndarray, count: int, dtype: np.dtype) -> np.ndarray:
    """TensorFlow's rule for typed values: more are truncated, fewer repeat the last, none are zeros.

    ``flat`` itself (or a view of it, when truncated) is returned when it has enough values.
    """
    if len(flat) >= count:
        return flat[:count] if len(flat) > count else flat
    if len(flat) == 0:
        return np.zeros(count, dtype=dtype)
    filled = np.empty(count, dtype=dtype)
    filled[:len(flat)] = flat
    filled[len(flat):] = flat[-1]
    return filled


def narrow_int32(values: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """int_val values as ``dtype``: the low bits, as TensorFlow's static_cast from int32 keeps them."""
    unsigned = values.astype(np.uint32).astype(np.dtype(f"<u{dtype.itemsize}"))  # modular, well defined
    return unsigned.view(dtype)


def from_tensor_proto(proto: tensor_pb2.TensorProto, *, expected_shape: tuple[int, ...] | None = None,
                      name: str = "tensor") -> np.ndarray:
    """The array a TensorProto holds, from tensor_content or the typed value field.

    With ``expected_shape``, a tensor declaring another shape is refused (TensorDecodeError)
    before its values are expanded.
    """
    dtype = numpy_dtype(proto.dtype)
    if proto.tensor_shape.unknown_rank:
        raise TensorDecodeError("tensor has unknown rank")
    shape = tuple(dim.size for dim in proto.tensor_shape.dim)
    if any(size < 0 for size in shape):
        raise TensorDecodeError(f"tensor has a negative dimension: {shape}")
    check_declared_shape(name, shape, expected_shape)
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
        flat = narrow_int32(np.array(values, dtype=np.int32), np.dtype(np.uint16)).view(np.float16)
    elif field == "int_val":
        flat = narrow_int32(np.array(values, dtype=np.int32), dtype)
    else:
        flat = np.array(values, dtype=dtype)
    return fill_to_shape(flat, count, dtype).reshape(shape)
