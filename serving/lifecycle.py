"""`make serve` and `make stop`: pick a server, start it, wait for AVAILABLE, stop it again."""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from client.cli_options import env_bool
from client.defaults import DEFAULT_SERVER
from serving import docker_server, embedded_process
from serving.backend_choice import BackendChoice, choose_backend, probe_host
from serving.errors import DockerUnavailable, ExportFailed, ServeError, ServerExitedEarly
from serving.model_config import (
    BATCHING_CONFIG,
    MODELS_CONFIG,
    MONITORING_CONFIG,
    ServedModel,
    load_model_server_config,
    render_config,
    served_models,
    write_atomically,
)
from serving.model_server_flags import (
    CONTAINER_TLS_DIR,
    DEFAULT_GPU_MEMORY_FRACTION,
    MODEL_CONFIG_POLL_WAIT_SECONDS,
    ModelServerOptions,
    tfs_image,
)
from serving.model_status import wait_until_available
from serving.ports import require_free_port
from serving.serve_state import ServeState, clear_state, read_state, write_state
from serving.ssl_config import SSL_CONFIG_NAME, render_ssl_config, write_ssl_config

Say = Callable[[str], None]
SAMPLE_DATA = "data.npy"  # what `make sample` writes


@dataclass(frozen=True)
class ServeSettings:
    """What `make serve` was asked for (CLI flags, env-var defaults: see serving/launch.py)."""

    server: str = "auto"
    dry_run: bool = False
    image: str | None = None  # None: the official image matching tensorflow-serving-api
    bind_host: str = "127.0.0.1"
    grpc_port: int = 8500
    rest_port: int = 8501
    models_dir: Path = Path("models")
    model_config: Path = MODELS_CONFIG
    state_dir: Path = Path(".serve")
    container_name: str = "threshold-serving"
    gpu_memory_fraction: float = DEFAULT_GPU_MEMORY_FRACTION
    gpu_allow_growth: bool = True
    batching: bool = True
    intra_op_parallelism: int = 0  # the TensorFlow session's thread pools; 0: TF chooses
    inter_op_parallelism: int = 0
    timeout_s: float = 180.0
    tls_cert: Path | None = None  # TLS on TF Serving's gRPC port (--ssl_config_file)
    tls_key: Path | None = None
    tls_client_ca: Path | None = None  # require client certificates signed by it (mutual TLS)

    @property
    def config_dir(self) -> Path:
        """Where the configs the server reads are rendered (mounted read-only at /config)."""
        return self.state_dir / "config"

    @property
    def tls(self) -> bool:
        return self.tls_cert is not None

    @property
    def tls_dir(self) -> Path:
        """Where ssl.config is rendered (mounted read-only at /tls; never baked into an image)."""
        return self.state_dir / "tls"

    @property
    def rest_url(self) -> str | None:
        if not self.rest_port:
            return None
        return f"http://{self.grpc_address.rsplit(':', 1)[0]}:{self.rest_port}"

    @property
    def grpc_address(self) -> str:
        host = "127.0.0.1" if self.bind_host in ("0.0.0.0", "") else self.bind_host
        host = "[::1]" if host == "::" else (f"[{host}]" if ":" in host else host)
        return f"{host}:{self.grpc_port}"


def _say(text: str) -> None:
    print(text, flush=True)


def render_config_files(settings: ServeSettings) -> list[ServedModel]:
    """Write models.config (labels on the versions on disk), batching and monitoring configs."""
    config = load_model_server_config(settings.model_config)
    models = served_models(config, settings.models_dir)
    write_atomically(settings.config_dir / "models.config", render_config(config, models))
    for source in (BATCHING_CONFIG, MONITORING_CONFIG):
        write_atomically(settings.config_dir / source.name, source.read_text())
    if settings.tls:
        write_ssl_config(
            settings.tls_dir, render_ssl_config(settings.tls_cert, settings.tls_key, settings.tls_client_ca)
        )
    return models


