"""`python -m serving.launch serve|stop` against a fake docker / nvidia-smi on PATH.

No Docker engine or GPU exists on the test machines, so tests/fake_host/docker records every
call and plays the host: engine up or down, nvidia runtime or not, a container that exits at
once, or one whose "TF Serving" (the fake TF Serving, bench/fake_tf_serving.py) answers
GetModelStatus over real loopback gRPC on the published port.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import signal
import socket
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

import pytest

from client.errors import SERVER_NOT_STARTED
from tests.support.ports import free_port
from tests.support.processes import PYTHON, REPO, cli_env, run_module

FAKES = REPO / "tests" / "fake_host"
TFS_VERSION = version("tensorflow-serving-api")
NVIDIA_RUNTIMES = '{"nvidia":{"path":"nvidia-container-runtime"},"runc":{"path":"runc"}}'
# Settings the developer's shell may carry; each test states its own.
SERVE_ENV = (
    "SERVER",
    "DRY_RUN",
    "TFS_IMAGE",
    "BIND_HOST",
    "GRPC_PORT",
    "REST_PORT",
    "MODEL_DIR",
    "SERVE_STATE_DIR",
    "TFS_CONTAINER_NAME",
    "CONTAINER_NAME",
    "GPU_MEMORY_FRACTION",
    "GPU_ALLOW_GROWTH",
    "BATCHING",
    "TF_INTRA_OP_PARALLELISM",
    "TF_INTER_OP_PARALLELISM",
    "SERVE_TIMEOUT",
)


@dataclass
class FakeHost:
    """A PATH with fake tools, the fake docker's call log, and the settings make serve gets."""

    env: dict[str, str]
    log: Path
    containers: Path
    models_dir: Path
    state_dir: Path
    grpc_port: int
    rest_port: int

    def serve(self, *args: str, **env: str):
        return run_module("serving.launch", "serve", *args, env={**self.env, **env}, timeout=120)

    def stop(self):
        return run_module("serving.launch", "stop", env=self.env, timeout=60)

    def docker_calls(self) -> list[list[str]]:
        if not self.log.exists():
            return []
        return [record.splitlines() for record in self.log.read_text().split("\x1e\n") if record]

    def docker_runs(self) -> list[list[str]]:
        return [call for call in self.docker_calls() if call[1] == "run"]

    def expected_run(self, image: str, gpu: bool) -> list[str]:
        gpu_flags = ["--gpus", "all", "--env", "TF_FORCE_GPU_ALLOW_GROWTH=true"] if gpu else []
        return [
            "docker",
            "run",
            "--detach",
            "--name",
            "threshold-serving",
            "--user",
            f"{os.getuid()}:{os.getgid()}",
            "--init",
            "--read-only",
            "--tmpfs",
            "/tmp",
            "--publish",
            f"127.0.0.1:{self.grpc_port}:8500",
            "--publish",
            f"127.0.0.1:{self.rest_port}:8501",
            "--mount",
            f"type=bind,source={self.models_dir.resolve()},target=/models,readonly",
            "--mount",
            f"type=bind,source={(self.state_dir / 'config').resolve()},target=/config,readonly",
            *gpu_flags,
            "--entrypoint",
            "tensorflow_model_server",
            image,
            "--port=8500",
            "--rest_api_port=8501",
            "--model_config_file=/config/models.config",
            "--model_config_file_poll_wait_seconds=10",
            "--file_system_poll_wait_seconds=5",
            "--allow_version_labels_for_unavailable_models=true",
            "--monitoring_config_file=/config/monitoring.config",
            "--enable_grpc_healthcheck_service=true",
            "--enable_model_warmup=true",
            "--enable_serialization_as_tensor_content=true",
            "--enable_batching=true",
            "--batching_parameters_file=/config/batching.config",
            *(["--per_process_gpu_memory_fraction=0.25"] if gpu else []),
        ]


