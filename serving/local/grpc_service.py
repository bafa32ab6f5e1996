"""TF Serving's gRPC services and the standard health service, as model_servers/server.cc sets them up.

Predict takes and returns raw bytes (client/wire.py), so tensors cross the gRPC boundary
without protobuf copies, and its messages are the client's (client.protos). The other methods
use tensorflow-serving-api's generated classes and service registration: what they answer is
built from the SavedModel's SignatureDefs, which TensorFlow reads into its own classes, and the
server needs TensorFlow anyway. Both pools hold the same messages, byte for byte (tests prove it).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from concurrent import futures

import grpc
from google.protobuf.message import DecodeError
from grpc_health.v1 import health, health_pb2
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    inference_pb2,
    model_management_pb2,
    model_pb2,
    regression_pb2,
)

from client.names import MODEL_SERVICE, PREDICTION_SERVICE
from serving.local.errors import CannotListen, ConfigRefused, InvalidRequest, RequestError, listen_failure
from serving.local.example_apis import check_classify_or_regress, check_multi_inference
from serving.local.metrics import ServerMetrics
from serving.local.model_info import model_metadata, model_status
from serving.local.predict import Predictor
from serving.local.repository import ModelRepository
from serving.local.server_core import ServerCore

# What TF Serving's --enable_grpc_healthcheck_service reports as SERVING (server.cc), plus "",
# which gRPC's default health service always has: the whole server.
HEALTH_SERVICES = ("", "ModelService", "PredictionService")
HEALTH_SERVICE = "grpc.health.v1.Health"
UNIX_SCHEME = "unix:"  # gRPC's target for a UNIX socket path
HEALTH_UNPARSABLE = "could not parse request"
MAX_HEALTH_SERVICE_NAME_BYTES = 200  # default_health_check_service.cc MAX_SERVICE_NAME_LENGTH
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
        context.abort(
            grpc.StatusCode.INTERNAL, f"internal error in serving.local: {type(exc).__name__}: {exc}"
        )


class _Unparsable:
    """Request bytes that are no message of the method's request type."""


_UNPARSABLE = _Unparsable()


def _unary(behaviour: Callable, request_class, response_class) -> grpc.RpcMethodHandler:
    """A unary method on request_class messages. Bytes that do not parse answer INTERNAL with no
    message, as gRPC C++'s GenericDeserialize does (grpcpp/impl/proto_utils.h: Status(INTERNAL,
    InitializationErrorString()), empty for proto3 messages), not gRPC Python's "Exception
    deserializing request!"."""

    def deserialize(raw: bytes):
        try:
            return request_class.FromString(raw)
        except DecodeError:
            return _UNPARSABLE

    def answer(request, context):
        if request is _UNPARSABLE:
            context.abort(grpc.StatusCode.INTERNAL, "")
        return behaviour(request, context)

    return grpc.unary_unary_rpc_method_handler(
        answer, request_deserializer=deserialize, response_serializer=response_class.SerializeToString
    )


class _InferenceApis:
    """Classify, Regress and MultiInference: the servable the spec names, then TF Serving's checks
    (example_apis.py)."""

    def __init__(self, repository: ModelRepository):
        self._repository = repository

    def check(self, request, api: str) -> None:
        if not request.HasField("model_spec"):
            raise InvalidRequest("Missing ModelSpec")
        servable = self._repository.resolve(request.model_spec)
        check_classify_or_regress(servable.signature_defs, request.model_spec, api)

    def check_multi_inference(self, request) -> None:
        """RunMultiInferenceWithServerCore: the servable of the first task's spec, then each task."""
        first = request.tasks[0] if request.tasks else None
        spec = first.model_spec if first is not None and first.HasField("model_spec") else None
        servable = self._repository.resolve(spec or model_pb2.ModelSpec())
        check_multi_inference(servable.signature_defs, request)


