"""TF Serving's REST API over the shared model code: routes, :predict, :classify/:regress, status, metadata.

Follows model_servers/http_rest_api_handler.cc and http_rest_api_util.cc: paths match TF Serving's
case-insensitive regexes, model names and labels are URL-decoded, every failure is
``{"error": "<message>"}`` with the HTTP code of TF Serving's ToHTTPStatusCode, and requests
become the same PredictRequest the gRPC service takes.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from urllib.parse import unquote

import grpc
import numpy as np
from google.protobuf import json_format
from tensorflow_serving.apis import get_model_metadata_pb2, get_model_status_pb2, model_pb2, predict_pb2

from client.names import DEFAULT_SIGNATURE, SIGNATURE_DEF_FIELD
from client.tensors import fill_tensor_proto, from_tensor_proto
from serving.local import rest_json
from serving.local.errors import InvalidRequest, RequestError
from serving.local.example_apis import unrunnable_reason
from serving.local.metrics import ServerMetrics
from serving.local.model_info import model_metadata, model_status
from serving.local.predict import Predictor
from serving.local.repository import ModelRepository
from serving.local.rest_json import error_json

_PREDICTION_ROUTE = re.compile(
    r"/v1/models/([^/:]+)(?:/versions/([0-9]+)|/labels/([^/:]+))?"
    r":(classify|regress|predict)",
    re.IGNORECASE,
)
_STATUS_ROUTE = re.compile(
    r"/v1/models(?:/([^/:]+))?(?:/versions/([0-9]+)|/labels/([^/:]+))?"
    r"(?:/(metadata))?",
    re.IGNORECASE,
)
API_ROUTE = re.compile(r"/v1/.*", re.IGNORECASE | re.DOTALL)  # what TF Serving hands to its REST handler
INT64_MAX = 2**63 - 1
HTTP_STATUS = {  # TF Serving's ToHTTPStatusCode (model_servers/http_server.cc)
    grpc.StatusCode.OK: 200,
    grpc.StatusCode.CANCELLED: 499,
    grpc.StatusCode.UNKNOWN: 500,
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.FAILED_PRECONDITION: 400,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.INTERNAL: 500,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DATA_LOSS: 500,
    grpc.StatusCode.UNAUTHENTICATED: 401,
}


@dataclass(frozen=True)
class Route:
    """ParseModelInfo's result: what the path asks for."""

    model_name: str
    version: int | None
    label: str | None
    method: str  # classify / regress / predict for POST, "" for GET
    subresource: str  # "metadata" or ""

    def model_spec(self) -> model_pb2.ModelSpec:
        spec = model_pb2.ModelSpec(name=self.model_name)
        if self.version is not None:
            spec.version.value = self.version
        if self.label is not None:
            spec.version_label = self.label
        return spec


def parse_route(method: str, path: str) -> Route | None:
    """The route of a /v1/ path, or None when it matches none of TF Serving's regexes."""
    pattern = {"POST": _PREDICTION_ROUTE, "GET": _STATUS_ROUTE}.get(method)
    match = pattern.fullmatch(path) if pattern is not None else None
    if match is None:
        return None
    name, version_text, label, verb = match.groups()
    version = None
    if version_text:
        version = int(version_text)
        if version > INT64_MAX:  # absl::SimpleAtoi into int64
            raise InvalidRequest(f"Failed to convert version: {version_text} to numeric.")
    return Route(
        model_name=unquote(name or "", errors="replace"),
        version=version,
        label=unquote(label, errors="replace") if label else None,
        method=verb if method == "POST" else "",
        subresource=verb if method == "GET" else "",
    )


