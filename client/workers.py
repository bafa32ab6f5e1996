"""Bulk runs: many (input, output) jobs through one client, or through N worker processes.

Each input is its own run (``ThresholdClient.predict_file``): checked, written atomically, and
on failure reported with its own exit code while the others go on. Failures that no other input
can escape (the server is gone, the model is missing, the output directory cannot be written)
stop the run (inputs being written are abandoned, without partial files); the inputs not
finished are reported as not run. An input whose output already exists is skipped, so a run
that was interrupted or restarted picks up where it stopped.

With ``workers > 1`` each worker is a separate process with its own client and channel, taking
the next input as it finishes one: N processes use N cores for encoding, checking and writing,
which one process's threads cannot (the GIL).
"""

from __future__ import annotations

import contextlib
import signal
import sys
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from multiprocessing import get_all_start_methods, get_context

from client.cli_hints import with_hint
from client.errors import ModelNotFound, OutputFileError, ServerUnavailable, ThresholdClientError
from client.inputs import InputJob

#: Failures that would fail every other input too: the run stops instead of trying each.
RUN_STOPPING = (ServerUnavailable, ModelNotFound, OutputFileError)
STATUSES = ("written", "skipped", "failed", "not run")


@dataclass
class InputResult:
    """What happened to one input: written, skipped (output already complete), failed, or not run."""

    source: str
    output: str
    status: str
    exit_code: int = 0
    error: str | None = None
    rows: int = 0
    values: int = 0
    batches: int = 0
    seconds: float = 0.0
    answered_by: dict[str, int] = field(default_factory=dict)
    stops_run: bool = False

    def as_dict(self) -> dict:
        data = asdict(self)
        del data["stops_run"]
        return data


@dataclass
class BulkResult:
    """Every input's result, in input order, and the totals."""

    results: list[InputResult]
    seconds: float
    interrupted: bool = False
    interrupt_exit_code: int = 130  # the CLI's code for the signal that stopped it (143: SIGTERM)

    def count(self, status: str) -> int:
        return sum(result.status == status for result in self.results)

    @property
    def exit_code(self) -> int:
        """0 when every input was written or skipped, else the first failure's code (input order);
        ``interrupt_exit_code`` after an interrupt."""
        if self.interrupted:
            return self.interrupt_exit_code
        failed = [result.exit_code for result in self.results if result.status == "failed"]
        return failed[0] if failed else 0

    @property
    def values(self) -> int:
        return sum(result.values for result in self.results if result.status == "written")

    @property
    def answered_by(self) -> dict[str, int]:
        total: dict[str, int] = {}
        for result in self.results:
            for address, count in result.answered_by.items():
                total[address] = total.get(address, 0) + count
        return dict(sorted(total.items(), key=lambda item: (-item[1], item[0])))

    def as_dict(self) -> dict:
        """JSON-ready: what the CLI prints with --json."""
        return {
            "ok": self.exit_code == 0,
            "exit_code": self.exit_code,
            "interrupted": self.interrupted,
            "inputs": len(self.results),
            **{status.replace(" ", "_"): self.count(status) for status in STATUSES},
            "values": self.values,
            "seconds": round(self.seconds, 6),
            "values_per_second": round(self.values / self.seconds, 1) if self.seconds > 0 else None,
            "answered_by": self.answered_by,
            "results": [result.as_dict() for result in self.results],
        }


def predict_one(client_factory: Callable[[], object], job: InputJob, options: dict) -> InputResult:
    """Run one job (``options`` are ``predict_file``'s keywords); never raises a client error."""
    result = InputResult(str(job.source), str(job.output), "skipped")
    if job.output.exists():  # written by temp file + rename: if it is there, it is complete
        return result
    if job.source.suffix != ".npz":  # in a mixed directory, --key names the array of each .npz
        options = {**options, "key": None}
    started = time.perf_counter()
    try:
        try:
            job.output.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputFileError(
                f"cannot create output directory {job.output.parent}: {exc.strerror or exc}"
            ) from None
        summary = client_factory().predict_file(job.source, output=job.output, **options)
    except ThresholdClientError as error:
        message = with_hint(error)  # the bulk run's report, printed by the CLI
        if str(job.source) not in message:
            message = f"{job.source}: {message}"
        result.status, result.exit_code, result.error = "failed", error.exit_code, message
        result.stops_run = isinstance(error, RUN_STOPPING)
        summary = getattr(error, "summary", None)
        if summary is not None:
            result.answered_by = summary.answered_by
        return result
    finally:
        result.seconds = time.perf_counter() - started
    result.status = "written"
    result.rows, result.values, result.batches = summary.rows, summary.values, summary.stats.requests
    result.answered_by = summary.answered_by
    return result


class _LazyClient:
    """One ThresholdClient per process, opened on first use (so opening errors are an input's result)."""

    def __init__(self, client_options: dict):
        self.options = client_options
        self.client = None

    def __call__(self):
        if self.client is None:
            from client.api import ThresholdClient

            self.client = ThresholdClient(**self.options)
        return self.client

    def close(self) -> None:
        if self.client is not None:
            self.client.close()


