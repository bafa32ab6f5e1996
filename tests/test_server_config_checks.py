"""A model config is checked as TF Serving's ServerCore checks it, at start-up and on every reload.

TF Serving: tensorflow_serving/model_servers/server_core.cc: ReloadConfig runs
ValidateModelConfigList (names once, absolute base paths: server.cc sets no
model_config_list_root_dir), ValidateNoModelsChangePlatforms and GetPlatform, then
CreateStoragePathRoutes (only the "tensorflow" platform has a route). A refused reload changes
nothing; HandleReloadConfigRequest answers its status.
"""

from __future__ import annotations

import grpc
import numpy as np
import pytest

from client.protos import get_model_status_pb2, model_pb2
from tests.support.embedded_server import embedded_server
from tests.support.grpc_calls import ServingStubs, predict_request, reload_config
from tests.support.models import REFERENCE_INPUT, models_config
from tests.support.ports import free_port
from tests.support.processes import run_module

NEITHER = (
    "Illegal setting neither ModelServerConfig::model_type (deprecated) nor "
    "ModelServerConfig::model_platform, model name is {}"
)


def model(name: str, base_path: str, extra: str = 'model_platform: "tensorflow"') -> str:
    return f'config {{ name: "{name}" base_path: "{base_path}" {extra} }} '


def config_list(*models: str) -> str:
    return "model_config_list { " + "".join(models) + "}"


@pytest.fixture(scope="module")
def served(model_dir):
    """threshold/1 served; the config's base path is the absolute one the server was given."""
    with embedded_server(model_dir) as handle:
        stubs = ServingStubs(handle.address)
        yield stubs, str(model_dir / "threshold")
        stubs.close()


def still_serves(stubs: ServingStubs) -> bool:
    return (
        stubs.prediction.Predict(
            predict_request(np.asarray([REFERENCE_INPUT], np.float32)), timeout=30
        ).model_spec.version.value
        == 1
    )


@pytest.mark.parametrize(
    ("models", "message"),
    [
        (lambda base: [model("other", base, "")], NEITHER.format("other")),
        (
            lambda base: [model("other", base, 'model_type: TENSORFLOW model_platform: "tensorflow"')],
            "Illegal setting both ModelServerConfig::model_type (deprecated) and "
            "ModelServerConfig::model_platform, model name is other",
        ),
        (lambda base: [model("threshold", "models/threshold")], None),
        (lambda base: [model("threshold", "")], None),
        (
            lambda base: [model("threshold", base), model("threshold", base)],
            "Illegal to list model threshold multiple times in config list",
        ),
        (
            lambda base: [model("threshold", base, 'model_platform: "tensorrt"')],
            "Illegal to change a model's platform. For model threshold platform was tensorflow "
            "and new platform requested is tensorrt",
        ),
        (
            lambda base: [model("threshold", base), model("trt", base, 'model_platform: "tensorrt"')],
            "Model trt requests unsupported platform tensorrt",
        ),
    ],
    ids=[
        "no-platform",
        "type-and-platform",
        "relative-path",
        "empty-path",
        "listed-twice",
        "platform-change",
        "unsupported",
    ],
)
def test_a_refused_reload_is_invalid_argument_and_changes_nothing(served, models, message):
    stubs, base = served
    configs = models(base)
    if message is None:  # the base path cases: the path is the one the config gives
        path = configs[0].split('base_path: "')[1].split('"')[0]
        message = f"Expected model threshold to have an absolute path or URI; got base_path()={path}"
    with pytest.raises(grpc.RpcError) as error:
        reload_config(stubs, config_list(*configs))
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.value.details() == message
    assert still_serves(stubs)


def test_a_uri_base_path_counts_as_absolute(served):
    """UriIsRelativePath: scheme://host is absolute; the platform check then refuses this one."""
    stubs, _ = served
    with pytest.raises(grpc.RpcError) as error:
        reload_config(stubs, config_list(model("gcs", "gs://bucket/gcs", 'model_platform: "onnx"')))
    assert error.value.details() == "Model gcs requests unsupported platform onnx"


def test_an_empty_model_config_list_unloads_every_model(served):
    """An empty list passes every check; the source then tears down the models it no longer lists."""
    stubs, base = served
    assert reload_config(stubs, "model_config_list { }").status.error_code == 0
    with pytest.raises(grpc.RpcError) as error:
        still_serves(stubs)
    assert error.value.code() == grpc.StatusCode.NOT_FOUND
    assert reload_config(stubs, config_list(model("threshold", base))).status.error_code == 0
    assert still_serves(stubs)
    request = get_model_status_pb2.GetModelStatusRequest(model_spec=model_pb2.ModelSpec(name="threshold"))
    states = stubs.model.GetModelStatus(request, timeout=10).model_version_status
    assert [s.state for s in states] == [get_model_status_pb2.ModelVersionStatus.AVAILABLE]


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda text: text.replace('model_platform: "tensorflow"\n', ""), NEITHER.format("threshold")),
        (
            lambda text: text.replace('"/models/threshold"', '"models/threshold"'),
            "Expected model threshold to have an absolute path or URI; got base_path()=models/threshold",
        ),
    ],
    ids=["no-platform", "relative-path"],  # unsupported: tests/test_server_cli.py
)
def test_a_first_config_tf_serving_refuses_fails_the_start_in_its_words(tmp_path, model_dir, edit, message):
    config = models_config(tmp_path / "models.config")
    config.write_text(edit(config.read_text()))
    result = run_module(
        "serving.local",
        "--model-config-file",
        config,
        "--models-dir",
        model_dir,
        "--port",
        str(free_port()),
        "--rest-port",
        "0",
        timeout=120,
    )
    assert result.returncode != 0 and "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("serving.local: error: ")]
    assert errors == [f"serving.local: error: {message}"], result.stderr
