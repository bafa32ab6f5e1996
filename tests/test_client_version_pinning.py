"""The client pins the version that answered its metadata: a hot swap mid-run cannot mix two models.

Real processes: the embedded server polls its base path; the run pauses (in its progress
callback, after the first batch) until the server has loaded a new version with other bounds.
While the pinned version is loaded every answer comes from it. If it is unloaded, a run that
asked for the latest goes on with the new version, each answer checked against its own
version's bounds (README, "Hot reloads"); a run that asked for the version by number fails.
"""

from __future__ import annotations

import time

import grpc
import numpy as np
import pytest

from client import ModelNotFound, ThresholdClient
from client.checker import expected_mask
from client.protos import get_model_status_pb2, model_pb2, model_service_pb2_grpc
from tests.support.embedded_server import embedded_server
from tests.support.models import copy_version, export_version, models_config
from tests.support.processes import run_module


def states(address: str) -> dict[int, int]:
    request = get_model_status_pb2.GetModelStatusRequest(model_spec=model_pb2.ModelSpec(name="threshold"))
    with grpc.insecure_channel(address) as channel:
        response = model_service_pb2_grpc.ModelServiceStub(channel).GetModelStatus(request, timeout=10)
    return {status.version: status.state for status in response.model_version_status}


def wait_for(address: str, condition, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition(states(address)):
        assert time.monotonic() < deadline, f"server states stayed {states(address)}"
        time.sleep(0.2)


AVAILABLE = get_model_status_pb2.ModelVersionStatus.AVAILABLE
END = get_model_status_pb2.ModelVersionStatus.END


@pytest.fixture(scope="module")
def wide_bounds_version(tmp_path_factory):
    """threshold/1 exported with bounds -0.5, 0.5: a second model, different answers."""
    directory = tmp_path_factory.mktemp("wide")
    export_version(directory, "--low", "-0.5", "--high", "0.5", "--no-tflite")
    return directory


def hot_swap_run(model_dir, wide_bounds_version, tmp_path, num_versions: int, version: int | None = None):
    """Serve version 1, start a run, load version 2 (other bounds) after its first batch; finish it."""
    models = tmp_path / "models"
    copy_version(model_dir, models, 1)
    config = models_config(
        tmp_path / "models.config", num_versions=num_versions, base_path=str(models / "threshold")
    )
    x = np.random.default_rng(5).uniform(-1, 1, (60, 16)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    with embedded_server(
        None,
        "--model-config-file",
        str(config),
        "--file-system-poll-wait-seconds",
        "0.2",
        "--model-config-file-poll-wait-seconds",
        "0",
    ) as handle:
        swapped = []

        def swap_after_the_first_batch(values: int) -> None:
            if swapped:
                return
            swapped.append(True)
            copy_version(wide_bounds_version, models, 1, as_version=2)
            if num_versions == 2:
                wait_for(handle.address, lambda s: s.get(2) == AVAILABLE)
            else:
                wait_for(handle.address, lambda s: s.get(2) == AVAILABLE and s.get(1) == END)

        with ThresholdClient(handle.address, version=version) as client:
            try:
                return (
                    x,
                    client.predict_file(
                        tmp_path / "x.npy",
                        output=tmp_path / "mask.npy",
                        batch_size=10,
                        concurrency=1,
                        progress=swap_after_the_first_batch,
                    ),
                    None,
                )
            except ModelNotFound as error:
                return x, None, error
            finally:
                assert swapped, "the run should have paused for the swap"
                with ThresholdClient(handle.address) as fresh:
                    assert fresh.model_info().version == 2 and fresh.bounds() == (-0.5, 0.5)


def test_a_run_keeps_the_version_it_started_with_across_a_hot_swap(model_dir, wide_bounds_version, tmp_path):
    x, summary, error = hot_swap_run(model_dir, wide_bounds_version, tmp_path, num_versions=2)
    assert error is None and summary.check.ok, summary.check.summary()
    assert summary.version == 1 and np.float32(summary.low) == np.float32(-0.1)
    # Version 2's bounds would answer 0 for every x in [-0.5, 0.5]: the answers are version 1's.
    assert np.array_equal(np.load(tmp_path / "mask.npy"), expected_mask(x, -0.1, 0.1).astype(np.float32))


def test_a_run_whose_version_is_unloaded_goes_on_with_the_new_one_checked_by_its_bounds(
    model_dir, wide_bounds_version, tmp_path
):
    x, summary, error = hot_swap_run(model_dir, wide_bounds_version, tmp_path, num_versions=1)
    assert error is None and summary.check.ok, summary.check.summary()
    assert summary.version_note.startswith(
        "version 1 was unloaded mid-run (hot reload); the run went on with version 2"
    )
    assert [(v["version"], v["rows"]) for v in summary.versions] == [(1, "0-9"), (2, "10-59")]
    expected = np.concatenate([expected_mask(x[:10], -0.1, 0.1), expected_mask(x[10:], -0.5, 0.5)])
    assert np.array_equal(np.load(tmp_path / "mask.npy"), expected.astype(np.float32))


def test_a_version_asked_for_by_number_is_never_replaced(model_dir, wide_bounds_version, tmp_path):
    _, summary, error = hot_swap_run(model_dir, wide_bounds_version, tmp_path, num_versions=1, version=1)
    assert summary is None and error is not None
    # TF Serving's words for a pinned version that is gone (servable_manager / predict_util).
    assert "not found" in str(error) and "Specific(threshold, 1)" in str(error)
    assert not (tmp_path / "mask.npy").exists()


class IgnoresThePin:
    """A server that answers metadata as version 1 but Predicts as version 2 (ignoring the pin)."""

    @staticmethod
    def start(fake_server):
        server = fake_server()
        original = server._predict

        def predict(request, context):
            response = original(request, context)
            if request.model_spec.signature_name != "bounds":
                response.model_spec.version.value = 2
            return response

        server._predict = predict
        return server


def test_an_answer_from_another_version_fails_the_check_with_exit_10(fake_server, tmp_path):
    server = IgnoresThePin.start(fake_server)
    np.save(tmp_path / "x.npy", np.zeros((4, 8), np.float32))
    result = run_module(
        "client.predict",
        tmp_path / "x.npy",
        "--server",
        server.address,
        "-o",
        tmp_path / "mask.npy",
        timeout=60,
    )
    assert result.returncode == 10, result.stderr
    assert "answered by version 2, but the bounds are version 1's" in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "mask.npy").exists()