def make_fake_host(
    tmp_path: Path,
    *,
    docker: bool = True,
    gpu: bool = False,
    nvidia_runtime: bool = False,
    engine: str = "up",
    models_dir: Path | None = None,
) -> FakeHost:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool, wanted in (("docker", docker), ("nvidia-smi", gpu)):
        if wanted:
            shutil.copy(FAKES / tool, bin_dir / tool)
            (bin_dir / tool).chmod(0o755)
    containers = tmp_path / "containers"
    containers.mkdir()
    if models_dir is None:
        models_dir = tmp_path / "models"
        (models_dir / "threshold" / "1").mkdir(parents=True)  # enough for what these tests read
    grpc_port, rest_port = free_port(), free_port()
    env = {key: value for key, value in cli_env().items() if key not in SERVE_ENV}
    env.update(
        # No /usr/local/bin: a real docker client there must never be found.
        PATH=f"{bin_dir}:/usr/bin:/bin",
        FAKE_DOCKER_LOG=str(tmp_path / "docker-calls.log"),
        FAKE_DOCKER_DIR=str(containers),
        FAKE_DOCKER_ENGINE=engine,
        FAKE_MODEL_SERVICE=f"{PYTHON} -m bench.fake_tf_serving",
        FAKE_MODEL_DIR=str(models_dir),
        MODEL_DIR=str(models_dir),
        SERVE_STATE_DIR=str(tmp_path / "state"),
        GRPC_PORT=str(grpc_port),
        REST_PORT=str(rest_port),
        SERVE_TIMEOUT="60",
    )
    if nvidia_runtime:
        env["FAKE_DOCKER_RUNTIMES"] = NVIDIA_RUNTIMES
    assert shutil.which("docker", path=env["PATH"]) in (None, str(bin_dir / "docker"))
    return FakeHost(
        env, tmp_path / "docker-calls.log", containers, models_dir, tmp_path / "state", grpc_port, rest_port
    )


@pytest.fixture
def no_leftover_containers(tmp_path):
    """Kill any fake container process a failed test left behind."""
    yield
    for record in (tmp_path / "containers").glob("*"):
        fields = record.read_text().split() if record.suffix != ".out" else []
        if len(fields) == 2 and fields[0] == "running":
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(fields[1]), signal.SIGTERM)


def _dry_run_command(result) -> list[str]:
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    return shlex.split(lines[lines.index("serve: dry run, the command would be:") + 1])


def test_gpu_host_serves_the_pinned_gpu_image_until_stopped(tmp_path, no_leftover_containers):
    host = make_fake_host(tmp_path, gpu=True, nvidia_runtime=True, models_dir=tmp_path / "fresh-clone-models")

    dry = host.serve(DRY_RUN="1")
    served = host.serve()

    assert served.returncode == 0, served.stderr + served.stdout
    image = f"tensorflow/serving:{TFS_VERSION}-gpu"
    assert [run[0:] for run in host.docker_runs()] == [host.expected_run(image, gpu=True)]
    assert _dry_run_command(dry) == host.expected_run(image, gpu=True)  # DRY_RUN prints what runs
    assert "exporting one first" in served.stdout  # a fresh clone has no model yet
    assert (host.models_dir / "threshold" / "1" / "saved_model.pb").is_file()
    assert (
        "serve: TF Serving GPU image in Docker: Docker engine answers and GPU 0: NVIDIA H100 80GB HBM3 "
        "is usable from containers" in served.stdout
    )
    assert "threshold AVAILABLE (versions 1; labels stable=1, canary=1)" in served.stdout
    assert f"gRPC     127.0.0.1:{host.grpc_port}" in served.stdout
    assert f"http://127.0.0.1:{host.rest_port}/monitoring/prometheus/metrics" in served.stdout
    rendered = (host.state_dir / "config" / "models.config").read_text()
    assert 'key: "canary"\n      value: 1' in rendered

    (host.models_dir / "threshold" / "2").mkdir()  # `make export` while serving
    again = host.serve()  # already running: waits for version 2, then moves the labels
    assert again.returncode == 0, again.stderr
    assert "already running" in again.stdout and len(host.docker_runs()) == 1
    assert "threshold AVAILABLE (versions 1, 2; labels stable=1, canary=2)" in again.stdout
    rendered = (host.state_dir / "config" / "models.config").read_text()
    assert 'key: "canary"\n      value: 2' in rendered and 'key: "stable"\n      value: 1' in rendered

    stopped, stopped_twice = host.stop(), host.stop()
    assert stopped.returncode == 0 and "stopped container threshold-serving" in stopped.stdout
    assert stopped_twice.returncode == 0 and "nothing to stop" in stopped_twice.stdout
    assert list(host.containers.iterdir()) == []  # container removed, its process ended
    with socket.socket() as sock:  # nothing answers on the gRPC port any more
        assert sock.connect_ex(("127.0.0.1", host.grpc_port)) != 0


def test_docker_without_gpu_runs_the_cpu_image_of_the_same_release(tmp_path):
    host = make_fake_host(tmp_path)
    result = host.serve(DRY_RUN="1")
    assert _dry_run_command(result) == host.expected_run(f"tensorflow/serving:{TFS_VERSION}", gpu=False)
    assert "serve: TF Serving CPU image in Docker: Docker engine answers, no NVIDIA GPU" in result.stdout
    assert host.docker_runs() == []  # a dry run runs nothing


