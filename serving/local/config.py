"""Which models to serve: TF Serving's ModelServerConfig text proto, or --model-name/--model-base-path."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from google.protobuf import text_format
from tensorflow_serving.config import file_system_storage_path_source_pb2, model_server_config_pb2

from client.model_versions import local_base_path
from serving.local.errors import ConfigFileMissing, InvalidServerConfig

TENSORFLOW_PLATFORM = "tensorflow"  # kTensorFlowModelPlatform, the one platform server.cc routes
VersionPolicy = file_system_storage_path_source_pb2.FileSystemStoragePathSourceConfig.ServableVersionPolicy


@dataclass(frozen=True)
class ModelSource:
    """One model to serve: where its versions appear, which to keep loaded, its labels."""

    name: str
    base_path: Path
    policy: VersionPolicy = field(default_factory=VersionPolicy)
    labels: dict[str, int] = field(default_factory=dict)


def parse_model_server_config(
    text: str, source: str = "<config>"
) -> model_server_config_pb2.ModelServerConfig:
    """Parse a ModelServerConfig text proto; InvalidServerConfig says where it is wrong."""
    try:
        return text_format.Parse(text, model_server_config_pb2.ModelServerConfig())
    except text_format.ParseError as exc:
        raise InvalidServerConfig(f"{source}: {exc}") from None


def single_model_config(name: str, base_path: str) -> model_server_config_pb2.ModelServerConfig:
    """The config --model-name/--model-base-path stand for (server.cc, BuildSingleModelConfig)."""
    config = model_server_config_pb2.ModelServerConfig()
    config.model_config_list.config.add(name=name, base_path=base_path, model_platform=TENSORFLOW_PLATFORM)
    return config


def model_sources_from_config(
    config: model_server_config_pb2.ModelServerConfig, models_dir: Path
) -> list[ModelSource]:
    """The models a (checked: serving.local.server_core) config lists, base paths resolved against
    models_dir."""
    return [
        ModelSource(
            name=model.name,
            base_path=local_base_path(model.base_path, models_dir),
            policy=model.model_version_policy,
            labels=dict(model.version_labels),
        )
        for model in config.model_config_list.config
    ]


def read_model_server_config(config_file: Path) -> model_server_config_pb2.ModelServerConfig:
    """The ModelServerConfig in --model-config-file; ConfigFileMissing if it is not there."""
    try:
        text = Path(config_file).read_text()
    except FileNotFoundError:
        raise ConfigFileMissing(
            f"model config file {config_file} does not exist: pass an existing "
            "--model-config-file, or --model-name and --model-base-path"
        ) from None
    except OSError as exc:
        raise ConfigFileMissing(f"cannot read model config file {config_file}: {exc.strerror}") from None
    return parse_model_server_config(text, str(config_file))


DEFAULT_PROMETHEUS_PATH = "/monitoring/prometheus/metrics"  # PrometheusExporter::kPrometheusPath


def read_proto_text_file(path: Path, message, flag: str):
    """message, filled from the text proto in path as TF Serving's ParseProtoTextFile
    (util/proto_util.h) fills it; a file it cannot read or parse is a StartupError naming flag."""
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise ConfigFileMissing(f"cannot read {flag} {path}: {exc.strerror}") from None
    try:
        return text_format.Parse(text, message)
    except text_format.ParseError as exc:
        # ParseProtoTextFile's words, then where the text is wrong
        raise InvalidServerConfig(f"Invalid protobuf file: '{path}' ({exc})") from None


def read_metrics_path(config_file: Path) -> str | None:
    """Where the REST port serves Prometheus metrics, from a MonitoringConfig text proto: its
    prometheus_config.path (DEFAULT_PROMETHEUS_PATH when empty), or None when not enabled
    (http_server.cc, CreateAndStartHttpServer). Read as server.cc reads it: an unreadable file or
    one that does not parse fails the start."""
    from serving.config_protos import MonitoringConfig

    config = read_proto_text_file(config_file, MonitoringConfig(), "--monitoring-config-file")
    if not config.prometheus_config.enable:
        return None
    return config.prometheus_config.path or DEFAULT_PROMETHEUS_PATH
