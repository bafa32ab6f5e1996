"""`make serve SERVER=local` starts the embedded server, a real gRPC status call sees the model
AVAILABLE, and `make stop` leaves nothing running."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
from pathlib import Path

import grpc
import pytest

from client.protos import get_model_status_pb2, model_service_pb2_grpc
from tests.support.ports import free_port
from tests.support.processes import PYTHON, REPO, cli_env
from tests.test_serve_docker import SERVE_ENV


def _make(target: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    # -o: never re-bootstrap .venv from a test; PY: the interpreter running the tests.
    return subprocess.run(
        [
            "make",
            "--no-print-directory",
            "-C",
            str(REPO),
            "-o",
            ".venv/.installed-stamp",
            f"PY={PYTHON}",
            target,
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )


def _pid_alive(pid: int) -> bool:
    """pid runs (a zombie waiting for its reaper counts as ended)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_serve_local_answers_status_over_grpc_and_make_stop_ends_it(model_dir, tmp_path):
    grpc_port, rest_port = free_port(), free_port()
    env = {key: value for key, value in cli_env().items() if key not in SERVE_ENV}
    env.update(
        SERVER="local",
        MODEL_DIR=str(model_dir),
        SERVE_STATE_DIR=str(tmp_path / "state"),
        GRPC_PORT=str(grpc_port),
        REST_PORT=str(rest_port),
        SERVE_TIMEOUT="120",
    )
    served = _make("serve", env)
    state_file = tmp_path / "state" / "server.json"
    pid = json.loads(state_file.read_text())["pid"] if state_file.exists() else None
    try:
        assert served.returncode == 0, served.stdout + served.stderr
        assert "serve: embedded server (python -m serving.local): SERVER=local" in served.stdout
        assert f"gRPC     127.0.0.1:{grpc_port}" in served.stdout

        request = get_model_status_pb2.GetModelStatusRequest()
        request.model_spec.name = "threshold"
        with grpc.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
            response = model_service_pb2_grpc.ModelServiceStub(channel).GetModelStatus(request, timeout=10)
        states = {status.version: status.state for status in response.model_version_status}
        assert states == {1: get_model_status_pb2.ModelVersionStatus.AVAILABLE}

        status = _make("status", env)  # what runs, its endpoints, versions and labels, asked live
        assert status.returncode == 0, status.stdout + status.stderr
        lines = status.stdout.splitlines()  # after make's echo of the command
        assert lines[next(i for i, line in enumerate(lines) if line.startswith("status:")) :][:3] == [
            f"status: running: embedded server (python -m serving.local), pid {pid}, "
            f"log {tmp_path / 'state' / 'local-server.log'}",
            f"  gRPC     127.0.0.1:{grpc_port}",
            f"  REST     http://127.0.0.1:{rest_port}/v1/models/<name>",
        ]
        assert "  model    threshold: version 1 AVAILABLE; labels canary=1, stable=1" in status.stdout
        logs = _make("logs", {**env, "LOG_LINES": "200"})  # the embedded server's log file
        assert logs.returncode == 0 and "serving.local: listening on grpc" in logs.stdout
    finally:
        stopped = _make("stop", env)
    assert stopped.returncode == 0 and "stop: stopped embedded server" in stopped.stdout, stopped.stderr
    assert pid is not None and not _pid_alive(pid)
    assert not _listening(grpc_port) and not _listening(rest_port)
    assert not state_file.exists()
    assert "nothing to stop" in _make("stop", env).stdout
