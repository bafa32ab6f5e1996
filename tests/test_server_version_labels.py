"""Version labels are checked before a config is taken, as TF Serving's ServerCore does.

TF Serving: tensorflow_serving/model_servers/server_core.cc, ReloadConfig then
UpdateModelVersionLabelMap: a label must name an AVAILABLE version, so a label in the first
config (nothing loaded yet) fails the start, unless --allow_version_labels_for_unavailable_models
(main.cc) lets a new or unchanged label wait for its version; moving a label never does.
"""

from __future__ import annotations

import time

import grpc
import numpy as np
import pytest

from tests.support.embedded_server import embedded_server
from tests.support.grpc_calls import ServingStubs, predict_request, reload_config
from tests.support.models import REFERENCE_INPUT, copy_version, models_config
from tests.support.ports import free_port
from tests.support.processes import cli_env, run_module

UNAVAILABLE = (
    "Request to assign label to version {} of model threshold, which is not currently available for inference"
)


def config_text(labels: dict[str, int]) -> str:
    lines = "".join(f'version_labels {{ key: "{key}" value: {value} }} ' for key, value in labels.items())
    return (
        'model_config_list { config { name: "threshold" base_path: "/models/threshold" '
        f'model_platform: "tensorflow" model_version_policy {{ latest {{ num_versions: 2 }} }} {lines}}} }}'
    )


def served_version(stubs: ServingStubs, label: str) -> int:
    request = predict_request(np.asarray([REFERENCE_INPUT], np.float32), label=label)
    return stubs.prediction.Predict(request, timeout=30).model_spec.version.value


def refused(stubs: ServingStubs, labels: dict[str, int]) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as error:
        reload_config(stubs, config_text(labels))
    return error.value


@pytest.fixture(scope="module")
def one_version(tmp_path_factory, model_dir):
    directory = tmp_path_factory.mktemp("labelled")
    copy_version(model_dir, directory)
    return directory


def test_a_label_in_the_first_config_fails_the_start_without_the_flag(one_version, tmp_path):
    """UpdateModelVersionLabelMap runs before AddModelsViaModelConfigList: nothing is AVAILABLE yet."""
    config = models_config(tmp_path / "models.config", labels={"stable": 1})
    result = run_module(
        "serving.local",
        "--model-config-file",
        config,
        "--models-dir",
        one_version,
        "--port",
        str(free_port()),
        "--rest-port",
        "0",
        timeout=120,
    )
    assert result.returncode != 0 and "Traceback" not in result.stderr
    (line,) = [line for line in result.stderr.splitlines() if line.startswith("serving.local: error: ")]
    assert UNAVAILABLE.format(1) in line
    assert "--allow-version-labels-for-unavailable-models" in line
    assert "loaded threshold" not in result.stdout  # refused before any load


@pytest.fixture(scope="module")
def allowing_server(one_version, tmp_path_factory):
    """Labelled from the start, allowed by the flag's environment twin; config re-read every 0.2 s."""
    config = models_config(tmp_path_factory.mktemp("allowing") / "models.config", labels={"stable": 1})
    env = cli_env(SERVING_LOCAL_ALLOW_VERSION_LABELS_FOR_UNAVAILABLE_MODELS="1")
    with embedded_server(
        None,
        "--model-config-file",
        str(config),
        "--models-dir",
        str(one_version),
        "--model-config-file-poll-wait-seconds",
        "0.2",
        "--file-system-poll-wait-seconds",
        "0.2",
        env=env,
    ) as handle:
        stubs = ServingStubs(handle.address)
        yield handle, stubs, config
        stubs.close()


def test_with_the_flag_a_labelled_first_config_serves(allowing_server):
    assert served_version(allowing_server[1], "stable") == 1


