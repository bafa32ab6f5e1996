"""Bearer-token authentication for the embedded server (``--auth-token-file``).

TF Serving itself has no authentication: in production a token is checked in front of it (an
ingress, Istio, KServe's gateway). The embedded server can check one itself, so a client's
``authorization: Bearer ...`` metadata is tested end to end, and a server shared on a
network is not open to anyone. A missing or wrong token is UNAUTHENTICATED (HTTP 401 on REST),
answered before the request reaches the model. The standard health service stays open: load
balancers and Kubernetes probes ask it without credentials.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from pathlib import Path

import grpc

from serving.local.errors import StartupError

AUTHORIZATION = "authorization"
BEARER = "Bearer "
OPEN_SERVICES = ("/grpc.health.v1.Health/",)


class AuthTokenUnreadable(StartupError):
    """--auth-token-file is missing, unreadable or empty."""


def read_token(path: Path) -> str:
    """The token in path (surrounding whitespace dropped); AuthTokenUnreadable if there is none."""
    try:
        token = Path(path).read_text().strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise AuthTokenUnreadable(
            f"cannot read --auth-token-file {path}: {getattr(exc, 'strerror', None) or exc}"
        ) from None
    if not token or any(c.isspace() for c in token):
        raise AuthTokenUnreadable(
            f"--auth-token-file {path} must hold one token (no spaces), e.g. from `openssl rand -hex 32`"
        )
    return token


def token_error(authorization: str | None, token: str) -> str | None:
    """Why the Authorization value does not carry token, or None when it does."""
    if not authorization:
        return "missing bearer token: send the metadata 'authorization: Bearer <token>'"
    if not authorization.startswith(BEARER):
        return "the authorization metadata must be 'Bearer <token>'"
    # Constant time: the comparison must not tell an attacker how many characters were right.
    if not hmac.compare_digest(authorization[len(BEARER) :].strip().encode(), token.encode()):
        return "invalid bearer token"
    return None


def _refusal(handler: grpc.RpcMethodHandler, message: str) -> grpc.RpcMethodHandler:
    """A handler of the same kind as handler that answers UNAUTHENTICATED."""

    def abort(_request, context):
        context.abort(grpc.StatusCode.UNAUTHENTICATED, message)

    if handler.request_streaming and handler.response_streaming:
        return grpc.stream_stream_rpc_method_handler(abort)
    if handler.request_streaming:
        return grpc.stream_unary_rpc_method_handler(abort)
    if handler.response_streaming:
        return grpc.unary_stream_rpc_method_handler(abort)
    return grpc.unary_unary_rpc_method_handler(abort)


class BearerTokenInterceptor(grpc.ServerInterceptor):
    """Refuses every call without the right 'authorization: Bearer <token>' metadata."""

    def __init__(self, token: str) -> None:
        self._token = token

    def intercept_service(self, continuation: Callable, handler_call_details: grpc.HandlerCallDetails):
        handler = continuation(handler_call_details)
        if handler is None or handler_call_details.method.startswith(OPEN_SERVICES):
            return handler
        metadata = dict(handler_call_details.invocation_metadata or ())
        error = token_error(metadata.get(AUTHORIZATION), self._token)
        return handler if error is None else _refusal(handler, error)


def server_interceptors(token_file: Path | None) -> list[grpc.ServerInterceptor]:
    """The interceptors for --auth-token-file: none without it."""
    return [] if token_file is None else [BearerTokenInterceptor(read_token(token_file))]
