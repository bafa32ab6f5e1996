"""numpy arrays <-> TensorProto without TensorFlow, as TensorFlow's own Tensor codec does it.

The one TensorProto codec of the project: the client encodes requests and decodes responses
with it, the embedded server (``serving.local``) decodes requests and encodes responses.

Decoding follows ``Tensor::FromProto`` (``tensorflow/core/framework/tensor.cc``): the shape must
be valid (at most 254 dimensions, none negative, an element count that fits int64; ``unknown_rank``
is ignored, the dims decide); with no elements, nothing else is read; else ``tensor_content``, if
present, must hold exactly their bytes (bools only 0 or 1) and becomes a read-only
``np.frombuffer`` view, never a copy; else the dtype's value
field is read (``float_val``, ``int_val``, ...): more values than elements are cut off, fewer
repeat the last one, none means zeros, ``int_val`` narrows to 8/16-bit dtypes as a C cast does.
A few bytes of value field may declare any shape, so expanding them is the one way a small
message makes the reader allocate a lot: a reader bounds it with ``expected_shape`` (the client:
the shape it asked for) or a ``TensorBudget`` (the server), checked before anything is allocated.
The message classes may be this package's (``client.protos``) or tensorflow-serving-api's: only
field names are read.

Encoding: ``tensor_content`` (one ``tobytes`` copy; what the client sends, and TF Serving's
``AsProtoTensorContent`` under ``--enable_serialization_as_tensor_content``) or the dtype's packed
value field (``AsProtoField``, TF Serving's default answer), written as byte chunks straight from
numpy: fixed-width types are their little-endian bytes, varint types are encoded by array
operations. ``client.wire`` reads the same fields from wire bytes and must agree with this module.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from client._protowire import encode_varints, len_header
from client.protos import tensor_pb2, tensor_shape_pb2, types_pb2

# DataType enum -> (numpy dtype in wire byte order, TensorProto field holding its values outside
# tensor_content)
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
#: Value fields whose packed bytes are the little-endian values; the others are varints.
FIXED_WIDTH_FIELDS = {"float_val": np.dtype("<f4"), "double_val": np.dtype("<f8")}
_FIELD_NUMBERS = {field.name: field.number for field in tensor_pb2.TensorProto.DESCRIPTOR.fields}
MAX_DIMS = 254  # TensorShape's kMaxDims
MAX_NUMPY_DIMS = 64  # numpy 2's NPY_MAXDIMS: valid TensorShapes of more dims have no array
_INT64_MAX = (1 << 63) - 1


class TensorDecodeError(ValueError):
    """A TensorProto that is no array: Tensor::FromProto refuses it, or its shape is not the expected one."""


class TensorRankUnsupported(TensorDecodeError):
    """A valid TensorShape of more dimensions than a numpy array can have."""


class TensorTooLarge(TensorDecodeError):
    """Expanding the tensor's values would allocate more than the reader's budget, or than any array holds."""


@dataclass(frozen=True)
class TensorBudget:
    """How many bytes expanding a tensor's value fields may allocate (tensor_content is a view)."""

    max_bytes: int

    def check(self, name: str, shape: tuple[int, ...], dtype: np.dtype) -> None:
        """TensorTooLarge if a tensor of this shape and dtype would take more than max_bytes."""
        self.check_bytes(name, shape, math.prod(shape) * dtype.itemsize)

    def check_bytes(self, name: str, shape: tuple[int, ...], nbytes: int) -> None:
        """TensorTooLarge if decoding a tensor of this shape would take nbytes, more than max_bytes."""
        if nbytes > self.max_bytes:
            raise TensorTooLarge(
                f"{name} of shape {_shape_text(shape)} would take {nbytes} bytes, "
                f"more than the {self.max_bytes} allowed"
            )


UNLIMITED = TensorBudget(1 << 62)


def _shape_text(shape: tuple[int, ...]) -> str:
    return "[" + ",".join(map(str, shape)) + "]"


def dtype_name(enum: int) -> str:
    """'DT_FLOAT' for 1, and so on; the number itself for values this proto version lacks."""
    try:
        return types_pb2.DataType.Name(enum)
    except ValueError:
        return str(enum)


def has_numpy_dtype(enum: int) -> bool:
    """Whether this codec decodes a DataType (to a plain numpy dtype)."""
    return enum in _DTYPES


def numpy_dtype(enum: int) -> np.dtype:
    """The numpy dtype (little-endian) for a TensorFlow DataType enum value; TensorDecodeError if none."""
    try:
        return _DTYPES[enum][0]
    except KeyError:
        raise TensorDecodeError(f"unsupported tensor dtype {dtype_name(enum)}") from None


