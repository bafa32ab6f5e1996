"""New versions load while clients keep calling, the policy's dropped version unloads, nothing fails."""

from __future__ import annotations

import threading
import time

import grpc
import numpy as np
import pytest

from client.protos import get_model_status_pb2, model_pb2
from tests.support.embedded_server import embedded_server
from tests.support.grpc_calls import ServingStubs, predict_request, tensor_array
from tests.support.models import copy_version, export_version, models_config

State = get_model_status_pb2.ModelVersionStatus
X = np.asarray([[0.2, 0.4, 0.6, -0.2, -0.4, -0.6]], np.float32)
BOUNDS = {1: 0.1, 2: 0.5, 3: 0.3}  # version -> high (low is -high)


def expected_mask(version: int) -> list[list[float]]:
    return (np.abs(X) > np.float32(BOUNDS[version])).astype(np.float32).tolist()


def states(stubs) -> dict[int, int]:
    status = stubs.model.GetModelStatus(
        get_model_status_pb2.GetModelStatusRequest(model_spec=model_pb2.ModelSpec(name="threshold")),
        timeout=10,
    )
    return {v.version: v.state for v in status.model_version_status}


def wait_for(condition, handle, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}:\n{handle.log()}"
        time.sleep(0.1)


class LoopingClient(threading.Thread):
    """Predicts (latest version) in a loop; records (version, correct) and every error."""

    def __init__(self, address: str):
        super().__init__(daemon=True)
        self.stubs = ServingStubs(address)
        self.stop = threading.Event()
        self.answers: list[tuple[int, bool]] = []
        self.errors: list[str] = []

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                response = self.stubs.prediction.Predict(predict_request(X), timeout=30)
                version = response.model_spec.version.value
                self.answers.append(
                    (version, tensor_array(response.outputs["mask"]).tolist() == expected_mask(version))
                )
            except grpc.RpcError as exc:
                self.errors.append(f"{exc.code()}: {exc.details()}")
        self.stubs.close()


@pytest.fixture
def rolling(tmp_path, model_dir):
    copy_version(model_dir, tmp_path)
    (tmp_path / "threshold" / ".partial-9-123").mkdir()  # an export in progress: must be ignored
    config = models_config(tmp_path / "models.config", num_versions=2)
    with embedded_server(
        None,
        "--model-config-file",
        str(config),
        "--models-dir",
        str(tmp_path),
        "--file-system-poll-wait-seconds",
        "0.2",
    ) as handle:
        yield handle, tmp_path


def test_new_versions_load_without_failing_requests(rolling):
    handle, directory = rolling
    client = LoopingClient(handle.address)
    stubs = ServingStubs(handle.address)
    client.start()
    try:
        for version in (2, 3):
            export_version(
                directory, "--low", str(-BOUNDS[version]), "--high", str(BOUNDS[version]), "--no-tflite"
            )
            wait_for(lambda v=version: states(stubs).get(v) == State.AVAILABLE, handle, f"version {version}")
            count = len(client.answers)
            wait_for(lambda c=count: len(client.answers) > c + 20, handle, "answers after the roll")
    finally:
        client.stop.set()
        client.join(timeout=30)
    assert client.errors == []
    assert all(correct for _, correct in client.answers), "a reply did not match its version's bounds"
    served = [version for version, _ in client.answers]
    assert served == sorted(served), "the latest version went backwards"
    assert {1, 2, 3} <= set(served)

    # latest { num_versions: 2 }: version 1 was unloaded once 3 arrived; 2 and 3 stay.
    wait_for(
        lambda: states(stubs) == {1: State.END, 2: State.AVAILABLE, 3: State.AVAILABLE},
        handle,
        "version 1 to unload",
    )
    with pytest.raises(grpc.RpcError) as error:
        stubs.prediction.Predict(predict_request(X, version=1), timeout=30)
    assert error.value.code() == grpc.StatusCode.NOT_FOUND
    log = handle.log()
    for line in ("loaded threshold version 2", "loaded threshold version 3", "unloaded threshold version 1"):
        assert f"serving.local: {line}\n" in log
    assert "version 9" not in log and "failed" not in log
    stubs.close()
