"""Observability: the Grafana dashboard queries TF Serving's metric names, the embedded server exports
them, the ServiceMonitor scrapes the right port and path, and --log-format json writes JSON lines.

TF Serving's exporter (tensorflow_serving/util/prometheus_exporter.cc) names a metric by
replacing every character outside [a-zA-Z0-9_] of its monitoring name with ':', writes
counters under that name (no ``_total``) and histograms as ``_bucket``/``_sum``/``_count``.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
import urllib.request

import numpy as np
import pytest
import yaml
from google.protobuf import text_format

from serving.config_protos import MonitoringConfig
from serving.model_config import MONITORING_CONFIG
from tests.support.embedded_server import WITH_METRICS, embedded_server
from tests.support.grpc_calls import ServingStubs, predict_request
from tests.support.models import REFERENCE_INPUT
from tests.support.ports import free_port
from tests.support.processes import PYTHON, REPO, cli_env

OBSERVABILITY = REPO / "serving" / "observability"
DASHBOARD = json.loads((OBSERVABILITY / "grafana-dashboard.json").read_text())
# Each metric the dashboard may query, as TF Serving exports it, and where TF Serving defines it.
TF_SERVING_METRICS = {
    ":tensorflow:serving:request_count": "tensorflow_serving/servables/tensorflow/util.cc",
    ":tensorflow:serving:request_latency": "tensorflow_serving/servables/tensorflow/util.cc",
    ":tensorflow:serving:runtime_latency": "tensorflow_serving/servables/tensorflow/util.cc",
    ":tensorflow:serving:batching_session:queuing_latency": "tensorflow_serving/batching/batching_session.cc",
    ":tensorflow:cc:saved_model:load_attempt_count": "tensorflow/cc/saved_model/loader.cc (TensorFlow)",
}
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")


def queried_series() -> set[str]:
    """Every series name the dashboard's panels and variables query."""
    exprs = [target["expr"] for panel in DASHBOARD["panels"] for target in panel["targets"]]
    exprs += [
        variable["definition"] for variable in DASHBOARD["templating"]["list"] if "definition" in variable
    ]
    return {name for expr in exprs for name in re.findall(r":tensorflow:[A-Za-z0-9_:]+", expr)}


def _base_name(series: str) -> str:
    for suffix in HISTOGRAM_SUFFIXES:
        if series.endswith(suffix) and series[: -len(suffix)] in TF_SERVING_METRICS:
            return series[: -len(suffix)]
    return series


def test_dashboard_queries_only_tf_servings_metric_names():
    series = queried_series()
    assert {_base_name(name) for name in series} == set(TF_SERVING_METRICS)  # and every one is shown
    assert ":tensorflow:serving:request_count_total" not in series  # TF Serving's counters have no _total


def test_dashboard_shows_rate_latency_percentiles_batching_queue_and_loads():
    titles = {panel["title"]: [t["expr"] for t in panel["targets"]] for panel in DASHBOARD["panels"]}
    assert any("rate(:tensorflow:serving:request_count" in e for e in titles["Requests per second by status"])
    for panel, metric in (
        ("Request latency (server side)", "request_latency"),
        ("Batching queue latency", "batching_session:queuing_latency"),
    ):
        quantiles = sorted(float(re.match(r"histogram_quantile\(([0-9.]+),", e)[1]) for e in titles[panel])
        assert quantiles == [0.5, 0.9, 0.99] and all(f"{metric}_bucket" in e for e in titles[panel])
    assert any("load_attempt_count" in e for e in titles["Model loads"])
    ids = [panel["id"] for panel in DASHBOARD["panels"]]
    assert len(ids) == len(set(ids))
    prometheus = {"type": "prometheus", "uid": "${datasource}"}
    assert all(panel["datasource"] == prometheus for panel in DASHBOARD["panels"])