class RestApi:
    """Answers one REST request: (HTTP status, JSON body)."""

    def __init__(self, repository: ModelRepository, predictor: Predictor, metrics: ServerMetrics):
        self.repository, self.predictor, self.metrics = repository, predictor, metrics

    def answer(self, method: str, path: str, body: bytes) -> tuple[int, bytes]:
        """TF Serving's HttpRestApiHandler::ProcessRequest, with its error for every path it refuses."""
        try:
            return 200, self._process(method, path, body)
        except RequestError as exc:
            return HTTP_STATUS.get(exc.code, 500), error_json(exc.message)

    def _process(self, method: str, path: str, body: bytes) -> bytes:
        route = parse_route(method, path)
        malformed = InvalidRequest(f"Malformed request: {method} {path}")
        if route is None:
            raise malformed
        # http_server.cc: every request counted by model and status, the successful ones timed with
        # API = the method as the path spells it ("predict"; empty for GET) and entrypoint REST.
        with self.metrics.observe_request(route.model_name, route.method, "REST"):
            return self._routed(method, route, body, malformed)

    def _routed(self, method: str, route: Route, body: bytes, malformed: InvalidRequest) -> bytes:
        if method == "POST":
            if route.method == "predict":
                return self._predict(route, body)
            if route.method in ("classify", "regress"):
                return self._classify_or_regress(route, body)
            raise malformed  # :PREDICT matches the case-insensitive regex but names no method
        if not route.model_name:
            raise InvalidRequest("Missing model name in request.")
        if route.subresource == "metadata":
            return self._metadata(route)
        return self._status(route)

    def _spec(self, route: Route) -> model_pb2.ModelSpec:
        if route.version is not None and route.label is not None:  # unreachable through the regexes
            raise InvalidRequest(
                f"Both model version ({route.version}) and model version label "
                f"({route.label}) cannot be supplied."
            )
        return route.model_spec()

    def _predict(self, route: Route, body: bytes) -> bytes:
        spec = self._spec(route)
        document = rest_json.parse_object(body)
        signature_name = _signature_name(document)
        spec.signature_name = _proto_string(signature_name)
        servable = self.repository.resolve(spec)
        name = signature_name or DEFAULT_SIGNATURE
        signature = servable.signature_defs.get(name)
        if signature is None:
            raise InvalidRequest(f'Serving signature name: "{name}" not found in signature def')
        input_types = {alias: info.dtype for alias, info in sorted(signature.inputs.items())}
        if not input_types:
            raise InvalidRequest(f"Failed to get input map for signature: {signature_name or 'DEFAULT'}")
        inputs, row_format = predict_inputs(document, input_types, rest_json.JsonBody(body))
        request = predict_pb2.PredictRequest(model_spec=spec)
        for alias, array in inputs.items():
            fill_tensor_proto(request.inputs[alias], array)
        response = self.predictor.predict(request)
        outputs = {key: _json_output(tensor) for key, tensor in response.outputs.items()}
        return rest_json.outputs_json(outputs, row_format)

    def _classify_or_regress(self, route: Route, body: bytes) -> bytes:
        spec = self._spec(route)
        document = rest_json.parse_object(body)
        signature_name = _signature_name(document)
        spec.signature_name = _proto_string(signature_name)
        check_examples(document)
        servable = self.repository.resolve(spec)
        name = signature_name or DEFAULT_SIGNATURE
        signature = servable.signature_defs.get(name)
        if signature is None:
            raise InvalidRequest(f"No signature was found with the name: {name}")
        reason = unrunnable_reason(signature, route.method)
        if reason is None:
            raise MethodNotServed(f"this server runs Predict signatures only, not {route.method}")
        raise InvalidRequest(reason)

    def _status(self, route: Route) -> bytes:
        request = get_model_status_pb2.GetModelStatusRequest(model_spec=self._spec(route))
        response = model_status(self.repository, request)
        newest_first = sorted(response.model_version_status, key=lambda status: -status.version)
        del response.model_version_status[:]
        response.model_version_status.extend(newest_first)  # as GetModelStatusImpl lists them
        return _to_json(response)

    def _metadata(self, route: Route) -> bytes:
        request = get_model_metadata_pb2.GetModelMetadataRequest(
            model_spec=self._spec(route), metadata_field=[SIGNATURE_DEF_FIELD]
        )
        response = model_metadata(self.repository, request)
        signature_map = get_model_metadata_pb2.SignatureDefMap()
        response.metadata[SIGNATURE_DEF_FIELD].Unpack(signature_map)
        # http_rest_api_util.cc ToJsonString: the two messages printed apart and joined by hand.
        return (
            b'{\n"model_spec":'
            + _to_json(response.model_spec)
            + b',\n"metadata": {"signature_def": '
            + _to_json(signature_map)
            + b"}\n}\n"
        )


