"""A running server: the repository, the gRPC (and REST) listeners, the batcher and the version poller."""

from __future__ import annotations

import logging
import threading
import time

import grpc

from client.tensors import TensorBudget
from serving.local.auth import server_interceptors
from serving.local.config import read_model_server_config
from serving.local.errors import NoModelVersions, StartupError
from serving.local.flags import TF_CHOOSES, ServerOptions
from serving.local.grpc_service import UNIX_SCHEME, build_grpc_server
from serving.local.method_names import set_method_name_check
from serving.local.metrics import ServerMetrics
from serving.local.predict import Predictor, run_directly
from serving.local.repository import ModelRepository, State
from serving.local.servable import RuntimeFailed, Servable, status_code
from serving.local.server_core import ModelServerConfig, ServerCore
from serving.local.tls import grpc_server_credentials
from serving.local.warmup import replay_warmup

log = logging.getLogger("serving.local")


def models_not_available(repository: ModelRepository) -> str | None:
    """Why the first load leaves the server unable to start, in TF Serving's words; None if it can.

    server_core.cc WaitUntilModelsAvailable waits, per model, for the first version the state
    monitor sees AVAILABLE or END (servable_state_monitor.cc HasAnyServableInStreamReachedState).
    Versions load one at a time, the highest aspired first (main.cc: --num_load_threads 0;
    AspiredVersionPolicy::GetHighestAspiredNewServableId), so that is the latest version: the
    server starts when it loads and refuses to start when it failed, whatever older versions do.
    """
    failed = []
    for name in sorted(repository.model_names()):
        records = repository.version_records(name)  # newest first: the latest aspired version
        if not records or records[0].state == State.AVAILABLE:
            continue
        latest = records[0]
        error = ""
        if latest.error:  # the failed load's absl::Status::ToString()
            error = f" due to error: {status_code(latest.error_code).name}: {latest.error}"
        failed.append(f"{{{{name: {name} version: {latest.version}}}{error}}}, ")
    if not failed:
        return None
    return f"{len(failed)} model(s) did not become available: {{{''.join(failed)}}}"


