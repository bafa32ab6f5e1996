"""The REST API answers as TF Serving 2.21 does, case by case, each citing the TF Serving source it follows.

Sources (github.com/tensorflow/serving): model_servers/http_rest_api_handler.cc (routing, status and
metadata, classify/regress, signature lookup), model_servers/http_rest_api_util.cc (path regexes,
URL decoding, version parsing), model_servers/http_server.cc (HTTP codes, paths outside /v1/),
util/json_tensor.cc (JSON parsing, tensors from JSON, JSON from tensors, error words) and their
*_test.cc files.
"""

from __future__ import annotations

import json
import re

import pytest

from tests.support.embedded_server import embedded_server
from tests.support.models import REFERENCE_INPUT, REFERENCE_MASK, copy_version
from tests.support.rest_client import rest_answer, rest_call, rest_json

PREDICT = "/v1/models/threshold:predict"


def error_of(server, method: str, path: str, body=None) -> tuple[int, str]:
    status, answer = rest_json(server.rest_port, method, path, body)
    assert set(answer) == {"error"}, answer  # MakeJsonFromStatus: {"error": message}, nothing else
    return status, answer["error"]


# --- routes: http_rest_api_util.cc ParseModelInfo, http_rest_api_handler.cc ProcessRequest -----


@pytest.mark.parametrize(
    "method,path",
    [
        ("GET", "/v1/foo"),
        ("POST", "/v1/foo"),
        ("POST", "/v1/models"),
        ("GET", "/v1/models/debug/model_name"),
        ("GET", "/v1/models/threshold:predict"),
        ("GET", "/v1/models/threshold/version/50:predict"),
        ("POST", "/v1/models/threshold/version/1:regress"),
        ("POST", "/v1/models/threshold/versions/HELLO:regress"),
        ("POST", "/v1/models/threshold/metadata"),
        ("POST", "/v1/models/threshold/versions/1/labels/stable:predict"),
        ("PUT", "/v1/models/threshold"),
    ],
)
def test_unroutable_paths_are_malformed_requests(server, method, path):
    """http_rest_api_handler_test.cc (kPathRegex tests): 400 "Malformed request: <METHOD> <path>"."""
    assert error_of(server, method, path, "") == (400, f"Malformed request: {method} {path}")


def test_model_status_without_a_model_name_is_refused(server):
    """http_rest_api_handler.cc ProcessModelStatusRequest: no listing of all models."""
    assert error_of(server, "GET", "/v1/models") == (400, "Missing model name in request.")


@pytest.mark.parametrize("version", [str(2**63), str(2**70), "99999999999999999999"])
def test_a_version_beyond_int64_is_a_bad_request(server, version):
    """http_rest_api_util.cc ParseModelInfo: absl::SimpleAtoi into int64 fails -> InvalidArgument."""
    expected = (400, f"Failed to convert version: {version} to numeric.")
    assert error_of(server, "GET", f"/v1/models/threshold/versions/{version}") == expected
    assert error_of(server, "POST", f"/v1/models/threshold/versions/{version}:predict", {}) == expected


def test_paths_match_case_insensitively_and_model_names_are_url_decoded(server):
    """http_rest_api_util.cc: the regexes start with (?i); DecodeArg (curl_easy_unescape) the name."""
    status, answer = rest_json(
        server.rest_port,
        "POST",
        "/V1/Models/thr%65shold/VERSIONS/1:predict",
        {"instances": [REFERENCE_INPUT]},
    )
    assert (status, answer) == (200, {"predictions": [REFERENCE_MASK]})
    status, answer = rest_json(server.rest_port, "GET", "/V1/MODELS/%74hreshold")
    assert status == 200 and answer["model_version_status"][0]["state"] == "AVAILABLE"


def test_the_query_string_is_part_of_the_path_tf_serving_matches(server):
    """evhttp_request.cc: uri_path() is path_and_query, which the dispatcher hands to
    http_rest_api_util.cc ParseModelInfo: a query joins the model name, or breaks the :predict regex."""
    assert error_of(server, "GET", "/v1/models/threshold?x=1") == (
        404,
        "Could not find any versions of model threshold?x=1",
    )
    assert error_of(server, "POST", f"{PREDICT}?x=1", {"instances": [REFERENCE_INPUT]}) == (
        400,
        f"Malformed request: POST {PREDICT}?x=1",
    )