def little_endian(dtype) -> np.dtype:
    """dtype in the byte order tensor_content uses (a big-endian dtype's little-endian twin)."""
    dtype = np.dtype(dtype)
    return dtype.newbyteorder("<") if dtype.byteorder == ">" else dtype


def dtype_enum(dtype) -> int:
    """The TensorFlow DataType enum value for a numpy dtype (either byte order); TypeError if none."""
    try:
        return _ENUM_BY_DTYPE[little_endian(dtype)]
    except KeyError:
        raise TypeError(f"cannot send arrays of dtype {dtype} as a TensorProto") from None


def value_field(enum: int) -> str:
    """The TensorProto field that holds a dtype's values outside tensor_content ('float_val', ...)."""
    numpy_dtype(enum)  # the error for an unsupported dtype
    return _DTYPES[enum][1]


def shape_proto(shape: tuple[int, ...]) -> tensor_shape_pb2.TensorShapeProto:
    """A TensorShapeProto for a concrete shape."""
    return tensor_shape_pb2.TensorShapeProto(
        dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=int(size)) for size in shape]
    )


# --- decoding -------------------------------------------------------------------------------------


def valid_shape(dims: tuple[int, ...]) -> tuple[int, ...]:
    """dims if TensorShape::IsValid accepts them; TensorDecodeError ('invalid tensor_shape') otherwise.

    ``unknown_rank`` is not looked at: a TensorShape (unlike a PartialTensorShape) parses protos
    that set it, and its dims decide (tensor_shape.cc).
    """
    if len(dims) > MAX_DIMS:
        raise TensorDecodeError(f"invalid tensor_shape of {len(dims)} dimensions")
    elements = 1
    for size in dims:  # in order, as TensorShape multiplies: an overflow before a 0 still counts
        elements *= size
        if size < 0 or elements > _INT64_MAX:
            raise TensorDecodeError(f"invalid tensor_shape {_shape_text(dims)}")
    return dims


def check_numpy_rank(name: str, shape: tuple[int, ...]) -> None:
    """TensorRankUnsupported for a valid shape of more dimensions than numpy arrays have."""
    if len(shape) > MAX_NUMPY_DIMS:
        raise TensorRankUnsupported(
            f"{name} has {len(shape)} dimensions; numpy arrays have at most {MAX_NUMPY_DIMS}"
        )


def check_declared_shape(name: str, shape: tuple[int, ...], expected: tuple[int, ...] | None) -> None:
    """Refuse a tensor whose declared shape is not the expected one, before anything is allocated."""
    if expected is not None and tuple(shape) != tuple(expected):
        raise TensorDecodeError(f"{name} has shape {tuple(shape)}, expected {tuple(expected)}")


def check_allocation(
    name: str, shape: tuple[int, ...], dtype: np.dtype, budget: TensorBudget = UNLIMITED
) -> None:
    """TensorTooLarge if expanding a value field to shape would pass the budget or numpy's index range."""
    # numpy refuses shapes whose non-zero sizes multiply past its index range even with no elements.
    if math.prod(size for size in shape if size) * dtype.itemsize > _INT64_MAX:
        raise TensorTooLarge(
            f"{name} has shape {_shape_text(shape)}, which no array can hold "
            "(the product of its non-zero sizes is too large)"
        )
    budget.check(name, shape, dtype)


def check_bool_bytes(array: np.ndarray) -> None:
    """Helper<bool>::Decode (tensor.cc) refuses a tensor_content byte other than 0 or 1."""
    if array.view(np.uint8).max(initial=0) > 1:
        raise TensorDecodeError("tensor_content of a DT_BOOL tensor holds a byte other than 0 or 1")


def fill_to_shape(flat: np.ndarray, count: int, dtype: np.dtype) -> np.ndarray:
    """TensorFlow's rule for typed values: more are truncated, fewer repeat the last, none are zeros.

    ``flat`` itself (or a view of it, when truncated) is returned when it has enough values.
    """
    if len(flat) >= count:
        return flat[:count] if len(flat) > count else flat
    if len(flat) == 0:
        return np.zeros(count, dtype=dtype)
    filled = np.empty(count, dtype=dtype)
    filled[: len(flat)] = flat
    filled[len(flat) :] = flat[-1]
    return filled