def _json_output(tensor) -> np.ndarray | rest_json.UnwrittenTensor:
    """An output tensor as the JSON writer takes it: its values only where the writer has a case
    for its dtype."""
    if rest_json.has_json_writer(tensor.dtype):
        return from_tensor_proto(tensor)
    return rest_json.UnwrittenTensor(tuple(dim.size for dim in tensor.tensor_shape.dim), tensor.dtype)


def _signature_name(document: dict) -> str:
    value = document.get("signature_name", "")
    if not isinstance(value, str):
        raise rest_json.format_error(
            document, "not formatted correctly. 'signature_name' key must be a string value."
        )
    return value


def _proto_string(text: str) -> str:
    """text for a protobuf string field, which takes valid UTF-8 only: a lone surrogate (rapidjson
    keeps a \\uDC00 escape as three bytes) becomes '?', and the name it is part of names nothing."""
    return text.encode("utf-8", "replace").decode()


def predict_inputs(
    document: dict, input_types: dict[str, int], body: rest_json.JsonBody
) -> tuple[dict, bool]:
    """FillPredictRequestFromJson: the input arrays, and whether the request is in row format."""
    if "instances" in document:
        if "inputs" in document:
            raise rest_json.format_error(
                document,
                "Not formatted correctly expecting only one of 'inputs' or 'instances' keys to exist ",
            )
        instances = document["instances"]
        if not isinstance(instances, list):
            raise rest_json.format_error(document, "Expecting 'instances' to be an list/array")
        if not instances:
            raise rest_json.format_error(document, "No values in 'instances' array")
        return _from_instances(instances, input_types, body), True
    if "inputs" in document:
        return _from_inputs(document["inputs"], input_types, body), False
    raise InvalidRequest("Missing 'inputs' or 'instances' key")


def _is_b64(value) -> bool:
    return isinstance(value, dict) and len(value) == 1 and isinstance(value.get("b64"), str)


def _is_object(value) -> bool:
    return isinstance(value, dict) and not _is_b64(value)


def _from_inputs(value, input_types: dict[str, int], body: rest_json.JsonBody) -> dict:
    if not _is_object(value):
        if len(input_types) > 1:
            raise InvalidRequest(
                "inputs is a plain value/list, but expecting an object as multiple input "
                "tensors required as per tensorinfo_map"
            )
        alias, dtype = next(iter(input_types.items()))
        return {alias: rest_json.tensor_from_json(value, dtype, body)}
    arrays = {}
    for alias, dtype in input_types.items():  # keys the signature does not name are ignored
        if alias not in value:
            raise InvalidRequest(f"Missing named input: {alias} in 'inputs' object.")
        arrays[alias] = rest_json.tensor_from_json(value[alias], dtype, body)
    return arrays


def _from_instances(instances: list, input_types: dict[str, int], body: rest_json.JsonBody) -> dict:
    if not isinstance(instances[0], dict) and len(input_types) > 1:
        raise InvalidRequest(
            "instances is a plain list, but expecting list of objects as multiple input "
            "tensors required as per tensorinfo_map"
        )
    if not _is_object(instances[0]):
        alias, dtype = next(iter(input_types.items()))
        for index, item in enumerate(instances):
            if _is_object(item):
                raise InvalidRequest(f"Expecting value/list but got object at item {index} of input list")
        # One tensor for the whole list: its first dimension is the number of instances, and a
        # ragged list fails where FillTensorProto would, naming the first instance that differs.
        try:
            return {alias: rest_json.tensor_from_json(instances, dtype, body)}
        except rest_json.JsonParseError:
            raise
        except RequestError as exc:
            index, error = _first_bad_instance(instances, dtype, body, exc)
            raise InvalidRequest(
                f"Failed to process element: {index} of 'instances' list. Error: {error}"
            ) from None
    columns: dict[str, list] = {alias: [] for alias in input_types}
    shapes: dict[str, tuple] = {}
    for index, item in enumerate(instances):
        if not _is_object(item):
            raise InvalidRequest(f"Expecting object but got list at item {index} of input list")
        for key, value in item.items():
            try:
                if key not in input_types:
                    raise InvalidRequest(f"JSON object: does not have named input: {key}")
                array = rest_json.tensor_from_json(value, input_types[key], body)
                _same_shape(shapes.setdefault(key, array.shape), array.shape)
            except rest_json.JsonParseError:
                raise
            except RequestError as exc:
                raise InvalidRequest(
                    f"Failed to process element: {index} key: {key} of 'instances' list. "
                    f"Error: {_status_text(exc)}"
                ) from None
            columns[key].append(array)
        if set(item) != set(input_types):
            raise InvalidRequest(
                f"Failed to process element: {index} of 'instances' list. JSON object: "
                f"{rest_json.debug_string(item)} keys must be equal to: "
                f"{','.join(sorted(input_types))}"
            )
    return {alias: np.stack(arrays) for alias, arrays in columns.items()}


