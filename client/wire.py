"""PredictRequest / PredictResponse straight to and from wire bytes, both sides of the call.

Going through protobuf objects costs several whole-buffer copies per message (``tobytes``, the
proto's own copy, ``SerializeToString``; then ``FromString`` and a ``bytes`` copy of
``tensor_content`` on the way back), which for a 1 MiB batch is most of a loopback round trip.
So both sides write byte chunks around numpy buffers and join them once, and read tensors as
``np.frombuffer`` views into the received bytes:

* the client sends a ``RequestFrame`` (bytes made once by protobuf itself, the model spec, output
  filter, tensor dtype and shape, around the array's buffer) and reads the answer with
  ``decode_response``;
* the embedded server reads a request with ``parse_request`` (each ``tensor_content`` stays a
  memoryview of the request) and answers with ``response_bytes`` around the chunks
  ``client.tensors.encode_tensor`` writes.

Only the lengths and keys that wrap tensors are written here (protobuf has no API to serialize a
message around an external buffer); the bytes are identical to protobuf's own encoding, which
the tests check.

TF Serving answers in the typed repeated fields unless started with
``--enable_serialization_as_tensor_content``, so those are on the fast path too: packed
``float_val``/``double_val`` are fixed-width little-endian values, i.e. an ``np.frombuffer`` view;
packed varints (``int_val``, ``bool_val``, ``int64_val``, ...) holding only values 0..127 are one
byte each, so for a uint8/int8/bool mask the packed bytes are the values (a view again); other
varints are decoded with whole-array numpy operations, never a Python loop per element. The
values then follow ``client.tensors``' TensorFlow rules (fill, truncate, narrow). Anything
unusual (unpacked values, unknown dtypes or fields, a repeated model_spec, malformed bytes) goes
to protobuf's parser, so what a message means never depends on the fast path. Field numbers are
TF Serving's (``predict.proto``, ``model.proto``, ``tensor.proto``).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np

from client._protowire import LEN, VARINT, UnsupportedLayout, as_int64, decode_varints, fields, len_header
from client.protos import model_pb2, predict_pb2, tensor_pb2, types_pb2
from client.tensors import (
    FIXED_WIDTH_FIELDS,
    check_allocation,
    check_bool_bytes,
    check_declared_shape,
    check_numpy_rank,
    dtype_enum,
    fill_to_shape,
    from_tensor_proto,
    little_endian,
    narrow_int32,
    numpy_dtype,
    shape_proto,
    valid_shape,
    value_field,
)

#: Below this response size protobuf's C parser (about 4 us) beats walking fields in Python (about
#: 11 us); above it, the copies the parser makes cost more (about 100 us per MiB).
PROTO_DECODE_BELOW = 16 * 1024


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
            raise ValueError(
                f"frame is for C-contiguous {self.dtype} {self.shape}, got {data.dtype} {data.shape}"
            )
        return b"".join((self.prefix, memoryview(data.reshape(-1).view(np.uint8)), self.suffix))


def request_frame(
    model_spec: model_pb2.ModelSpec,
    input_name: str,
    shape: Iterable[int],
    dtype=np.float32,
    output_filter: Iterable[str] = (),
) -> RequestFrame:
    """A ``RequestFrame`` for ``model_spec``, input ``input_name`` of ``dtype`` and ``shape``."""
    shape = tuple(int(size) for size in shape)
    dtype = little_endian(dtype)
    nbytes = math.prod(shape) * dtype.itemsize
    # Protobuf writes fields in number order: model_spec (1), inputs (2), output_filter (3); and in
    # a TensorProto dtype (1), tensor_shape (2), then tensor_content (4), absent when empty.
    spec = predict_pb2.PredictRequest(model_spec=model_spec).SerializeToString()
    tensor_head = tensor_pb2.TensorProto(dtype=dtype_enum(dtype), tensor_shape=shape_proto(shape))
    tensor_head = tensor_head.SerializeToString() + (len_header(4, nbytes) if nbytes else b"")
    key = input_name.encode()
    entry_head = len_header(1, len(key)) + key + len_header(2, len(tensor_head) + nbytes) + tensor_head
    prefix = spec + len_header(2, len(entry_head) + nbytes) + entry_head
    suffix = predict_pb2.PredictRequest(output_filter=list(output_filter)).SerializeToString()
    return RequestFrame(prefix, suffix, dtype, shape)


#: TensorProto's value fields by number (tensor.proto).
_VALUE_FIELDS = {
    field.number: field.name
    for field in tensor_pb2.TensorProto.DESCRIPTOR.fields
    if field.name.endswith("_val")
}
_TENSOR_DTYPE, _TENSOR_SHAPE, _TENSOR_VERSION, _TENSOR_CONTENT = 1, 2, 3, 4


def _tensor(
    buffer: bytes, start: int, end: int, name: str, expected_shape: tuple[int, ...] | None
) -> np.ndarray:
    dtype, shape, content, chunks = types_pb2.DT_INVALID, [], None, {}
    for field, wire_type, _, value_start, value in fields(buffer, start, end):
        if field == _TENSOR_DTYPE and wire_type == VARINT:
            dtype = value
        elif field == _TENSOR_SHAPE and wire_type == LEN:
            for dim_field, _, _, dim_start, dim_end in fields(buffer, value_start, value):
                if dim_field == 2:
                    size = next((v for f, _, _, _, v in fields(buffer, dim_start, dim_end) if f == 1), 0)
                    shape.append(as_int64(size))
                # unknown_rank (3) and dim names are not read: the dims decide (tensor_shape.cc)
        elif field == _TENSOR_CONTENT and wire_type == LEN:
            content = (value_start, value)
        elif field in _VALUE_FIELDS and wire_type == LEN:  # packed; repeated chunks concatenate
            chunks.setdefault(_VALUE_FIELDS[field], []).append((value_start, value))
        elif field != _TENSOR_VERSION:  # unpacked values, unknown fields: the proto decoder's job
            raise UnsupportedLayout
    try:
        valid_shape(tuple(shape))
        check_numpy_rank("", tuple(shape))
        item = numpy_dtype(dtype)
    except ValueError:
        raise UnsupportedLayout from None  # the proto decoder says what is wrong
    check_declared_shape(name, tuple(shape), expected_shape)  # before a byte is allocated
    count = math.prod(shape)
    if content is not None and content[1] > content[0]:  # tensor_content wins, as in Tensor::FromProto
        if count * item.itemsize != content[1] - content[0]:
            raise UnsupportedLayout  # let the proto decoder say what is wrong
        array = np.frombuffer(buffer, dtype=item, count=count, offset=content[0]).reshape(shape)
        if item == np.bool_:
            check_bool_bytes(array)  # a TensorDecodeError: the proto decoder says it again
        return array
    check_allocation(name, tuple(shape), item)
    field = value_field(dtype)
    flat = _typed_values(buffer, chunks.get(field, []), field, item)
    return fill_to_shape(flat, count, item).reshape(shape)


def _typed_values(buffer: bytes, chunks: list[tuple[int, int]], field: str, dtype: np.dtype) -> np.ndarray:
    """The values of one packed repeated field (its chunks in order) as ``dtype``, as protobuf reads them."""
    wire_dtype = FIXED_WIDTH_FIELDS.get(field, np.dtype(np.uint8))
    parts = []
    for start, end in chunks:
        if (end - start) % wire_dtype.itemsize:
            raise UnsupportedLayout  # a fixed-width field cut short: malformed
        if end > start:
            parts.append(np.frombuffer(buffer, wire_dtype, (end - start) // wire_dtype.itemsize, start))
    if not parts:
        return np.empty(0, dtype)
    if field in FIXED_WIDTH_FIELDS:  # float_val / double_val: the bytes are the values
        return parts[0] if len(parts) == 1 else np.concatenate(parts)
    if any(part[-1] >= 0x80 for part in parts):
        raise UnsupportedLayout  # a chunk ending inside a varint: malformed
    raw = parts[0] if len(parts) == 1 else np.concatenate(parts)
    top = int(raw.max())
    if top < 0x80:  # every varint is one byte: the bytes are the values 0..127
        if field == "bool_val":
            return raw.view(np.bool_) if top <= 1 else raw != 0
        if field == "half_val":  # float16 bit patterns
            return raw.astype(np.uint16).view(np.float16)
        return raw.view(dtype) if dtype.itemsize == 1 else raw.astype(dtype)
    values = decode_varints(raw)
    if field == "bool_val":
        return values != 0
    if field == "half_val":
        return narrow_int32(values, np.dtype(np.uint16)).view(np.float16)
    if field == "int_val":
        return narrow_int32(values, dtype)
    if field == "uint32_val":
        return values.astype(np.uint32)
    return values.view(dtype)  # int64_val / uint64_val: all 64 bits


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
        for field, wire_type, _, start, end in fields(buffer, 0, len(buffer)):
            if wire_type != LEN:
                raise UnsupportedLayout
            if field == 2:  # model_spec: version (2) is an Int64Value whose value is field 1
                for spec_field, spec_type, _, spec_start, spec_end in fields(buffer, start, end):
                    if spec_field == 2 and spec_type == LEN:
                        version = next(
                            (
                                as_int64(v)
                                for f, t, _, _, v in fields(buffer, spec_start, spec_end)
                                if f == 1 and t == VARINT
                            ),
                            0,
                        )
                continue
            if field != 1:
                raise UnsupportedLayout
            name, tensor = "", None
            for entry_field, _, _, entry_start, entry_end in fields(buffer, start, end):
                if entry_field == 1:
                    name = buffer[entry_start:entry_end].decode()
                elif entry_field == 2:
                    tensor = (entry_start, entry_end)
            if tensor is None:
                raise UnsupportedLayout
            names.append(name)
            if expected is None or name in expected:
                outputs[name] = _tensor(
                    buffer, *tensor, f"output {name!r}", None if expected is None else expected[name]
                )
    except (UnsupportedLayout, IndexError, ValueError):  # UnicodeDecodeError, TensorDecodeError: ValueErrors
        return _decode_proto(buffer, expected)
    return Response(outputs, version, tuple(names))


def _decode_proto(buffer: bytes, expected: Mapping[str, tuple[int, ...]] | None = None) -> Response:
    response = predict_pb2.PredictResponse.FromString(buffer)
    version = response.model_spec.version.value if response.model_spec.HasField("version") else None
    outputs = {
        name: from_tensor_proto(
            proto, name=f"output {name!r}", expected_shape=None if expected is None else expected[name]
        )
        for name, proto in response.outputs.items()
        if expected is None or name in expected
    }
    return Response(outputs, version, tuple(response.outputs))


# --- the server's side: requests in, responses out ----------------------------------------------


@dataclass
class TensorInput:
    """One request input: the TensorProto without its tensor_content, and that content as a view."""

    proto: tensor_pb2.TensorProto
    content: memoryview | None = None  # None: read proto.tensor_content


@dataclass
class RequestParts:
    """What a PredictRequest says, whether it came as bytes or as a message (of either pool)."""

    model_spec: model_pb2.ModelSpec | None
    inputs: dict[str, TensorInput] = dataclasses.field(default_factory=dict)
    output_filter: list[str] = dataclasses.field(default_factory=list)

    @classmethod
    def of_message(cls, request) -> RequestParts:
        """The parts of a PredictRequest message (this package's class or tensorflow-serving-api's)."""
        return cls(
            request.model_spec if request.HasField("model_spec") else None,
            {alias: TensorInput(proto) for alias, proto in request.inputs.items()},
            list(request.output_filter),
        )


def _tensor_input(buffer: memoryview, start: int, end: int) -> TensorInput:
    """The TensorProto at buffer[start:end], its tensor_content (if any) left out as a view."""
    content = None
    for number, wire_type, key_start, value_start, value_end in fields(buffer, start, end):
        if number == _TENSOR_CONTENT and wire_type == LEN:
            if content is not None:
                raise UnsupportedLayout  # the last one would win: let protobuf sort it out
            content = (key_start, value_start, value_end)
    if content is None:  # value fields or nothing: protobuf parses it all (no large view to keep)
        return TensorInput(tensor_pb2.TensorProto.FromString(bytes(buffer[start:end])))
    key_start, value_start, value_end = content
    # What surrounds tensor_content is small: dtype, shape, version_number.
    proto = tensor_pb2.TensorProto.FromString(bytes(buffer[start:key_start]) + bytes(buffer[value_end:end]))
    return TensorInput(proto, buffer[value_start:value_end])


def parse_request(raw: bytes) -> RequestParts:
    """The parts of a serialized PredictRequest; each tensor_content stays a view of raw.

    Raises google.protobuf.message.DecodeError for bytes that are no PredictRequest.
    """
    buffer = memoryview(raw)
    try:
        return _walk_request(buffer)
    except (UnsupportedLayout, IndexError, ValueError):
        pass
    return RequestParts.of_message(predict_pb2.PredictRequest.FromString(raw))


def _walk_request(buffer: memoryview) -> RequestParts:
    parts = RequestParts(None)
    for number, wire_type, _, start, end in fields(buffer, 0, len(buffer)):
        if wire_type != LEN:
            if number in (1, 2, 3):
                raise UnsupportedLayout
            continue  # an unknown field: protobuf skips it too
        if number == 1:
            if parts.model_spec is not None:
                raise UnsupportedLayout  # protobuf merges repeated message fields: let it
            parts.model_spec = model_pb2.ModelSpec.FromString(bytes(buffer[start:end]))
        elif number == 2:
            alias, tensor = "", None
            for entry_number, entry_type, _, entry_start, entry_end in fields(buffer, start, end):
                if entry_type != LEN or (entry_number == 2 and tensor is not None):
                    raise UnsupportedLayout
                if entry_number == 1:
                    alias = bytes(buffer[entry_start:entry_end]).decode()
                elif entry_number == 2:
                    tensor = _tensor_input(buffer, entry_start, entry_end)
            parts.inputs[alias] = tensor if tensor is not None else TensorInput(tensor_pb2.TensorProto())
        elif number == 3:
            parts.output_filter.append(bytes(buffer[start:end]).decode())
    return parts


def response_bytes(outputs: Iterable[tuple[str, list]], model_spec: model_pb2.ModelSpec) -> bytes:
    """A serialized PredictResponse: outputs are (alias, ``encode_tensor`` chunks) in order."""
    chunks = []
    for alias, tensor_chunks in outputs:
        key = alias.encode()
        tensor_length = sum(len(chunk) for chunk in tensor_chunks)
        entry = [len_header(1, len(key)), key, len_header(2, tensor_length)]
        entry_length = sum(len(chunk) for chunk in entry) + tensor_length
        chunks += [len_header(1, entry_length), *entry, *tensor_chunks]
    chunks.append(predict_pb2.PredictResponse(model_spec=model_spec).SerializeToString())
    return b"".join(chunks)
