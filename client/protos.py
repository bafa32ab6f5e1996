"""TF Serving's generated protos and gRPC stubs, loaded without importing TensorFlow.

tensorflow-serving-api's ``*_pb2`` modules import ``tensorflow.core.framework.tensor_pb2``
and friends, and a plain ``import tensorflow.core...`` first runs ``tensorflow/__init__.py``:
about 2.5 s and a screen of logs for a client that only needs message classes. While the
modules load, this puts bare placeholder packages for ``tensorflow`` and its proto
subpackages in ``sys.modules`` that point at the installed files, so only the ``*_pb2``
files execute; then it removes the placeholders again. The loaded ``*_pb2`` modules stay,
so a later real ``import tensorflow`` in the same process reuses them unharmed. Each module
loads on first use, so a one-row predict pays for no service it does not call.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
import threading
import types

_PROTO_PACKAGES = ("tensorflow", "tensorflow.core", "tensorflow.core.framework",
                   "tensorflow.core.protobuf", "tensorflow.core.example")


def _import_without_tensorflow_init(names: list[str]) -> list[types.ModuleType]:
    if "tensorflow" in sys.modules:  # already paid for (e.g. inside the server): import normally
        return [importlib.import_module(name) for name in names]
    spec = importlib.util.find_spec("tensorflow")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("the TF Serving protos need the tensorflow package's files: "
                          "pip install tensorflow-serving-api")
    root = list(spec.submodule_search_locations)[0]
    placeholders = {}
    for package in _PROTO_PACKAGES:
        module = types.ModuleType(package)
        module.__path__ = [os.path.join(root, *package.split(".")[1:])]
        placeholders[package] = module
        sys.modules[package] = module
    try:
        return [importlib.import_module(name) for name in names]
    finally:
        for package, module in placeholders.items():
            if sys.modules.get(package) is module:
                del sys.modules[package]


_MODULES = {
    "tensor_pb2": "tensorflow.core.framework.tensor_pb2",
    "tensor_shape_pb2": "tensorflow.core.framework.tensor_shape_pb2",
    "types_pb2": "tensorflow.core.framework.types_pb2",
    "meta_graph_pb2": "tensorflow.core.protobuf.meta_graph_pb2",
    "model_pb2": "tensorflow_serving.apis.model_pb2",
    "predict_pb2": "tensorflow_serving.apis.predict_pb2",
    "get_model_metadata_pb2": "tensorflow_serving.apis.get_model_metadata_pb2",
    "get_model_status_pb2": "tensorflow_serving.apis.get_model_status_pb2",
    "prediction_service_pb2_grpc": "tensorflow_serving.apis.prediction_service_pb2_grpc",
    "model_service_pb2_grpc": "tensorflow_serving.apis.model_service_pb2_grpc",
}
_lock = threading.Lock()


def __getattr__(name: str) -> types.ModuleType:
    """Each module on first use: a one-row predict never pays for the stubs' other services."""
    if name not in _MODULES:
        raise AttributeError(f"module 'client.protos' has no attribute {name!r}")
    with _lock:  # the placeholders in sys.modules must not be swapped under another thread's import
        if name not in globals():
            (globals()[name],) = _import_without_tensorflow_init([_MODULES[name]])
    return globals()[name]


__all__ = sorted(_MODULES)
