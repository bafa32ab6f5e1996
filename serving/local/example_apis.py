"""Classify, Regress and MultiInference: the checks TF Serving makes before it runs tf.Examples.

This server runs Predict signatures only. For the tf.Example APIs it makes TF Serving's own
checks of the signature (classifier.cc / regressor.cc PreProcessClassification /
PreProcessRegression, with the method-name check of serving.local.method_names; multi_inference.cc
for MultiInference's tasks), so what TF Serving refuses is refused in its words, and what TF
Serving would run is UNIMPLEMENTED here. gRPC, REST and warmup share these checks.
"""

from __future__ import annotations

import grpc
from google.protobuf import text_format
from tensorflow.core.protobuf import meta_graph_pb2

from client.names import CLASSIFY_METHOD_NAME, DEFAULT_SIGNATURE, REGRESS_METHOD_NAME
from serving.local.errors import InvalidRequest, RequestError
from serving.local.method_names import example_api_mismatch

MULTI_INFERENCE_NOT_RUN = "MultiInference is not supported by this server; use Predict"


class Unimplemented(RequestError):
    """TF Serving would run this (or refuses it as UNIMPLEMENTED itself); this server does not."""

    code = grpc.StatusCode.UNIMPLEMENTED


def unrunnable_reason(signature: meta_graph_pb2.SignatureDef, method: str) -> str | None:
    """Why PreProcessClassification (method "classify") or PreProcessRegression ("regress")
    refuses a signature, or None if TF Serving would run it (its method name first, with
    --enable-signature-method-name-check; then its inputs and outputs)."""
    mismatch = example_api_mismatch(
        signature, CLASSIFY_METHOD_NAME if method == "classify" else REGRESS_METHOD_NAME
    )
    if mismatch is not None:
        return mismatch
    debug = text_format.MessageToString(signature)
    if len(signature.inputs) != 1:
        return "Expected one input Tensor."
    if method == "classify":
        if len(signature.outputs) not in (1, 2):
            return f"Expected one or two output Tensors, found {len(signature.outputs)}"
        if "inputs" not in signature.inputs:
            return f"No classification inputs found in SignatureDef: {debug}"
        if "classes" in signature.outputs or "scores" in signature.outputs:
            return None
        return (
            'Expected classification signature outputs to contain at least one of "classes" or '
            f'"scores". Signature was: {debug}'
        )
    if len(signature.outputs) != 1:
        return "Expected one output Tensor."
    if "inputs" not in signature.inputs:
        return f"No regression inputs found in SignatureDef: {debug}"
    if "outputs" in signature.outputs:
        return None
    return f"No regression outputs found in SignatureDef: {debug}"


def check_classify_or_regress(signature_defs, model_spec, api: str) -> None:
    """RunClassify / RunRegress on a servable's signatures, up to the session call; always raises.

    api is "Classify" or "Regress". InvalidRequest in TF Serving's words for a signature it
    refuses, Unimplemented for one it would run.
    """
    name = model_spec.signature_name or DEFAULT_SIGNATURE
    signature = signature_defs.get(name)
    if signature is None:
        raise InvalidRequest(f"No signature was found with the name: {name}")
    reason = unrunnable_reason(signature, api.lower())
    if reason is not None:
        raise InvalidRequest(reason)
    raise Unimplemented(f"{api} on tf.Example inputs is not supported by this server; use Predict")


def check_multi_inference(signature_defs, request) -> None:
    """TensorFlowMultiInferenceRunner::Infer's checks of each task, in its words; always raises
    (Unimplemented once every task passes: this server runs no tf.Example computation)."""
    model_name = ""
    seen: set[str] = set()
    for task in request.tasks:
        if not task.model_spec.name:
            raise InvalidRequest("Found ModelSpec with an empty model name.")
        if not model_name:
            model_name = task.model_spec.name
        elif task.model_spec.name != model_name:
            raise InvalidRequest("All ModelSpecs in a MultiInferenceRequest must access the same model name.")
        name = task.model_spec.signature_name or DEFAULT_SIGNATURE
        if name in seen:
            raise InvalidRequest(f"Duplicate evaluation of signature: {name}")
        seen.add(name)
        signature = signature_defs.get(name)
        if signature is None:
            raise InvalidRequest(f"Requested signature not found in model graph: {name}")
        if task.method_name == CLASSIFY_METHOD_NAME:
            reason = unrunnable_reason(signature, "classify")
        elif task.method_name == REGRESS_METHOD_NAME:
            reason = unrunnable_reason(signature, "regress")
        else:
            raise Unimplemented(f"Unsupported signature method_name: {task.method_name}")
        if reason is not None:
            raise InvalidRequest(reason)
    raise Unimplemented(MULTI_INFERENCE_NOT_RUN)
