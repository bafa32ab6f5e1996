"""The embedded TF-Serving-compatible server (``python -m serving.local``) in a subprocess."""

from __future__ import annotations

import contextlib
import os
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest

from client.errors import SERVER_NOT_STARTED
from client.protos import get_model_status_pb2, model_pb2, model_service_pb2_grpc
from tests.support.grpc_calls import ServingStubs
from tests.support.ports import free_port
from tests.support.processes import PYTHON, REPO, cli_env

SERVER_START_TIMEOUT_S = 90
# The flag make serve passes: Prometheus metrics at /monitoring/prometheus/metrics. Without it the
# server exports none, as TF Serving without --monitoring_config_file.
WITH_METRICS = ("--monitoring-config-file", str(REPO / "serving" / "monitoring.config"))


@dataclass(frozen=True)
class ServerHandle:
    """A running ``python -m serving.local``: where it listens and its process (output in log_path)."""

    address: str  # "127.0.0.1:PORT", the gRPC target
    grpc_port: int
    rest_port: int  # 0 when REST is disabled
    process: subprocess.Popen
    log_path: Path

    def log(self) -> str:
        """Everything the server printed so far (stdout and stderr)."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def _flag_given(args: tuple[str, ...], *flags: str) -> bool:
    return any(arg == flag or arg.startswith(flag + "=") for arg in args for flag in flags)


def wait_until_available(
    handle: ServerHandle, model: str = "threshold", timeout: float = SERVER_START_TIMEOUT_S, credentials=None
) -> None:
    """Poll GetModelStatus until some version is AVAILABLE; fail with the server's output if not."""
    deadline = time.monotonic() + timeout
    request = get_model_status_pb2.GetModelStatusRequest(model_spec=model_pb2.ModelSpec(name=model))
    last = "no answer yet"
    options = [("grpc.ssl_target_name_override", "localhost")] if credentials else None
    with (
        grpc.secure_channel(handle.address, credentials, options=options)
        if credentials
        else grpc.insecure_channel(handle.address)
    ) as channel:
        stub = model_service_pb2_grpc.ModelServiceStub(channel)
        while time.monotonic() < deadline:
            if handle.process.poll() is not None:
                pytest.fail(
                    f"serving.local exited with {handle.process.returncode} before serving:\n{handle.log()}"
                )
            try:
                states = stub.GetModelStatus(request, timeout=2).model_version_status
                if any(s.state == get_model_status_pb2.ModelVersionStatus.AVAILABLE for s in states):
                    return
                last = str(list(states))
            except grpc.RpcError as exc:
                last = f"{exc.code()}: {exc.details()}"
            time.sleep(0.2)
    pytest.fail(
        f"serving.local did not make {model} AVAILABLE within {timeout:.0f}s ({last}):\n{handle.log()}"
    )


@contextlib.contextmanager
def embedded_server(
    model_dir: Path | None,
    *extra_args: str,
    wait: bool = True,
    credentials=None,
    env: dict[str, str] | None = None,
):
    """Start ``python -m serving.local`` on free loopback ports; yield a ServerHandle; stop it after.

    Serves ``model_dir/threshold`` unless extra_args name a --model-config-file or base path;
    extra_args override --port/--rest-port too. Waits (bounded) until GetModelStatus reports a
    version AVAILABLE unless wait=False (pass credentials for a TLS server). On exit: SIGTERM,
    then SIGKILL after 20 s.
    """
    args = list(extra_args)
    grpc_port = free_port()
    rest_port = free_port()
    if _flag_given(extra_args, "--port"):
        grpc_port = int(_flag_value(extra_args, "--port"))
    else:
        args += ["--port", str(grpc_port)]
    if _flag_given(extra_args, "--rest-port"):
        rest_port = int(_flag_value(extra_args, "--rest-port"))
    else:
        args += ["--rest-port", str(rest_port)]
    if model_dir is not None and not _flag_given(extra_args, "--model-config-file", "--model-base-path"):
        args += ["--model-base-path", str(Path(model_dir) / "threshold")]
    log_fd, log_name = tempfile.mkstemp(prefix="serving-local-", suffix=".log")
    with os.fdopen(log_fd, "wb") as log_file:
        process = subprocess.Popen(
            [PYTHON, "-m", "serving.local", *args],
            cwd=REPO,
            env=env or cli_env(),
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    handle = ServerHandle(f"127.0.0.1:{grpc_port}", grpc_port, rest_port, process, Path(log_name))
    try:
        if wait:
            wait_until_available(handle, credentials=credentials)
        yield handle
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        Path(log_name).unlink(missing_ok=True)


def _flag_value(args: tuple[str, ...], flag: str) -> str:
    for index, arg in enumerate(args):
        if arg.startswith(flag + "="):
            return arg.split("=", 1)[1]
        if arg == flag:
            return args[index + 1]
    raise KeyError(flag)


@contextlib.contextmanager
def embedded_server_and_stubs(model_dir: Path | None, *extra_args: str, **options):
    """embedded_server, and ServingStubs connected to it: yields (handle, stubs)."""
    with embedded_server(model_dir, *extra_args, **options) as handle:
        stubs = ServingStubs(handle.address)
        try:
            yield handle, stubs
        finally:
            stubs.close()


def config_server(config: Path, models_dir: Path, *extra_args: str, **options):
    """embedded_server serving a ModelServerConfig file, its base paths under models_dir."""
    return embedded_server(
        None, "--model-config-file", str(config), "--models-dir", str(models_dir), *extra_args, **options
    )


def start_failure_log(server) -> str:
    """The log of a server (an embedded_server(..., wait=False) context) that must refuse to start:
    checks it exits with SERVER_NOT_STARTED, as the first config's loads fail."""
    with server as handle:
        assert handle.process.wait(timeout=120) == SERVER_NOT_STARTED, handle.log()
        return handle.log()
