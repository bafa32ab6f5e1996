"""Lean gRPC client for the threshold filter on TF Serving (never imports tensorflow).

    from client import ThresholdClient, ServerUnavailable

    with ThresholdClient("127.0.0.1:8500") as client:
        mask = client.predict(array)                       # checked against the server's bounds
        summary = client.predict_file("data.npy", output="mask.npy")

The names below are the public API: the client, what its calls return, and one error class per
failure a caller can act on (all derive from ``ThresholdClientError``). The modules behind them
are the implementation and may change; ``client.protos`` is TF Serving's protocol for code that
speaks it directly. Names are imported on first use, so ``python -m client.predict --help``
loads neither grpc nor numpy; the ``TYPE_CHECKING`` block shows type checkers and IDEs the same
names.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from client.api import PredictSummary, ThresholdClient
    from client.checker import CheckReport, Mismatch
    from client.errors import (
        DeadlineExceeded,
        InputFileError,
        InputFormatError,
        InvalidInput,
        ModelNotFound,
        OutputFileError,
        RequestRejected,
        ResponseMismatch,
        ServerUnavailable,
        ThresholdClientError,
    )
    from client.model import ModelInfo, Signature, SignatureNotFound, TensorSpec
    from client.stats import RunStats

# Public name -> the module defining it; __all__ and the TYPE_CHECKING imports list the same (a test checks).
_EXPORTS = {
    "ThresholdClient": "client.api",
    "PredictSummary": "client.api",
    "ModelInfo": "client.model",
    "Signature": "client.model",
    "TensorSpec": "client.model",
    "CheckReport": "client.checker",
    "Mismatch": "client.checker",
    "RunStats": "client.stats",
    "SignatureNotFound": "client.model",
    **{
        name: "client.errors"
        for name in (
            "ThresholdClientError",
            "InputFileError",
            "InputFormatError",
            "InvalidInput",
            "ServerUnavailable",
            "ModelNotFound",
            "DeadlineExceeded",
            "RequestRejected",
            "ResponseMismatch",
            "OutputFileError",
        )
    },
}

# Spelled out, so type checkers read it too.
__all__ = [
    "CheckReport",
    "DeadlineExceeded",
    "InputFileError",
    "InputFormatError",
    "InvalidInput",
    "Mismatch",
    "ModelInfo",
    "ModelNotFound",
    "OutputFileError",
    "PredictSummary",
    "RequestRejected",
    "ResponseMismatch",
    "RunStats",
    "ServerUnavailable",
    "Signature",
    "SignatureNotFound",
    "TensorSpec",
    "ThresholdClient",
    "ThresholdClientError",
]


def __getattr__(name: str) -> object:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value  # later lookups skip this function
        return value
    raise AttributeError(f"module 'client' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
