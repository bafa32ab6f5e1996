"""PredictRequest bytes in, PredictResponse bytes out, without copying tensor payloads.

The server side of client/wire.py's idea. Parsing a request with protobuf copies every
``tensor_content`` into a new bytes object, and building a response message copies each output
twice more (into the message, then out of it when serialized). Here the request is walked
field by field: small parts (model spec, tensor dtype and shape) are parsed by protobuf itself,
while each ``tensor_content`` stays a memoryview of the received bytes. The response is written
as byte chunks around the output arrays and joined once.

The walk handles the layout protobuf writers produce; anything else (a repeated model_spec, a
tensor whose fields appear twice, an unknown wire type) falls back to protobuf's own parser, so
what a request means never depends on the fast path. Field numbers are TF Serving's
(``predict.proto``, ``model.proto``, ``tensor.proto``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from google.protobuf.internal.decoder import _DecodeVarint
from google.protobuf.internal.encoder import _VarintBytes
from tensorflow.core.framework import tensor_pb2
from tensorflow_serving.apis import model_pb2, predict_pb2

_VARINT, _FIXED64, _LEN, _FIXED32 = 0, 1, 2, 5
_TENSOR_CONTENT = 4


@dataclass
class TensorInput:
    """One request input: the TensorProto without its tensor_content, and that content as a view."""

    proto: tensor_pb2.TensorProto
    content: memoryview | None = None  # None: read proto.tensor_content


@dataclass
class RequestParts:
    """What a PredictRequest says, whether it came as bytes or as a message."""

    model_spec: model_pb2.ModelSpec | None
    inputs: dict[str, TensorInput] = field(default_factory=dict)
    output_filter: list[str] = field(default_factory=list)

    @classmethod
    def of_message(cls, request: predict_pb2.PredictRequest) -> RequestParts:
        return cls(request.model_spec if request.HasField("model_spec") else None,
                   {alias: TensorInput(proto) for alias, proto in request.inputs.items()},
                   list(request.output_filter))


class _Unusual(Exception):
    """The bytes need protobuf's parser (repeated singular fields, unknown wire types)."""


def _fields(buffer: memoryview, start: int, end: int):
    """(number, wire type, key start, value start, value end) of each field in buffer[start:end]."""
    pos = start
    while pos < end:
        key_start = pos
        key, pos = _DecodeVarint(buffer, pos)
        number, wire_type = key >> 3, key & 7
        value_start = pos
        if wire_type == _LEN:
            length, value_start = _DecodeVarint(buffer, pos)
            pos = value_start + length
        elif wire_type == _VARINT:
            _, pos = _DecodeVarint(buffer, pos)
        elif wire_type in (_FIXED64, _FIXED32):
            pos += 8 if wire_type == _FIXED64 else 4
        else:
            raise _Unusual
        if pos > end:
            raise _Unusual
        yield number, wire_type, key_start, value_start, pos


def _tensor_input(buffer: memoryview, start: int, end: int) -> TensorInput:
    """The TensorProto at buffer[start:end], its tensor_content (if any) left out as a view."""
    content = None
    for number, wire_type, key_start, value_start, value_end in _fields(buffer, start, end):
        if number == _TENSOR_CONTENT and wire_type == _LEN:
            if content is not None:
                raise _Unusual  # the last one would win: let protobuf sort it out
            content = (key_start, value_start, value_end)
    if content is None:  # value fields or nothing: protobuf parses it all (no large view to keep)
        return TensorInput(tensor_pb2.TensorProto.FromString(bytes(buffer[start:end])))
    key_start, value_start, value_end = content
    # What surrounds tensor_content is small: dtype, shape, version_number.
    proto = tensor_pb2.TensorProto.FromString(bytes(buffer[start:key_start]) + bytes(buffer[value_end:end]))
    return TensorInput(proto, buffer[value_start:value_end])


def parse_request(raw: bytes) -> RequestParts:
    """The parts of a serialized PredictRequest; tensor_content stays a view of raw.

    Raises google.protobuf.message.DecodeError for bytes that are no PredictRequest.
    """
    buffer = memoryview(raw)
    try:
        return _walk_request(buffer)
    except (_Unusual, IndexError, ValueError):
        pass
    return RequestParts.of_message(predict_pb2.PredictRequest.FromString(raw))


def _walk_request(buffer: memoryview) -> RequestParts:
    parts = RequestParts(None)
    for number, wire_type, _, start, end in _fields(buffer, 0, len(buffer)):
        if wire_type != _LEN:
            if number in (1, 2, 3):
                raise _Unusual
            continue  # an unknown field: protobuf skips it too
        if number == 1:
            if parts.model_spec is not None:
                raise _Unusual  # protobuf merges repeated message fields: let it
            parts.model_spec = model_pb2.ModelSpec.FromString(bytes(buffer[start:end]))
        elif number == 2:
            alias, tensor = "", None
            for entry_number, entry_type, _, entry_start, entry_end in _fields(buffer, start, end):
                if entry_type != _LEN or (entry_number == 2 and tensor is not None):
                    raise _Unusual
                if entry_number == 1:
                    alias = bytes(buffer[entry_start:entry_end]).decode()
                elif entry_number == 2:
                    tensor = _tensor_input(buffer, entry_start, entry_end)
            parts.inputs[alias] = tensor if tensor is not None else TensorInput(tensor_pb2.TensorProto())
        elif number == 3:
            parts.output_filter.append(bytes(buffer[start:end]).decode())
    return parts


def _len_field(number: int, length: int) -> bytes:
    return _VarintBytes(number << 3 | _LEN) + _VarintBytes(length)


def response_bytes(outputs: Iterable[tuple[str, list]], model_spec: model_pb2.ModelSpec) -> bytes:
    """A serialized PredictResponse: outputs are (alias, encoded TensorProto chunks) in order."""
    chunks = []
    for alias, tensor_chunks in outputs:
        key = alias.encode()
        tensor_length = sum(len(chunk) for chunk in tensor_chunks)
        entry = [_len_field(1, len(key)), key, _len_field(2, tensor_length)]
        entry_length = sum(len(chunk) for chunk in entry) + tensor_length
        chunks += [_len_field(1, entry_length), *entry, *tensor_chunks]
    chunks.append(predict_pb2.PredictResponse(model_spec=model_spec).SerializeToString())
    return b"".join(chunks)