def test_metrics_are_plain_text_and_refuse_a_query(server):
    """http_server.cc ProcessPrometheusRequest: Content-Type text/plain; the handler is found by the
    path alone, then uri_path() (with its query) must equal the configured path, else InvalidArgument."""
    metrics = "/monitoring/prometheus/metrics"
    answer = rest_answer(server.rest_port, "GET", metrics)
    assert (answer.status, answer.content_type) == (200, "text/plain")
    answer = rest_answer(server.rest_port, "GET", f"{metrics}?x=1")
    assert (answer.status, answer.content_type, answer.body.decode()) == (
        400,
        "text/plain",
        f"Unexpected path: {metrics}?x=1. Should be {metrics}",
    )


def test_paths_outside_v1_are_not_found(server):
    """http_server.cc: only (?i)/v1/.* reaches the REST handler; libevent answers 404 for the rest."""
    status, _ = rest_call(server.rest_port, "GET", "/v2/models/threshold")
    assert status == 404


# --- :classify and :regress: http_rest_api_handler.cc, classifier.cc, regressor.cc -------------


def test_classify_names_the_missing_classification_inputs(server):
    """classifier.cc PreProcessClassification (method-name check off by default)."""
    status, message = error_of(server, "POST", "/v1/models/threshold:classify", {"examples": [{"x": 1.0}]})
    assert status == 400
    assert message.startswith('No classification inputs found in SignatureDef: inputs {\n  key: "x"\n')
    assert message.endswith('method_name: "tensorflow/serving/predict"\n')


def test_regress_names_what_the_signature_lacks(server):
    """regressor.cc PreProcessRegression: one input, one output, then the 'inputs' alias."""
    status, message = error_of(server, "POST", "/v1/models/threshold:regress", {"examples": [{"x": 1.0}]})
    assert status == 400 and message.startswith("No regression inputs found in SignatureDef: inputs {")
    body = {"signature_name": "bounds", "examples": [{"x": 1.0}]}
    assert error_of(server, "POST", "/v1/models/threshold:regress", body) == (
        400,
        "Expected one output Tensor.",
    )
    body = {"signature_name": "nope", "examples": [{"x": 1.0}]}
    assert error_of(server, "POST", "/v1/models/threshold:classify", body) == (
        400,
        "No signature was found with the name: nope",
    )


def test_classify_checks_the_examples_first(server):
    """json_tensor.cc FillClassifyRegressRequestFromJson (its wording says classify for regress too)."""
    assert error_of(server, "POST", "/v1/models/threshold:regress", {"instances": []}) == (
        400,
        "JSON Value: {\n    \"instances\": []\n} When method is classify, key 'examples' is expected "
        "and was not found",
    )
    assert error_of(server, "POST", "/v1/models/threshold:classify", {"examples": [{"x": None}]}) == (
        400,
        "Feature: x has element with unexpected JSON type: Null",
    )


# --- JSON parsing: json_tensor.cc ParseJson ----------------------------------------------------


@pytest.mark.parametrize(
    "body,message",
    [
        ("", "JSON Parse error: The document is empty"),
        ("{", "JSON Parse error: Missing a name for object member. at offset: 1"),
        (
            '{"instances": [1',
            "JSON Parse error: Missing a comma or ']' after an array element. at offset: 16",
        ),
        (
            '{"instances": [1] "x"',
            "JSON Parse error: Missing a comma or '}' after an object member. at offset: 18",
        ),
        ('{"instances": [tru]}', "JSON Parse error: Invalid value. at offset: 18"),
        ("[1, 2]", "JSON Value: [1, 2] Is not object"),
        (
            '{"instances": [[1' + "0" * 400 + "]]}",
            "JSON Parse error: Number too big to be stored in double. at offset: 16",
        ),
        (
            '{"instances": [[1e400]]}',
            "JSON Parse error: Number too big to be stored in double. at offset: 16",
        ),
        (
            '{"signature_name": 1, "instances": [[1.0]]}',
            'JSON Value: {\n    "signature_name": 1,\n    '
            '"instances": [[1.0]]\n} not formatted correctly. '
            "'signature_name' key must be a string value.",
        ),
    ],
)
def test_json_errors_use_rapidjsons_words(server, body, message):
    """json_tensor.cc ParseJson / FillSignature; json_tensor_test.cc and http_rest_api_handler_test.cc."""
    assert error_of(server, "POST", PREDICT, body) == (400, message)


