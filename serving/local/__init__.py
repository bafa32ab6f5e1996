"""An embedded server that speaks TF Serving's gRPC (and REST) API, for machines without Docker.

Run ``python -m serving.local --help``. It loads SavedModels with ``tf.saved_model.load`` and
answers PredictionService.Predict / GetModelMetadata, ModelService.GetModelStatus and the
gRPC health service like tensorflow_model_server does, errors included.
"""
