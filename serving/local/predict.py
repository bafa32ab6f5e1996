"""PredictionService.Predict: validate a request against the signature, run it, answer with tensor_content.

Checks run in TF Serving's order (predict_util.cc, saved_model/util.cc) with its wording, so a
client sees the same status code and message from either server. TF Serving leaves wrong dtypes
and shapes to the TensorFlow session; here they are caught before the call, with a message that
names the input, what the signature expects and what arrived.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from tensorflow.core.protobuf import meta_graph_pb2
from tensorflow_serving.apis import predict_pb2

from serving.local.errors import InvalidRequest, NotAPredictSignature, SignatureNotFound
from serving.local.repository import ModelRepository
from serving.local.servable import Servable
from serving.local.tensors import MalformedTensor, dtype_name, fill_tensor_proto, to_array

DEFAULT_SIGNATURE = "serving_default"
PREDICT_METHOD = "tensorflow/serving/predict"
RUNNABLE_METHODS = (PREDICT_METHOD, "tensorflow/serving/classify", "tensorflow/serving/regress")

# (servable, signature name, inputs) -> outputs; the batcher or Servable.run
ModelRunner = Callable[[Servable, str, dict[str, np.ndarray]], dict[str, np.ndarray]]


@dataclass(frozen=True)
class PreparedPredict:
    """A validated request: what to run and which outputs to return, in order."""

    servable: Servable
    signature_name: str
    signature: meta_graph_pb2.SignatureDef
    inputs: dict[str, np.ndarray]
    output_keys: tuple[str, ...]


def _keys(keys) -> str:
    return ",".join(sorted(keys))


def _shape_text(dims) -> str:
    return "[" + ",".join(str(d) for d in dims) + "]"


def check_dtype(signature_name: str, alias: str, info: meta_graph_pb2.TensorInfo, sent: int) -> None:
    """InvalidRequest unless the sent dtype is the signature input's dtype."""
    if sent != info.dtype:
        raise InvalidRequest(f'input "{alias}" of signature "{signature_name}" expects dtype '
                             f"{dtype_name(info.dtype)}, but the request sent {dtype_name(sent)}")


def check_shape(signature_name: str, alias: str, info: meta_graph_pb2.TensorInfo,
                shape: tuple[int, ...]) -> None:
    """InvalidRequest unless shape fits the signature input's shape (-1 matches any size)."""
    if info.tensor_shape.unknown_rank:
        return
    expected = [dim.size for dim in info.tensor_shape.dim]
    if len(expected) != len(shape) or any(e >= 0 and e != s for e, s in zip(expected, shape, strict=True)):
        raise InvalidRequest(f'input "{alias}" of signature "{signature_name}" expects shape '
                             f"{_shape_text(expected)} (rank {len(expected)}), but the request sent shape "
                             f"{_shape_text(shape)} (rank {len(shape)})")


def prepare_predict(request: predict_pb2.PredictRequest, servable: Servable) -> PreparedPredict:
    """Validate request against the servable's signature; InvalidRequest & co. as TF Serving words them."""
    signature_name = request.model_spec.signature_name or DEFAULT_SIGNATURE
    signature = servable.signature_defs.get(signature_name)
    if signature is None:
        raise SignatureNotFound(f'Serving signature key "{signature_name}" not found.')
    if signature.method_name not in RUNNABLE_METHODS:
        raise NotAPredictSignature("Expected prediction signature method_name to be one of {"
                                   + ", ".join(RUNNABLE_METHODS) + f"}}. Was: {signature.method_name}")
    sent, expected = set(request.inputs), set(signature.inputs)
    if len(sent) > len(expected) or (len(sent) < len(expected) and not signature.defaults):
        raise InvalidRequest(
            f"input size does not match signature: {len(sent)}!={len(expected)} len({{{_keys(sent)}}}) != "
            f"len({{{_keys(expected)}}}). Sent extra: {{{_keys(sent - expected)}}}. "
            f"Missing but required: {{{_keys(expected - sent)}}}.")
    inputs = {}
    for alias in sorted(signature.inputs):
        info = signature.inputs[alias]
        if alias in request.inputs:
            proto = request.inputs[alias]
        elif alias in signature.defaults:
            proto = signature.defaults[alias]
        else:
            raise InvalidRequest(
                f"Signature input alias: {alias}(feed name: {info.name}) not found in request and no "
                f"default value provided. Inputs expected to be in the request {{{_keys(sent)}}}, "
                f"or default input alias set: {_keys(signature.defaults)}")
        check_dtype(signature_name, alias, info, proto.dtype)  # before decoding: any dtype gets named
        try:
            array = to_array(proto)
        except MalformedTensor as exc:
            raise InvalidRequest(f"tensor parsing error: {alias} ({exc})") from None
        check_shape(signature_name, alias, info, array.shape)
        inputs[alias] = array
    if sent - expected:
        raise InvalidRequest(f"Inputs contains invalid name. Used request inputs: {_keys(sent & expected)}, "
                             f"request input: {_keys(sent)}")
    return PreparedPredict(servable, signature_name, signature, inputs,
                           _output_keys(request.output_filter, signature))


def _output_keys(output_filter, signature: meta_graph_pb2.SignatureDef) -> tuple[str, ...]:
    seen: list[str] = []
    for alias in output_filter:
        if alias not in signature.outputs:
            raise InvalidRequest(f"output tensor alias not found in signature: {alias} Outputs expected to "
                                 f"be in the set {{{_keys(signature.outputs)}}}.")
        if alias in seen:
            raise InvalidRequest(f"duplicate output tensor alias: {alias}")
        seen.append(alias)
    return tuple(seen) or tuple(signature.outputs)


def predict_response(request: predict_pb2.PredictRequest, prepared: PreparedPredict,
                     outputs: dict[str, np.ndarray]) -> predict_pb2.PredictResponse:
    """The PredictResponse: model_spec as TF Serving fills it, outputs as tensor_content."""
    response = predict_pb2.PredictResponse()
    response.model_spec.name = request.model_spec.name
    response.model_spec.signature_name = prepared.signature_name
    response.model_spec.version.value = prepared.servable.version
    for key in prepared.output_keys:
        fill_tensor_proto(response.outputs[key], outputs[key])
    return response


class Predictor:
    """Predict end to end: resolve the servable, validate, run (maybe batched), build the response."""

    def __init__(self, repository: ModelRepository, run: ModelRunner):
        self._repository = repository
        self._run = run

    def predict(self, request: predict_pb2.PredictRequest) -> predict_pb2.PredictResponse:
        if not request.HasField("model_spec"):
            raise InvalidRequest("Missing ModelSpec")
        servable = self._repository.resolve(request.model_spec)
        return predict_on(servable, request, self._run)


def predict_on(servable: Servable, request: predict_pb2.PredictRequest,
               run: ModelRunner) -> predict_pb2.PredictResponse:
    """Predict on a given servable (also what warmup replays)."""
    prepared = prepare_predict(request, servable)
    outputs = run(servable, prepared.signature_name, prepared.inputs)
    return predict_response(request, prepared, outputs)