def test_text_after_the_top_level_object_is_ignored(server):
    """json_tensor.cc parses with kParseStopWhenDoneFlag; json_tensor_test.cc sends '{...}X'."""
    status, text = rest_call(server.rest_port, "POST", PREDICT, '{"instances": [[0.5]]}X')
    assert (status, json.loads(text)) == (200, {"predictions": [[1.0]]})


@pytest.mark.parametrize(
    "value,text,kind",
    [
        ("true", "true", "True"),
        ("null", "null", "Null"),
        ('"0.5"', '"0.5"', "String"),
        ('{"a": 1}', '{\n    "a": 1\n}', "Object"),
    ],
)
def test_a_float_input_takes_numbers_only(server, value, text, kind):
    """json_tensor.cc AddValueToTensor (DT_FLOAT: IsNumber) and TypeError's wording."""
    assert error_of(server, "POST", PREDICT, f'{{"inputs": [[0.5, {value}]]}}') == (
        400,
        f"JSON Value: {text} Type: {kind} is not of expected type: float",
    )
    assert error_of(server, "POST", PREDICT, f'{{"instances": [[0.5, {value}]]}}') == (
        400,
        f"Failed to process element: 0 of 'instances' list. Error: INVALID_ARGUMENT: JSON Value: {text} "
        f"Type: {kind} is not of expected type: float",
    )


@pytest.mark.parametrize(
    "body,message",
    [
        ({"instances": []}, "JSON Value: {\n    \"instances\": []\n} No values in 'instances' array"),
        (
            {"instances": 1},
            "JSON Value: {\n    \"instances\": 1\n} Expecting 'instances' to be an list/array",
        ),
        ({"x": 1}, "Missing 'inputs' or 'instances' key"),
        ({"inputs": {"y": [[1.0]]}}, "Missing named input: x in 'inputs' object."),
        (
            {"instances": [[1.0], [1.0, 2.0]]},
            "Failed to process element: 1 of 'instances' list. Error: "
            "INVALID_ARGUMENT: Expecting tensor size: 1 but got: 2",
        ),
        (
            {"instances": [{"x": [1.0], "y": [1.0]}]},
            "Failed to process element: 0 key: y of 'instances' list. "
            "Error: INVALID_ARGUMENT: JSON object: does not have named "
            "input: y",
        ),
        (
            {"inputs": [[1.0], [1.0, 2.0]]},
            "Encountered list at unexpected size: 2 at level: 1 expected size: 1",
        ),
        (
            {"inputs": [[1.0], 2.0]},
            "JSON Value: 2.0 found at incorrect level: 2 in the JSON DOM. Expected at level: 2",
        ),
        (
            {"signature_name": "nope", "instances": [[1.0]]},
            'Serving signature name: "nope" not found in signature def',
        ),
    ],
)
def test_request_shape_errors_use_json_tensors_words(server, body, message):
    """json_tensor.cc FillPredictRequestFromJson, FillTensorMapFrom*, FillTensorProto;
    http_rest_api_handler.cc GetInfoMap."""
    assert error_of(server, "POST", PREDICT, body) == (400, message)


def test_an_extra_key_in_a_columnar_inputs_object_is_ignored(server):
    """json_tensor.cc FillTensorMapFromInputsMap looks up each signature input, nothing else."""
    status, answer = rest_json(
        server.rest_port, "POST", PREDICT, {"inputs": {"x": [REFERENCE_INPUT], "unused": "anything"}}
    )
    assert (status, answer) == (200, {"outputs": [REFERENCE_MASK]})


def test_an_empty_signature_name_means_the_default_signature(server):
    """http_rest_api_handler.cc GetInfoMap: an empty name is kDefaultServingSignatureDefKey."""
    status, answer = rest_json(
        server.rest_port, "POST", PREDICT, {"signature_name": "", "instances": [REFERENCE_INPUT]}
    )
    assert (status, answer) == (200, {"predictions": [REFERENCE_MASK]})


# --- answers: json_tensor.cc MakeJsonFromTensors / WriteDecimal ---------------------------------


def test_float_outputs_are_written_as_tf_serving_writes_them(server):
    """json_tensor.cc WriteDecimal: six significant digits when they read back as the same float."""
    body = {"signature_name": "bounds", "inputs": [[0.0]]}
    status, text = rest_call(server.rest_port, "POST", PREDICT, body)
    assert status == 200
    assert re.search(r'"low": \[\s*-0\.1\s*\]', text) and re.search(r'"high": \[\s*0\.1\s*\]', text), text
    assert "0.10000000149011612" not in text


