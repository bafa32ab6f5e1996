"""serving/models.config: parse it with TF Serving's own proto, render the config a server gets.

The checked-in file names the models, their policy and their labels; which version numbers
the labels point at depends on what was exported, so the config handed to a server is
rendered from it (see the comment at the top of serving/models.config).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

from client.model_versions import container_relative, local_base_path, versions_on_disk, versions_to_serve
from serving.errors import InvalidModelConfig

SERVING_DIR = Path(__file__).resolve().parent
MODELS_CONFIG = SERVING_DIR / "models.config"
BATCHING_CONFIG = SERVING_DIR / "batching.config"
MONITORING_CONFIG = SERVING_DIR / "monitoring.config"
RENDERED_HEADER = (
    "# Rendered by `python -m serving.launch` from serving/models.config, with the labels\n"
    "# moved to the versions on disk. Edit that file, not this one.\n"
)


@dataclass(frozen=True)
class ServedModel:
    """One model of the config, resolved against a local models directory."""

    name: str
    local_base_path: Path
    versions_on_disk: tuple[int, ...]
    kept_versions: tuple[int, ...]  # what the version policy loads: `make serve` waits for these
    labels: dict[str, int]


def load_model_server_config(path: Path = MODELS_CONFIG) -> model_server_config_pb2.ModelServerConfig:
    """Parse a ModelServerConfig text proto; InvalidModelConfig says where it is wrong."""
    try:
        return text_format.Parse(Path(path).read_text(), model_server_config_pb2.ModelServerConfig())
    except (OSError, text_format.ParseError) as exc:
        raise InvalidModelConfig(f"{path}: {exc}") from None


def container_base_path(base_path: str, models_dir: Path) -> Path:
    """A container base path (/models/<name>) as the same path under models_dir; the container
    mounts only the models directory, so a base path elsewhere is InvalidModelConfig."""
    if container_relative(base_path) is None:
        raise InvalidModelConfig(
            f"base_path {base_path!r} must lie under /models/: the server mounts the models directory there"
        )
    return local_base_path(base_path, models_dir)


def assign_labels(template: dict[str, int], kept: list[int]) -> dict[str, int]:
    """Move each label to the kept version of the same rank, counted from the newest.

    The template's numbers only order the labels: the highest (canary) gets the newest kept
    version, the next (stable) the one before it, and labels beyond the kept versions stay
    on the oldest kept one, so every label always points at a version the server loads.
    """
    if not kept:
        return {}
    newest_first = sorted(template, key=lambda label: (-template[label], label))
    assigned = {label: kept[max(len(kept) - 1 - rank, 0)] for rank, label in enumerate(newest_first)}
    return dict(reversed(assigned.items()))  # oldest first, as the template lists them


def served_models(config: model_server_config_pb2.ModelServerConfig, models_dir: Path) -> list[ServedModel]:
    """Each configured model with its versions on disk and the labels it will be served with."""
    if config.WhichOneof("config") != "model_config_list" or not config.model_config_list.config:
        raise InvalidModelConfig("models.config needs a model_config_list with at least one config")
    models = []
    for model in config.model_config_list.config:
        base = container_base_path(model.base_path, models_dir)
        on_disk = versions_on_disk(base)
        kept = versions_to_serve(model.model_version_policy, on_disk)
        template = dict(model.version_labels)
        if model.model_version_policy.WhichOneof("policy_choice") == "specific":
            missing = {label: v for label, v in template.items() if v not in kept}
            if on_disk and missing:
                raise InvalidModelConfig(
                    f"model {model.name}: labels {missing} point at versions that "
                    f"are not on disk under {base} (have {on_disk})"
                )
            # Pinned by hand: under a specific policy the numbers are meant as written.
            labels = dict(sorted(template.items(), key=lambda item: item[1]))
        else:
            labels = assign_labels(template, kept)
        models.append(ServedModel(model.name, base, tuple(on_disk), tuple(kept), labels))
    return models


def render_config(config: model_server_config_pb2.ModelServerConfig, models: list[ServedModel]) -> str:
    """The text proto of config with each model's labels set to its resolved versions."""
    rendered = model_server_config_pb2.ModelServerConfig()
    rendered.CopyFrom(config)
    by_name = {model.name: model for model in models}
    for model in rendered.model_config_list.config:
        model.version_labels.clear()
        for label, version in by_name[model.name].labels.items():
            model.version_labels[label] = version
    return RENDERED_HEADER + text_format.MessageToString(rendered)


def write_atomically(path: Path, text: str) -> None:
    """Replace path's content in one rename, so a polling server never reads half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(text)
    os.replace(partial, path)