class PredictionService:
    """Predict (on bytes), GetModelMetadata, Classify, Regress and MultiInference."""

    def __init__(self, repository: ModelRepository, predictor: Predictor, metrics: ServerMetrics):
        self._repository, self._predictor, self._metrics = repository, predictor, metrics
        self._inference = _InferenceApis(repository)

    def predict(self, raw: bytes, context) -> bytes:
        def call():
            parts = self._predictor.parse(raw)
            name = parts.model_spec.name if parts.model_spec is not None else ""
            with self._metrics.observe_request(name, "Predict", ENTRYPOINT):
                return self._predictor.predict_parts(parts)

        return _answer(context, call)

    def get_model_metadata(self, request, context):
        return _answer(context, lambda: model_metadata(self._repository, request))

    def _inference_call(self, request, context, api: str):
        def call():
            with self._metrics.observe_request(request.model_spec.name, api, ENTRYPOINT):
                self._inference.check(request, api)

        return _answer(context, call)

    def classify(self, request, context):
        return self._inference_call(request, context, "Classify")

    def regress(self, request, context):
        return self._inference_call(request, context, "Regress")

    def multi_inference(self, request, context):
        # prediction_service_impl.cc records no request metrics for MultiInference
        return _answer(context, lambda: self._inference.check_multi_inference(request))

    def handler(self) -> grpc.GenericRpcHandler:
        return grpc.method_handlers_generic_handler(
            PREDICTION_SERVICE,
            {
                "Predict": grpc.unary_unary_rpc_method_handler(self.predict),  # bytes in, bytes out
                "GetModelMetadata": _unary(
                    self.get_model_metadata,
                    get_model_metadata_pb2.GetModelMetadataRequest,
                    get_model_metadata_pb2.GetModelMetadataResponse,
                ),
                "Classify": _unary(
                    self.classify,
                    classification_pb2.ClassificationRequest,
                    classification_pb2.ClassificationResponse,
                ),
                "Regress": _unary(
                    self.regress, regression_pb2.RegressionRequest, regression_pb2.RegressionResponse
                ),
                "MultiInference": _unary(
                    self.multi_inference,
                    inference_pb2.MultiInferenceRequest,
                    inference_pb2.MultiInferenceResponse,
                ),
            },
        )


class ModelService:
    """GetModelStatus, and HandleReloadConfigRequest for a model_config_list, with the increase of
    each metric it names (model_service_impl.cc)."""

    def __init__(self, repository: ModelRepository, core: ServerCore, metrics: ServerMetrics):
        self._repository = repository
        self._core = core
        self._metrics = metrics

    def handler(self) -> grpc.GenericRpcHandler:
        return grpc.method_handlers_generic_handler(
            MODEL_SERVICE,
            {
                "GetModelStatus": _unary(
                    self.get_model_status,
                    get_model_status_pb2.GetModelStatusRequest,
                    get_model_status_pb2.GetModelStatusResponse,
                ),
                "HandleReloadConfigRequest": _unary(
                    self.handle_reload_config_request,
                    model_management_pb2.ReloadConfigRequest,
                    model_management_pb2.ReloadConfigResponse,
                ),
            },
        )

    def get_model_status(self, request, context):
        return _answer(context, lambda: model_status(self._repository, request))

    def handle_reload_config_request(self, request, context):
        # GetMetrics: each distinct name once, in a hash map (so in no promised order)
        names = list(dict.fromkeys(request.metric_names))
        before = {name: self._metrics.first_point(name) for name in names}

        def call():
            if request.config.WhichOneof("config") != "model_config_list":
                raise InvalidRequest(
                    "ServerModelConfig type not supported by HandleReloadConfigRequest. "
                    "Only ModelConfigList is currently supported"
                )
            try:
                self._core.reload_config(request.config)
            except ConfigRefused as exc:
                log.info("ReloadConfig failed: %s", exc.message)
                raise RequestError(exc.message, exc.code) from None
            self._repository.refresh()  # as ServerCore::ReloadConfig, answer once the new models loaded
            response = model_management_pb2.ReloadConfigResponse()
            response.status.SetInParent()
            for name in names:  # RecordMetricsIncrease
                increase = self._metrics.first_point(name) - before[name]
                response.metric.add(name=name, int64_value_increase=increase)
            return response

        return _answer(context, call)


