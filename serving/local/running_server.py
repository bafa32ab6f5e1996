"""A running server: the repository, the gRPC (and REST) listeners, the batcher and the version poller."""

from __future__ import annotations

import logging
import threading

from client.tensors import TensorBudget
from serving.local.auth import server_interceptors
from serving.local.config import read_model_server_config
from serving.local.errors import NoModelVersions, StartupError
from serving.local.flags import TF_CHOOSES, ServerOptions
from serving.local.grpc_service import build_grpc_server
from serving.local.metrics import ServerMetrics
from serving.local.predict import Predictor, run_directly
from serving.local.repository import ModelRepository
from serving.local.servable import Servable
from serving.local.server_core import ModelServerConfig, ServerCore
from serving.local.tls import grpc_server_credentials
from serving.local.warmup import replay_warmup

log = logging.getLogger("serving.local")


class RunningServer:
    """Owns every moving part; start() returns once the models are loaded and the ports listen."""

    def __init__(
        self, options: ServerOptions, config: ModelServerConfig, stopping: threading.Event | None = None
    ):
        """Raises ConfigRefused for a first config TF Serving would refuse (nothing is loaded yet)."""
        self.options = options
        # set by a signal: a start-up still retrying its loads gives up
        self._stop = stopping if stopping is not None else threading.Event()
        self._config_stamp = self._config_file_stamp()
        self._last_reload_error = ""
        self.metrics = ServerMetrics(is_served=lambda name: self.repository.is_served(name))
        self.batcher = None
        run = run_directly
        if options.enable_batching:
            from serving.local.batching import Batcher, batching_settings

            self.batcher = Batcher(batching_settings(options), self.metrics)
            run = self.batcher.run

        def warm_up(servable: Servable) -> int:
            # As TF Serving's warmup: through the session the requests will use (batching's
            # included), its session calls counted in the runtime latency metric as RunPredict does
            return replay_warmup(
                servable,
                run,
                iterations=options.warmup_iterations,
                record_runtime=self.metrics.record_runtime,
            )

        self.repository = ModelRepository(
            [],
            warm_up=warm_up if options.enable_model_warmup else None,
            on_load_attempt=self.metrics.record_load_attempt,
            threads=options.session_threads,
            retries=options.load_retries,
            stopping=self._stop,
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
        for name in self.repository.model_names():
            if not self.repository.available_versions(name):
                records = self.repository.version_records(name)
                reason = "; ".join(f"version {r.version}: {r.error}" for r in records if r.error)
                raise NoModelVersions(
                    f"no version of model {name} could be loaded "
                    f"({reason or 'none loaded'}): run `make export` to write a fresh one"
                )
        options = self.options
        self.grpc_server, self.health, grpc_port = build_grpc_server(
            f"{_bracket(options.host)}:{options.grpc_port}",
            self.repository,
            self.core,
            self.predictor,
            self.metrics,
            max_message_bytes=options.max_message_bytes,
            threads=options.grpc_threads,
            credentials=grpc_server_credentials(options),
            interceptors=server_interceptors(options.auth_token_file),
        )
        if options.rest_port:
            from serving.local.rest import RestServer

            self.rest = RestServer(options, self.repository, self.predictor, self.metrics)
        self.grpc_server.start()
        if self.rest is not None:
            self.rest.start()
        scheme = " (TLS)" if options.tls else ""
        rest = f"rest {_bracket(options.host)}:{self.rest.port}" if self.rest else "rest disabled"
        log.info("listening on grpc %s:%d, %s%s", _bracket(options.host), grpc_port, rest, scheme)
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

    def _config_file_stamp(self):
        path = self.options.model_config_file
        try:
            stat = path.stat() if path is not None else None
        except OSError:
            return None
        return stat and (stat.st_mtime_ns, stat.st_size)

    def _poll(self) -> None:
        options = self.options
        interval = min(
            x
            for x in (
                options.file_system_poll_wait_seconds,
                options.model_config_file_poll_wait_seconds,
                3600,
            )
            if x > 0
        )
        while not self._stop.wait(interval):
            try:
                if options.model_config_file is not None and options.model_config_file_poll_wait_seconds > 0:
                    self._reload_config_if_changed()
                if options.file_system_poll_wait_seconds > 0:
                    self.repository.refresh()
            except Exception:  # noqa: BLE001 - the poller must survive anything a disk can do
                log.exception("version poll failed; retrying at the next poll")

    def _reload_config_if_changed(self) -> None:
        """Apply a changed config file. A refused one is retried at every poll, as server.cc's
        PollFilesystemAndReloadConfig reloads each time, so a label waiting for its version to
        load takes effect once it has; the previous config is served meanwhile."""
        stamp = self._config_file_stamp()
        if stamp is None or stamp == self._config_stamp:
            return
        try:
            self.core.reload_config(read_model_server_config(self.options.model_config_file))
        except StartupError as exc:
            if str(exc) != self._last_reload_error:
                log.info(
                    "cannot reload %s, serving the previous config: %s", self.options.model_config_file, exc
                )
            self._last_reload_error = str(exc)
            return
        self._config_stamp = stamp
        self._last_reload_error = ""
        log.info("re-read %s", self.options.model_config_file)


def _bracket(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host
