"""Server-side batching: merge small concurrent Predict calls into one model call, like --enable_batching.

TF Serving wraps the whole session for batching (``batching/batching_session.cc``, set up by
``servables/tensorflow/bundle_factory_util.cc`` for every signature, with a default scheduler for
any other feed/fetch set), so every Run goes through a batch, warmup replays included, and the
batch's rules apply to every signature: each input needs a leading dimension of the same size
(``batching_util.h``, ComputeTensorBatchSize), and each output must have a leading dimension equal
to the batch's rows to be split back (``SplitOutputTensors``); a signature with a scalar output
fails with FAILED_PRECONDITION ``Batched output tensor has 0 dimensions``.

The queues follow SharedBatchScheduler (tensorflow/core/kernels/batching_util/
shared_batch_scheduler.h) with the settings of serving.local.batching_parameters: a request of
more than max_batch_size rows is refused (INVALID_ARGUMENT); requests join the open batch of
their queue, which closes when the next does not fit; a full queue (max_enqueued_batches)
answers UNAVAILABLE; with enable_large_batch_splitting a request is cut to fill the open batch
and then whole batches of max_execution_batch_size rows, and its rows come back together. A batch
thread runs the earliest batch that is closed, full, or whose first request has waited
batch_timeout_micros: it concatenates the inputs along axis 0, calls the model once and hands
each request its rows. Requests queue per servable, signature and input dtypes; as in
batching_session.cc MergeInputTensors, a batch whose requests differ in shape past the first
dimension fails for all of them (FAILED_PRECONDITION; pad_variable_length_inputs is not read).
Batches are not padded to allowed_batch_sizes (padding rows are cut off again; the batch size
metric records the padded size).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field

import grpc
import numpy as np

from serving.local.batching_parameters import BatchingSettings
from serving.local.errors import InvalidRequest, RequestError, ServerShuttingDown
from serving.local.metrics import ServerMetrics
from serving.local.servable import RuntimeFailed, Servable


@dataclass
class _Task:
    """One Run: its inputs, the pieces it was split into, and their outputs as they come back."""

    servable: Servable
    signature: str
    inputs: dict[str, np.ndarray]
    rows: int
    enqueued: float = field(default_factory=time.monotonic)
    done: threading.Event = field(default_factory=threading.Event)
    parts: list[dict[str, np.ndarray] | None] = field(default_factory=list)
    pending: int = 0
    outputs: dict[str, np.ndarray] | None = None
    error: Exception | None = None


@dataclass
class _Piece:
    """Rows [start, stop) of a task, in one batch (the whole task unless it was split)."""

    task: _Task
    index: int  # which of the task's parts
    start: int
    stop: int


@dataclass
class _Batch:
    pieces: list[_Piece] = field(default_factory=list)
    size: int = 0
    started: float = 0.0  # when its first piece came


class _Queue:
    """Queue<TaskType>: batches in order, the last one open; the others are closed, waiting to run."""

    def __init__(self) -> None:
        self.batches: deque[_Batch] = deque([_Batch()])

    @property
    def open(self) -> _Batch:
        return self.batches[-1]

    def add(self, piece: _Piece, limit: int) -> None:
        """Into the open batch, after closing it if the piece does not fit (StartNewBatch)."""
        rows = piece.stop - piece.start
        if self.open.size + rows > limit:
            self.batches.append(_Batch())
        if not self.open.pieces:
            self.open.started = time.monotonic()
        self.open.pieces.append(piece)
        self.open.size += rows

    def ready(self, settings: BatchingSettings, closing: bool) -> float | None:
        """When its next batch can run (now or later), or None if it has none."""
        if len(self.batches) > 1:
            return self.batches[0].started
        if not self.open.pieces:
            return None
        if closing or self.open.size >= settings.execution_limit:
            return self.open.started
        return self.open.started + settings.batch_timeout_micros / 1e6

    def take(self) -> _Batch:
        if len(self.batches) == 1:
            self.batches.append(_Batch())
        return self.batches.popleft()


def batch_rows(inputs: dict[str, np.ndarray]) -> int:
    """The rows of a Run's inputs, with the errors TF Serving's ComputeTensorBatchSize gives."""
    if not inputs:
        raise InvalidRequest("Batching Run() must have at least one input tensor")
    sizes = set()
    for array in inputs.values():
        if np.ndim(array) == 0:
            raise InvalidRequest("Batching Run() input tensors must have at least one dimension")
        sizes.add(np.shape(array)[0])
    if len(sizes) != 1:
        raise InvalidRequest("Batching Run() input tensors must have equal 0th-dimension size")
    return sizes.pop()


def check_batched_outputs(outputs: dict[str, np.ndarray], rows: int) -> None:
    """Refuse outputs a batch cannot be split back from, as SplitOutputTensors does."""
    for value in outputs.values():
        if np.ndim(value) == 0:
            raise RuntimeFailed("Batched output tensor has 0 dimensions", grpc.StatusCode.FAILED_PRECONDITION)
        if np.shape(value)[0] != rows:
            raise RuntimeFailed(
                "Batched output tensor's 0th dimension does not equal the sum of the 0th dimension "
                "sizes of the input tensors",
                grpc.StatusCode.FAILED_PRECONDITION,
            )


class QueueFull(RequestError):
    """ValidateBatchTaskQueueCapacity: the queue holds max_enqueued_batches already."""

    code = grpc.StatusCode.UNAVAILABLE


class Batcher:
    """Queues of mergeable requests and the threads that run them; run() blocks until its rows are back."""

    def __init__(self, settings: BatchingSettings, metrics: ServerMetrics):
        self.settings = settings
        self._metrics = metrics
        self._queues: dict[tuple, _Queue] = {}
        self._cond = threading.Condition()
        self._closed = False
        self._threads = [
            threading.Thread(target=self._work, name=f"batch-{i}", daemon=True)
            for i in range(settings.num_batch_threads)
        ]
        for thread in self._threads:
            thread.start()

    def run(
        self, servable: Servable, signature: str, inputs: dict[str, np.ndarray], output_keys: tuple[str, ...]
    ) -> dict[str, np.ndarray]:
        """The model's outputs (output_keys of them) for inputs, computed in a merged batch where possible."""
        rows = batch_rows(inputs)
        key = (
            id(servable),
            signature,
            tuple((alias, array.dtype.str) for alias, array in sorted(inputs.items())),
        )
        task = _Task(servable, signature, inputs, rows)
        with self._cond:
            if self._closed:
                raise ServerShuttingDown("the server is shutting down")
            self._schedule(self._queues.setdefault(key, _Queue()), task)
            self._cond.notify_all()
        task.done.wait()
        if task.error is not None:
            raise task.error
        return {key: task.outputs[key] for key in output_keys}

    def _schedule(self, queue: _Queue, task: _Task) -> None:
        """ScheduleWithoutOrEagerSplitImpl: check the queue's capacity, split the task to fill the
        open batch and then whole execution batches (SplitInputTask), enqueue the pieces."""
        settings, rows = self.settings, task.rows
        limit = settings.execution_limit
        if rows > settings.max_batch_size:
            raise InvalidRequest(
                f"Task size {rows} is larger than maximum input batch size {settings.max_batch_size}"
            )
        open_size, enqueued = queue.open.size, len(queue.batches)
        if settings.enable_large_batch_splitting:
            capacity = (settings.max_enqueued_batches - enqueued) * limit + (limit - open_size)
            if rows > capacity:
                raise QueueFull(
                    "The batch scheduling queue to which this task was submitted is full; task size "
                    f"is {rows} but scheduling capacity is only {capacity} (num_enqueued_batches="
                    f"{enqueued}, max_enqueued_batches={settings.max_enqueued_batches}, "
                    f"open_batch_size={open_size}, max_execution_batch_size={limit})"
                )
        elif open_size + rows > settings.max_batch_size and enqueued >= settings.max_enqueued_batches:
            raise QueueFull(
                "The batch scheduling queue to which this task was submitted is full; currently "
                f"{enqueued} batches enqueued and max_enqueued_batches is {settings.max_enqueued_batches}"
            )
        sizes = [rows]
        room = limit - open_size
        if settings.enable_large_batch_splitting and rows > room:
            sizes = [room] if room > 0 else []
            left = rows - max(room, 0)
            while left > 0:
                sizes.append(min(left, limit))
                left -= sizes[-1]
        task.parts = [None] * len(sizes)
        task.pending = len(sizes)
        start = 0
        for index, size in enumerate(sizes):
            queue.add(_Piece(task, index, start, start + size), limit)
            start += size

    def close(self) -> None:
        """Run what is queued, then stop the batch threads."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        for thread in self._threads:
            thread.join(timeout=30)

    def _take_batch(self) -> _Batch | None:
        """The batch to run next: the earliest that may run (a closed one, or an open one that is
        full, timed out, or closing); None once closed and empty."""
        with self._cond:
            while True:
                now = time.monotonic()
                times = {
                    key: at
                    for key, queue in self._queues.items()
                    if (at := queue.ready(self.settings, self._closed)) is not None
                }
                due = [(at, key) for key, at in times.items() if at <= now]  # a closed batch is always due
                if due:
                    _, key = min(due, key=lambda item: item[0])
                    queue = self._queues[key]
                    batch = queue.take()
                    if not queue.open.pieces and len(queue.batches) == 1:
                        del self._queues[key]
                    return batch
                if self._closed and not times:
                    return None
                self._cond.wait(max(min(times.values()) - now, 0) if times else None)

    def _work(self) -> None:
        while (batch := self._take_batch()) is not None:
            self._run_batch(batch)

    def _run_batch(self, batch: _Batch) -> None:
        first = batch.pieces[0].task
        started = time.monotonic()
        for piece in batch.pieces:
            self._metrics.record_queuing((started - piece.task.enqueued) * 1e6)
        try:
            if len(batch.pieces) == 1 and batch.size == first.rows:
                merged = first.inputs
            else:
                self._check_shapes(batch)
                merged = {
                    alias: np.concatenate([p.task.inputs[alias][p.start : p.stop] for p in batch.pieces])
                    for alias in first.inputs
                }
            outputs = first.servable.run(first.signature, merged)
            check_batched_outputs(outputs, batch.size)
            self._metrics.record_batch(first.servable.name, first.signature, self.settings.padded(batch.size))
            offset = 0
            for piece in batch.pieces:
                rows = piece.stop - piece.start
                piece.task.parts[piece.index] = {
                    key: value[offset : offset + rows] for key, value in outputs.items()
                }
                offset += rows
        except Exception as exc:  # noqa: BLE001 - every waiting request must get an answer
            for piece in batch.pieces:
                piece.task.error = exc
        finally:
            for piece in batch.pieces:
                self._finish_piece(piece.task)

    @staticmethod
    def _check_shapes(batch: _Batch) -> None:
        """MergeInputTensors without padding: every task's tensors must have the first task's
        shape past dimension 0, else the whole batch fails."""
        first = batch.pieces[0].task
        signature = first.servable.signature_defs[first.signature]
        for piece in batch.pieces[1:]:
            for alias, array in sorted(piece.task.inputs.items()):
                if array.shape[1:] != first.inputs[alias].shape[1:]:
                    name = signature.inputs[alias].name
                    raise RuntimeFailed(
                        f"Tensors with name '{name}' from different tasks have different shapes and "
                        "padding is turned off. Set pad_variable_length_inputs to true, or ensure "
                        "that all tensors with the same name have equal dimensions starting with "
                        "the first dim.",
                        grpc.StatusCode.FAILED_PRECONDITION,
                    )

    def _finish_piece(self, task: _Task) -> None:
        """One piece of task is back; with the last, its outputs are whole (pieces in row order)."""
        with self._cond:
            task.pending -= 1
            if task.pending:
                return
        if task.error is None:
            parts = task.parts
            task.outputs = (
                parts[0]
                if len(parts) == 1
                else {key: np.concatenate([part[key] for part in parts]) for key in parts[0]}
            )
        task.done.set()
