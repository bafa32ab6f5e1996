"""TF Serving's names, written once for the client, the embedded server, bench and tests.

Signature keys and method names are TensorFlow's (``tensorflow/cc/saved_model/signature_constants.h``:
``kDefaultServingSignatureDefKey``, ``kPredictMethodName`` and its two twins); services and their method paths
are TF Serving's (``tensorflow_serving/apis/prediction_service.proto``, ``model_service.proto``);
``signature_def`` is the metadata field ``GetModelMetadata`` answers
(``tensorflow_serving/servables/tensorflow/get_model_metadata_impl.cc``). ``export`` imports
nothing of ours, so it takes the signature key from TensorFlow itself.
"""

from __future__ import annotations

DEFAULT_SIGNATURE = "serving_default"
PREDICT_METHOD_NAME = "tensorflow/serving/predict"
CLASSIFY_METHOD_NAME = "tensorflow/serving/classify"  # kClassifyMethodName
REGRESS_METHOD_NAME = "tensorflow/serving/regress"  # kRegressMethodName
SIGNATURE_DEF_FIELD = "signature_def"

PACKAGE = "tensorflow.serving"
PREDICTION_SERVICE = f"{PACKAGE}.PredictionService"
MODEL_SERVICE = f"{PACKAGE}.ModelService"


def method_path(service: str, method: str) -> str:
    """The gRPC path of a method: '/tensorflow.serving.PredictionService/Predict'."""
    return f"/{service}/{method}"


PREDICT_METHOD = method_path(PREDICTION_SERVICE, "Predict")
GET_MODEL_METADATA_METHOD = method_path(PREDICTION_SERVICE, "GetModelMetadata")
