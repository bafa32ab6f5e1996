"""The gRPC health service, and methods a server does not have, as TF Serving 2.21 answers them.

TF Serving turns on gRPC C++'s default health service only with
``--enable_grpc_healthcheck_service`` (``model_servers/server.h``: false by default), then marks
"ModelService" and "PredictionService" SERVING (``model_servers/server.cc``); "" is the service's
own entry for the whole server. The answers are ``src/cpp/server/health/default_health_check_service.cc``'s
(gRPC C++); a method the server does not have is ``src/cpp/server/server_cc.cc``'s
UnimplementedAsyncResponse: UNIMPLEMENTED with ``kUnknownRpcMethod``, the empty string.
"""

from __future__ import annotations

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.support.embedded_server import embedded_server

CHECK = "/grpc.health.v1.Health/Check"
WATCH = "/grpc.health.v1.Health/Watch"
UNPARSABLE = b"\x0a\xff\xff"  # field 1, length-delimited, its length a varint cut off
MAX_SERVICE_NAME_LENGTH = 200  # default_health_check_service.cc
#: requests DecodeRequest refuses: bytes upb cannot parse, and a name over MAX_SERVICE_NAME_LENGTH
UNDECODABLE = pytest.mark.parametrize(
    "request_bytes",
    [
        UNPARSABLE,
        health_pb2.HealthCheckRequest(service="x" * (MAX_SERVICE_NAME_LENGTH + 1)).SerializeToString(),
    ],
    ids=["unparsable", "name-over-200-bytes"],
)


def failure(call, request, timeout: float = 10) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as error:
        call(request, timeout=timeout)
    return error.value


def first_watch_answer(channel: grpc.Channel, request: bytes):
    """The first message a Watch sends (or its error), then the stream cancelled."""
    stream = channel.unary_stream(WATCH)(request, timeout=10)
    try:
        return health_pb2.HealthCheckResponse.FromString(next(stream))
    finally:
        stream.cancel()


@pytest.fixture(scope="module")
def health_channel(model_dir):
    """A channel to serving.local started with --enable-grpc-healthcheck-service."""
    with (
        embedded_server(model_dir, "--enable-grpc-healthcheck-service") as handle,
        grpc.insecure_channel(handle.address) as channel,
    ):
        yield channel


# --- off by default ------------------------------------------------------------------------------


def test_health_service_is_off_by_default(server_stubs):
    """server.h: enable_grpc_healthcheck_service = false, so no health service is registered and
    its methods are unknown ones: UNIMPLEMENTED with no message (server_cc.cc kUnknownRpcMethod)."""
    error = failure(server_stubs.health.Check, health_pb2.HealthCheckRequest(service=""))
    assert (error.code(), error.details()) == (grpc.StatusCode.UNIMPLEMENTED, "")


@pytest.mark.parametrize("method", ["/tensorflow.serving.PredictionService/Nope", "/nope.Service/Call", "/x"])
def test_methods_the_server_lacks_are_unimplemented_with_no_message(server_stubs, method):
    """server_cc.cc: UnimplementedAsyncResponse answers Status(UNIMPLEMENTED, kUnknownRpcMethod),
    and kUnknownRpcMethod is "" (gRPC Python's own server would say "Method not found!")."""
    error = failure(server_stubs.channel.unary_unary(method), b"")
    assert (error.code(), error.details()) == (grpc.StatusCode.UNIMPLEMENTED, "")


# --- with --enable-grpc-healthcheck-service -----------------------------------------------------


@pytest.mark.parametrize("service", ["", "ModelService", "PredictionService"])
def test_health_names_are_the_ones_tf_serving_registers(health_channel, service):
    """server.cc: SetServingStatus("ModelService") and ("PredictionService"); "" is the server."""
    answer = health_pb2_grpc.HealthStub(health_channel).Check(
        health_pb2.HealthCheckRequest(service=service), timeout=10
    )
    assert answer.status == health_pb2.HealthCheckResponse.SERVING


@pytest.mark.parametrize(
    "service", ["tensorflow.serving.PredictionService", "nope", "x" * MAX_SERVICE_NAME_LENGTH]
)
def test_unknown_health_names_are_not_found(health_channel, service):
    """default_health_check_service.cc HandleCheckRequest: NOT_FOUND "service name unknown"."""
    check = health_pb2_grpc.HealthStub(health_channel).Check
    error = failure(check, health_pb2.HealthCheckRequest(service=service))
    assert (error.code(), error.details()) == (grpc.StatusCode.NOT_FOUND, "service name unknown")


@UNDECODABLE
def test_check_requests_it_cannot_decode_are_invalid_argument(health_channel, request_bytes):
    """default_health_check_service.cc: DecodeRequest fails for bytes upb cannot parse and for a
    service name over MAX_SERVICE_NAME_LENGTH (200) bytes; Check then answers INVALID_ARGUMENT
    "could not parse request"."""
    error = failure(health_channel.unary_unary(CHECK), request_bytes)
    assert (error.code(), error.details()) == (grpc.StatusCode.INVALID_ARGUMENT, "could not parse request")


@UNDECODABLE
def test_watch_requests_it_cannot_decode_are_internal(health_channel, request_bytes):
    """default_health_check_service.cc WatchReactor: the same DecodeRequest, but the watch
    finishes with INTERNAL "could not parse request"."""
    with pytest.raises(grpc.RpcError) as error:
        first_watch_answer(health_channel, request_bytes)
    assert (error.value.code(), error.value.details()) == (
        grpc.StatusCode.INTERNAL,
        "could not parse request",
    )


@pytest.mark.parametrize(
    ("service", "status"),
    [
        ("PredictionService", health_pb2.HealthCheckResponse.SERVING),
        ("nope", health_pb2.HealthCheckResponse.SERVICE_UNKNOWN),
    ],
)
def test_watch_sends_the_current_status_first(health_channel, service, status):
    """default_health_check_service.cc RegisterWatch: the watcher gets the service's status at
    once; a name never set is SERVICE_UNKNOWN (EncodeResponse of NOT_FOUND), not an error."""
    request = health_pb2.HealthCheckRequest(service=service).SerializeToString()
    assert first_watch_answer(health_channel, request).status == status
