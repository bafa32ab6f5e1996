"""Lean gRPC client for the threshold filter on TF Serving (never imports tensorflow).

    from client import ThresholdClient, ServerUnavailable

    with ThresholdClient("127.0.0.1:8500") as client:
        mask = client.predict(array)                       # checked against the server's bounds
        summary = client.predict_file("data.npy", output="mask.npy")

Names are imported lazily, so ``python -m client.predict --help`` loads neither grpc nor numpy.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "ThresholdClient": "client.api", "PredictSummary": "client.api", "plan_batches": "client.stream",
    "DEFAULT_SERVER": "client.defaults", "ModelInfo": "client.model", "Signature": "client.model",
    "SignatureNotFound": "client.model", "CheckReport": "client.checker", "Mismatch": "client.checker",
    "expected_mask": "client.checker",
    **{name: "client.errors" for name in (
        "ThresholdClientError", "InputFileError", "InputFormatError", "InvalidInput",
        "ServerUnavailable", "ModelNotFound", "DeadlineExceeded", "RequestRejected",
        "ResponseMismatch", "OutputFileError", "EXIT_CODES")},
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'client' has no attribute {name!r}")
