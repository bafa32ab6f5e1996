"""Which models to serve: TF Serving's ModelServerConfig text proto, or --model-name/--model-base-path."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from google.protobuf import text_format
from tensorflow_serving.config import file_system_storage_path_source_pb2, model_server_config_pb2

from client.model_versions import local_base_path
from serving.local.errors import ConfigFileMissing, InvalidServerConfig

SUPPORTED_PLATFORM = "tensorflow"
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


def model_sources_from_config(
    config: model_server_config_pb2.ModelServerConfig, models_dir: Path, source: str = "<config>"
) -> list[ModelSource]:
    """The models a ModelServerConfig lists, with base paths resolved against models_dir."""
    if config.WhichOneof("config") != "model_config_list":
        raise InvalidServerConfig(f"{source}: only model_config_list is supported")
    sources, seen = [], set()
    for model in config.model_config_list.config:
        if not model.name or not model.base_path:
            raise InvalidServerConfig(f"{source}: every model needs a name and a base_path")
        if model.name in seen:
            raise InvalidServerConfig(f"{source}: model {model.name!r} is listed twice")
        platform = model.model_platform or SUPPORTED_PLATFORM
        if platform != SUPPORTED_PLATFORM:
            raise InvalidServerConfig(
                f"{source}: model {model.name!r} has model_platform {platform!r}; "
                f"this server loads only {SUPPORTED_PLATFORM!r} SavedModels"
            )
        seen.add(model.name)
        sources.append(
            ModelSource(
                name=model.name,
                base_path=local_base_path(model.base_path, models_dir),
                policy=model.model_version_policy,
                labels=dict(model.version_labels),
            )
        )
    if not sources:
        raise InvalidServerConfig(f"{source}: no models listed")
    return sources


def read_model_sources(config_file: Path, models_dir: Path) -> list[ModelSource]:
    """The models --model-config-file lists; ConfigFileMissing if it is not there."""
    try:
        text = Path(config_file).read_text()
    except FileNotFoundError:
        raise ConfigFileMissing(
            f"model config file {config_file} does not exist: pass an existing "
            "--model-config-file, or --model-name and --model-base-path"
        ) from None
    except OSError as exc:
        raise ConfigFileMissing(f"cannot read model config file {config_file}: {exc.strerror}") from None
    return model_sources_from_config(
        parse_model_server_config(text, str(config_file)), models_dir, str(config_file)
    )
