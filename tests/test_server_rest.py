"""The REST API on --rest-port: TF Serving's status, metadata and :predict JSON, plus Prometheus metrics."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

from tests.support.models import REFERENCE_INPUT, REFERENCE_MASK


def call(server, path: str, body: dict | None = None) -> tuple[int, dict | str]:
    url = f"http://127.0.0.1:{server.rest_port}{path}"
    data = json.dumps(body).encode() if body is not None else None
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=data), timeout=30) as answer:
            status, text = answer.status, answer.read().decode()
    except urllib.error.HTTPError as error:
        status, text = error.code, error.read().decode()
    return status, (json.loads(text) if text.startswith("{") else text)


def test_model_status(server):
    assert call(server, "/v1/models/threshold") == (
        200,
        {
            "model_version_status": [
                {"version": "1", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}
            ]
        },
    )
    assert call(server, "/v1/models/threshold/versions/1")[0] == 200


def test_predict_row_format(server):
    status, body = call(server, "/v1/models/threshold:predict", {"instances": [REFERENCE_INPUT]})
    assert (status, body) == (200, {"predictions": [REFERENCE_MASK]})


def test_predict_columnar_format_and_signature_name(server):
    status, body = call(
        server,
        "/v1/models/threshold/versions/1:predict",
        {"signature_name": "compact", "inputs": {"x": [REFERENCE_INPUT]}},
    )
    assert (status, body) == (200, {"outputs": [REFERENCE_MASK]})
    status, body = call(server, "/v1/models/threshold:predict", {"signature_name": "bounds", "inputs": [[]]})
    assert status == 200 and body["outputs"]["low"] == [pytest.approx(-0.1)]  # one value per row


def test_metadata_lists_the_signatures(server):
    status, body = call(server, "/v1/models/threshold/metadata")
    assert status == 200 and body["model_spec"]["version"] == "1"
    assert {"serving_default", "compact", "bounds"} <= set(body["metadata"]["signature_def"]["signature_def"])


@pytest.mark.parametrize(
    "path,body,code,fragment",
    [
        (
            "/v1/models/nope:predict",
            {"instances": [[1.0]]},
            404,
            "Servable not found for request: Latest(nope)",
        ),
        (
            "/v1/models/threshold/labels/x:predict",
            {"instances": [[1.0]]},
            400,
            "Unrecognized servable version label: x",
        ),
        (
            "/v1/models/threshold:predict",
            {"signature_name": "zz", "instances": [[1.0]]},
            400,
            'Serving signature name: "zz" not found in signature def',
        ),
        ("/v1/models/threshold:predict", {"instances": [["a"]]}, 400, "not of expected type"),
        ("/v1/models/threshold:predict", {"nothing": 1}, 400, "Missing 'inputs' or 'instances' key"),
        ("/v1/models/threshold/versions/9", None, 404, "Could not find version 9 of model threshold"),
    ],
)
def test_errors_use_tf_servings_http_codes(server, path, body, code, fragment):
    status, answer = call(server, path, body)
    assert status == code and fragment in answer["error"]


def test_prometheus_metrics_count_requests_and_errors(server):
    call(server, "/v1/models/threshold:predict", {"instances": [REFERENCE_INPUT]})
    call(server, "/v1/models/nope:predict", {"instances": [REFERENCE_INPUT]})
    status, text = call(server, "/monitoring/prometheus/metrics")
    assert status == 200
    assert ':tensorflow:serving:request_count{model_name="threshold",status="OK"}' in text
    assert 'model_name="nope"' not in text  # only served models are labelled
    assert ":tensorflow:serving:request_latency_bucket{" in text
