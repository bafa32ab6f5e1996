"""serving/*.config parse with TF Serving's proto classes, and the label scheme stays servable."""

from __future__ import annotations

from pathlib import Path

import pytest
from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

from serving.config_protos import BatchingParameters, MonitoringConfig
from serving.errors import InvalidModelConfig
from serving.lifecycle import ServeSettings, render_config_files
from serving.model_config import (
    BATCHING_CONFIG,
    MODELS_CONFIG,
    MONITORING_CONFIG,
    assign_labels,
    load_model_server_config,
    served_models,
)


def _parse(path: Path, message):
    return text_format.Parse(path.read_text(), message)


def _version_dirs(models_dir: Path, *versions: int) -> Path:
    """Stand-in version directories: the label logic only looks at their names."""
    for version in versions:
        (models_dir / "threshold" / str(version)).mkdir(parents=True)
    return models_dir


def test_models_config_serves_threshold_latest_two_with_labels():
    config = _parse(MODELS_CONFIG, model_server_config_pb2.ModelServerConfig())
    (model,) = config.model_config_list.config
    assert (model.name, model.base_path) == ("threshold", "/models/threshold")
    assert model.model_platform == "tensorflow"
    assert model.model_version_policy.WhichOneof("policy_choice") == "latest"
    assert model.model_version_policy.latest.num_versions == 2
    assert set(model.version_labels) == {"stable", "canary"}
    assert model.version_labels["stable"] < model.version_labels["canary"]


def test_batching_config_sets_every_tuned_field_with_wrapped_values():
    params = _parse(BATCHING_CONFIG, BatchingParameters())
    for field in (
        "max_batch_size",
        "batch_timeout_micros",
        "num_batch_threads",
        "max_enqueued_batches",
        "max_execution_batch_size",
        "enable_large_batch_splitting",
    ):
        assert params.HasField(field), field
    assert params.enable_large_batch_splitting.value
    # The largest request the client may send (4 MiB of float32) must be accepted, split.
    assert params.max_batch_size.value >= 4 * 1024 * 1024 // 4
    assert 0 < params.max_execution_batch_size.value <= params.max_batch_size.value
    assert 0 < params.batch_timeout_micros.value <= 10_000
    assert params.num_batch_threads.value >= 1 and params.max_enqueued_batches.value >= 1


def test_batching_config_says_why_above_each_value():
    lines = BATCHING_CONFIG.read_text().splitlines()
    for index, line in enumerate(lines):
        if line.strip() and not line.startswith("#"):
            # The nearest line above that is not a setting must be a comment, not a blank line.
            above = next(
                (prev for prev in reversed(lines[:index]) if not prev.strip() or prev.startswith("#")), ""
            )
            assert above.startswith("#"), f"no comment says why {line!r}"


@pytest.mark.parametrize(
    "typo",
    [
        "max_batch_sise { value: 8 }",  # misspelt field
        "max_batch_size: 8",  # a wrapper written as a plain integer
        "batch_timeout_micros { value: 1.5 }",  # wrong type
        "enable_large_batch_splitting { value: yes }",
    ],
)
def test_batching_typos_fail_to_parse(typo):
    with pytest.raises(text_format.ParseError):
        text_format.Parse(typo, BatchingParameters())


def test_monitoring_config_enables_prometheus_on_a_path():
    config = _parse(MONITORING_CONFIG, MonitoringConfig())
    assert config.prometheus_config.enable
    assert config.prometheus_config.path == "/monitoring/prometheus/metrics"
    with pytest.raises(text_format.ParseError):
        text_format.Parse("prometheus_config { enabled: true }", MonitoringConfig())


def test_models_config_typo_is_an_invalid_model_config(tmp_path):
    broken = tmp_path / "models.config"
    broken.write_text(MODELS_CONFIG.read_text().replace("model_platform", "model_platfrom"))
    with pytest.raises(InvalidModelConfig, match="model_platfrom"):
        load_model_server_config(broken)


@pytest.mark.parametrize(
    ("kept", "expected"),
    [
        ([], {}),
        ([1], {"stable": 1, "canary": 1}),
        ([3, 4], {"stable": 3, "canary": 4}),
        ([2, 3, 4], {"stable": 3, "canary": 4}),
    ],
)
def test_canary_gets_the_newest_kept_version_and_stable_the_one_before(kept, expected):
    assert assign_labels({"stable": 1, "canary": 2}, kept) == expected


def test_rendered_config_points_labels_at_the_two_newest_versions_on_disk(tmp_path):
    models_dir = _version_dirs(tmp_path / "models", 1, 2, 3)
    (models_dir / "threshold" / ".partial-4").mkdir()  # an export in progress is not a version
    settings = ServeSettings(models_dir=models_dir, state_dir=tmp_path / "state")
    (model,) = render_config_files(settings)
    assert model.kept_versions == (2, 3)
    rendered = text_format.Parse(
        (settings.config_dir / "models.config").read_text(), model_server_config_pb2.ModelServerConfig()
    )
    (config,) = rendered.model_config_list.config
    assert dict(config.version_labels) == {"stable": 2, "canary": 3}
    assert config.model_version_policy.latest.num_versions == 2
    for name in ("batching.config", "monitoring.config"):
        assert (settings.config_dir / name).read_text() == (MODELS_CONFIG.parent / name).read_text()


def test_single_version_gets_both_labels_so_tf_serving_accepts_the_config(tmp_path):
    models = served_models(load_model_server_config(), _version_dirs(tmp_path, 1))
    assert models[0].labels == {"stable": 1, "canary": 1}


def test_base_path_outside_models_is_refused(tmp_path):
    config = load_model_server_config()
    config.model_config_list.config[0].base_path = "/data/threshold"
    with pytest.raises(InvalidModelConfig, match="/models/"):
        served_models(config, tmp_path)