def ensure_exported(settings: ServeSettings, say: Say = _say) -> list[ServedModel]:
    """The configured models, after exporting a first version of any that has none."""
    config = load_model_server_config(settings.model_config)
    models = served_models(config, settings.models_dir)
    for model in models:
        if model.versions_on_disk:
            continue
        argv = [
            sys.executable,
            "-m",
            "export",
            "--models-dir",
            str(settings.models_dir),
            "--model-name",
            model.name,
        ]
        if settings.dry_run:
            say(
                f"serve: no version of {model.name} under {model.local_base_path}; "
                f"would run: {shlex.join(argv)}"
            )
            continue
        say(f"serve: no version of {model.name} under {model.local_base_path} yet: exporting one first")
        if subprocess.run(argv).returncode != 0:
            raise ExportFailed(
                f"exporting {model.name} failed (see above); fix it and run `make serve` again"
            )
    return models if settings.dry_run else served_models(config, settings.models_dir)


def _print_endpoints(settings: ServeSettings, models: list[ServedModel], say: Say) -> None:
    for model in models:
        labels = ", ".join(f"{label}={v}" for label, v in model.labels.items())
        versions = ", ".join(map(str, model.kept_versions))
        say(f"serve: {model.name} AVAILABLE (versions {versions}{'; labels ' + labels if labels else ''})")
    say(f"  gRPC     {settings.grpc_address}")
    if settings.rest_port:
        host = settings.grpc_address.rsplit(":", 1)[0]
        for model in models:
            say(f"  REST     http://{host}:{settings.rest_port}/v1/models/{model.name}")
        say(f"  metrics  http://{host}:{settings.rest_port}/monitoring/prometheus/metrics")
    say(f"  client   {client_command(settings)}")
    if not Path(SAMPLE_DATA).exists():
        say(f"           (no {SAMPLE_DATA} yet: `make sample` writes one, the reference vector in row 0)")
    say("  status   make status; logs: make logs")
    say("  stop     make stop")


def client_command(settings: ServeSettings, data: str = SAMPLE_DATA) -> str:
    """The exact command that sends data to the endpoint just started."""
    python = Path(sys.executable)
    with contextlib.suppress(ValueError):
        python = python.relative_to(Path.cwd())  # .venv/bin/python from the checkout
    argv = [str(python), "-m", "client.predict", data]
    if settings.grpc_address != DEFAULT_SERVER:
        argv += ["--server", settings.grpc_address]
    if settings.tls:
        argv += ["--ca-cert", "<CA of --tls-cert>", "--authority", "<a name in --tls-cert>"]
        if settings.tls_client_ca:
            argv += ["--client-cert", "<your cert>", "--client-key", "<your key>"]
    return shlex.join(argv)


def _wait(
    settings: ServeSettings,
    models: list[ServedModel],
    check_server: Callable[[], None] = lambda: None,
    address: str | None = None,
) -> None:
    # A TLS gRPC port may want a client certificate we do not have: ask TF Serving's plain REST port.
    rest_url = settings.rest_url if settings.tls else None
    for model in models:
        wait_until_available(
            address or settings.grpc_address,
            model.name,
            model.kept_versions,
            settings.timeout_s,
            check_server,
            rest_url=rest_url,
        )


def server_is_running(state: ServeState) -> bool:
    """The server state records is still up (container running, or the embedded process alive)."""
    if state.backend == "docker":
        return (
            shutil.which("docker") is not None
            and docker_server.container_status(state.container or "") == "running"
        )
    return state.pid is not None and embedded_process.is_embedded_server(state.pid)


def _refresh_running(settings: ServeSettings, state: ServeState, models: list[ServedModel], say: Say) -> int:
    """Already serving: wait for new versions by number, then move the labels onto them."""
    say(f"serve: already running ({state.backend}, gRPC {state.grpc_address}); waiting for versions on disk")
    if settings.dry_run:
        say("serve: (dry run) would wait for the newest versions, then move the labels to them")
        return 0
    # First load, then move the labels: TF Serving refuses labels on versions it has not loaded.
    _wait(settings, models, address=state.grpc_address)
    render_config_files(settings)
    say(f"serve: labels written; the server re-reads them within {MODEL_CONFIG_POLL_WAIT_SECONDS} s")
    _print_endpoints(replace(settings, grpc_port=int(state.grpc_address.rsplit(":", 1)[1])), models, say)
    return 0