def narrow_int32(values: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """int_val values as ``dtype``: the low bits, as TensorFlow's static_cast from int32 keeps them."""
    unsigned = values.astype(np.uint32).astype(np.dtype(f"<u{dtype.itemsize}"))  # modular, well defined
    return unsigned.view(dtype)


def from_tensor_proto(
    proto,
    content: memoryview | bytes | None = None,
    *,
    name: str = "tensor",
    expected_shape: tuple[int, ...] | None = None,
    budget: TensorBudget = UNLIMITED,
) -> np.ndarray:
    """The array Tensor::FromProto makes of a TensorProto (this package's class or TensorFlow's).

    Args:
        proto: the TensorProto.
        content: stands for proto's tensor_content when given (a view of the received bytes).
        name: what error messages call the tensor ("input x", "output 'mask'").
        expected_shape: refuse another declared shape before its values are expanded.
        budget: how many bytes expanding a value field may allocate.

    Raises:
        TensorDecodeError: where TensorFlow's parse fails, or for a shape other than expected.
        TensorRankUnsupported: for a valid shape of more dimensions than numpy arrays have.
        TensorTooLarge: where expanding the value field would pass the budget.
    """
    shape = valid_shape(tuple(dim.size for dim in proto.tensor_shape.dim))
    dtype = numpy_dtype(proto.dtype)
    check_declared_shape(name, shape, expected_shape)
    check_numpy_rank(name, shape)
    count = math.prod(shape)
    if count == 0:
        check_allocation(name, shape, dtype)
        return np.empty(shape, dtype=dtype)
    if content is None:
        content = proto.tensor_content  # each read of the field copies the bytes: read it once
    if len(content):
        if len(content) != count * dtype.itemsize:
            raise TensorDecodeError(
                f"tensor_content holds {len(content)} bytes, but shape {shape} of "
                f"{dtype_name(proto.dtype)} needs {count * dtype.itemsize}"
            )
        array = np.frombuffer(content, dtype=dtype).reshape(shape)
        if dtype == np.bool_:
            check_bool_bytes(array)
        return array
    check_allocation(name, shape, dtype, budget)
    field = _DTYPES[proto.dtype][1]
    values = getattr(proto, field)
    if field == "half_val":  # float16 bit patterns carried in int32s
        flat = narrow_int32(np.array(values, dtype=np.int32), np.dtype(np.uint16)).view(np.float16)
    elif field == "int_val":
        flat = narrow_int32(np.array(values, dtype=np.int32), dtype)
    else:
        flat = np.array(values, dtype=dtype)
    return fill_to_shape(flat, count, dtype).reshape(shape)


# --- encoding -------------------------------------------------------------------------------------


def _tensor_head(shape: tuple[int, ...], enum: int) -> bytes:
    head = tensor_pb2.TensorProto(dtype=enum)
    head.tensor_shape.SetInParent()  # AsProto always writes the shape, a scalar's empty one included
    for size in shape:
        head.tensor_shape.dim.add(size=int(size))
    return head.SerializeToString()


def encode_tensor(array: np.ndarray, as_content: bool) -> list:
    """The serialized TensorProto of array as byte chunks to join (the payload is not copied here).

    as_content: ``AsProtoTensorContent`` (raw little-endian bytes in tensor_content); otherwise
    ``AsProtoField`` (the dtype's packed value field), TF Serving's default.
    """
    array = np.asarray(array)
    enum = dtype_enum(array.dtype)
    wire_dtype, field = _DTYPES[enum]
    head = _tensor_head(array.shape, enum)
    if array.size == 0:
        return [head]
    if as_content or field in FIXED_WIDTH_FIELDS:
        payload = np.ascontiguousarray(array, dtype=wire_dtype).reshape(-1).view(np.uint8)
        field = "tensor_content" if as_content else field
    elif enum == types_pb2.DT_HALF:
        payload = encode_varints(np.ascontiguousarray(array, dtype=wire_dtype).view(np.uint16))
    else:
        payload = encode_varints(np.ascontiguousarray(array, dtype=wire_dtype))
    return [head, len_header(_FIELD_NUMBERS[field], payload.size), memoryview(payload)]


def fill_tensor_proto(proto, array: np.ndarray, as_content: bool = True):
    """Fill proto in place (e.g. ``request.inputs[key]``, sparing a CopyFrom), of either message pool."""
    array = np.asarray(array)
    if not as_content:
        proto.ParseFromString(b"".join(encode_tensor(array, as_content=False)))
        return proto
    dtype = little_endian(array.dtype)
    proto.Clear()
    proto.dtype = dtype_enum(dtype)
    proto.tensor_shape.SetInParent()
    for size in array.shape:
        proto.tensor_shape.dim.add(size=int(size))
    proto.tensor_content = np.ascontiguousarray(array, dtype=dtype).tobytes()
    return proto


def to_tensor_proto(array: np.ndarray, as_content: bool = True) -> tensor_pb2.TensorProto:
    """A new TensorProto holding array, in ``tensor_content`` (C order) by default."""
    return fill_tensor_proto(tensor_pb2.TensorProto(), array, as_content)
