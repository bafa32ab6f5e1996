"""Which configs the server takes, as TF Serving's ServerCore::ReloadConfig decides (server_core.cc).

Every config passes the same checks in TF Serving's order, before anything loads: the first one
at start-up, a HandleReloadConfigRequest, a changed --model-config-file. A refused config changes
no model and no label, and says why in TF Serving's words and status code.
"""

from __future__ import annotations

import re
import threading
from pathlib import Path

import grpc
from tensorflow_serving.config import model_server_config_pb2

from serving.local.config import TENSORFLOW_PLATFORM, model_sources_from_config
from serving.local.errors import ConfigRefused, LabelOnUnavailableVersion
from serving.local.repository import ModelRepository

ModelConfig = model_server_config_pb2.ModelConfig
ModelServerConfig = model_server_config_pb2.ModelServerConfig
# tsl::io::ParseURI: a scheme is a letter, then letters, digits or dots, then "://".
_URI_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9.]*://")


def model_platform(model: ModelConfig) -> str:
    """GetPlatform: model_platform, or the deprecated model_type's; ConfigRefused if neither or both."""
    if model.model_type != model_server_config_pb2.MODEL_TYPE_UNSPECIFIED:
        if model.model_platform:
            raise ConfigRefused(
                "Illegal setting both ModelServerConfig::model_type (deprecated) and "
                f"ModelServerConfig::model_platform, model name is {model.name}"
            )
        if model.model_type != model_server_config_pb2.TENSORFLOW:
            raise ConfigRefused(f"ModelServerConfig::model_type choice {model.model_type} not supported.")
        return TENSORFLOW_PLATFORM
    if not model.model_platform:
        raise ConfigRefused(
            "Illegal setting neither ModelServerConfig::model_type (deprecated) nor "
            f"ModelServerConfig::model_platform, model name is {model.name}"
        )
    return model.model_platform


def uri_is_relative_path(uri: str) -> bool:
    """UriIsRelativePath: no scheme://host and no leading slash ("" included)."""
    return _URI_SCHEME.match(uri) is None and not uri.startswith("/")


def validate_model_config_list(config_list: model_server_config_pb2.ModelConfigList) -> None:
    """ValidateModelConfigList: each name once, every base path absolute (server.cc sets no
    model_config_list_root_dir)."""
    names: set[str] = set()
    for model in config_list.config:
        if model.name in names:
            raise ConfigRefused(f"Illegal to list model {model.name} multiple times in config list")
        names.add(model.name)
    for model in config_list.config:
        if uri_is_relative_path(model.base_path):
            raise ConfigRefused(
                f"Expected model {model.name} to have an absolute path or URI; "
                f"got base_path()={model.base_path}"
            )


def validate_no_models_change_platforms(
    old_list: model_server_config_pb2.ModelConfigList, new_list: model_server_config_pb2.ModelConfigList
) -> None:
    """ValidateNoModelsChangePlatforms: a model listed in both keeps its platform."""
    old_platforms = {model.name: model_platform(model) for model in old_list.config}
    for model in new_list.config:
        if model.name not in old_platforms:
            continue
        old, new = old_platforms[model.name], model_platform(model)
        if new != old:
            raise ConfigRefused(
                f"Illegal to change a model's platform. For model {model.name} platform was {old} "
                f"and new platform requested is {new}"
            )


class ServerCore:
    """The config the server runs, and ReloadConfig: check a new one, then hand it to the repository."""

    def __init__(
        self,
        repository: ModelRepository,
        models_dir: Path,
        allow_version_labels_for_unavailable_models: bool = False,
    ):
        self._repository = repository
        self._models_dir = models_dir
        self._allow_unavailable_labels = allow_version_labels_for_unavailable_models
        self._config = ModelServerConfig()  # config_: CONFIG_NOT_SET until the first one
        self._lock = threading.Lock()  # config_mu_: one reload at a time

    @property
    def config(self) -> ModelServerConfig:
        """A copy of the config in force (CONFIG_NOT_SET before the first)."""
        with self._lock:
            config = ModelServerConfig()
            config.CopyFrom(self._config)
            return config

    def reload_config(self, new_config: ModelServerConfig) -> None:
        """Check new_config as ReloadConfig does and apply it (its versions load at the next refresh).

        Raises:
            ConfigRefused: TF Serving's code and words; the models and labels are unchanged.
        """
        with self._lock:
            old_kind = self._config.WhichOneof("config")
            new_kind = new_config.WhichOneof("config")
            if not (
                old_kind is None or self._config == new_config or old_kind == new_kind == "model_config_list"
            ):
                raise ConfigRefused(
                    "Cannot transition to requested config. It is only legal to transition "
                    "from one ModelConfigList to another.",
                    grpc.StatusCode.FAILED_PRECONDITION,
                )
            if new_kind is None:
                return  # "Taking no action for empty config": a later config may still come
            if new_kind != "model_config_list":  # server.cc's LoadCustomModelConfig
                raise ConfigRefused("ModelServer does not yet support custom model config.")
            validate_model_config_list(new_config.model_config_list)
            if old_kind == "model_config_list":
                validate_no_models_change_platforms(
                    self._config.model_config_list, new_config.model_config_list
                )
            self._check_labels(new_config.model_config_list)
            for model in new_config.model_config_list.config:  # CreateStoragePathRoutes
                platform = model_platform(model)
                if platform != TENSORFLOW_PLATFORM:
                    raise ConfigRefused(f"Model {model.name} requests unsupported platform {platform}")
            # server_core.cc takes the config as config_ before the label and route checks, so a
            # config refused by those still becomes the base of the next platform comparison (and
            # after a new model without a platform, every later reload fails). Here a refused
            # config changes nothing.
            self._config = ModelServerConfig()
            self._config.CopyFrom(new_config)
            self._repository.replace_sources(model_sources_from_config(new_config, self._models_dir))

    def _check_labels(self, config_list: model_server_config_pb2.ModelConfigList) -> None:
        """UpdateModelVersionLabelMap: a label must name an AVAILABLE version; with
        --allow_version_labels_for_unavailable_models, any version unless the label exists and
        points elsewhere (moving a label still needs the new version loaded)."""
        for model in config_list.config:
            available = set(self._repository.available_versions(model.name))
            for label, version in model.version_labels.items():
                current = self._repository.label_version(model.name, label)
                allowed = self._allow_unavailable_labels and current in (None, version)
                if not allowed and version not in available:
                    raise LabelOnUnavailableVersion(
                        f"Request to assign label to version {version} of model {model.name}, "
                        "which is not currently available for inference"
                    )