def _serve_docker(settings: ServeSettings, choice: BackendChoice, models: list[ServedModel], say: Say) -> int:
    ssl_config_file = f"{CONTAINER_TLS_DIR}/{SSL_CONFIG_NAME}" if settings.tls else None
    options = ModelServerOptions(
        batching=settings.batching,
        gpu_memory_fraction=settings.gpu_memory_fraction if choice.gpu else None,
        ssl_config_file=ssl_config_file,
        intra_op_parallelism=settings.intra_op_parallelism,
        inter_op_parallelism=settings.inter_op_parallelism,
    )
    launch = docker_server.DockerLaunch(
        image=settings.image or tfs_image(choice.gpu),
        container_name=settings.container_name,
        bind_host=settings.bind_host,
        grpc_port=settings.grpc_port,
        rest_port=settings.rest_port,
        models_dir=settings.models_dir,
        config_dir=settings.config_dir,
        gpu=choice.gpu,
        user=f"{os.getuid()}:{os.getgid()}",
        gpu_allow_growth=settings.gpu_allow_growth,
        server=options,
        tls_dir=settings.tls_dir if settings.tls else None,
    )
    argv = docker_server.docker_run_argv(launch)
    if settings.dry_run:
        say(shlex.join(argv))
        return 0
    if docker_server.container_status(settings.container_name) is not None:
        say(f"serve: removing the stopped container {settings.container_name} left by an earlier run")
        docker_server.remove_container(settings.container_name)
    require_free_port(settings.bind_host, settings.grpc_port, "gRPC", "GRPC_PORT")
    if settings.rest_port:
        require_free_port(settings.bind_host, settings.rest_port, "REST", "REST_PORT")
    models = render_config_files(settings)
    say(f"serve: {shlex.join(argv)}")
    try:
        docker_server.start_container(argv)
    except ServerExitedEarly:
        docker_server.remove_container(launch.container_name)  # e.g. created, but no GPU driver to start
        raise
    write_state(
        settings.state_dir,
        ServeState(
            "docker",
            settings.grpc_address,
            container=launch.container_name,
            image=launch.image,
            rest_url=settings.rest_url,
            tls=settings.tls,
        ),
    )

    def check_container() -> None:
        status = docker_server.container_status(launch.container_name)
        if status != "running":
            raise ServerExitedEarly(
                f"container {launch.container_name} is {status or 'gone'} before "
                f"the model became AVAILABLE; its last log lines:\n"
                f"{docker_server.container_logs(launch.container_name)}"
            )

    try:
        _wait(settings, models, check_container)
    except ServeError as exc:
        logs = docker_server.container_logs(launch.container_name)
        docker_server.remove_container(launch.container_name)
        clear_state(settings.state_dir)
        if isinstance(exc, ServerExitedEarly):
            raise
        raise type(exc)(f"{exc}; container removed. Its last log lines:\n{logs}") from None
    _print_endpoints(settings, models, say)
    return 0


def _refuse_plaintext_on_the_network(settings: ServeSettings) -> None:
    """The embedded server speaks plain text; off loopback it needs the user's explicit consent."""
    from serving.local.tls import is_loopback  # the embedded server's own rule

    try:  # the embedded server's own variable, read by its one rule
        allowed = env_bool("SERVING_LOCAL_ALLOW_INSECURE_REMOTE", False)
    except ValueError as exc:
        raise ServeError(str(exc)) from None
    if not allowed and not is_loopback(settings.bind_host):
        raise ServeError(
            f"BIND_HOST={settings.bind_host} would expose the embedded server's plain-text gRPC "
            "and REST to the network: add SERVING_LOCAL_ALLOW_INSECURE_REMOTE=1 to accept "
            "that, or use SERVER=docker, or leave BIND_HOST at 127.0.0.1"
        )


