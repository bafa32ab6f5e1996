"""SignatureDef method names, and TF Serving's --enable_signature_method_name_check.

TF Serving keeps the check in one process-wide switch (servables/tensorflow/util.cc,
SetSignatureMethodNameCheckFeature), off by default so that native TF2 models serve. On, Predict
refuses a signature whose method_name is none of predict, classify and regress (predict_util.cc
VerifySignature, INTERNAL), and Classify and Regress refuse any but their own (classifier.cc,
regressor.cc, INVALID_ARGUMENT), before looking at inputs and outputs.
"""

from __future__ import annotations

import grpc
from tensorflow.core.protobuf import meta_graph_pb2

from client.names import CLASSIFY_METHOD_NAME, PREDICT_METHOD_NAME, REGRESS_METHOD_NAME
from serving.local.errors import RequestError

_EXAMPLE_API_WORDS = {CLASSIFY_METHOD_NAME: "classification", REGRESS_METHOD_NAME: "regression"}
_enabled = False


class PredictMethodMismatch(RequestError):
    """Predict on a signature of another method, with the check on (VerifySignature's INTERNAL)."""

    code = grpc.StatusCode.INTERNAL


def set_method_name_check(enabled: bool) -> None:
    """Turn the check on or off for the whole process, as --enable-signature-method-name-check does."""
    global _enabled
    _enabled = enabled


def verify_predict_signature(signature: meta_graph_pb2.SignatureDef) -> None:
    """predict_util.cc VerifySignature: PredictMethodMismatch if the check is on and the signature's
    method is none of predict, classify and regress."""
    accepted = (PREDICT_METHOD_NAME, CLASSIFY_METHOD_NAME, REGRESS_METHOD_NAME)
    if _enabled and signature.method_name not in accepted:
        raise PredictMethodMismatch(
            f"Expected prediction signature method_name to be one of {{{PREDICT_METHOD_NAME}, "
            f"{CLASSIFY_METHOD_NAME}, {REGRESS_METHOD_NAME}}}. Was: {signature.method_name}"
        )


def example_api_mismatch(signature: meta_graph_pb2.SignatureDef, method: str) -> str | None:
    """PreProcessClassification / PreProcessRegression's first check (method: the classify or
    regress method name): its message when the check is on and the signature is of another one."""
    if _enabled and signature.method_name != method:
        return (
            f"Expected {_EXAMPLE_API_WORDS[method]} signature method_name to be {method}. "
            f"Was: {signature.method_name}"
        )
    return None
