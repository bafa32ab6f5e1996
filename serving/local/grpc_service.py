"""TF Serving's gRPC services (tensorflow-serving-api's generated stubs) and the standard health service."""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent import futures

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from tensorflow_serving.apis import model_service_pb2_grpc, prediction_service_pb2_grpc

from serving.local.errors import PortInUse, RequestError
from serving.local.metrics import ServerMetrics
from serving.local.model_info import model_metadata, model_status
from serving.local.predict import Predictor
from serving.local.repository import ModelRepository

# What TF Serving's --enable_grpc_healthcheck_service reports as SERVING (plus "", the whole server).
HEALTH_SERVICES = ("", "tensorflow.serving.ModelService", "tensorflow.serving.PredictionService")
ENTRYPOINT = "GRPC"
log = logging.getLogger("serving.local")


def _answer(context: grpc.ServicerContext, call: Callable):
    """Run call; a RequestError becomes its status, anything else INTERNAL (never a dropped stream)."""
    try:
        return call()
    except RequestError as exc:
        context.abort(exc.code, exc.message)
    except Exception as exc:  # noqa: BLE001 - a bug must answer, not hang the client
        log.exception("internal error")
        context.abort(grpc.StatusCode.INTERNAL,
                      f"internal error in serving.local: {type(exc).__name__}: {exc}")


class PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
    """Predict and GetModelMetadata; Classify, Regress and MultiInference stay UNIMPLEMENTED."""

    def __init__(self, repository: ModelRepository, predictor: Predictor, metrics: ServerMetrics):
        self._repository, self._predictor, self._metrics = repository, predictor, metrics

    def Predict(self, request, context):  # noqa: N802 - gRPC method name
        def call():
            with self._metrics.observe_request(request.model_spec.name, "predict", ENTRYPOINT):
                return self._predictor.predict(request)
        return _answer(context, call)

    def GetModelMetadata(self, request, context):  # noqa: N802
        def call():
            with self._metrics.observe_request(request.model_spec.name, "GetModelMetadata", ENTRYPOINT):
                return model_metadata(self._repository, request)
        return _answer(context, call)


class ModelService(model_service_pb2_grpc.ModelServiceServicer):
    """GetModelStatus; HandleReloadConfigRequest stays UNIMPLEMENTED (the config file is polled instead)."""

    def __init__(self, repository: ModelRepository):
        self._repository = repository

    def GetModelStatus(self, request, context):  # noqa: N802
        return _answer(context, lambda: model_status(self._repository, request))


def build_grpc_server(address: str, repository: ModelRepository, predictor: Predictor,
                      metrics: ServerMetrics, *, max_message_bytes: int, threads: int,
                      credentials: grpc.ServerCredentials | None
                      ) -> tuple[grpc.Server, health.HealthServicer, int]:
    """A gRPC server (not started yet) bound to address with every service added, and its port."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=threads, thread_name_prefix="grpc"), options=[
        ("grpc.max_receive_message_length", max_message_bytes),
        ("grpc.max_send_message_length", max_message_bytes),
        ("grpc.so_reuseport", 0),  # a second server on the same port must fail, not share it
    ])
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
        PredictionService(repository, predictor, metrics), server)
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(ModelService(repository), server)
    health_servicer = health.HealthServicer(experimental_non_blocking=True)
    for service in HEALTH_SERVICES:
        health_servicer.set(service, health_pb2.HealthCheckResponse.SERVING)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    try:
        port = (server.add_secure_port(address, credentials) if credentials
                else server.add_insecure_port(address))
    except RuntimeError as exc:
        raise PortInUse(f"cannot listen for gRPC on {address}: {exc}; pick another --port or stop "
                        "what uses it (`make stop`)") from None
    if port == 0:
        raise PortInUse(f"cannot listen for gRPC on {address}: the port is in use; pick another --port "
                        "or stop what uses it (`make stop`)")
    return server, health_servicer, port