def _same_shape(first: tuple, shape: tuple) -> None:
    first_size, size = _size(first), _size(shape)
    if first_size != size:
        raise InvalidRequest(f"Expecting tensor size: {first_size} but got: {size}")
    if first != shape:
        raise InvalidRequest(f"Expecting shape {_shape_text(first)} but got: {_shape_text(shape)}")


def _size(shape: tuple) -> int:
    size = 1
    for dim in shape:
        size *= dim
    return size


def _shape_text(shape: tuple) -> str:
    return "[" + ",".join(str(dim) for dim in shape) + "]"


def _first_bad_instance(instances: list, dtype: int, body: rest_json.JsonBody, whole: RequestError):
    first = None
    for index, item in enumerate(instances):
        try:
            shape = rest_json.tensor_from_json(item, dtype, body, walk=True).shape
            if first is None:
                first = shape
            _same_shape(first, shape)
        except rest_json.JsonParseError:
            raise
        except RequestError as exc:
            return index, _status_text(exc)
    return 0, _status_text(whole)


def _status_text(error: RequestError) -> str:
    """Status::ToString: "INVALID_ARGUMENT: <message>"."""
    return f"{error.code.name}: {error.message}"


def check_examples(document: dict) -> None:
    """FillClassifyRegressRequestFromJson's checks of 'context' and 'examples' (the same for both)."""
    if "context" in document:
        _check_example(document["context"])
    if "examples" not in document:
        raise rest_json.format_error(
            document, "When method is classify, key 'examples' is expected and was not found"
        )
    examples = document["examples"]
    if not isinstance(examples, list):
        raise rest_json.format_error(document, "Expecting 'examples' value to be an list/array")
    if not examples:
        raise rest_json.format_error(document, "'examples' value is an empty array")
    for example in examples:
        _check_example(example)


def _check_example(example) -> None:
    if not isinstance(example, dict):
        raise InvalidRequest(f"Example must be JSON object but got JSON {rest_json.json_type(example)}")
    for name, content in example.items():
        kind = None
        for value in content if isinstance(content, list) else [content]:
            kind = _feature_kind(name, value, kind)


def _feature_kind(name: str, value, kind: str | None) -> str:
    """AddValueToFeature: the Feature list kind a value goes to, refusing what TF Serving refuses."""
    if value is None or isinstance(value, list) or (isinstance(value, dict) and not _is_b64(value)):
        raise InvalidRequest(
            f"Feature: {name} has element with unexpected JSON type: {rest_json.json_type(value)}"
        )
    if isinstance(value, bool | int) and not isinstance(value, float):
        wanted = "int64"
        if not isinstance(value, bool) and value > INT64_MAX:
            raise InvalidRequest(f"Feature: {name} has uint64_t element. Only int64_t is supported.")
    elif isinstance(value, float):
        wanted = "float"
    else:
        wanted = "bytes"
    if kind is not None and kind != wanted:
        raise InvalidRequest(f"Unexpected element type in feature: {name} expecting type: {kind}")
    return wanted


class MethodNotServed(RequestError):
    """A real classification or regression signature: TF Serving would run it, this server does not."""

    code = grpc.StatusCode.UNIMPLEMENTED


def _to_dict(message) -> dict:
    return json_format.MessageToDict(
        message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )


def _to_json(message) -> bytes:
    """protobuf's MessageToJsonString with add_whitespace: one space a level, a newline at the end."""
    return json.dumps(_to_dict(message), indent=1, ensure_ascii=False).encode() + b"\n"
