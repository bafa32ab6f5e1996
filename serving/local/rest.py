"""TF Serving's REST API on --rest-port: model status, metadata, :predict, and Prometheus metrics.

Routes and JSON shapes follow TF Serving's http_rest_api_handler: ``GET /v1/models/<name>``
(optionally ``/versions/<v>`` or ``/labels/<l>``), ``GET .../metadata``, ``POST ...:predict``
with ``instances`` (row format, answered as ``predictions``) or ``inputs`` (columnar, answered
as ``outputs``), errors as ``{"error": "..."}`` with TF Serving's HTTP codes. Every request is
turned into the same protos the gRPC service takes, so both APIs share one implementation.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import grpc
import numpy as np
from google.protobuf import json_format
from tensorflow_serving.apis import get_model_metadata_pb2, get_model_status_pb2, model_pb2, predict_pb2

from serving.local.errors import InvalidRequest, PortInUse, RequestError, SignatureNotFound
from serving.local.flags import ServerOptions
from serving.local.metrics import ServerMetrics
from serving.local.model_info import SIGNATURE_DEF_FIELD, model_metadata, model_status
from serving.local.predict import DEFAULT_SIGNATURE, Predictor
from serving.local.repository import ModelRepository
from serving.local.tensors import MalformedTensor, numpy_dtype, to_array, to_tensor_proto
from serving.local.tls import rest_ssl_context

METRICS_PATH = "/monitoring/prometheus/metrics"  # serving/monitoring.config's prometheus_config.path
_MODEL_ROUTE = re.compile(r"^/v1/models/(?P<name>[^/:]+)"
                          r"(?:/versions/(?P<version>\d+)|/labels/(?P<label>[^/:]+))?"
                          r"(?::(?P<verb>predict)|/(?P<metadata>metadata))?$")
HTTP_STATUS = {  # TF Serving's ToHTTPStatusCode
    grpc.StatusCode.INVALID_ARGUMENT: 400, grpc.StatusCode.FAILED_PRECONDITION: 400,
    grpc.StatusCode.OUT_OF_RANGE: 400, grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409, grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.PERMISSION_DENIED: 403, grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429, grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.UNAVAILABLE: 503, grpc.StatusCode.DEADLINE_EXCEEDED: 504,
}
log = logging.getLogger("serving.local")


def _model_spec(match: re.Match) -> model_pb2.ModelSpec:
    spec = model_pb2.ModelSpec(name=match["name"])
    if match["version"]:
        spec.version.value = int(match["version"])
    elif match["label"]:
        spec.version_label = match["label"]
    return spec


def _json_body(raw: bytes) -> dict:
    try:
        body = json.loads(raw or b"{}")
    except ValueError as exc:
        raise InvalidRequest(f"JSON Parse error: {exc}") from None
    if not isinstance(body, dict):
        raise InvalidRequest("JSON Value: request body must be an object")
    return body


def _as_array(value, alias: str, dtype: np.dtype) -> np.ndarray:
    try:
        return np.asarray(value, dtype=dtype)
    except (TypeError, ValueError):
        raise InvalidRequest(f"JSON Value of input {alias!r} is not of expected type: {dtype} "
                             "(or its rows have different lengths)") from None


def predict_request_from_json(spec: model_pb2.ModelSpec, body: dict, repository: ModelRepository
                              ) -> tuple[predict_pb2.PredictRequest, bool]:
    """The PredictRequest for a REST :predict body, and whether the answer is in row format."""
    signature_name = body.get("signature_name", DEFAULT_SIGNATURE)
    if not isinstance(signature_name, str):
        raise InvalidRequest("'signature_name' key must be a string value.")
    if ("instances" in body) == ("inputs" in body):
        raise InvalidRequest("JSON object: must have exactly one of 'instances' (row format) or 'inputs' "
                             "(columnar format)")
    spec.signature_name = signature_name
    servable = repository.resolve(spec)
    signature = servable.signature_defs.get(signature_name)
    if signature is None:
        raise SignatureNotFound(f'Serving signature key "{signature_name}" not found.')
    input_types = {alias: info.dtype for alias, info in signature.inputs.items()}
    row_format = "instances" in body
    payload = body["instances"] if row_format else body["inputs"]
    if row_format:
        if not isinstance(payload, list):
            raise InvalidRequest("'instances' must be a JSON array")
        if payload and all(isinstance(item, dict) for item in payload):
            named = {alias: [item.get(alias) for item in payload] for alias in payload[0]}
        else:
            named = {_only_input(input_types): payload}
    else:
        named = payload if isinstance(payload, dict) else {_only_input(input_types): payload}
    request = predict_pb2.PredictRequest(model_spec=spec)
    for alias, value in named.items():
        # Unknown aliases are still sent (as float32), so Predict names them in its usual error.
        try:
            dtype = numpy_dtype(input_types[alias]) if alias in input_types else np.dtype(np.float32)
        except MalformedTensor as exc:
            raise InvalidRequest(f"input {alias!r}: {exc}") from None
        request.inputs[alias].CopyFrom(to_tensor_proto(_as_array(value, alias, dtype)))
    return request, row_format


def _only_input(input_types: dict) -> str:
    if len(input_types) != 1:
        raise InvalidRequest("the signature has several inputs: name them (a JSON object per instance, "
                             "or an object under 'inputs')")
    return next(iter(input_types))


def predict_json(response: predict_pb2.PredictResponse, row_format: bool) -> dict:
    """TF Serving's JSON answer: {"predictions": ...} for row format, {"outputs": ...} for columnar."""
    outputs = {key: to_array(tensor).tolist() for key, tensor in response.outputs.items()}
    if not row_format:
        return {"outputs": next(iter(outputs.values())) if len(outputs) == 1 else outputs}
    if len(outputs) == 1:
        return {"predictions": next(iter(outputs.values()))}
    sizes = {len(value) if isinstance(value, list) else -1 for value in outputs.values()}
    if len(sizes) != 1 or -1 in sizes:
        raise InvalidRequest("outputs have no common batch size, so they cannot be returned in row format: "
                             "send 'inputs' (columnar format) instead of 'instances'")
    rows = sizes.pop()
    return {"predictions": [{key: value[row] for key, value in outputs.items()} for row in range(rows)]}


