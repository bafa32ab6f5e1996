"""PredictionService.Predict as TF Serving's predict_util.cc runs it, on request bytes or messages.

Steps and wording follow ``RunPredict``: the signature (FAILED_PRECONDITION if missing), the
input count, each input decoded as ``Tensor::FromProto`` (``tensor parsing error: <alias>``),
unknown input names, the output filter, then the session call; dtypes and shapes are left to
TensorFlow, whose errors come back unchanged. The method-name check is off by default, as in TF
Serving (``--enable-signature-method-name-check``: serving.local.method_names), so
``__saved_model_init_op`` fails on its input count like it does there. Outputs go back in their
typed value fields (``float_val``, ``int_val``, ...), or as ``tensor_content`` under
``--enable-serialization-as-tensor-content``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import grpc
import numpy as np
from google.protobuf.message import DecodeError
from tensorflow.core.protobuf import meta_graph_pb2

from client.names import DEFAULT_SIGNATURE
from client.protos import model_pb2, predict_pb2, tensor_pb2, types_pb2
from client.tensors import (
    MAX_DIMS,
    MAX_NUMPY_DIMS,
    UNLIMITED,
    TensorBudget,
    TensorDecodeError,
    TensorRankUnsupported,
    TensorTooLarge,
    dtype_name,
    encode_tensor,
)
from client.wire import RequestParts, parse_request, response_bytes
from serving.local.errors import InvalidRequest, RequestError, SignatureKeyNotFound
from serving.local.input_tensors import TensorNotFeedable, decode_input
from serving.local.method_names import verify_predict_signature
from serving.local.repository import ModelRepository
from serving.local.servable import Servable

# (servable, signature name, inputs by alias, output aliases) -> outputs by alias: the batcher's or a
# direct call
ModelRunner = Callable[[Servable, str, dict[str, np.ndarray], tuple[str, ...]], dict[str, np.ndarray]]
# (model name, API, runtime, microseconds): where the runtime latency metric goes
RuntimeRecorder = Callable[[str, str, str, float], None]


class RequestTooLarge(RequestError):
    """Decoding the request's inputs would allocate more than the server allows."""

    code = grpc.StatusCode.RESOURCE_EXHAUSTED


class InputNotFeedable(RequestError):
    """A valid input TF Serving would feed to the session, but this server cannot."""

    code = grpc.StatusCode.UNIMPLEMENTED


class UnparsableRequest(RequestError):
    """The bytes are no PredictRequest: INTERNAL with no message, as gRPC C++'s GenericDeserialize
    answers (grpcpp/impl/proto_utils.h: InitializationErrorString(), empty for proto3 messages)."""

    code = grpc.StatusCode.INTERNAL

    def __init__(self):
        super().__init__("")


def _encode_output(array: np.ndarray, as_content: bool) -> list:
    """encode_tensor, and bfloat16 too (TensorFlow's own dtype, which the client's codec has no numpy
    dtype for): each value's 16 bits in half_val, as tensor.cc's ProtoHelper<bfloat16> writes them."""
    if array.dtype.name != "bfloat16":
        return encode_tensor(array, as_content)
    proto = tensor_pb2.TensorProto(dtype=types_pb2.DT_BFLOAT16)
    proto.tensor_shape.SetInParent()
    for size in array.shape:
        proto.tensor_shape.dim.add(size=int(size))
    bits = np.ascontiguousarray(array).view("<u2")
    if as_content and bits.size:
        proto.tensor_content = bits.tobytes()
    else:
        proto.half_val.extend(bits.reshape(-1).tolist())
    return [proto.SerializeToString()]


def run_directly(
    servable: Servable, signature: str, inputs: dict[str, np.ndarray], output_keys: tuple[str, ...]
) -> dict[str, np.ndarray]:
    """The unbatched model call."""
    return servable.run(signature, inputs, output_keys)


def _keys(keys) -> str:
    return ",".join(sorted(keys))


@dataclass(frozen=True)
class PreparedPredict:
    """A validated request: what to run and which outputs to return, in order."""

    servable: Servable
    signature_name: str
    signature: meta_graph_pb2.SignatureDef
    inputs: dict[str, np.ndarray]
    output_keys: tuple[str, ...]