def _serve_embedded(settings: ServeSettings, models: list[ServedModel], say: Say) -> int:
    if settings.tls:
        raise ServeError(
            "TLS_CERT/TLS_KEY configure TF Serving in Docker (SERVER=docker); the embedded "
            "server takes its own flags: python -m serving.local --ssl-cert ... --ssl-key ..."
        )
    _refuse_plaintext_on_the_network(settings)
    launch = embedded_process.EmbeddedLaunch(
        bind_host=settings.bind_host,
        grpc_port=settings.grpc_port,
        rest_port=settings.rest_port,
        models_dir=settings.models_dir,
        config_dir=settings.config_dir,
        batching=settings.batching,
        intra_op_parallelism=settings.intra_op_parallelism,
        inter_op_parallelism=settings.inter_op_parallelism,
    )
    argv = embedded_process.embedded_server_argv(launch)
    if settings.dry_run:
        say(shlex.join(argv))
        return 0
    require_free_port(settings.bind_host, settings.grpc_port, "gRPC", "GRPC_PORT")
    if settings.rest_port:
        require_free_port(settings.bind_host, settings.rest_port, "REST", "REST_PORT")
    models = render_config_files(settings)
    log_path = settings.state_dir / "local-server.log"
    say(f"serve: {shlex.join(argv)}  (log: {log_path})")
    pid = embedded_process.start_embedded_server(argv, log_path)
    write_state(
        settings.state_dir,
        ServeState("local", settings.grpc_address, pid=pid, rest_url=settings.rest_url, log=str(log_path)),
    )

    def check_process() -> None:
        if not embedded_process.is_embedded_server(pid):
            raise ServerExitedEarly(
                f"the embedded server (pid {pid}) exited before the model became "
                f"AVAILABLE; the last lines of {log_path}:\n"
                f"{embedded_process.log_tail(log_path)}"
            )

    try:
        _wait(settings, models, check_process)
    except ServeError as exc:
        embedded_process.stop_embedded_server(pid)
        clear_state(settings.state_dir)
        if isinstance(exc, ServerExitedEarly):
            raise
        raise type(exc)(
            f"{exc}; server stopped. The last lines of {log_path}:\n{embedded_process.log_tail(log_path)}"
        ) from None
    _print_endpoints(settings, models, say)
    return 0


def serve(settings: ServeSettings, say: Say = _say) -> int:
    """Start a server for the configured models and wait until they are AVAILABLE (0 on success)."""
    models = ensure_exported(settings, say)
    state = read_state(settings.state_dir)
    if state is not None:
        if server_is_running(state):
            return _refresh_running(settings, state, models, say)
        if not settings.dry_run:
            clear_state(settings.state_dir)  # it died since; start afresh
    choice = choose_backend(settings.server, probe_host())
    say(f"serve: {choice.server}: {choice.reason}")
    if settings.dry_run:
        say("serve: dry run, the command would be:")
    if choice.kind == "docker":
        return _serve_docker(settings, choice, models, say)
    return _serve_embedded(settings, models, say)


def stop(settings: ServeSettings, say: Say = _say) -> int:
    """Stop what serve started; nothing to do is fine, so running it twice is safe."""
    state = read_state(settings.state_dir)
    if state is None:
        say("stop: nothing to stop (no server started by make serve)")
        return 0
    if state.backend == "docker":
        if shutil.which("docker") is None:
            raise DockerUnavailable(
                f"container {state.container} was started with docker, which is no "
                "longer on PATH; put it back on PATH and run `make stop` again"
            )
        stopped = docker_server.remove_container(state.container or "")
        what = f"container {state.container}"
    else:
        stopped = state.pid is not None and embedded_process.stop_embedded_server(state.pid)
        what = f"embedded server (pid {state.pid})"
    clear_state(settings.state_dir)
    say(f"stop: {'stopped' if stopped else 'already gone:'} {what}")
    return 0
