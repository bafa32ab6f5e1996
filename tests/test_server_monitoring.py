"""Metrics and CORS on the REST port are opt-in, as in tensorflow_model_server.

TF Serving reads --monitoring_config_file with ParseProtoTextFile (model_servers/server.cc,
util/proto_util.h) and registers the Prometheus handler only when prometheus_config.enable is
set, at its path or PrometheusExporter::kPrometheusPath (model_servers/http_server.cc,
CreateAndStartHttpServer). --rest_api_enable_cors_support (model_servers/main.cc) adds
AddCORSHeaders' three headers (model_servers/http_rest_api_util.cc) to every answer of the REST
API dispatcher, errors included, and to nothing else (http_server.cc, ProcessRequest).
"""

from __future__ import annotations

import pytest

from client.errors import SERVER_NOT_STARTED
from serving.local.config import DEFAULT_PROMETHEUS_PATH, read_metrics_path
from serving.local.errors import InvalidServerConfig
from tests.support.embedded_server import embedded_server
from tests.support.ports import free_port
from tests.support.processes import one_line_error, run_module
from tests.support.rest_client import rest_answer

CUSTOM_PATH = "/metrics"
CORS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "POST, GET",
    "Access-Control-Allow-Headers": "Content-Type",
}
PREDICT_BODY = '{"instances": [[0.04, -0.8, 0.2]]}'


def _config(path, text: str):
    path.write_text(text)
    return path


@pytest.fixture(scope="module")
def plain_server(model_dir):
    """TF Serving's defaults: no --monitoring-config-file, no CORS."""
    with embedded_server(model_dir) as handle:
        yield handle


@pytest.fixture(scope="module")
def custom_server(model_dir, tmp_path_factory):
    """Metrics at a path of the config's own, and --rest-api-enable-cors-support."""
    config = _config(
        tmp_path_factory.mktemp("monitoring") / "monitoring.config",
        f'prometheus_config {{ enable: true path: "{CUSTOM_PATH}" }}\n',
    )
    with embedded_server(
        model_dir, "--monitoring-config-file", str(config), "--rest-api-enable-cors-support"
    ) as handle:
        yield handle


def _cors_headers(answer) -> dict[str, str | None]:
    return {name: answer.header(name) for name in CORS}


def test_without_a_monitoring_config_there_is_no_metrics_page(plain_server):
    answer = rest_answer(plain_server.rest_port, "GET", DEFAULT_PROMETHEUS_PATH)
    assert answer.status == 404 and b"Not Found" in answer.body
    assert rest_answer(plain_server.rest_port, "GET", "/v1/models/threshold").status == 200


def test_the_config_path_serves_the_metrics_and_the_default_path_does_not(custom_server):
    rest_answer(custom_server.rest_port, "POST", "/v1/models/threshold:predict", PREDICT_BODY)
    answer = rest_answer(custom_server.rest_port, "GET", CUSTOM_PATH)
    assert (answer.status, answer.content_type) == (200, "text/plain")
    assert ':tensorflow:serving:request_count{model_name="threshold",status="OK"}' in answer.body.decode()
    assert rest_answer(custom_server.rest_port, "GET", DEFAULT_PROMETHEUS_PATH).status == 404


def test_the_checkouts_monitoring_config_serves_the_default_path(server):
    """The shared server runs with serving/monitoring.config, as make serve does."""
    answer = rest_answer(server.rest_port, "GET", DEFAULT_PROMETHEUS_PATH)
    assert answer.status == 200 and b":tensorflow:serving:request_count" in answer.body


@pytest.mark.parametrize(
    "text,path",
    [
        ("prometheus_config { enable: true }\n", DEFAULT_PROMETHEUS_PATH),  # empty path: kPrometheusPath
        ('prometheus_config { enable: true path: "/m" }\n', "/m"),
        ('prometheus_config { enable: false path: "/m" }\n', None),  # no handler registered
        ("", None),
    ],
)
def test_metrics_path_follows_prometheus_config(tmp_path, text, path):
    assert read_metrics_path(_config(tmp_path / "monitoring.config", text)) == path


def test_an_unparsable_monitoring_config_fails_in_tf_servings_words(tmp_path):
    config = _config(tmp_path / "monitoring.config", "prometheus_config { enabled: true }\n")
    with pytest.raises(InvalidServerConfig, match=r"^Invalid protobuf file: '.*monitoring.config' \("):
        read_metrics_path(config)
    result = run_module(
        "serving.local",
        "--monitoring-config-file",
        config,
        "--model-base-path",
        tmp_path,
        "--port",
        str(free_port()),
        timeout=60,
    )
    _one_line(result, f"Invalid protobuf file: '{config}'", '"enabled"')


def test_a_missing_monitoring_config_is_named(tmp_path):
    result = run_module(
        "serving.local",
        "--monitoring-config-file",
        tmp_path / "nope.config",
        "--model-base-path",
        tmp_path,
        "--port",
        str(free_port()),
        timeout=60,
    )
    _one_line(result, "cannot read --monitoring-config-file", "nope.config")


def _one_line(result, *fragments: str) -> None:
    one_line_error(result, SERVER_NOT_STARTED, *fragments, prefix="serving.local: error: ")


@pytest.mark.parametrize(
    "method,path,body,status",
    [
        ("GET", "/v1/models/threshold", None, 200),
        ("POST", "/v1/models/threshold:predict", PREDICT_BODY, 200),
        ("GET", "/v1/models/nope", None, 404),  # errors carry them too
        ("POST", "/v1/models/threshold:predict", "{", 400),
    ],
)
def test_cors_support_adds_the_headers_to_every_api_answer(
    custom_server, plain_server, method, path, body, status
):
    answer = rest_answer(custom_server.rest_port, method, path, body)
    assert answer.status == status
    assert _cors_headers(answer) == CORS
    plain = rest_answer(plain_server.rest_port, method, path, body)
    assert plain.status == status
    assert _cors_headers(plain) == dict.fromkeys(CORS)


def test_cors_preflight_is_answered_with_the_headers(custom_server):
    answer = rest_answer(
        custom_server.rest_port,
        "OPTIONS",
        "/v1/models/threshold:predict",
        headers={"Origin": "http://example.com", "Access-Control-Request-Method": "POST"},
    )
    assert answer.status == 200 and _cors_headers(answer) == CORS


def test_cors_headers_stay_off_the_metrics_and_unknown_paths(custom_server):
    for path in (CUSTOM_PATH, "/nowhere"):
        answer = rest_answer(custom_server.rest_port, "GET", path)
        assert _cors_headers(answer) == dict.fromkeys(CORS), path