class HealthServicer(health.HealthServicer):
    """grpc.health.v1 as gRPC C++'s default health service answers it (default_health_check_service.cc):
    unknown names NOT_FOUND "service name unknown"; a request DecodeRequest refuses (bytes upb
    cannot parse, a name over 200 bytes) "could not parse request", INVALID_ARGUMENT from Check
    and INTERNAL from Watch."""

    def Check(self, request, context):  # noqa: N802
        if request is _UNPARSABLE:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, HEALTH_UNPARSABLE)
        with self._lock:
            known = request.service in self._server_status
        if not known:
            context.abort(grpc.StatusCode.NOT_FOUND, "service name unknown")
        return super().Check(request, context)

    def Watch(self, request, context, send_response_callback=None):  # noqa: N802
        if request is _UNPARSABLE:
            context.abort(grpc.StatusCode.INTERNAL, HEALTH_UNPARSABLE)
        return super().Watch(request, context, send_response_callback)

    def handler(self) -> grpc.GenericRpcHandler:
        """Check and Watch on requests decoded as DecodeRequest decodes them."""

        def deserialize(raw: bytes):
            try:
                request = health_pb2.HealthCheckRequest.FromString(raw)
            except DecodeError:
                return _UNPARSABLE
            if len(request.service.encode()) > MAX_HEALTH_SERVICE_NAME_BYTES:
                return _UNPARSABLE
            return request

        serialize = health_pb2.HealthCheckResponse.SerializeToString
        return grpc.method_handlers_generic_handler(
            HEALTH_SERVICE,
            {
                "Check": grpc.unary_unary_rpc_method_handler(
                    self.Check, request_deserializer=deserialize, response_serializer=serialize
                ),
                "Watch": grpc.unary_stream_rpc_method_handler(
                    self.Watch, request_deserializer=deserialize, response_serializer=serialize
                ),
            },
        )


class _UnknownMethods(grpc.GenericRpcHandler):
    """Any method no service has: UNIMPLEMENTED with no message, as gRPC C++'s server answers it
    (server_cc.cc UnimplementedAsyncResponse, kUnknownRpcMethod = ""), whatever the call's arity."""

    def service(self, handler_call_details):
        def unimplemented(requests, context):
            context.abort(grpc.StatusCode.UNIMPLEMENTED, "")

        return grpc.stream_stream_rpc_method_handler(unimplemented)


def build_grpc_server(
    addresses: Sequence[str],
    repository: ModelRepository,
    core: ServerCore,
    predictor: Predictor,
    metrics: ServerMetrics,
    *,
    max_message_bytes: int,
    threads: int,
    credentials: grpc.ServerCredentials | None,
    interceptors: Sequence = (),
    health_service: bool = False,
    channel_arguments: Sequence[tuple[str, int | str]] = (),
) -> tuple[grpc.Server, HealthServicer | None, list[str]]:
    """A gRPC server (not started yet) with every service added, bound to each of addresses
    ("host:port", "unix:path"); the targets it listens on (the port gRPC picked for port 0). The
    health service (and its servicer) only with ``health_service``, as server.cc adds it;
    ``channel_arguments`` come after this server's own, as server.cc adds them after its own."""
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=threads, thread_name_prefix="grpc"),
        options=[
            ("grpc.max_receive_message_length", max_message_bytes),
            ("grpc.max_send_message_length", max_message_bytes),
            ("grpc.so_reuseport", 0),  # a second server on the same port must fail, not share it
            *channel_arguments,
        ],
        interceptors=interceptors,
    )
    server.add_generic_rpc_handlers((PredictionService(repository, predictor, metrics).handler(),))
    server.add_generic_rpc_handlers((ModelService(repository, core, metrics).handler(),))
    health_servicer = None
    if health_service:
        health_servicer = HealthServicer(experimental_non_blocking=True)
        for service in HEALTH_SERVICES:
            health_servicer.set(service, health_pb2.HealthCheckResponse.SERVING)
        server.add_generic_rpc_handlers((health_servicer.handler(),))
    server.add_generic_rpc_handlers((_UnknownMethods(),))  # last: asked only when no service matched
    return server, health_servicer, [_listen(server, address, credentials) for address in addresses]


def _listen(server: grpc.Server, address: str, credentials: grpc.ServerCredentials | None) -> str:
    """Bind one address; the target a client dials for it."""
    try:
        if credentials is not None:
            port = server.add_secure_port(address, credentials)
        else:
            port = server.add_insecure_port(address)
    except RuntimeError as exc:
        port, reason = 0, str(exc)
    else:
        reason = "gRPC could not bind it"
    if address.startswith(UNIX_SCHEME):
        if port == 0:
            raise CannotListen(
                f"cannot listen for gRPC on {address}: {reason}; check --grpc-socket-path (a new path in "
                "a directory this user may write)"
            )
        return address
    host, _, wanted = address.rpartition(":")
    if port == 0:
        raise listen_failure("gRPC", "--port", host.strip("[]"), int(wanted), reason)
    return f"{host}:{port}"
