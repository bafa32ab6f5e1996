"""What one benchmark request is: a Predict call that encodes a numpy batch and decodes the answer.

Every request pays the whole client data path (numpy -> TensorProto -> bytes, bytes -> proto ->
numpy) through the client's own codec (``client.tensors``) and channel (``client.channel``), as
an application would; only the input array is made once.
"""

from __future__ import annotations

from dataclasses import dataclass

import grpc
import numpy as np
from google.protobuf.message import DecodeError

from client import wire
from client.channel import normalize_address, open_channel
from client.names import DEFAULT_SIGNATURE, PREDICT_METHOD
from client.protos import model_pb2, predict_pb2, prediction_service_pb2_grpc
from client.tensors import TensorDecodeError, from_tensor_proto, to_tensor_proto

CODECS = ("wire", "proto")


class UnexpectedResponse(Exception):
    """The server answered, but not with what a Predict on this signature should return."""


@dataclass(frozen=True)
class Target:
    """Which model, signature and tensors a benchmark calls."""

    model_name: str = "threshold"
    signature_name: str = DEFAULT_SIGNATURE
    input_name: str = "x"
    timeout: float = 30.0


def make_batch(rows: int, cols: int, seed: int = 0) -> np.ndarray:
    """A float32 [rows, cols] batch with values both inside and outside the default band."""
    return np.random.default_rng(seed).normal(0.0, 0.2, size=(rows, cols)).astype(np.float32)


def connect(server: str, wait: float = 10.0) -> grpc.Channel:
    """The client's own channel (same options as ``client.predict``) to ``server``, once it is ready."""
    channel = open_channel(normalize_address(server))
    try:
        grpc.channel_ready_future(channel).result(timeout=wait)
    except grpc.FutureTimeoutError:
        channel.close()
        raise ConnectionError(
            f"no gRPC server answered at {server} within {wait:g} s: "
            "start one (make serve) or pass --server HOST:PORT"
        ) from None
    return channel


def encode_request(target: Target, batch: np.ndarray) -> predict_pb2.PredictRequest:
    """A PredictRequest carrying ``batch``, encoded by the client's own tensor codec."""
    request = predict_pb2.PredictRequest()
    request.model_spec.name = target.model_name
    request.model_spec.signature_name = target.signature_name
    request.inputs[target.input_name].CopyFrom(to_tensor_proto(batch))
    return request


def decode_outputs(response: predict_pb2.PredictResponse) -> dict[str, np.ndarray]:
    """Every output of a PredictResponse as an array, by the client's own tensor codec."""
    try:
        return {name: from_tensor_proto(tensor) for name, tensor in response.outputs.items()}
    except TensorDecodeError as exc:
        raise UnexpectedResponse(str(exc)) from None


class PredictWorkload:
    """Sends the same batch as a Predict request each time and decodes every output it gets back.

    ``codec="wire"`` (the default) encodes and decodes with ``client.wire`` (one copy per
    request, zero-copy outputs); ``codec="proto"`` goes through protobuf objects and
    ``client.tensors``, as the client library does, so the two can be compared.
    """

    def __init__(self, channel: grpc.Channel, target: Target, batch: np.ndarray, codec: str = "wire"):
        if codec not in CODECS:
            raise ValueError(f"codec must be one of {', '.join(CODECS)}, got {codec!r}")
        self.target = target
        self.batch = np.ascontiguousarray(batch, dtype="<f4")
        self.codec = codec
        self._raw = channel.unary_unary(PREDICT_METHOD)  # no (de)serializers: bytes both ways
        self._stub = prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict
        spec = model_pb2.ModelSpec(name=target.model_name, signature_name=target.signature_name)
        self._frame = wire.request_frame(spec, target.input_name, self.batch.shape)
        self.send = self._send_wire if codec == "wire" else self._send_proto
        self.request_bytes = 0
        self.response_bytes = 0

    def _send_wire(self) -> dict[str, np.ndarray]:
        """One Predict round trip, encoded and decoded in full (wire codec)."""
        request = self._frame.encode(self.batch)
        return wire.decode_response(self._raw(request, timeout=self.target.timeout)).outputs

    def _send_proto(self) -> dict[str, np.ndarray]:
        """One Predict round trip, encoded and decoded in full (protobuf objects)."""
        response = self._stub(encode_request(self.target, self.batch), timeout=self.target.timeout)
        return decode_outputs(response)

    def probe(self) -> dict[str, np.ndarray]:
        """One checked request: records message sizes and fails early on a wrong answer.

        The answer is decoded by both codecs and must agree, so the fast path is checked
        against every server the benchmark meets.
        """
        request = self._frame.encode(self.batch)
        if request != encode_request(self.target, self.batch).SerializeToString():
            raise AssertionError("wire and proto encodings of the request differ")  # a bug here, not there
        response = self._raw(request, timeout=self.target.timeout)
        self.request_bytes, self.response_bytes = len(request), len(response)
        try:
            fast = wire.decode_response(response).outputs
            slow = decode_outputs(predict_pb2.PredictResponse.FromString(response))
        except (TensorDecodeError, DecodeError) as exc:
            raise UnexpectedResponse(f"cannot decode the response: {exc}") from None
        if not slow:
            raise UnexpectedResponse("the server answered with no outputs")
        if fast.keys() != slow.keys() or any(
            fast[k].dtype != slow[k].dtype or not np.array_equal(fast[k], slow[k], equal_nan=True)
            for k in slow
        ):
            raise AssertionError("wire and proto decodings of the response differ")
        return slow