def test_service_monitor_scrapes_the_metrics_path_on_the_services_rest_port():
    monitor = yaml.safe_load((OBSERVABILITY / "servicemonitor.yaml").read_text())
    service = yaml.safe_load((REPO / "serving" / "k8s" / "base" / "service.yaml").read_text())
    assert (monitor["apiVersion"], monitor["kind"]) == ("monitoring.coreos.com/v1", "ServiceMonitor")
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["path"] == _metrics_path()
    assert endpoint["port"] in {port["name"] for port in service["spec"]["ports"]}
    assert next(p for p in service["spec"]["ports"] if p["name"] == endpoint["port"])["port"] == 8501


def _metrics_path() -> str:
    config = text_format.Parse(MONITORING_CONFIG.read_text(), MonitoringConfig())
    return config.prometheus_config.path


def _scrape(handle) -> set[str]:
    url = f"http://127.0.0.1:{handle.rest_port}{_metrics_path()}"
    with urllib.request.urlopen(url, timeout=30) as response:
        text = response.read().decode()
    # The series names as written, not as a client library re-reads them (prometheus_client's
    # parser would report a counter's samples with _total added).
    return {match[1] for match in re.finditer(r"^([A-Za-z_:][A-Za-z0-9_:]*)[{ ]", text, re.MULTILINE)}


@pytest.fixture(scope="module")
def batching_server(model_dir):
    with embedded_server(model_dir, "--enable-batching", *WITH_METRICS) as handle:
        stubs = ServingStubs(handle.address)
        try:
            stubs.prediction.Predict(predict_request(np.asarray([REFERENCE_INPUT], np.float32)), timeout=30)
        finally:
            stubs.close()
        yield handle


def test_every_metric_the_dashboard_queries_is_on_the_embedded_servers_metrics_page(batching_server):
    exported = _scrape(batching_server)
    missing = sorted(queried_series() - exported)
    assert missing == [], f"not exported: {missing}"


def test_json_log_lines_carry_time_level_and_message(model_dir, tmp_path):
    log_path = tmp_path / "server.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [
                PYTHON,
                "-m",
                "serving.local",
                "--port",
                str(free_port()),
                "--rest-port",
                "0",
                "--model-base-path",
                str(model_dir / "threshold"),
                "--log-format",
                "json",
            ],
            cwd=REPO,
            env=cli_env(),
            stdout=log,
            stderr=subprocess.DEVNULL,
        )
    try:
        deadline = time.monotonic() + 120
        while "listening on" not in log_path.read_text() and time.monotonic() < deadline:
            assert process.poll() is None, log_path.read_text()
            time.sleep(0.2)
    finally:
        process.terminate()
        process.wait(timeout=60)
    lines = log_path.read_text().splitlines()
    entries = [json.loads(line) for line in lines]  # every line is JSON: none is plain text
    assert any(entry["message"].startswith("listening on grpc") for entry in entries)
    assert entries[-1]["message"] == "stopped" and process.returncode == 0
    for entry in entries:
        assert set(entry) >= {"time", "level", "logger", "message"} and entry["time"].endswith("+00:00")


def test_load_attempts_and_queue_waits_are_recorded_as_tf_serving_records_them(batching_server, model_dir):
    # tensorflow/cc/saved_model/loader.cc counts loads by export dir and "success"/"fail";
    # tensorflow_serving/batching/batching_session.cc times the queue by thread pool, in microseconds
    url = f"http://127.0.0.1:{batching_server.rest_port}{_metrics_path()}"
    with urllib.request.urlopen(url, timeout=30) as response:
        text = response.read().decode()
    export_dir = model_dir / "threshold" / "1"
    assert f'load_attempt_count{{model_path="{export_dir}",status="success"}} 1' in text
    waits = re.search(
        r"^:tensorflow:serving:batching_session:queuing_latency_count"
        r'\{thread_pool_name="batch_threads"\} (\d+)$',
        text,
        re.MULTILINE,
    )
    assert waits is not None and int(waits[1]) >= 1, text
