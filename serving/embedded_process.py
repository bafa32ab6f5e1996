"""The embedded server (``python -m serving.local``) as a background process `make stop` can end."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from serving.model_server_flags import FILE_SYSTEM_POLL_WAIT_SECONDS, MODEL_CONFIG_POLL_WAIT_SECONDS

STOP_GRACE_S = 10
EXEC_WAIT_S = 5
EMBEDDED_MODULE = "serving.local"


@dataclass(frozen=True)
class EmbeddedLaunch:
    """Everything one start of the embedded server depends on."""

    bind_host: str
    grpc_port: int
    rest_port: int  # 0 disables REST
    models_dir: Path
    config_dir: Path  # holds the rendered models.config, the one TF Serving gets
    batching: bool = True
    intra_op_parallelism: int = 0  # the session's thread pools; 0: TensorFlow chooses
    inter_op_parallelism: int = 0


def embedded_server_argv(launch: EmbeddedLaunch, python: str = sys.executable) -> list[str]:
    """The command line of the embedded server for launch."""
    argv = [
        python,
        "-m",
        EMBEDDED_MODULE,
        "--host",
        launch.bind_host,
        "--port",
        str(launch.grpc_port),
        "--rest-port",
        str(launch.rest_port),
        "--model-config-file",
        str(Path(launch.config_dir, "models.config").resolve()),
        "--model-config-file-poll-wait-seconds",
        str(MODEL_CONFIG_POLL_WAIT_SECONDS),
        "--models-dir",
        str(Path(launch.models_dir).resolve()),
        # The twin of --monitoring_config_file: both servers export metrics at the same path.
        "--monitoring-config-file",
        str(Path(launch.config_dir, "monitoring.config").resolve()),
        "--file-system-poll-wait-seconds",
        str(FILE_SYSTEM_POLL_WAIT_SECONDS),
        # The twin of ALLOW_UNAVAILABLE_LABELS_FLAG: the rendered config's labels are checked
        # before the first version loads.
        "--allow-version-labels-for-unavailable-models",
        # The twin of --enable_grpc_healthcheck_service=true: probes ask the same service of both.
        "--enable-grpc-healthcheck-service",
    ]
    # The embedded twin of TENSOR_CONTENT_FLAG: both servers answer in the same encoding.
    argv.append("--enable-serialization-as-tensor-content")
    if launch.batching:
        # The twin of --enable_batching --batching_parameters_file: one batching.config for both.
        argv += [
            "--enable-batching",
            "--batching-parameters-file",
            str(Path(launch.config_dir, "batching.config").resolve()),
        ]
    for pool, threads in (
        ("intra-op", launch.intra_op_parallelism),
        ("inter-op", launch.inter_op_parallelism),
    ):
        if threads:
            argv += [f"--tensorflow-{pool}-parallelism", str(threads)]
    return argv


def start_embedded_server(argv: list[str], log_path: Path) -> int:
    """Start argv detached from this terminal's session, logging to log_path; its pid."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    # Popen may return while the child is still inside exec (vfork), when /proc/<pid>/cmdline
    # does not show the new command yet: wait for it, so is_embedded_server never calls a
    # starting server dead.
    deadline = time.monotonic() + EXEC_WAIT_S
    while not is_embedded_server(process.pid) and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    return process.pid


def is_embedded_server(pid: int) -> bool:
    """pid runs the embedded server (not a process that reused a stale pid)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return _signal_zero(pid)  # no /proc (macOS): trust the pid file
    state = stat.rsplit(")", 1)[-1].split()[0]
    return state != "Z" and EMBEDDED_MODULE.encode() in cmdline


def _signal_zero(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _reap(pid: int) -> None:
    # Our own child when serve and stop run in one process; otherwise not ours to reap.
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def stop_embedded_server(pid: int) -> bool:
    """SIGTERM, then SIGKILL after a grace period; False if it was not running."""
    if not is_embedded_server(pid):
        return False
    # Started in its own session, it leads a process group: end any workers it spawned too.
    send = os.killpg if _leads_group(pid) else os.kill
    send(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_S
    while time.monotonic() < deadline:
        _reap(pid)
        if not is_embedded_server(pid):
            return True
        time.sleep(0.1)
    send(pid, signal.SIGKILL)
    _reap(pid)
    return True


def _leads_group(pid: int) -> bool:
    try:
        return os.getpgid(pid) == pid
    except ProcessLookupError:
        return False


def log_tail(log_path: Path, lines: int = 20) -> str:
    """The last lines of the embedded server's log."""
    try:
        return "\n".join(log_path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
