"""--model-config-file is polled as TF Serving polls it: not at all by default, and when polled,
re-read and re-applied at every poll.

TF Serving: tensorflow_serving/model_servers/server.h (fs_model_config_poll_wait_seconds = 0) and
main.cc ("If unset or set to zero, poll will be done exactly once and not periodically");
server.cc BuildAndStart starts the polling thread only for a wait > 0, and
PollFilesystemAndReloadConfig parses the file and calls ServerCore::ReloadConfig each time, whose
is_same_config only lets a config through, never skips it (server_core.cc). So the file's config
replaces one sent by HandleReloadConfigRequest at the next poll.
"""

from __future__ import annotations

import time

import grpc
import numpy as np
import pytest

from tests.support.embedded_server import embedded_server
from tests.support.grpc_calls import ServingStubs, predict_request, reload_config
from tests.support.models import REFERENCE_INPUT, copy_version, models_config

UNKNOWN_LABEL = "Unrecognized servable version label: {}"


def label_answer(stubs: ServingStubs, label: str | None) -> int | str:
    """The version the label (None: the latest) serves, or the error's details."""
    request = predict_request(np.asarray([REFERENCE_INPUT], np.float32), label=label)
    try:
        return stubs.prediction.Predict(request, timeout=30).model_spec.version.value
    except grpc.RpcError as exc:
        return exc.details()


def wait_until(condition, handle, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"{what} did not happen within {timeout:.0f}s:\n{handle.log()}")
        time.sleep(0.1)


def config_text(base_path: str, labels: dict[str, int]) -> str:
    entries = "".join(f'version_labels {{ key: "{key}" value: {value} }} ' for key, value in labels.items())
    return (
        f'model_config_list {{ config {{ name: "threshold" base_path: "{base_path}" '
        f'model_platform: "tensorflow" model_version_policy {{ latest {{ num_versions: 2 }} }} {entries}}} }}'
    )


def test_without_the_flag_the_config_file_is_read_once(model_dir, tmp_path):
    """fs_model_config_poll_wait_seconds defaults to 0: no polling thread, so a label added to the
    file while serving is never taken, though the version poll has run since (it loaded 2)."""
    copy_version(model_dir, tmp_path)
    config = models_config(tmp_path / "models.config", labels={"stable": 1})
    with embedded_server(
        None,
        "--model-config-file",
        str(config),
        "--models-dir",
        str(tmp_path),
        "--file-system-poll-wait-seconds",
        "0.1",
        "--allow-version-labels-for-unavailable-models",
    ) as handle:
        stubs = ServingStubs(handle.address)
        try:
            assert label_answer(stubs, "stable") == 1
            models_config(config, labels={"stable": 1, "canary": 1})
            copy_version(model_dir, tmp_path / "staging", as_version=2).rename(tmp_path / "threshold" / "2")
            wait_until(lambda: label_answer(stubs, None) == 2, handle, "version 2 to load")
            assert label_answer(stubs, "canary") == UNKNOWN_LABEL.format("canary")
        finally:
            stubs.close()


def test_a_polled_config_file_undoes_a_grpc_reload_at_the_next_poll(model_dir, tmp_path):
    """PollFilesystemAndReloadConfig re-applies the unchanged file: the label a gRPC reload added
    is gone again."""
    copy_version(model_dir, tmp_path)
    base_path = str(tmp_path / "threshold")
    config = tmp_path / "models.config"
    config.write_text(config_text(base_path, {"stable": 1}))
    with embedded_server(
        None,
        "--model-config-file",
        str(config),
        "--model-config-file-poll-wait-seconds",
        "0.2",
        "--allow-version-labels-for-unavailable-models",
    ) as handle:
        stubs = ServingStubs(handle.address)
        try:
            assert (
                reload_config(stubs, config_text(base_path, {"stable": 1, "canary": 1})).status.error_code
                == 0
            )
            wait_until(
                lambda: label_answer(stubs, "canary") == UNKNOWN_LABEL.format("canary"),
                handle,
                "the file's config to replace the reloaded one",
            )
            assert label_answer(stubs, "stable") == 1
        finally:
            stubs.close()