class _Handler(BaseHTTPRequestHandler):
    server_version = "serving.local"
    protocol_version = "HTTP/1.1"
    # Idle keep-alive connections close after this long, so a graceful stop never waits on them
    # for longer (server_close() joins every connection's thread).
    timeout = 5
    app: RestServer  # set on the subclass made per server

    def log_message(self, format, *args):  # noqa: A002 - quiet: one log line per lifecycle event only
        pass

    def do_GET(self):  # noqa: N802
        self._dispatch("GET")

    def do_POST(self):  # noqa: N802
        self._dispatch("POST")

    def _dispatch(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        path = self.path.split("?", 1)[0]
        if method == "GET" and path == METRICS_PATH:
            self._send(200, self.app.metrics.render(), "text/plain; version=0.0.4")
            return
        match = _MODEL_ROUTE.match(path)
        if match is None or (method == "POST") != bool(match["verb"]):
            self._send_json(404, {"error": f"Malformed request: {method} {path}"})
            return
        try:
            self._send_json(200, self.app.handle(method, match, raw))
        except RequestError as exc:
            self._send_json(HTTP_STATUS.get(exc.code, 500), {"error": exc.message})
        except Exception as exc:  # noqa: BLE001 - answer, never drop the connection
            log.exception("internal error (REST)")
            self._send_json(500, {"error": f"internal error in serving.local: {type(exc).__name__}: {exc}"})

    def _send_json(self, status: int, body: dict) -> None:
        self._send(status, json.dumps(body).encode(), "application/json")

    def _send(self, status: int, payload: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


class RestServer:
    """A threaded HTTP(S) server on --rest-port answering like TF Serving's REST API."""

    def __init__(self, options: ServerOptions, repository: ModelRepository, predictor: Predictor,
                 metrics: ServerMetrics):
        self.repository, self.predictor, self.metrics = repository, predictor, metrics
        handler = type("Handler", (_Handler,), {"app": self})
        ThreadingHTTPServer.allow_reuse_address = True
        try:
            self._httpd = ThreadingHTTPServer((options.host, options.rest_port), handler)
        except OSError as exc:
            raise PortInUse(f"cannot listen for REST on {options.host}:{options.rest_port}: {exc.strerror}; "
                            "pick another --rest-port (0 disables REST)") from None
        self._httpd.daemon_threads = False
        self._httpd.block_on_close = True  # server_close() waits for requests in flight
        context = rest_ssl_context(options)
        if context is not None:
            self._httpd.socket = context.wrap_socket(self._httpd.socket, server_side=True)
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="rest", daemon=True)

    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    def start(self) -> None:
        self._thread.start()

    def stop_accepting(self) -> None:
        self._httpd.shutdown()

    def wait_and_close(self, _grace_seconds: float) -> None:
        self._httpd.server_close()

    def handle(self, method: str, match: re.Match, raw: bytes) -> dict:
        """The JSON answer for one routed request; RequestError for TF Serving's errors."""
        spec = _model_spec(match)
        if match["verb"] == "predict":
            with self.metrics.observe_request(spec.name, "predict", "REST"):
                request, row_format = predict_request_from_json(spec, _json_body(raw), self.repository)
                return predict_json(self.predictor.predict(request), row_format)
        if match["metadata"]:
            request = get_model_metadata_pb2.GetModelMetadataRequest(
                model_spec=spec, metadata_field=[SIGNATURE_DEF_FIELD])
            response = model_metadata(self.repository, request)
            signature_map = get_model_metadata_pb2.SignatureDefMap()
            response.metadata[SIGNATURE_DEF_FIELD].Unpack(signature_map)
            return {"model_spec": _to_dict(response.model_spec),
                    "metadata": {SIGNATURE_DEF_FIELD: _to_dict(signature_map)}}
        status = model_status(self.repository, get_model_status_pb2.GetModelStatusRequest(model_spec=spec))
        return _to_dict(status)


def _to_dict(message) -> dict:
    return json_format.MessageToDict(message, preserving_proto_field_name=True,
                                     always_print_fields_with_no_presence=True)
