"""Which server `make serve` starts: TF Serving in Docker (GPU or CPU image) or the embedded one."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass

from serving.errors import DockerUnavailable

SERVER_CHOICES = ("auto", "docker", "local")
PROBE_TIMEOUT_S = 15
# Either of these on PATH shows the NVIDIA Container Toolkit, which `docker run --gpus` needs
# even when the toolkit did not register an "nvidia" runtime with the engine.
CONTAINER_TOOLKIT_BINARIES = ("nvidia-container-runtime-hook", "nvidia-ctk")


@dataclass(frozen=True)
class HostProbe:
    """What this host offers: a Docker engine that answers, NVIDIA GPUs, the container toolkit."""

    docker: str | None  # the docker client, only if its engine answered
    docker_problem: str | None  # why Docker cannot be used, if it cannot
    docker_runtimes: tuple[str, ...]
    gpus: tuple[str, ...]  # `nvidia-smi -L` lines
    container_toolkit: bool

    @property
    def docker_gpu(self) -> bool:
        """Docker can hand a GPU to a container."""
        return bool(self.gpus) and ("nvidia" in self.docker_runtimes or self.container_toolkit)


@dataclass(frozen=True)
class BackendChoice:
    """The server to start and, in words, why."""

    kind: str  # "docker" or "local"
    gpu: bool
    reason: str

    @property
    def server(self) -> str:
        """The chosen server, in words."""
        if self.kind == "local":
            return "embedded server (python -m serving.local)"
        return f"TF Serving {'GPU' if self.gpu else 'CPU'} image in Docker"


def _run(argv: list[str]) -> subprocess.CompletedProcess | None:
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=PROBE_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired):
        return None


def _first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), "no output")


def probe_host(path: str | None = None) -> HostProbe:
    """Ask docker and nvidia-smi (found on path, default $PATH) what this host offers."""
    path = os.environ.get("PATH", "") if path is None else path
    docker, problem, runtimes = shutil.which("docker", path=path), None, ()
    if docker is None:
        problem = "no docker on PATH"
    else:
        info = _run([docker, "info", "--format", "{{json .Runtimes}}"])
        if info is None or info.returncode != 0:
            detail = "timed out" if info is None else _first_line(info.stderr or info.stdout)
            problem, docker = f"docker is on PATH but its engine does not answer ({detail})", None
        else:
            try:
                runtimes = tuple(sorted(json.loads(info.stdout or "{}")))
            except json.JSONDecodeError:
                runtimes = ()
    gpus: tuple[str, ...] = ()
    nvidia_smi = shutil.which("nvidia-smi", path=path)
    if nvidia_smi:
        listing = _run([nvidia_smi, "-L"])
        if listing is not None and listing.returncode == 0:
            gpus = tuple(line.strip() for line in listing.stdout.splitlines() if line.startswith("GPU "))
    toolkit = any(shutil.which(name, path=path) for name in CONTAINER_TOOLKIT_BINARIES)
    return HostProbe(docker, problem, runtimes, gpus, toolkit)


def _docker_choice(probe: HostProbe, why: str) -> BackendChoice:
    if probe.docker_gpu:
        return BackendChoice(
            "docker", True, f"{why} and {probe.gpus[0].split(' (UUID')[0]} is usable from containers"
        )
    if probe.gpus:
        return BackendChoice(
            "docker",
            False,
            f"{why}, an NVIDIA GPU is present but Docker cannot use it "
            "(install the NVIDIA Container Toolkit for the GPU image)",
        )
    return BackendChoice("docker", False, f"{why}, no NVIDIA GPU (nvidia-smi -L lists none)")


def choose_backend(requested: str, probe: HostProbe) -> BackendChoice:
    """auto: Docker if its engine answers (GPU image when containers can use a GPU), else local."""
    if requested not in SERVER_CHOICES:
        raise ValueError(f"SERVER must be one of {', '.join(SERVER_CHOICES)}, got {requested!r}")
    if requested == "local":
        return BackendChoice("local", False, "SERVER=local")
    if probe.docker is None:
        if requested == "docker":
            raise DockerUnavailable(
                f"SERVER=docker, but {probe.docker_problem}. Install or start Docker, "
                "or run `make serve SERVER=local` for the embedded server."
            )
        return BackendChoice("local", False, probe.docker_problem or "no Docker engine")
    why = "SERVER=docker" if requested == "docker" else "Docker engine answers"
    return _docker_choice(probe, why)
