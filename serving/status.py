"""`make status` and `make logs`: what `make serve` started, asked live, and its log.

Status reads the record in .serve/ (which server, where), the config it rendered there (the
models and their labels), and asks the server itself for each model's versions and states
(ModelService.GetModelStatus over gRPC; TF Serving's REST status when the gRPC port is TLS,
which may want a client certificate). Logs are ``docker logs`` for a container and the log file
of the embedded server.
"""

from __future__ import annotations

import shlex
import subprocess
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path

from client.errors import ModelNotFound, ServerUnavailable
from serving import embedded_process
from serving.lifecycle import ServeSettings, server_is_running
from serving.model_config import load_model_server_config
from serving.model_status import CALL_TIMEOUT_S, rest_version_states
from serving.serve_state import ServeState, read_state

Say = Callable[[str], None]
NOTHING = "nothing running: no server started by make serve here ({}); `make serve` starts one"


def _grpc_version_states(address: str, model_name: str) -> dict[int, str]:
    """{version: state} from GetModelStatus, with the client's protos (no TensorFlow import)."""
    import grpc

    from client.protos import get_model_status_pb2, model_pb2, model_service_pb2_grpc

    request = get_model_status_pb2.GetModelStatusRequest(model_spec=model_pb2.ModelSpec(name=model_name))
    state_name = get_model_status_pb2.ModelVersionStatus.State.Name
    with grpc.insecure_channel(address) as channel:
        response = model_service_pb2_grpc.ModelServiceStub(channel).GetModelStatus(
            request, timeout=CALL_TIMEOUT_S
        )
    return {status.version: state_name(status.state) for status in response.model_version_status}


def _describe(state: ServeState) -> str:
    if state.backend == "docker":
        return f"TF Serving in Docker, container {state.container}, image {state.image or 'unknown'}"
    return f"embedded server (python -m serving.local), pid {state.pid}, log {state.log or 'unknown'}"


def _model_lines(settings: ServeSettings, state: ServeState) -> tuple[list[str], bool]:
    """One line per model of the rendered config: versions and states as the server reports them."""
    import grpc

    config_file = settings.config_dir / "models.config"
    lines, healthy = [], True
    for model in load_model_server_config(config_file).model_config_list.config:
        labels = ", ".join(f"{label}={v}" for label, v in sorted(model.version_labels.items()))
        try:
            if state.tls:
                if not state.rest_url:
                    raise OSError("the gRPC port is TLS and REST is off: ask with the client")
                states = rest_version_states(state.rest_url, model.name)
            else:
                states = _grpc_version_states(state.grpc_address, model.name)
            versions = ", ".join(f"version {v} {s}" for v, s in sorted(states.items())) or "no versions"
            healthy &= any(s == "AVAILABLE" for s in states.values())
        except (grpc.RpcError, OSError, ValueError, KeyError) as exc:
            code = getattr(exc, "code", None)
            versions = f"no answer ({code().name if callable(code) else exc})"
            healthy = False
        lines.append(f"  model    {model.name}: {versions}" + (f"; labels {labels}" if labels else ""))
    return lines, healthy


def status(settings: ServeSettings, say: Say) -> int:
    """Print what make serve started and how its models are; 0 when every model has a version AVAILABLE,
    else the exit code of an unreachable server or a model not found (client.errors.EXIT_CODES)."""
    state = read_state(settings.state_dir)
    if state is None:
        say("status: " + NOTHING.format(settings.state_dir))
        return 0
    if not server_is_running(state):
        say(
            f"status: not running: make serve started the {_describe(state)}, which is gone; "
            "`make logs` shows why, `make serve` starts it again"
        )
        return ServerUnavailable.exit_code
    say(f"status: running: {_describe(state)}")
    say(f"  gRPC     {state.grpc_address}" + (" (TLS)" if state.tls else ""))
    if state.rest_url:
        say(f"  REST     {state.rest_url}/v1/models/<name>")
        say(f"  metrics  {state.rest_url}/monitoring/prometheus/metrics")
    lines, healthy = _model_lines(settings, state)
    for line in lines:
        say(line)
    say(f"  protos   tensorflow-serving-api {version('tensorflow-serving-api')}")
    return 0 if healthy else ModelNotFound.exit_code


def logs(settings: ServeSettings, lines: int, follow: bool, say: Say) -> int:
    """Show the server's last log lines (and keep following them with follow)."""
    state = read_state(settings.state_dir)
    if state is None:
        say("logs: " + NOTHING.format(settings.state_dir))
        return 0
    if state.backend == "docker":
        follow_flag = ["--follow"] if follow else []
        argv = ["docker", "logs", "--tail", str(lines), *follow_flag, state.container or ""]
    else:
        log_path = Path(state.log or settings.state_dir / "local-server.log")
        if not follow:
            say(embedded_process.log_tail(log_path, lines))
            return 0
        argv = ["tail", "-n", str(lines), "-f", str(log_path)]
    say(f"logs: {shlex.join(argv)}")
    try:
        return subprocess.run(argv).returncode
    except KeyboardInterrupt:
        return 0
