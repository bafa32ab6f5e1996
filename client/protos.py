"""TF Serving's messages and gRPC services, defined here: the client needs no tensorflow package.

The messages are those of ``client._proto_schema`` (transcribed from TF Serving's .proto files),
loaded from their serialized form (``client._proto_descriptors``) into a descriptor pool of this
module's own: they coexist with the classes TensorFlow and tensorflow-serving-api register in
the default pool, in one process, with the same full names and the same bytes on the wire.
They are laid out as the generated modules are, so code reads as with tensorflow-serving-api::

    from client.protos import predict_pb2, types_pb2
    request = predict_pb2.PredictRequest()
    types_pb2.DT_FLOAT, types_pb2.DataType.Name(1)

The ``*_pb2_grpc`` modules hold a stub, a servicer base and ``add_*_to_server`` for the
methods this project calls or fakes (``client._proto_services``). Everything is built on first
use, so ``import client.protos`` costs nothing until a message is needed.
"""

from __future__ import annotations

import threading
import types
from typing import TYPE_CHECKING

from google.protobuf import descriptor_pool, message_factory
from google.protobuf.internal import enum_type_wrapper

from client import _proto_descriptors

if TYPE_CHECKING:  # the names for readers and IDEs; at run time __getattr__ builds them
    from types import ModuleType

    get_model_metadata_pb2: ModuleType
    get_model_status_pb2: ModuleType
    meta_graph_pb2: ModuleType
    model_pb2: ModuleType
    model_service_pb2_grpc: ModuleType
    predict_pb2: ModuleType
    prediction_service_pb2_grpc: ModuleType
    resource_handle_pb2: ModuleType
    status_pb2: ModuleType
    tensor_pb2: ModuleType
    tensor_shape_pb2: ModuleType
    types_pb2: ModuleType
    error_codes_pb2: ModuleType

# Module name -> the .proto file it holds, as protoc names them.
_MESSAGE_MODULES = {
    "types_pb2": "tensorflow/core/framework/types.proto",
    "tensor_shape_pb2": "tensorflow/core/framework/tensor_shape.proto",
    "resource_handle_pb2": "tensorflow/core/framework/resource_handle.proto",
    "tensor_pb2": "tensorflow/core/framework/tensor.proto",
    "error_codes_pb2": "xla/tsl/protobuf/error_codes.proto",
    "meta_graph_pb2": "tensorflow/core/protobuf/meta_graph.proto",
    "model_pb2": "tensorflow_serving/apis/model.proto",
    "predict_pb2": "tensorflow_serving/apis/predict.proto",
    "get_model_metadata_pb2": "tensorflow_serving/apis/get_model_metadata.proto",
    "status_pb2": "tensorflow_serving/apis/status.proto",
    "get_model_status_pb2": "tensorflow_serving/apis/get_model_status.proto",
}
_SERVICE_MODULES = ("prediction_service_pb2_grpc", "model_service_pb2_grpc")
_lock = threading.Lock()


def _build_pool() -> descriptor_pool.DescriptorPool:
    """A pool of this module's own, holding protobuf's Any and wrappers and the schema's files."""
    from google.protobuf import any_pb2, wrappers_pb2

    pool = descriptor_pool.DescriptorPool()
    for serialized in (
        any_pb2.DESCRIPTOR.serialized_pb,
        wrappers_pb2.DESCRIPTOR.serialized_pb,
        *_proto_descriptors.FILES,
    ):
        pool.AddSerializedFile(serialized)
    return pool


def _message_module(pool: descriptor_pool.DescriptorPool, name: str, proto_file: str) -> types.ModuleType:
    """What protoc's ``*_pb2`` module holds: message classes, enum wrappers, top-level enum values."""
    module = types.ModuleType(f"{__name__}.{name}", f"Messages of {proto_file}, TF Serving's numbering.")
    module.DESCRIPTOR = pool.FindFileByName(proto_file)
    for message in module.DESCRIPTOR.message_types_by_name.values():
        setattr(module, message.name, message_factory.GetMessageClass(message))
    for enum in module.DESCRIPTOR.enum_types_by_name.values():
        setattr(module, enum.name, enum_type_wrapper.EnumTypeWrapper(enum))
        for value in enum.values:
            setattr(module, value.name, value.number)
    return module


def _build_all() -> None:
    pool = _build_pool()
    modules = {name: _message_module(pool, name, proto_file) for name, proto_file in _MESSAGE_MODULES.items()}
    globals().update(modules)


def __getattr__(name: str) -> types.ModuleType:
    """Build the message modules on first use; the gRPC ones (which import grpc) only when asked for."""
    if name not in _MESSAGE_MODULES and name not in _SERVICE_MODULES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    with _lock:
        if "predict_pb2" not in globals():
            _build_all()
        if name in _SERVICE_MODULES and name not in globals():
            from client import _proto_services

            globals().update(_proto_services.service_modules(globals()))
    return globals()[name]


__all__ = sorted([*_MESSAGE_MODULES, *_SERVICE_MODULES])