class _Stopped(Exception):
    """Raised inside a worker's run when the parent asks the workers to stop (Ctrl-C, SIGTERM)."""


_WORKER: dict = {}  # per worker process: its client and the parent's stop event


def _start_worker(client_options: dict, stop) -> None:
    # Ctrl-C (or a SIGTERM to the group) reaches every process; the parent alone decides, and
    # tells the workers through ``stop``, which they look at after every answered batch, so
    # that they remove their temp files instead of dying with them.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    _WORKER.update(client=_LazyClient(client_options), stop=stop)


def _check_stop(_values: int) -> None:
    if _WORKER["stop"].is_set():
        raise _Stopped


def _predict_in_worker(job: InputJob, options: dict) -> InputResult:
    try:
        return predict_one(_WORKER["client"], job, {**options, "progress": _check_stop})
    except _Stopped:  # predict_file removed its temp file on the way out
        return InputResult(str(job.source), str(job.output), "not run")


def run_jobs(
    jobs: list[InputJob],
    client_options: dict,
    predict_options: dict | None = None,
    *,
    workers: int = 1,
    on_result: Callable[[InputResult], object] | None = None,
) -> BulkResult:
    """Run every job; return their results in job order.

    A KeyboardInterrupt (Ctrl-C; the CLI turns SIGTERM into one too) stops the run: inputs being
    written are abandoned (no partial file), the rest are reported as not run, and the result's
    exit code is 130.

    Args:
        jobs: from ``client.inputs.expand_inputs`` (and ``Shard.select``).
        client_options: ``ThresholdClient`` keywords (address, model, tls, lb_policy, ...).
        predict_options: ``predict_file`` keywords other than output (key, compact, concurrency, ...).
        workers: processes; 1 runs the jobs one after another in this process.
        on_result: called with each result as it is known (for progress lines).
    """
    predict_options = predict_options or {}
    started = time.perf_counter()
    results: dict[int, InputResult] = {}

    def record(index: int, result: InputResult) -> bool:
        results[index] = result
        if on_result is not None:
            on_result(result)
        return result.stops_run

    interrupted = False
    try:
        if workers <= 1 or len(jobs) <= 1:
            client = _LazyClient(client_options)
            try:
                for index, job in enumerate(jobs):
                    if record(index, predict_one(client, job, predict_options)):
                        break
            finally:
                client.close()
        else:
            _run_in_processes(jobs, client_options, predict_options, min(workers, len(jobs)), record)
    except KeyboardInterrupt:
        interrupted = True
    for index, job in enumerate(jobs):
        results.setdefault(index, InputResult(str(job.source), str(job.output), "not run"))
    return BulkResult(
        [results[index] for index in range(len(jobs))], time.perf_counter() - started, interrupted
    )


def _pool_context():
    """fork where this process has not loaded gRPC yet (the CLI's case), else spawn.

    A forked worker starts at once, with no new interpreter and no re-imports (about a second
    sooner on a busy machine); but gRPC's core threads and sockets do not survive a fork, so a
    process that already has gRPC loaded spawns fresh interpreters instead.
    """
    if "fork" in get_all_start_methods() and "grpc" not in sys.modules:
        return get_context("fork")
    return get_context("spawn")


def _run_in_processes(jobs, client_options, predict_options, workers, record) -> None:
    """One job per worker at a time (none queued behind a busy worker, so a stop starts nothing new)."""
    context = _pool_context()
    stop = context.Event()
    pool = ProcessPoolExecutor(
        workers, mp_context=context, initializer=_start_worker, initargs=(client_options, stop)
    )
    pending: dict[Future, int] = {}
    queue = iter(enumerate(jobs))

    def collect(futures) -> bool:
        stopping = False
        for future in futures:
            index = pending.pop(future)
            try:
                result = future.result()
            except Exception as error:  # noqa: BLE001 - a worker process died (killed, out of memory)
                job = jobs[index]
                result = InputResult(
                    str(job.source),
                    str(job.output),
                    "failed",
                    1,
                    f"{job.source}: the worker process died ({error})",
                    stops_run=True,
                )
            if result.status != "not run":
                stopping |= record(index, result)
        return stopping

    try:
        while True:
            for index, job in queue:
                pending[pool.submit(_predict_in_worker, job, predict_options)] = index
                if len(pending) >= workers:
                    break
            if not pending or collect(wait(pending, return_when=FIRST_COMPLETED).done):
                break
        stop.set()  # a run-stopping failure: what still runs is abandoned
    except KeyboardInterrupt:
        stop.set()
        raise
    finally:
        # Each worker stops within one batch; their answers are recorded so the summary is exact.
        while pending:
            with contextlib.suppress(KeyboardInterrupt):
                collect(wait(pending).done)
        pool.shutdown(wait=True, cancel_futures=True)