def prepare_predict(
    parts: RequestParts, servable: Servable, budget: TensorBudget = UNLIMITED
) -> PreparedPredict:
    """Validate and decode the request against the servable's signature, with TF Serving's errors."""
    spec = parts.model_spec or model_pb2.ModelSpec()
    signature_name = spec.signature_name or DEFAULT_SIGNATURE
    signature = servable.signature_defs.get(signature_name)
    if signature is None:
        raise SignatureKeyNotFound(f'Serving signature key "{signature_name}" not found.')
    verify_predict_signature(signature)
    sent, expected = set(parts.inputs), set(signature.inputs)
    if len(sent) > len(expected) or (len(sent) < len(expected) and not signature.defaults):
        raise InvalidRequest(
            f"input size does not match signature: {len(sent)}!={len(expected)} len({{{_keys(sent)}}}) != "
            f"len({{{_keys(expected)}}}). Sent extra: {{{_keys(sent - expected)}}}. "
            f"Missing but required: {{{_keys(expected - sent)}}}."
        )
    inputs = {}
    for alias in sorted(signature.inputs):
        info = signature.inputs[alias]
        if alias in parts.inputs:
            tensor = parts.inputs[alias]
            proto, content = tensor.proto, tensor.content
        elif alias in signature.defaults:
            proto, content = signature.defaults[alias], None
        else:
            raise InvalidRequest(
                f"Signature input alias: {alias}(feed name: {info.name}) not found in request and no "
                f"default value provided. Inputs expected to be in the request {{{_keys(sent)}}}, "
                f"or default input alias set: {_keys(signature.defaults)}"
            )
        try:
            inputs[alias] = decode_input(proto, content, f"input {alias}", budget)
        except TensorTooLarge as exc:
            raise RequestTooLarge(f"{exc} (--max-request-tensor-bytes)") from None
        except TensorRankUnsupported:
            raise InputNotFeedable(
                f"input {alias} has {len(proto.tensor_shape.dim)} dimensions; this server feeds at "
                f"most {MAX_NUMPY_DIMS} (TensorFlow takes up to {MAX_DIMS})"
            ) from None
        except TensorNotFeedable:
            raise InputNotFeedable(
                f"input {alias} is a {dtype_name(proto.dtype)} tensor, "
                "which this server cannot feed to a model"
            ) from None
        except TensorDecodeError:  # Tensor::FromProto failed: TF Serving says no more than this
            raise InvalidRequest(f"tensor parsing error: {alias}") from None
    if sent - expected:
        raise InvalidRequest(
            f"Inputs contains invalid name. Used request inputs: {_keys(sent & expected)}, "
            f"request input: {_keys(sent)}"
        )
    return PreparedPredict(
        servable, signature_name, signature, inputs, _output_keys(parts.output_filter, signature)
    )


def _output_keys(output_filter, signature: meta_graph_pb2.SignatureDef) -> tuple[str, ...]:
    seen: list[str] = []
    for alias in output_filter:
        if alias not in signature.outputs:
            raise InvalidRequest(
                f"output tensor alias not found in signature: {alias} Outputs expected to "
                f"be in the set {{{_keys(signature.outputs)}}}."
            )
        if alias in seen:
            raise InvalidRequest(f"duplicate output tensor alias: {alias}")
        seen.append(alias)
    return tuple(seen) or tuple(signature.outputs)


def response_model_spec(
    request_spec: model_pb2.ModelSpec | None, prepared: PreparedPredict
) -> model_pb2.ModelSpec:
    """MakeModelSpec: the request's model name, the signature run and the version that ran it."""
    spec = model_pb2.ModelSpec(
        name=request_spec.name if request_spec else "", signature_name=prepared.signature_name
    )
    spec.version.value = prepared.servable.version
    return spec


class Predictor:
    """Predict end to end: resolve the servable, decode, run (maybe batched), encode the response.

    Args:
        repository: where servables are resolved.
        run: the model call (the batcher's, or run_directly).
        as_content: answer with tensor_content instead of the typed value fields.
        budget: how much a request's value fields may expand to.
        record_runtime: receives the session call's latency, as TF Serving's runtime_latency metric.
    """

    def __init__(
        self,
        repository: ModelRepository | None,
        run: ModelRunner = run_directly,
        *,
        as_content: bool = False,
        budget: TensorBudget = UNLIMITED,
        record_runtime: RuntimeRecorder | None = None,
    ):
        self._repository = repository
        self._run = run
        self.as_content = as_content
        self._budget = budget
        self._record_runtime = record_runtime

    def _outputs(
        self, parts: RequestParts, servable: Servable | None = None
    ) -> tuple[PreparedPredict, dict[str, np.ndarray]]:
        if servable is None:  # warmup replays records on a known servable, spec or not (RunPredict)
            if parts.model_spec is None:
                raise InvalidRequest("Missing ModelSpec")
            servable = self._repository.resolve(parts.model_spec)
        prepared = prepare_predict(parts, servable, self._budget)
        start = time.perf_counter()
        outputs = self._run(servable, prepared.signature_name, prepared.inputs, prepared.output_keys)
        if self._record_runtime is not None and parts.model_spec is not None:
            self._record_runtime(parts.model_spec.name, "Predict", "TF1", (time.perf_counter() - start) * 1e6)
        return prepared, outputs

    @staticmethod
    def parse(raw: bytes) -> RequestParts:
        """The parts of a serialized PredictRequest; UnparsableRequest if it is none."""
        try:
            return parse_request(raw)
        except (DecodeError, UnicodeDecodeError):
            raise UnparsableRequest() from None

    def predict_parts(self, parts: RequestParts) -> bytes:
        """The serialized PredictResponse for a parsed request (the gRPC path)."""
        prepared, outputs = self._outputs(parts)
        return self._response_bytes(parts, prepared, outputs)

    def _response_bytes(
        self, parts: RequestParts, prepared: PreparedPredict, outputs: dict[str, np.ndarray]
    ) -> bytes:
        encoded = [
            (key, _encode_output(np.asarray(outputs[key]), self.as_content)) for key in prepared.output_keys
        ]
        return response_bytes(encoded, response_model_spec(parts.model_spec, prepared))

    def predict(
        self, request: predict_pb2.PredictRequest, servable: Servable | None = None
    ) -> predict_pb2.PredictResponse:
        """The PredictResponse for a PredictRequest message (REST, warmup); servable skips the lookup."""
        parts = RequestParts.of_message(request)
        prepared, outputs = self._outputs(parts, servable)
        return predict_pb2.PredictResponse.FromString(self._response_bytes(parts, prepared, outputs))
