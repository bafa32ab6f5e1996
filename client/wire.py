"""PredictRequest / PredictResponse straight to and from wire bytes: one copy out, none back.

Going through protobuf objects costs several whole-buffer copies per request (``tobytes``, the
proto's own copy, ``SerializeToString``; then ``FromString`` and a ``bytes`` copy of
``tensor_content`` on the way back), which for a 1 MiB batch is most of a loopback round trip.
So a request is a ``RequestFrame``: bytes made once by protobuf itself (model spec, output filter,
tensor dtype and shape) around the array's buffer, joined in one copy; and a response is walked
field by field so its tensors come back as ``np.frombuffer`` views into the received bytes.

Only the lengths and keys that wrap the tensor are written here (protobuf has no API to
serialize a message around an external buffer); the frame is byte-identical to protobuf's own
encoding, which the tests check.

TF Serving answers in the typed repeated fields unless started with
``--enable_serialization_as_tensor_content``, so those are on the fast path too: packed
``float_val``/``double_val`` are fixed-width little-endian values, i.e. an ``np.frombuffer`` view;
packed varints (``int_val``, ``bool_val``, ``int64_val``, ...) holding only values 0..127 are one
byte each, so for a uint8/int8/bool mask the packed bytes are the values (a view again); other
varints are decoded with whole-array numpy operations, never a Python loop per element. The
values then follow ``client.tensors``' TensorFlow rules (fill, truncate, narrow). Anything
unusual (unpacked values, unknown dtypes or fields, malformed bytes) goes to the proto decoder,
so correctness never depends on the fast path. Field numbers are TF Serving's
(``predict.proto``, ``model.proto``, ``tensor.proto``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np

from client.protos import model_pb2, predict_pb2, tensor_pb2, types_pb2
from client.tensors import (
    check_declared_shape,
    dtype_enum,
    fill_to_shape,
    from_tensor_proto,
    little_endian,
    narrow_int32,
    numpy_dtype,
    shape_proto,
    value_field,
)

_LEN, _VARINT = 2, 0
#: Below this response size protobuf's C parser (about 4 us) beats walking fields in Python (about
#: 11 us); above it, the copies the parser makes cost more (about 100 us per MiB).
PROTO_DECODE_BELOW = 16 * 1024
PREDICT_METHOD = "/tensorflow.serving.PredictionService/Predict"


def _varint(value: int) -> bytes:
    value &= (1 << 64) - 1  # negative int64 as protobuf does: ten bytes, two's complement
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _len_header(field: int, length: int) -> bytes:
    return _varint(field << 3 | _LEN) + _varint(length)


@dataclass(frozen=True)
class RequestFrame:
    """The bytes of a one-input PredictRequest around its data: ``prefix + data + suffix``.

    Depends only on the spec, names, dtype and shape, so a caller sending many same-shaped
    batches makes it once.
    """

    prefix: bytes
    suffix: bytes
    dtype: np.dtype
    shape: tuple[int, ...]

    def encode(self, data: np.ndarray) -> bytes:
        """The serialized request carrying ``data`` (C-contiguous, of the frame's dtype and shape)."""
        if data.dtype != self.dtype or data.shape != self.shape or not data.flags.c_contiguous:
            raise ValueError(f"frame is for C-contiguous {self.dtype} {self.shape}, "
                             f"got {data.dtype} {data.shape}")
        return b"".join((self.prefix, memoryview(data.reshape(-1).view(np.uint8)), self.suffix))


def request_frame(model_spec: model_pb2.ModelSpec, input_name: str, shape: Iterable[int],
                  dtype=np.float32, output_filter: Iterable[str] = ()) -> RequestFrame:
    """A ``RequestFrame`` for ``model_spec``, input ``input_name`` of ``dtype`` and ``shape``."""
    shape = tuple(int(size) for size in shape)
    dtype = little_endian(dtype)
    nbytes = math.prod(shape) * dtype.itemsize
    # Protobuf writes fields in number order: model_spec (1), inputs (2), output_filter (3); and in
    # a TensorProto dtype (1), tensor_shape (2), then tensor_content (4), absent when empty.
    spec = predict_pb2.PredictRequest(model_spec=model_spec).SerializeToString()
    tensor_head = tensor_pb2.TensorProto(dtype=dtype_enum(dtype), tensor_shape=shape_proto(shape))
    tensor_head = tensor_head.SerializeToString() + (_len_header(4, nbytes) if nbytes else b"")
    key = input_name.encode()
    entry_head = _len_header(1, len(key)) + key + _len_header(2, len(tensor_head) + nbytes) + tensor_head
    prefix = spec + _len_header(2, len(entry_head) + nbytes) + entry_head
    suffix = predict_pb2.PredictRequest(output_filter=list(output_filter)).SerializeToString()
    return RequestFrame(prefix, suffix, dtype, shape)


def _read_varint(buffer: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = buffer[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7


def _fields(buffer: bytes, start: int, end: int):
    """(field, wire_type, value, value_start): value is an int, or the end offset of a LEN field."""
    pos = start
    while pos < end:
        key, pos = _read_varint(buffer, pos)
        field, wire_type = key >> 3, key & 7
        if wire_type == _VARINT:
            value, pos = _read_varint(buffer, pos)
            yield field, wire_type, value, pos
        elif wire_type == _LEN:
            length, pos = _read_varint(buffer, pos)
            if pos + length > end:
                raise ValueError("field runs past its message")
            yield field, wire_type, pos + length, pos
            pos += length
        elif wire_type in (1, 5):  # fixed64 / fixed32
            pos += 8 if wire_type == 1 else 4
            yield field, wire_type, None, pos
        else:
            raise ValueError(f"unsupported wire type {wire_type}")


class _NotFast(Exception):
    """This response needs the proto decoder (typed value fields, unusual dtype)."""


def _int64(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


#: TensorProto's value fields by number (tensor.proto), and the fixed-width ones' wire dtypes.
_VALUE_FIELDS = {field.number: field.name for field in tensor_pb2.TensorProto.DESCRIPTOR.fields
                 if field.name.endswith("_val")}
_FIXED_WIDTH = {"float_val": np.dtype("<f4"), "double_val": np.dtype("<f8")}
_TENSOR_DTYPE, _TENSOR_SHAPE, _TENSOR_VERSION, _TENSOR_CONTENT = 1, 2, 3, 4


def _tensor(buffer: bytes, start: int, end: int, name: str,
            expected_shape: tuple[int, ...] | None) -> np.ndarray:
    dtype, shape, content, chunks = types_pb2.DT_INVALID, [], None, {}
    for field, wire_type, value, value_start in _fields(buffer, start, end):
        if field == _TENSOR_DTYPE and wire_type == _VARINT:
            dtype = value
        elif field == _TENSOR_SHAPE and wire_type == _LEN:
            for dim_field, _, dim_end, dim_start in _fields(buffer, value_start, value):
                if dim_field == 2:
                    size = next((v for f, _, v, _ in _fields(buffer, dim_start, dim_end) if f == 1), 0)
                    shape.append(_int64(size))
                elif dim_field == 3:  # unknown_rank
                    raise _NotFast
        elif field == _TENSOR_CONTENT and wire_type == _LEN:
            content = (value_start, value)
        elif field in _VALUE_FIELDS and wire_type == _LEN:  # packed; repeated chunks concatenate
            chunks.setdefault(_VALUE_FIELDS[field], []).append((value_start, value))
        elif field != _TENSOR_VERSION:  # unpacked values, unknown fields: the proto decoder's job
            raise _NotFast
    if any(size < 0 for size in shape):
        raise _NotFast
    try:
        item = numpy_dtype(dtype)
    except ValueError:
        raise _NotFast from None
    check_declared_shape(name, tuple(shape), expected_shape)  # before a byte is allocated
    count = math.prod(shape)
    if content is not None and content[1] > content[0]:  # tensor_content wins, as in Tensor::FromProto
        if count * item.itemsize != content[1] - content[0]:
            raise _NotFast  # let the proto decoder say what is wrong
        return np.frombuffer(buffer, dtype=item, count=count, offset=content[0]).reshape(shape)
    field = value_field(dtype)
    flat = _typed_values(buffer, chunks.get(field, []), field, item)
    return fill_to_shape(flat, count, item).reshape(shape)


def _typed_values(buffer: bytes, chunks: list[tuple[int, int]], field: str, dtype: np.dtype) -> np.ndarray:
    """The values of one packed repeated field (its chunks in order) as ``dtype``, as protobuf reads them."""
    wire_dtype = _FIXED_WIDTH.get(field, np.dtype(np.uint8))
    parts = []
    for start, end in chunks:
        if (end - start) % wire_dtype.itemsize:
            raise _NotFast  # a fixed-width field cut short: malformed
        if end > start:
            parts.append(np.frombuffer(buffer, wire_dtype, (end - start) // wire_dtype.itemsize, start))
    if not parts:
        return np.empty(0, dtype)
    if field in _FIXED_WIDTH:  # float_val / double_val: the bytes are the values
        return parts[0] if len(parts) == 1 else np.concatenate(parts)
    if any(part[-1] >= 0x80 for part in parts):
        raise _NotFast  # a chunk ending inside a varint: malformed
    raw = parts[0] if len(parts) == 1 else np.concatenate(parts)
    top = int(raw.max())
    if top < 0x80:  # every varint is one byte: the bytes are the values 0..127
        if field == "bool_val":
            return raw.view(np.bool_) if top <= 1 else raw != 0
        if field == "half_val":  # float16 bit patterns
            return raw.astype(np.uint16).view(np.float16)
        return raw.view(dtype) if dtype.itemsize == 1 else raw.astype(dtype)
    values = _decode_varints(raw)
    if field == "bool_val":
        return values != 0
    if field == "half_val":
        return narrow_int32(values, np.dtype(np.uint16)).view(np.float16)
    if field == "int_val":
        return narrow_int32(values, dtype)
    if field == "uint32_val":
        return values.astype(np.uint32)
    return values.view(dtype)  # int64_val / uint64_val: all 64 bits


def _decode_varints(raw: np.ndarray) -> np.ndarray:
    """Packed base-128 varints (each ending in a byte < 0x80) as uint64, with array operations only."""
    ends = np.flatnonzero(raw < 0x80)
    starts = np.empty_like(ends)
    starts[0] = 0
    starts[1:] = ends[:-1] + 1
    lengths = ends - starts + 1
    longest = int(lengths.max())
    if longest > 10 or (longest == 10 and int(raw[ends[lengths == 10]].max()) > 1):
        raise _NotFast  # more than 64 bits: protobuf decides what that is
    position = np.arange(raw.size) - np.repeat(starts, lengths)
    shifted = (raw & 0x7F).astype(np.uint64) << (7 * position).astype(np.uint64)
    return np.bitwise_or.reduceat(shifted, starts)


@dataclass(frozen=True)
class Response:
    """A decoded PredictResponse: its outputs and the model version that answered (if it said)."""

    outputs: dict[str, np.ndarray]
    version: int | None
    names: tuple[str, ...] = ()  # every output the response holds, decoded or not


def decode_response(buffer: bytes, expected: Mapping[str, tuple[int, ...]] | None = None) -> Response:
    """The outputs of a serialized PredictResponse; large ones are views of ``buffer`` where possible.

    With ``expected`` (output name -> the shape asked for), only those outputs are decoded, and
    one declaring another shape is refused before its values are expanded: a response of a few
    bytes may declare any shape with one typed value, which TensorFlow's rule would repeat.

    Raises ``google.protobuf.message.DecodeError`` for bytes that are no PredictResponse and
    ``client.tensors.TensorDecodeError`` for a tensor that cannot be an array, or has a shape
    other than expected.
    """
    if len(buffer) < PROTO_DECODE_BELOW:
        return _decode_proto(buffer, expected)
    outputs, version, names = {}, None, []
    try:
        for field, wire_type, end, start in _fields(buffer, 0, len(buffer)):
            if wire_type != _LEN:
                raise _NotFast
            if field == 2:  # model_spec: version (2) is an Int64Value whose value is field 1
                for spec_field, spec_type, spec_end, spec_start in _fields(buffer, start, end):
                    if spec_field == 2 and spec_type == _LEN:
                        version = next((_int64(v) for f, t, v, _ in _fields(buffer, spec_start, spec_end)
                                        if f == 1 and t == _VARINT), 0)
                continue
            if field != 1:
                raise _NotFast
            name, tensor = "", None
            for entry_field, _, entry_end, entry_start in _fields(buffer, start, end):
                if entry_field == 1:
                    name = buffer[entry_start:entry_end].decode()
                elif entry_field == 2:
                    tensor = (entry_start, entry_end)
            if tensor is None:
                raise _NotFast
            names.append(name)
            if expected is None or name in expected:
                outputs[name] = _tensor(buffer, *tensor, f"output {name!r}",
                                        None if expected is None else expected[name])
    except (_NotFast, IndexError, ValueError):  # UnicodeDecodeError and TensorDecodeError are ValueErrors
        return _decode_proto(buffer, expected)
    return Response(outputs, version, tuple(names))


def _decode_proto(buffer: bytes, expected: Mapping[str, tuple[int, ...]] | None = None) -> Response:
    response = predict_pb2.PredictResponse.FromString(buffer)
    version = response.model_spec.version.value if response.model_spec.HasField("version") else None
    outputs = {name: from_tensor_proto(proto, name=f"output {name!r}",
                                       expected_shape=None if expected is None else expected[name])
               for name, proto in response.outputs.items() if expected is None or name in expected}
    return Response(outputs, version, tuple(response.outputs))