class RunningServer:
    """Owns every moving part; start() returns once the models are loaded and the ports listen."""

    def __init__(
        self, options: ServerOptions, config: ModelServerConfig, stopping: threading.Event | None = None
    ):
        """Raises ConfigRefused for a first config TF Serving would refuse (nothing is loaded yet)."""
        self.options = options
        # set by a signal: a start-up still retrying its loads gives up
        self._stop = stopping if stopping is not None else threading.Event()
        self._last_reload_error = ""
        set_method_name_check(options.enable_signature_method_name_check)  # before warmup runs
        self.metrics = ServerMetrics(is_served=lambda name: self.repository.is_served(name))
        self.batcher = None
        run = run_directly
        batching_error = None
        if options.enable_batching:
            from serving.local.batching import Batcher
            from serving.local.batching_parameters import batching_settings

            settings = batching_settings(options)
            batching_error = settings.load_error()
            self.batcher = Batcher(settings, self.metrics)
            run = self.batcher.run

        def warm_up(servable: Servable) -> int:
            if batching_error is not None:  # WrapSessionForBatching fails every version's load
                raise RuntimeFailed(batching_error, grpc.StatusCode.INVALID_ARGUMENT)
            if not options.enable_model_warmup:
                return 0
            # As TF Serving's warmup: through the session the requests will use (batching's
            # included), its session calls counted in the runtime latency metric as RunPredict does
            return replay_warmup(
                servable,
                run,
                iterations=options.warmup_iterations,
                record_runtime=self.metrics.record_runtime,
                record_warmup=self.metrics.record_warmup,
            )

        self.repository = ModelRepository(
            [],
            warm_up=warm_up,
            on_load_attempt=self.metrics.record_load_attempt,
            threads=options.session_threads,
            retries=options.load_retries,
            stopping=self._stop,
            tags=options.saved_model_tags,
        )
        self.core = ServerCore(
            self.repository, options.models_dir, options.allow_version_labels_for_unavailable_models
        )
        self.core.reload_config(config)
        self.predictor = Predictor(
            self.repository,
            run,
            as_content=options.enable_serialization_as_tensor_content,
            budget=TensorBudget(options.request_tensor_budget),
            record_runtime=self.metrics.record_runtime,
        )
        self.grpc_server = None
        self.health = None
        self.rest = None
        self._poller = threading.Thread(target=self._poll, name="version-poller", daemon=True)

    def start(self) -> None:
        if self.options.session_threads != TF_CHOOSES:
            log.info("TensorFlow session threads: %s", self.options.session_threads.describe())
        self.repository.refresh()
        if self._stop.is_set():  # a signal came while versions were loading: nothing to serve now
            return
        unavailable = models_not_available(self.repository)
        if unavailable:
            raise NoModelVersions(f"{unavailable}: run `make export` to write a fresh version")
        options = self.options
        addresses = [f"{_bracket(options.host)}:{options.grpc_port}"] if options.grpc_port else []
        if options.grpc_socket_path:
            addresses.append(UNIX_SCHEME + options.grpc_socket_path)
        self.grpc_server, self.health, targets = build_grpc_server(
            addresses,
            self.repository,
            self.core,
            self.predictor,
            self.metrics,
            max_message_bytes=options.max_message_bytes,
            threads=options.grpc_threads,
            credentials=grpc_server_credentials(options),
            interceptors=server_interceptors(options.auth_token_file),
            health_service=options.enable_grpc_healthcheck_service,
            channel_arguments=options.grpc_channel_arguments,
        )
        if options.rest_port:
            from serving.local.rest import RestServer

            self.rest = RestServer(options, self.repository, self.predictor, self.metrics)
        self.grpc_server.start()
        if self.rest is not None:
            self.rest.start()
        scheme = " (TLS)" if options.tls else ""
        rest = f"rest {_bracket(options.host)}:{self.rest.port}" if self.rest else "rest disabled"
        log.info("listening on grpc %s, %s%s", " and ".join(targets), rest, scheme)
        self._poller.start()

    def stop(self) -> None:
        """Stop accepting, let in-flight requests finish (up to the grace period), stop the workers."""
        self._stop.set()
        if self.health is not None:
            self.health.enter_graceful_shutdown()  # NOT_SERVING everywhere: balancers stop sending first
        if self.rest is not None:
            self.rest.stop_accepting()
        if self.grpc_server is not None:
            self.grpc_server.stop(self.options.shutdown_grace_seconds).wait()
        if self.rest is not None:
            self.rest.wait_and_close(self.options.shutdown_grace_seconds)
        if self.batcher is not None:
            self.batcher.close()

    def _poll(self) -> None:
        """The version poll and the config file poll, each on its own period, as server.cc runs
        them on two PeriodicFunctions; a period of 0 runs none (the start-up read was the one)."""
        options = self.options
        periods = {}
        if options.model_config_file is not None and options.model_config_file_poll_wait_seconds > 0:
            periods[self._reload_config_file] = options.model_config_file_poll_wait_seconds
        if options.file_system_poll_wait_seconds > 0:
            periods[self.repository.refresh] = options.file_system_poll_wait_seconds
        due = {task: time.monotonic() + period for task, period in periods.items()}
        while due:
            task = min(due, key=due.__getitem__)
            if self._stop.wait(max(0.0, due[task] - time.monotonic())):
                return
            try:
                task()
            except Exception:  # noqa: BLE001 - the poller must survive anything a disk can do
                log.exception("poll failed; retrying at the next poll")
            due[task] = time.monotonic() + periods[task]

    def _reload_config_file(self) -> None:
        """PollFilesystemAndReloadConfig: read the file and reload it, changed or not, so it replaces
        a config sent by HandleReloadConfigRequest, and a refused one (a label waiting for its
        version) takes effect once it can; the config in force is served meanwhile."""
        path = self.options.model_config_file
        try:
            config = read_model_server_config(path)
            changed = config != self.core.config
            self.core.reload_config(config)
        except StartupError as exc:
            if str(exc) != self._last_reload_error:  # the poll repeats it: say it once
                log.info("cannot reload %s, serving the previous config: %s", path, exc)
            self._last_reload_error = str(exc)
            return
        self._last_reload_error = ""
        if changed:
            log.info("re-read %s", path)


def _bracket(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host
