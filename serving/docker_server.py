"""TF Serving in Docker: the exact ``docker run`` command, and the container's state, logs and end."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from serving.errors import ServerExitedEarly
from serving.model_server_flags import (
    CONTAINER_CONFIG_DIR,
    CONTAINER_GRPC_PORT,
    CONTAINER_REST_PORT,
    CONTAINER_TLS_DIR,
    ModelServerOptions,
    model_server_flags,
)

DOCKER_TIMEOUT_S = 60
STOP_GRACE_S = 10  # SIGTERM lets TF Serving finish in-flight requests before the kill


@dataclass(frozen=True)
class DockerLaunch:
    """Everything one ``docker run`` of TF Serving depends on."""

    image: str
    container_name: str
    bind_host: str
    grpc_port: int
    rest_port: int  # 0: REST (and metrics) stay inside the container
    models_dir: Path
    config_dir: Path
    gpu: bool
    user: str  # "uid:gid": the server reads the mounts as the user who exported the models
    gpu_allow_growth: bool = True
    server: ModelServerOptions = field(default_factory=ModelServerOptions)
    tls_dir: Path | None = None  # holds ssl.config (server.ssl_config_file points into its mount)


def _published(host: str, host_port: int, container_port: int) -> str:
    host = f"[{host}]" if ":" in host else host  # IPv6 literal
    return f"{host}:{host_port}:{container_port}"


def _read_only_bind(source: Path, target: str) -> str:
    source = Path(source).resolve()
    if "," in str(source):
        raise ValueError(f"{source}: docker --mount cannot take a path with a comma; move it")
    return f"type=bind,source={source},target={target},readonly"


def docker_run_argv(launch: DockerLaunch) -> list[str]:
    """The ``docker run`` command line for launch, flag by flag."""
    argv = [
        "docker",
        "run",
        "--detach",
        "--name",
        launch.container_name,
        "--user",
        launch.user,
        # A tiny init as PID 1 forwards `docker stop`'s SIGTERM to the server and reaps.
        "--init",
        # Nothing in the container writes but TF's scratch space: keep the image immutable.
        "--read-only",
        "--tmpfs",
        "/tmp",
        "--publish",
        _published(launch.bind_host, launch.grpc_port, CONTAINER_GRPC_PORT),
    ]
    if launch.rest_port:
        argv += ["--publish", _published(launch.bind_host, launch.rest_port, CONTAINER_REST_PORT)]
    argv += [
        "--mount",
        _read_only_bind(launch.models_dir, "/models"),
        "--mount",
        _read_only_bind(launch.config_dir, CONTAINER_CONFIG_DIR),
    ]
    if launch.tls_dir is not None:
        argv += ["--mount", _read_only_bind(launch.tls_dir, CONTAINER_TLS_DIR)]
    if launch.gpu:
        argv += ["--gpus", "all"]
        if launch.gpu_allow_growth:
            # Take GPU memory as batches need it instead of nearly all of it at start.
            argv += ["--env", "TF_FORCE_GPU_ALLOW_GROWTH=true"]
    # The image's entrypoint script adds --model_name/--model_base_path defaults; calling the
    # server binary directly keeps every flag in this command.
    argv += ["--entrypoint", "tensorflow_model_server", launch.image, *model_server_flags(launch.server)]
    return argv


@dataclass(frozen=True)
class ImageBuild:
    """One ``docker build`` of serving/Dockerfile."""

    tag: str
    tfs_version: str
    gpu: bool = True
    dockerfile: Path = Path("serving") / "Dockerfile"
    context: Path = Path(".")


def docker_build_argv(build: ImageBuild) -> list[str]:
    """The ``docker build`` command line for build (run from the repository root)."""
    return [
        "docker",
        "build",
        "--file",
        str(build.dockerfile),
        "--build-arg",
        f"TFS_VERSION={build.tfs_version}",
        "--build-arg",
        f"TFS_VARIANT={'-gpu' if build.gpu else ''}",
        "--tag",
        build.tag,
        str(build.context),
    ]


def _docker(*args: str, timeout: float = DOCKER_TIMEOUT_S) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)


def start_container(argv: list[str]) -> str:
    """Run argv (``docker run --detach ...``); the container id. Pull progress goes to stderr."""
    result = subprocess.run(argv, stdout=subprocess.PIPE, text=True)
    if result.returncode != 0:
        raise ServerExitedEarly(
            f"`docker run` failed (exit {result.returncode}); docker's message is "
            "above. A name conflict: `make stop`; a missing image: check TFS_IMAGE."
        )
    return result.stdout.strip()


def container_status(name: str) -> str | None:
    """Docker's state of the named container (running, exited, ...), or None if there is none."""
    result = _docker("inspect", "--format", "{{.State.Status}}", name)
    return result.stdout.strip() if result.returncode == 0 else None


def container_logs(name: str, lines: int = 20) -> str:
    """The container's last log lines (TF Serving logs to stderr)."""
    result = _docker("logs", "--tail", str(lines), name)
    return (result.stdout + result.stderr).strip()


def remove_container(name: str) -> bool:
    """Stop (SIGTERM, then kill after a grace period) and remove it; False if it did not exist."""
    if container_status(name) is None:
        return False
    _docker("stop", "--time", str(STOP_GRACE_S), name, timeout=DOCKER_TIMEOUT_S + STOP_GRACE_S)
    _docker("rm", "--force", name)
    return True
