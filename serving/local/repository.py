"""The served models and their versions: load what the policy wants, unload what it drops, resolve specs.

Like TF Serving's AvailabilityPreservingPolicy, a new version is loaded (and warmed up) before
a dropped one is unloaded, so a model never goes unavailable during a roll. Unloading only
removes a version from the lookup table: requests already running hold their own reference to
it and finish normally.

A failed load is retried (``loader_harness.cc``); a version whose load failed for good stays END
until the policy stops aspiring it, and is then forgotten (``AspiredVersionsManager::
FlushServables``), so a directory written again under the same number is loaded again. A base
path that cannot be listed changes nothing: like ``PollFileSystemAndInvokeCallback``, the poll
ends before any model's versions are updated, and loaded versions keep serving.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import grpc
from tensorflow_serving.apis import get_model_status_pb2, model_pb2

from client.model_versions import BasePathListing, VersionDirectory, aspired_versions, list_base_path
from serving.local.config import ModelSource
from serving.local.errors import InvalidRequest, ServableNotFound
from serving.local.flags import TF_CHOOSES, TF_SERVING_RETRIES, LoadRetries, SessionThreads
from serving.local.servable import SERVE_TAG, Servable, load_servable

State = get_model_status_pb2.ModelVersionStatus
log = logging.getLogger("serving.local")


@dataclass
class VersionRecord:
    """What GetModelStatus reports for one version, and the servable once it is AVAILABLE."""

    version: int
    state: int
    error: str = ""
    servable: Servable | None = None
    error_code: int = 0  # the failed load's status code (tensorflow.error.Code), 0 when it did not fail


class ModelRepository:
    """All configured models, their version records, and their labels; safe to use from many threads."""

    def __init__(
        self,
        sources: list[ModelSource],
        warm_up: Callable[[Servable], int] | None = None,
        on_load_attempt: Callable[[str, bool], None] | None = None,
        threads: SessionThreads = TF_CHOOSES,
        retries: LoadRetries = TF_SERVING_RETRIES,
        stopping: threading.Event | None = None,
        tags: tuple[str, ...] = (SERVE_TAG,),
    ):
        self._lock = threading.Lock()
        self._refresh_lock = threading.Lock()
        self._sources = {source.name: source for source in sources}
        self._records: dict[str, dict[int, VersionRecord]] = {source.name: {} for source in sources}
        self._warm_up = warm_up
        self._on_load_attempt = on_load_attempt  # (version directory, loaded?): the metrics
        self._threads = threads  # every version's session gets these thread pools
        self._tags = tags  # and is the MetaGraphDef of these tags (--saved-model-tags)
        self._retries = retries
        # set on shutdown: no more retries, no waiting
        self._stopping = stopping if stopping is not None else threading.Event()
        self._failed: dict[str, set[int]] = {}  # versions whose load failed and that are still aspired
        self._ignored: dict[str, set[str]] = {}  # non-version entries of each base path, logged once
        self._said: dict[str, object] = {}  # what was last logged about each base path, said once

    # --- lookups (request path) ---------------------------------------------------------------

    def resolve(self, spec: model_pb2.ModelSpec) -> Servable:
        """The servable a ModelSpec asks for, with TF Serving's errors when there is none."""
        if not spec.name:
            raise InvalidRequest("ModelSpec has no name specified.")
        choice = spec.WhichOneof("version_choice")
        with self._lock:
            source = self._sources.get(spec.name)
            if choice == "version_label":
                version = source.labels.get(spec.version_label) if source else None
                if version is None:
                    raise InvalidRequest(f"Unrecognized servable version label: {spec.version_label}")
            else:
                version = spec.version.value if choice == "version" else None
            records = self._records.get(spec.name, {})
            available = {v: r.servable for v, r in records.items() if r.state == State.AVAILABLE}
        if version is None:
            if available:
                return available[max(available)]
            raise ServableNotFound(f"Servable not found for request: Latest({spec.name})")
        if version in available:
            return available[version]
        raise ServableNotFound(f"Servable not found for request: Specific({spec.name}, {version})")

    def version_records(self, name: str) -> list[VersionRecord]:
        """Every version of the model the server has seen, newest first (unloaded ones as END)."""
        with self._lock:
            return [
                VersionRecord(r.version, r.state, r.error, error_code=r.error_code)
                for _, r in sorted(self._records.get(name, {}).items(), reverse=True)
            ]

    def is_served(self, name: str) -> bool:
        """name is a model of the current config (what metrics may label)."""
        with self._lock:
            return name in self._sources

    def model_names(self) -> list[str]:
        with self._lock:
            return list(self._sources)

    def label_version(self, name: str, label: str) -> int | None:
        """The version label points at in the config being served, None if it has no such label."""
        with self._lock:
            source = self._sources.get(name)
            return source.labels.get(label) if source else None

    def sources(self) -> list[ModelSource]:
        with self._lock:
            return list(self._sources.values())

    def available_versions(self, name: str) -> list[int]:
        with self._lock:
            return sorted(v for v, r in self._records.get(name, {}).items() if r.state == State.AVAILABLE)

    # --- lifecycle (poller thread) ------------------------------------------------------------

    def replace_sources(self, sources: list[ModelSource]) -> None:
        """Take a re-read config: new models start loading at the next refresh, removed ones unload."""
        with self._lock:
            old_labels = {name: source.labels for name, source in self._sources.items()}
            self._sources = {source.name: source for source in sources}
            for source in sources:
                self._records.setdefault(source.name, {})
        for source in sources:
            if old_labels.get(source.name, {}) != source.labels:
                log.info("labels of %s: %s", source.name, _format_labels(source.labels))

    def refresh(self) -> None:
        """One poll: load the versions each policy wants that are not loaded, then unload the dropped."""
        with self._refresh_lock:
            with self._lock:
                sources = list(self._sources.values())
                removed = [name for name in self._records if name not in self._sources]
            aspired = self._poll_file_system(sources)
            if aspired is not None:
                for source in sources:
                    self._refresh_model(source, aspired[source.name])
            for name in removed:
                self._unload(name, [v for v in self.available_versions(name)])

    def _poll_file_system(self, sources: list[ModelSource]) -> dict[str, list[VersionDirectory]] | None:
        """Each model's aspired versions, or None when a base path cannot be listed.

        ``PollFileSystemForConfig`` stops at the first base path it cannot list and the poll
        emits nothing, for any model: a base path that is transiently unavailable must not
        unload what serves from it.
        """
        aspired = {}
        for source in sources:
            try:
                listing = list_base_path(source.base_path)
            except OSError as exc:
                self._say_once(
                    "file system",
                    "FileSystemStoragePathSource encountered a filesystem access error: %s",
                    _listing_error(source, exc),
                )
                return None
            self._log_ignored_children(source, listing)
            aspired[source.name] = aspired_versions(source.policy, listing)
            self._log_duplicates(source, listing, aspired[source.name])
        self._said.pop("file system", None)
        return aspired

    def _refresh_model(self, source: ModelSource, aspired: list[VersionDirectory]) -> None:
        wanted = [directory.version for directory in aspired]
        with self._lock:
            records = self._records[source.name]
            failed = self._failed.setdefault(source.name, set())
            forgotten = failed - set(wanted)  # FlushServables: a failed version no longer aspired
            failed -= forgotten
            to_load = [
                directory
                for directory in aspired
                if directory.version not in records
                or records[directory.version].state == State.END
                and directory.version not in failed
            ]
        for version in sorted(forgotten):
            log.info("forgot the failed %s version %d: it is no longer aspired", source.name, version)
        for directory in to_load:
            self._load(source, directory)
        with self._lock:
            records = self._records[source.name]
            any_wanted_available = any(records[v].state == State.AVAILABLE for v in wanted if v in records)
            dropped = [v for v, r in records.items() if r.state == State.AVAILABLE and v not in wanted]
        if dropped and (any_wanted_available or not wanted):
            self._unload(source.name, dropped)

    def _log_ignored_children(self, source: ModelSource, listing: BasePathListing) -> None:
        ignored = listing.ignored()
        for name in sorted(ignored - self._ignored.get(source.name, set())):
            log.info(
                "ignoring %s under %s: not a version number (an int64 directory name)", name, source.base_path
            )
        self._ignored[source.name] = ignored

    def _log_duplicates(
        self, source: ModelSource, listing: BasePathListing, aspired: list[VersionDirectory]
    ) -> None:
        by_version = listing.versions()
        for directory in aspired:
            others = [name for name in by_version[directory.version] if name != directory.name]
            if others:
                self._say_once(
                    f"duplicates of {source.name} {directory.version}",
                    "Duplicate version directories detected. Version %d will be loaded from %s, %s "
                    "will be ignored.",
                    directory.version,
                    directory.name,
                    ", ".join(others),
                )

    def _say_once(self, topic: str, message: str, *args) -> None:
        """Log message unless the same was last said about topic (a poll repeats every second)."""
        if self._said.get(topic) != (message, args):
            self._said[topic] = (message, args)
            log.info(message, *args)

    def _still_aspired(self, source: ModelSource, version: int) -> bool:
        """Whether the policy still wants version (a retry is cancelled once it does not)."""
        try:
            listing = list_base_path(source.base_path)
        except OSError:
            return True  # no callback, so nothing is un-aspired
        return any(directory.version == version for directory in aspired_versions(source.policy, listing))

    def _load(self, source: ModelSource, directory: VersionDirectory) -> None:
        """Load (and warm up) one version, retried as TF Serving's LoaderHarness::Load retries."""
        version = directory.version
        self._set(source.name, VersionRecord(version, State.LOADING))
        version_dir = source.base_path / directory.name
        what = f"Loading servable: {{name: {source.name} version: {version}}}"
        for attempt in range(self._retries.max_retries + 1):
            if attempt:
                if self._stopping.wait(self._retries.interval_seconds) or not self._still_aspired(
                    source, version
                ):
                    log.info("Retrying of %s was cancelled.", what)
                    break
                log.info("Retrying of %s retry: %d", what, attempt)
            try:
                servable = self._load_once(source.name, version, version_dir)
            except Exception as exc:  # noqa: BLE001 - a broken version must not stop the server
                error = exc
                log.info("%s failed: %s", what, exc)
                continue
            self._set(source.name, VersionRecord(version, State.AVAILABLE, servable=servable))
            log.info("loaded %s version %d", source.name, version)
            return
        else:
            if self._retries.max_retries:
                log.info("Retrying of %s exhausted max_num_retries: %d", what, self._retries.max_retries)
        code = getattr(error, "code", grpc.StatusCode.UNKNOWN).value[0]
        with self._lock:
            self._records[source.name][version] = VersionRecord(
                version, State.END, error=str(error), error_code=code
            )
            self._failed.setdefault(source.name, set()).add(version)
        log.info("failed to load %s version %d: %s", source.name, version, error)

    def _load_once(self, name: str, version: int, version_dir: Path) -> Servable:
        try:
            servable = load_servable(name, version, version_dir, self._threads, self._tags)
        except Exception:
            self._count_load_attempt(version_dir, ok=False)
            raise
        self._count_load_attempt(version_dir, ok=True)
        if self._warm_up is not None:
            self._warm_up(servable)
        return servable

    def _count_load_attempt(self, version_dir: Path, ok: bool) -> None:
        if self._on_load_attempt is not None:
            self._on_load_attempt(str(version_dir), ok)

    def _unload(self, name: str, versions: list[int]) -> None:
        for version in sorted(versions):
            self._set(name, VersionRecord(version, State.UNLOADING))
            # In-flight requests keep their own reference; dropping ours is the whole unload.
            self._set(name, VersionRecord(version, State.END))
            log.info("unloaded %s version %d", name, version)

    def _set(self, name: str, record: VersionRecord) -> None:
        with self._lock:
            self._records.setdefault(name, {})[record.version] = record


def _listing_error(source: ModelSource, exc: OSError) -> str:
    """Why a base path cannot be listed, as TF Serving words it for a missing one."""
    if isinstance(exc, FileNotFoundError):
        return (
            f"Could not find base path {source.base_path} for servable {source.name} with error "
            f"NOT_FOUND: {source.base_path} not found"
        )
    return f"{source.base_path}; {exc.strerror or exc}"


def _format_labels(labels: dict[str, int]) -> str:
    return ", ".join(f"{label} -> {version}" for label, version in sorted(labels.items())) or "(none)"
