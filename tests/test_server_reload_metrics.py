"""HandleReloadConfigRequest reports how much each metric named in metric_names grew during the
reload, as TF Serving's ModelServiceImpl does.

TF Serving: tensorflow_serving/model_servers/model_service_impl.cc, GetMetrics and
RecordMetricsIncrease: each distinct name gets one Metric whose int64_value_increase is the
first point's value after the reload minus before (tsl's Counter keeps its cells in a std::map,
so the first point is the one with the smallest labels); a name with no points, or unknown,
counts as 0. The SavedModel loader counts every load in
/tensorflow/cc/saved_model/load_attempt_count {model_path, status} (tensorflow/cc/saved_model/loader.cc).
"""

from __future__ import annotations

import pytest

from tests.support.embedded_server import embedded_server
from tests.support.grpc_calls import ServingStubs, reload_config
from tests.support.models import copy_version

LOAD_ATTEMPTS = "/tensorflow/cc/saved_model/load_attempt_count"
UNKNOWN = "/no/such/metric"


def config_text(base_path: str | None) -> str:
    if base_path is None:
        return "model_config_list { }"
    return (
        f'model_config_list {{ config {{ name: "threshold" base_path: "{base_path}" '
        'model_platform: "tensorflow" } }'
    )


@pytest.fixture(scope="module")
def reloadable(model_dir, tmp_path_factory):
    """threshold/1 alone, so the load attempt counter has one point: (its path, success)."""
    directory = tmp_path_factory.mktemp("reload-metrics")
    copy_version(model_dir, directory)
    with embedded_server(directory) as handle:
        stubs = ServingStubs(handle.address)
        yield stubs, str(directory / "threshold")
        stubs.close()


def increases(response) -> dict[str, int]:
    return {metric.name: metric.int64_value_increase for metric in response.metric}


def test_a_reload_reports_the_load_attempts_it_made_and_zero_for_unknown_names(reloadable):
    """Unloading every model loads nothing; loading the same version again counts its path's
    success cell up from 1 to 2. A name listed twice is reported once."""
    stubs, base_path = reloadable
    names = (LOAD_ATTEMPTS, UNKNOWN, LOAD_ATTEMPTS)
    unloaded = reload_config(stubs, config_text(None), metric_names=names)
    assert (len(unloaded.metric), increases(unloaded)) == (2, {LOAD_ATTEMPTS: 0, UNKNOWN: 0})
    reloaded = reload_config(stubs, config_text(base_path), metric_names=names)
    assert reloaded.status.error_code == 0
    assert (len(reloaded.metric), increases(reloaded)) == (2, {LOAD_ATTEMPTS: 1, UNKNOWN: 0})


def test_without_metric_names_the_response_has_no_metrics(reloadable):
    stubs, base_path = reloadable
    assert list(reload_config(stubs, config_text(base_path)).metric) == []