def test_answers_are_laid_out_as_rapidjsons_pretty_writer_lays_them_out(server):
    """json_tensor.cc MakeRowFormatJsonFromTensors (rows on one line, kFormatSingleLineArray),
    MakeColumnarFormatJsonFromTensors (one value per line) and MakeJsonFromStatus, all through
    rapidjson's PrettyWriter (four spaces a level)."""
    assert rest_call(server.rest_port, "POST", PREDICT, {"instances": [[0.5, 0.0], [0.0, -0.5]]}) == (
        200,
        '{\n    "predictions": [[1.0, 0.0], [0.0, 1.0]\n    ]\n}',
    )
    assert rest_call(server.rest_port, "POST", PREDICT, {"inputs": [[0.5, 0.0]]}) == (
        200,
        '{\n    "outputs": [\n        [\n            1.0,\n            0.0\n        ]\n    ]\n}',
    )
    assert rest_call(server.rest_port, "POST", PREDICT, {"signature_name": "compact", "inputs": [[0.5]]}) == (
        200,
        '{\n    "outputs": [\n        [\n            1\n        ]\n    ]\n}',
    )
    assert rest_call(server.rest_port, "POST", PREDICT, {"x": 1}) == (
        400,
        "{\n    \"error\": \"Missing 'inputs' or 'instances' key\"\n}",
    )


def test_model_status_lists_versions_newest_first(model_dir, tmp_path):
    """get_model_status_impl.cc (through http_rest_api_handler.cc): versions in descending order."""
    copy_version(model_dir, tmp_path)
    copy_version(model_dir, tmp_path, as_version=2)
    copy_version(model_dir, tmp_path, as_version=10)
    config = tmp_path / "models.config"
    config.write_text(
        'model_config_list { config { name: "threshold" base_path: "/models/threshold" '
        'model_platform: "tensorflow" model_version_policy { all {} } } }\n'
    )
    with embedded_server(None, "--model-config-file", str(config), "--models-dir", str(tmp_path)) as handle:
        status, answer = rest_json(handle.rest_port, "GET", "/v1/models/threshold")
    assert status == 200
    assert [entry["version"] for entry in answer["model_version_status"]] == ["10", "2", "1"]


def test_a_cors_preflight_needs_an_origin(server):
    """http_server.cc ProcessRequest: OPTIONS is OK with an http(s) Origin, else FailedPrecondition (400)."""
    assert rest_call(server.rest_port, "OPTIONS", PREDICT, headers={"Origin": "https://example.com"}) == (
        200,
        "",
    )
    assert rest_call(server.rest_port, "OPTIONS", PREDICT)[0] == 400


def request_count(server) -> int:
    _, text = rest_call(server.rest_port, "GET", "/monitoring/prometheus/metrics")
    match = re.search(
        r'^:tensorflow:serving:request_count\{model_name="threshold",status="OK"\} (\d+)', text, re.MULTILINE
    )
    return int(match[1]) if match else 0


def test_rest_requests_are_counted_and_timed_as_tf_serving_records_them(server):
    """http_server.cc RestApiRequestDispatcher::ProcessRequest: RecordModelRequestCount for every
    request, RecordRequestLatency with API = the path's method and entrypoint REST."""
    before = request_count(server)
    assert rest_call(server.rest_port, "GET", "/v1/models/threshold/metadata")[0] == 200
    assert rest_call(server.rest_port, "POST", PREDICT, {"instances": [REFERENCE_INPUT]})[0] == 200
    assert request_count(server) == before + 2
    _, text = rest_call(server.rest_port, "GET", "/monitoring/prometheus/metrics")
    assert re.search(r'request_latency_bucket\{model_name="threshold",API="predict",entrypoint="REST",', text)
    assert re.search(r'request_latency_bucket\{model_name="threshold",API="",entrypoint="REST",', text)


def test_metadata_is_two_messages_joined_as_tf_serving_joins_them(server):
    """http_rest_api_util.cc ToJsonString(GetModelMetadataResponse): model_spec and the SignatureDefMap
    printed apart (protobuf JSON, whitespace on) and joined by hand."""
    status, text = rest_call(server.rest_port, "GET", "/v1/models/threshold/metadata")
    assert status == 200
    assert text.startswith(
        '{\n"model_spec":{\n "name": "threshold",\n "version": "1",\n '
        '"signature_name": ""\n}\n,\n"metadata": {"signature_def": {\n "signature_def": {'
    )
    assert text.endswith("}\n}\n}\n")
