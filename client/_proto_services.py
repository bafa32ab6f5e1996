"""TF Serving's gRPC services over ``client.protos`` messages: stubs, servicer bases, registration.

The same shapes protoc's ``*_pb2_grpc`` modules have (``PredictionServiceStub(channel).Predict``,
``PredictionServiceServicer``, ``add_PredictionServiceServicer_to_server``), limited to the
methods this project calls or fakes; method paths are TF Serving's
(``tensorflow_serving/apis/prediction_service.proto``, ``model_service.proto``). A method a
servicer does not override answers UNIMPLEMENTED, as the generated bases do.
"""

from __future__ import annotations

import types
from collections.abc import Mapping

import grpc

from client.names import PACKAGE

# module -> (service, [(method, request class, response class)]), classes as "module.Message".
_SERVICES = {
    "prediction_service_pb2_grpc": (
        "PredictionService",
        [
            ("Predict", "predict_pb2.PredictRequest", "predict_pb2.PredictResponse"),
            (
                "GetModelMetadata",
                "get_model_metadata_pb2.GetModelMetadataRequest",
                "get_model_metadata_pb2.GetModelMetadataResponse",
            ),
        ],
    ),
    "model_service_pb2_grpc": (
        "ModelService",
        [
            (
                "GetModelStatus",
                "get_model_status_pb2.GetModelStatusRequest",
                "get_model_status_pb2.GetModelStatusResponse",
            ),
        ],
    ),
}


def _unimplemented(self, request, context):
    context.set_code(grpc.StatusCode.UNIMPLEMENTED)
    context.set_details("Method not implemented!")
    raise NotImplementedError("Method not implemented!")


def _service_module(
    module_name: str, service: str, methods: list[tuple[str, type, type]]
) -> types.ModuleType:
    full_name = f"{PACKAGE}.{service}"

    def stub_init(self, channel: grpc.Channel) -> None:
        for method, request, response in methods:
            setattr(
                self,
                method,
                channel.unary_unary(
                    f"/{full_name}/{method}",
                    request_serializer=request.SerializeToString,
                    response_deserializer=response.FromString,
                ),
            )

    def add_to_server(servicer, server: grpc.Server) -> None:
        handlers = {
            method: grpc.unary_unary_rpc_method_handler(
                getattr(servicer, method),
                request_deserializer=request.FromString,
                response_serializer=response.SerializeToString,
            )
            for method, request, response in methods
        }
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(full_name, handlers),))

    module = types.ModuleType(module_name, f"gRPC stub and servicer base of {full_name}.")
    stub = type(f"{service}Stub", (), {"__init__": stub_init, "__doc__": f"Client side of {full_name}."})
    servicer = type(
        f"{service}Servicer",
        (),
        {
            "__doc__": f"Server side of {full_name}: override the methods served.",
            **{method: _unimplemented for method, _, _ in methods},
        },
    )
    add_to_server.__name__ = add_to_server.__qualname__ = f"add_{service}Servicer_to_server"
    for value in (stub, servicer):
        value.__module__ = module_name
        setattr(module, value.__name__, value)
    setattr(module, add_to_server.__name__, add_to_server)
    return module


def service_modules(message_modules: Mapping[str, object]) -> dict[str, types.ModuleType]:
    """The ``*_pb2_grpc`` modules, their classes taken from ``message_modules`` (name -> module)."""

    def resolve(dotted: str) -> type:
        module, message = dotted.split(".")
        return getattr(message_modules[module], message)

    package = __name__.rsplit(".", 1)[0]
    return {
        name: _service_module(
            f"{package}.protos.{name}",
            service,
            [(method, resolve(request), resolve(response)) for method, request, response in methods],
        )
        for name, (service, methods) in _SERVICES.items()
    }
