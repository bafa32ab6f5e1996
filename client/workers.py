"""Bulk runs: many (input, output) jobs through one client, or through N worker processes.

Each input is its own run (``ThresholdClient.predict_file``): checked, written atomically, and
on failure reported with its own exit code while the others go on. Failures that no other input
can escape (the server is gone, the model is missing, the output directory cannot be written)
stop the run; the inputs not reached are reported as not run. An input whose output already
exists is skipped, so a run that was interrupted or restarted picks up where it stopped.

With ``workers > 1`` each worker is a separate process (spawned, so none inherits gRPC state)
with its own client and channel, taking the next input as it finishes one: N processes use N
cores for encoding, checking and writing, which one process's threads cannot (the GIL).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from multiprocessing import get_context

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

    def count(self, status: str) -> int:
        return sum(result.status == status for result in self.results)

    @property
    def exit_code(self) -> int:
        """0 when every input was written or skipped, else the first failure's code (input order)."""
        failed = [result.exit_code for result in self.results if result.status == "failed"]
        if failed:
            return failed[0]
        # Not run without a failure only after an interrupt.
        return 130 if self.count("not run") else 0

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
            "ok": self.exit_code == 0, "exit_code": self.exit_code, "inputs": len(self.results),
            **{status.replace(" ", "_"): self.count(status) for status in STATUSES},
            "values": self.values, "seconds": round(self.seconds, 6),
            "values_per_second": round(self.values / self.seconds, 1) if self.seconds > 0 else None,
            "answered_by": self.answered_by, "results": [result.as_dict() for result in self.results],
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
        summary = client_factory().predict_file(job.source, output=job.output, **options)
    except ThresholdClientError as error:
        message = str(error)
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


_WORKER_CLIENT: _LazyClient | None = None


def _start_worker(client_options: dict) -> None:
    global _WORKER_CLIENT
    _WORKER_CLIENT = _LazyClient(client_options)


def _predict_in_worker(job: InputJob, options: dict) -> InputResult:
    return predict_one(_WORKER_CLIENT, job, options)


def run_jobs(jobs: list[InputJob], client_options: dict, predict_options: dict | None = None, *,
             workers: int = 1, on_result: Callable[[InputResult], object] | None = None) -> BulkResult:
    """Run every job; return their results in job order.

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
    finally:
        for index, job in enumerate(jobs):
            results.setdefault(index, InputResult(str(job.source), str(job.output), "not run"))
    return BulkResult([results[index] for index in range(len(jobs))], time.perf_counter() - started)


def _run_in_processes(jobs, client_options, predict_options, workers, record) -> None:
    pool = ProcessPoolExecutor(workers, mp_context=get_context("spawn"), initializer=_start_worker,
                               initargs=(client_options,))
    pending: dict[Future, int] = {}
    queue = iter(enumerate(jobs))
    stopping = False

    def refill() -> None:  # a few queued per worker, not all: after a stop nothing new starts
        for index, job in queue:
            pending[pool.submit(_predict_in_worker, job, predict_options)] = index
            if len(pending) >= 2 * workers:
                return

    try:
        refill()
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                index = pending.pop(future)
                if future.cancelled():
                    continue
                try:
                    result = future.result()
                except Exception as error:  # noqa: BLE001 - a worker process died (killed, out of memory)
                    job = jobs[index]
                    result = InputResult(str(job.source), str(job.output), "failed", 1,
                                         f"{job.source}: the worker process died ({error})", stops_run=True)
                stopping |= record(index, result)
            if stopping:  # drop what has not started; what runs finishes and is reported
                for future in [future for future in pending if future.cancel()]:
                    del pending[future]
            else:
                refill()
    finally:
        for future in pending:
            future.cancel()
        pool.shutdown(wait=True, cancel_futures=True)
