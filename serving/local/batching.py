"""Server-side batching: merge small concurrent Predict calls into one model call, like --enable_batching.

TF Serving wraps the whole session for batching (``batching/batching_session.cc``, set up by
``servables/tensorflow/bundle_factory_util.cc`` for every signature, with a default scheduler for
any other feed/fetch set), so every Run goes through a batch, warmup replays included, and the
batch's rules apply to every signature: each input needs a leading dimension of the same size
(``batching_util.h``, ComputeTensorBatchSize), and each output must have a leading dimension equal
to the batch's rows to be split back (``SplitOutputTensors``); a signature with a scalar output
fails with FAILED_PRECONDITION ``Batched output tensor has 0 dimensions``.

Requests queue per (servable, signature, dtypes and row shape); a batch thread takes the oldest
queue once it holds max_batch_size rows or its oldest request has waited batch_timeout_micros,
concatenates the inputs along axis 0, calls the model once and hands each request its rows.
Unlike TF Serving, requests whose rows differ in width are queued apart instead of failing the
whole batch, and requests of no rows or of max_batch_size rows or more run on their own (their
outputs held to the same rules) instead of being merged, split or refused.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field

import grpc
import numpy as np

from serving.local.errors import InvalidRequest, RequestError, ServerShuttingDown
from serving.local.flags import ServerOptions
from serving.local.metrics import ServerMetrics
from serving.local.servable import RuntimeFailed, Servable


@dataclass(frozen=True)
class BatchingSettings:
    max_batch_size: int
    batch_timeout_s: float
    num_batch_threads: int


def batching_settings(options: ServerOptions) -> BatchingSettings:
    return BatchingSettings(
        options.max_batch_size, options.batch_timeout_micros / 1e6, options.num_batch_threads
    )


@dataclass
class _Task:
    servable: Servable
    signature: str
    inputs: dict[str, np.ndarray]
    rows: int
    enqueued: float = field(default_factory=time.monotonic)
    done: threading.Event = field(default_factory=threading.Event)
    outputs: dict[str, np.ndarray] | None = None
    error: Exception | None = None


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


class Batcher:
    """Queues of mergeable requests and the threads that run them; run() blocks until its rows are back."""

    def __init__(self, settings: BatchingSettings, metrics: ServerMetrics):
        self.settings = settings
        self._metrics = metrics
        self._queues: dict[tuple, deque[_Task]] = {}
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
        if rows == 0 or rows >= self.settings.max_batch_size:
            outputs = servable.run(signature, inputs, output_keys)
            check_batched_outputs(outputs, rows)
            return outputs
        key = (
            id(servable),
            signature,
            tuple((alias, array.dtype.str, array.shape[1:]) for alias, array in sorted(inputs.items())),
        )
        task = _Task(servable, signature, inputs, rows)
        with self._cond:
            if self._closed:
                raise ServerShuttingDown("the server is shutting down")
            self._queues.setdefault(key, deque()).append(task)
            self._cond.notify()
        task.done.wait()
        if task.error is not None:
            raise task.error
        return {key: task.outputs[key] for key in output_keys}

    def close(self) -> None:
        """Run what is queued, then stop the batch threads."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        for thread in self._threads:
            thread.join(timeout=30)

    def _take_batch(self) -> list[_Task] | None:
        with self._cond:
            while True:
                ready = [(queue[0].enqueued, key) for key, queue in self._queues.items() if queue]
                if not ready:
                    if self._closed:
                        return None
                    self._cond.wait()
                    continue
                _, key = min(ready)
                queue = self._queues[key]
                deadline = queue[0].enqueued + self.settings.batch_timeout_s
                while (
                    not self._closed
                    and queue
                    and time.monotonic() < deadline
                    and sum(t.rows for t in queue) < self.settings.max_batch_size
                ):
                    self._cond.wait(max(deadline - time.monotonic(), 0))
                if not queue:
                    continue  # another batch thread took it meanwhile
                batch, rows = [], 0
                while queue and (not batch or rows + queue[0].rows <= self.settings.max_batch_size):
                    rows += queue[0].rows
                    batch.append(queue.popleft())
                if not queue:
                    del self._queues[key]
                return batch

    def _work(self) -> None:
        while (batch := self._take_batch()) is not None:
            self._run_batch(batch)

    def _run_batch(self, batch: list[_Task]) -> None:
        first = batch[0]
        started = time.monotonic()
        for task in batch:
            self._metrics.record_queuing((started - task.enqueued) * 1e6)
        try:
            if len(batch) == 1:
                first.outputs = first.servable.run(first.signature, first.inputs)
                check_batched_outputs(first.outputs, first.rows)
            else:
                merged = {
                    alias: np.concatenate([task.inputs[alias] for task in batch]) for alias in first.inputs
                }
                outputs = first.servable.run(first.signature, merged)
                check_batched_outputs(outputs, sum(task.rows for task in batch))
                start = 0
                for task in batch:
                    task.outputs = {key: value[start : start + task.rows] for key, value in outputs.items()}
                    start += task.rows
            self._metrics.record_batch(first.servable.name, first.signature, sum(task.rows for task in batch))
        except RequestError as exc:
            for task in batch:
                task.error = exc
        except Exception as exc:  # noqa: BLE001 - every waiting request must get an answer
            for task in batch:
                task.error = exc
        finally:
            for task in batch:
                task.done.set()