def test_with_the_flag_moving_a_label_to_an_unavailable_version_is_refused(allowing_server):
    """UpdateModelVersionLabelMap: contains_existing_label_with_different_version needs kAvailable."""
    _, stubs, _ = allowing_server
    error = refused(stubs, {"stable": 9})
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error.details() == UNAVAILABLE.format(9)
    assert served_version(stubs, "stable") == 1  # the label map is unchanged


def test_with_the_flag_a_new_label_may_wait_for_its_version(allowing_server):
    """A new label may name a version not loaded; asking for it is NOT_FOUND until it loads.
    Written to the polled file: a gRPC reload would be undone at the next poll (server.cc,
    PollFilesystemAndReloadConfig re-applies the file each time)."""
    handle, stubs, config = allowing_server
    models_config(config, labels={"stable": 1, "next": 7})
    deadline = time.monotonic() + 30
    while True:
        with pytest.raises(grpc.RpcError) as error:
            served_version(stubs, "next")
        if error.value.details() != "Unrecognized servable version label: next":
            break
        assert time.monotonic() < deadline, handle.log()
        time.sleep(0.1)
    assert error.value.code() == grpc.StatusCode.NOT_FOUND
    assert error.value.details() == "Servable not found for request: Specific(threshold, 7)"
    assert served_version(stubs, "stable") == 1


def test_a_refused_config_file_is_retried_until_its_version_is_available(
    allowing_server, one_version, tmp_path
):
    """server.cc PollFilesystemAndReloadConfig reloads the file at every poll: once version 2 is
    AVAILABLE, the label moved to it takes effect."""
    handle, stubs, config = allowing_server
    models_config(config, labels={"stable": 2})
    deadline = time.monotonic() + 30
    while UNAVAILABLE.format(2) not in handle.log():
        assert time.monotonic() < deadline, handle.log()
        time.sleep(0.1)
    assert served_version(stubs, "stable") == 1
    staged = copy_version(one_version, tmp_path, 1, as_version=2)
    staged.rename(one_version / "threshold" / "2")  # whole, as an export appears
    deadline = time.monotonic() + 60
    while served_version(stubs, "stable") != 2:
        assert time.monotonic() < deadline, handle.log()
        time.sleep(0.2)


@pytest.fixture(scope="module")
def strict_server(model_dir):
    """Started without labels and without the flag."""
    with embedded_server(model_dir) as handle:
        stubs = ServingStubs(handle.address)
        yield stubs
        stubs.close()


def test_without_the_flag_a_reload_labelling_an_unavailable_version_is_refused_whole(strict_server):
    """The reload is refused before any model or label changes (ReloadConfig returns early)."""
    error = refused(strict_server, {"stable": 1, "later": 5})
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error.details() == UNAVAILABLE.format(5)
    with pytest.raises(grpc.RpcError) as unknown:
        served_version(strict_server, "stable")
    assert unknown.value.details() == "Unrecognized servable version label: stable"


def test_without_the_flag_a_reload_labelling_an_available_version_is_taken(strict_server, model_dir):
    text = config_text({"stable": 1}).replace("/models/threshold", str(model_dir / "threshold"))
    assert reload_config(strict_server, text).status.error_code == 0
    assert served_version(strict_server, "stable") == 1


def test_the_checkouts_own_config_runs_as_make_serve_runs_it(model_dir, tmp_path):
    """With no model named, serving.local reads serving/models.config (labels stable -> 1,
    canary -> 2) as make serve serves it, with --allow-version-labels-for-unavailable-models:
    the same command works from the checkout with the launcher or without it."""
    copy_version(model_dir, tmp_path)
    copy_version(model_dir, tmp_path, as_version=2)
    with embedded_server(None, "--models-dir", str(tmp_path)) as handle:
        stubs = ServingStubs(handle.address)
        try:
            deadline = time.monotonic() + 120
            while True:  # version 2 may still be loading when version 1 is AVAILABLE
                try:
                    canary = served_version(stubs, "canary")
                    break
                except grpc.RpcError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.2)
            assert (served_version(stubs, "stable"), canary) == (1, 2)
        finally:
            stubs.close()
