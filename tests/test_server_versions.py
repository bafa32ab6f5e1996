"""Versions and labels from a ModelServerConfig: ModelSpec.version / version_label pick the servable."""

from __future__ import annotations

import time

import grpc
import numpy as np
import pytest

from client.protos import get_model_status_pb2, model_pb2
from tests.support.embedded_server import embedded_server
from tests.support.grpc_calls import ServingStubs, predict_request, tensor_array
from tests.support.models import copy_version, export_version, models_config

AVAILABLE = get_model_status_pb2.ModelVersionStatus.AVAILABLE
LABELS = {"stable": 1, "canary": 2, "future": 9}


@pytest.fixture(scope="module")
def two_versions(tmp_path_factory, model_dir):
    """threshold/1 (bounds ±0.1) and threshold/2 (bounds ±0.5) served with labels, via /models/ paths.

    Labels in the first config need --allow-version-labels-for-unavailable-models, as in TF Serving
    (server_core.cc, UpdateModelVersionLabelMap: nothing is loaded when they are checked)."""
    directory = tmp_path_factory.mktemp("two-versions")
    copy_version(model_dir, directory)
    export_version(directory, "--low", "-0.5", "--high", "0.5", "--no-tflite")
    config = models_config(directory / "models.config", labels=LABELS)
    with embedded_server(
        None,
        "--model-config-file",
        str(config),
        "--models-dir",
        str(directory),
        "--model-config-file-poll-wait-seconds",
        "0.2",
        "--allow-version-labels-for-unavailable-models",  # "future" names a version not on disk
    ) as handle:
        stubs = ServingStubs(handle.address)
        yield handle, stubs, config
        stubs.close()


def low_bound(stubs, **spec) -> tuple[int, float]:
    response = stubs.prediction.Predict(
        predict_request(np.zeros((1, 1), np.float32), signature="bounds", **spec), timeout=30
    )
    return response.model_spec.version.value, round(float(tensor_array(response.outputs["low"])[0]), 3)


def test_both_versions_are_available(two_versions):
    _, stubs, _ = two_versions
    status = stubs.model.GetModelStatus(
        get_model_status_pb2.GetModelStatusRequest(model_spec=model_pb2.ModelSpec(name="threshold")),
        timeout=10,
    )
    assert [(v.version, v.state) for v in status.model_version_status] == [(2, AVAILABLE), (1, AVAILABLE)]


def test_no_version_means_the_latest(two_versions):
    assert low_bound(two_versions[1]) == (2, -0.5)


def test_explicit_versions_are_served(two_versions):
    assert low_bound(two_versions[1], version=1) == (1, -0.1)
    assert low_bound(two_versions[1], version=2) == (2, -0.5)


def test_labels_pick_their_versions(two_versions):
    assert low_bound(two_versions[1], label="stable") == (1, -0.1)
    assert low_bound(two_versions[1], label="canary") == (2, -0.5)


def test_label_of_a_version_not_loaded_is_not_found(two_versions):
    with pytest.raises(grpc.RpcError) as error:
        low_bound(two_versions[1], label="future")
    assert error.value.code() == grpc.StatusCode.NOT_FOUND
    assert error.value.details() == "Servable not found for request: Specific(threshold, 9)"


def test_moved_label_takes_effect_without_restart(two_versions):
    handle, stubs, config = two_versions
    models_config(config, labels={**LABELS, "stable": 2})
    deadline = time.monotonic() + 20
    while low_bound(stubs, label="stable")[0] != 2:
        assert time.monotonic() < deadline, handle.log()
        time.sleep(0.1)
    assert "re-read" in handle.log()
    models_config(config, labels=LABELS)
