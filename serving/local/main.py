"""``python -m serving.local``: parse flags, check what is cheap to check, run until a signal, exit code.

The checks (TLS files, the config files, the token file, free ports, model versions) run before
TensorFlow loads, so a mistake fails in a second; ``running_server.RunningServer`` then owns the
moving parts (models, listeners, batcher, version poller) until the graceful stop.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

from client import memory
from export.quiet_tensorflow import import_tensorflow
from serving.errors import PortInUse, ServeError
from serving.local.auth import read_token
from serving.local.errors import ConfigFileMissing, LabelOnUnavailableVersion, NoModelVersions
from serving.local.flags import ServerOptions
from serving.local.tls import require_safe_host, require_usable_tls
from serving.ports import require_free_port

log = logging.getLogger("serving.local")


def configure_logging(log_format: str = "text") -> None:
    """One line per lifecycle event on stdout, flushed: prefixed text, or JSON lines (--log-format)."""
    from serving.local.log_format import formatter

    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(formatter(log_format))
    log.handlers[:] = [handler]
    log.setLevel(logging.INFO)
    log.propagate = False


def model_server_config(options: ServerOptions):
    """The first ModelServerConfig: the config file's, or the single --model-name/--model-base-path one."""
    from serving.local.config import read_model_server_config, single_model_config  # TensorFlow's protos

    if options.model_config_file is not None:
        return read_model_server_config(options.model_config_file)
    if options.model_base_path is not None:
        return single_model_config(options.model_name, str(options.model_base_path))
    # Our own default (TF Serving has none): <models-dir>/<name>, made absolute as a base path must be.
    return single_model_config(
        options.model_name, str(Path(options.models_dir, options.model_name).absolute())
    )


def require_versions(sources: list) -> None:
    """NoModelVersions if a model has nothing to load yet."""
    from client.model_versions import versions_on_disk

    for source in sources:
        if not versions_on_disk(source.base_path):
            raise NoModelVersions(
                f"no versions of model {source.name} under {source.base_path} (expected "
                f"integer directories like {source.base_path}/1): run `make export`"
            )


@dataclass
class StopSignal:
    """Set by SIGTERM/SIGINT; the main thread waits on it."""

    event: threading.Event = field(default_factory=threading.Event)
    name: str = ""

    def install(self) -> None:
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._handle)

    def _handle(self, signum, _frame) -> None:
        if self.event.is_set():  # a second signal: the user does not want to wait for in-flight work
            print("serving.local: second signal, exiting without waiting", file=sys.stderr, flush=True)
            os._exit(1)
        self.name = signal.Signals(signum).name
        self.event.set()


def run_server(options: ServerOptions) -> int:
    """Serve until SIGTERM/SIGINT; 0 after a graceful stop. StartupError for what the user must fix."""
    stop = StopSignal()
    stop.install()
    require_safe_host(options)
    require_usable_tls(options)
    if options.model_config_file is not None and not Path(options.model_config_file).is_file():
        raise ConfigFileMissing(
            f"model config file {options.model_config_file} does not exist: pass an "
            "existing --model-config-file, or --model-name and --model-base-path"
        )
    if options.monitoring_config_file is not None:
        from serving.local.config import read_metrics_path  # protobuf only, no TensorFlow

        read_metrics_path(options.monitoring_config_file)  # server.cc reads it before serving
    if options.enable_batching or options.batching_parameters_file is not None:
        from serving.local.batching_parameters import batching_settings  # protobuf only

        batching_settings(options)  # a bad file, or one without --enable-batching, fails now
    if options.auth_token_file is not None:
        read_token(options.auth_token_file)  # a bad token file fails now, not after the model load
    require_free_port(options.host, options.grpc_port, "gRPC", "--port")  # before the slow model load
    if options.rest_port:
        require_free_port(options.host, options.rest_port, "REST", "--rest-port")
    import_tensorflow()  # quietly, before anything else imports it with its start-up log lines
    config = model_server_config(options)

    from serving.local.running_server import RunningServer  # imports TensorFlow: after the cheap checks

    # ServerCore's checks of the first config, before any load
    server = RunningServer(options, config, stopping=stop.event)
    require_versions(server.repository.sources())
    try:
        server.start()
        while not stop.event.wait(0.5):
            pass
        log.info("shutting down (%s): finishing in-flight requests", stop.name)
    finally:
        server.stop()
    log.info("stopped")
    return 0


def main(argv: list[str] | None = None) -> int:
    """CLI entry: parse flags, run, turn a ServeError into a one-line message and its exit code."""
    from serving.local.flags import parse_options

    options = parse_options(argv)
    memory.reuse_freed_buffers()  # requests and responses are a few MiB each (client/memory.py)
    configure_logging(options.log_format)
    try:
        return run_server(options)
    except ServeError as exc:
        message = str(exc)
        if isinstance(exc, PortInUse):
            message += f"; pick another {exc.flag} or stop what uses it (`make stop`)"
        if isinstance(exc, LabelOnUnavailableVersion):
            message += "; --allow-version-labels-for-unavailable-models lets a new label wait for its version"
        if options.log_format == "json":
            log.error("error: %s", message)
        else:
            print(f"serving.local: error: {message}", file=sys.stderr, flush=True)
        return exc.exit_code
    except KeyboardInterrupt:
        return 0
