"""An embedded server that speaks TF Serving's gRPC (and REST) API, for machines without Docker.

Run ``python -m serving.local --help``. It loads SavedModels into a TensorFlow session, as
TF Serving's SavedModelBundle does, and answers PredictionService (Predict, GetModelMetadata;
Classify and Regress with TF Serving's refusals), ModelService (GetModelStatus,
HandleReloadConfigRequest) and the gRPC health service like tensorflow_model_server does,
errors included.
"""