def test_gpu_without_container_toolkit_runs_the_cpu_image_and_says_why(tmp_path):
    host = make_fake_host(tmp_path, gpu=True, nvidia_runtime=False)
    result = host.serve(DRY_RUN="1")
    command = _dry_run_command(result)
    assert "--gpus" not in command and f"tensorflow/serving:{TFS_VERSION}" in command
    assert (
        "serve: TF Serving CPU image in Docker: Docker engine answers, an NVIDIA GPU is present but "
        "Docker cannot use it (install the NVIDIA Container Toolkit" in result.stdout
    )


def test_tfs_image_and_ports_can_be_overridden(tmp_path):
    host = make_fake_host(tmp_path, gpu=True, nvidia_runtime=True)
    command = _dry_run_command(
        host.serve(
            DRY_RUN="1",
            TFS_IMAGE="registry.example/tfs:2.21.0-gpu-patched",
            GRPC_PORT="9500",
            REST_PORT="0",
            GPU_MEMORY_FRACTION="0",
        )
    )
    assert "registry.example/tfs:2.21.0-gpu-patched" in command
    assert command.count("--publish") == 1 and "127.0.0.1:9500:8500" in command
    assert not any(arg.startswith("--per_process_gpu_memory_fraction") for arg in command)


def test_container_name_comes_from_tfs_container_name_not_the_generic_container_name(tmp_path):
    # Many sandboxes and CI runners export CONTAINER_NAME for their own container; it must not leak in.
    host = make_fake_host(tmp_path)
    command = _dry_run_command(host.serve(DRY_RUN="1", CONTAINER_NAME="the-ci-runner"))
    assert command[command.index("--name") + 1] == "threshold-serving"
    command = _dry_run_command(
        host.serve(DRY_RUN="1", CONTAINER_NAME="the-ci-runner", TFS_CONTAINER_NAME="tfs-a")
    )
    assert command[command.index("--name") + 1] == "tfs-a"


@pytest.mark.parametrize(
    ("docker", "engine", "reason"),
    [
        (False, "up", "no docker on PATH"),
        (
            True,
            "down",
            "docker is on PATH but its engine does not answer (Cannot connect to the Docker daemon",
        ),
    ],
)
def test_no_docker_engine_falls_back_to_the_embedded_server(tmp_path, docker, engine, reason):
    host = make_fake_host(tmp_path, docker=docker, engine=engine)
    result = host.serve(DRY_RUN="1")
    assert f"serve: embedded server (python -m serving.local): {reason}" in result.stdout
    assert _dry_run_command(result) == [
        PYTHON,
        "-m",
        "serving.local",
        "--host",
        "127.0.0.1",
        "--port",
        str(host.grpc_port),
        "--rest-port",
        str(host.rest_port),
        "--model-config-file",
        str((host.state_dir / "config" / "models.config").resolve()),
        "--model-config-file-poll-wait-seconds",
        "10",
        "--models-dir",
        str(host.models_dir.resolve()),
        "--monitoring-config-file",
        str((host.state_dir / "config" / "monitoring.config").resolve()),
        "--file-system-poll-wait-seconds",
        "5",
        "--allow-version-labels-for-unavailable-models",
        "--enable-grpc-healthcheck-service",
        "--enable-serialization-as-tensor-content",
        "--enable-batching",
        "--batching-parameters-file",
        str((host.state_dir / "config" / "batching.config").resolve()),
    ]


def test_server_docker_without_docker_fails_with_what_to_do(tmp_path):
    host = make_fake_host(tmp_path, docker=False)
    result = host.serve(SERVER="docker")
    assert result.returncode == SERVER_NOT_STARTED
    assert "SERVER=docker, but no docker on PATH" in result.stderr and "SERVER=local" in result.stderr


def test_container_that_exits_early_fails_with_its_last_log_lines(tmp_path):
    host = make_fake_host(tmp_path)
    result = host.serve(FAKE_CONTAINER_EXIT="early")
    assert result.returncode == SERVER_NOT_STARTED
    assert "container threshold-serving is exited before the model became AVAILABLE" in result.stderr
    assert "fake failure: the model could not be loaded" in result.stderr  # from `docker logs`
    assert [call[1] for call in host.docker_calls()][-2:] == ["stop", "rm"]
    assert list(host.containers.iterdir()) == [] and not (host.state_dir / "server.json").exists()
    assert "nothing to stop" in host.stop().stdout


def test_taken_port_fails_before_docker_runs(tmp_path):
    host = make_fake_host(tmp_path)
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", host.grpc_port))
        squatter.listen()
        result = host.serve()
    assert result.returncode == SERVER_NOT_STARTED
    assert f"gRPC port 127.0.0.1:{host.grpc_port} is taken" in result.stderr and "GRPC_PORT=" in result.stderr
    assert host.docker_runs() == []
