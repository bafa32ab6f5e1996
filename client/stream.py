"""Batching: how big each request is, and the loop that keeps requests in flight.

Requests are sized to fit the message budget (gRPC's 4 MB default unless told otherwise) with
room for the response; since the rule is elementwise, a row too big for one message is sent in
slices of columns. Results are placed by (row, col), so completion order never matters.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Executor, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass

import grpc
import numpy as np
from google.protobuf.message import DecodeError

from client import wire
from client.checker import ResponseChecker
from client.errors import ResponseMismatch, ServerUnavailable, ThresholdClientError, rpc_details
from client.reader import InputArray
from client.tensors import TensorDecodeError

MESSAGE_OVERHEAD = 64 * 1024  # model spec, keys, shape and framing, generously
MIN_REQUEST_BYTES = 256 * 1024  # below this, per-RPC overhead starts to dominate


@dataclass(frozen=True)
class BatchPlan:
    """Request size: whole rows per request, or a slice of one row when a row alone is too big."""

    rows: int
    cols: int
    note: str | None = None


def plan_batches(cols: int, out_itemsize: int, max_message_bytes: int, batch_size: int | None = None,
                 rows: int | None = None, concurrency: int = 1) -> BatchPlan:
    """Rows (and columns) per request so that request and response fit max_message_bytes.

    Without a batch_size, requests are as large as fit, but small enough that a run of ``rows``
    rows makes at least two requests per in-flight slot (so sending, serving and checking
    overlap), and never under MIN_REQUEST_BYTES (so small inputs are not chopped into tiny RPCs).
    """
    budget = max(max_message_bytes - MESSAGE_OVERHEAD, 1024)
    per_value = max(4, out_itemsize)
    fit = budget // (cols * per_value)
    if fit == 0:  # the rule is elementwise, so a row can be split across requests
        return BatchPlan(1, budget // per_value,
                         f"rows of {cols} values exceed the {max_message_bytes}-byte message budget; "
                         "each row is sent in slices")
    if batch_size is None:
        if rows is None:
            return BatchPlan(fit, cols)
        spread = math.ceil(rows / (2 * concurrency))
        floor = max(1, MIN_REQUEST_BYTES // (cols * per_value))
        return BatchPlan(max(1, min(fit, max(spread, floor))), cols)
    if batch_size > fit:
        return BatchPlan(fit, cols, f"--batch-size {batch_size} would exceed the {max_message_bytes}-byte "
                                    f"message budget; using {fit} rows per request")
    return BatchPlan(batch_size, cols)


class BatchStream:
    """One streamed run: up to ``concurrency`` requests in flight, answers checked and placed.

    The main thread reads batches, submits them to a thread pool (each worker does one blocking,
    retried Predict) and, whenever ``concurrency`` are in flight, takes whichever finished first:
    decodes it, checks it and writes it at its own offset. So at most ``concurrency`` batches
    are in memory, and completion order does not matter. With ``concurrency=1`` the main thread
    makes each call itself, and ``helper`` (one thread, when checking) computes the rule on the
    batch while its request is in flight, so only the comparison waits for the answer.
    """

    def __init__(self, send: Callable[[np.ndarray], tuple[bytes, float]], out_key: str, plan: BatchPlan,
                 concurrency: int, checker: ResponseChecker | None, sink, summary,
                 progress: Callable[[int], object] | None,
                 describe_failure: Callable[[grpc.RpcError], ThresholdClientError],
                 helper: Executor | None = None):
        self.send, self.out_key, self.plan = send, out_key, plan
        self.concurrency, self.checker, self.sink = concurrency, checker, sink
        self.summary, self.stats, self.progress = summary, summary.stats, progress
        self.describe_failure = describe_failure
        self.helper = helper if checker is not None else None
        self.inflight: dict[Future, tuple[int, int, np.ndarray]] = {}

    def run(self, source: InputArray) -> None:
        if self.concurrency == 1:  # nothing to overlap: no pool, no thread hand-offs
            for row, col, x in self._requests(source):
                expected = None if self.helper is None else self.helper.submit(self.checker.expect, x)
                self._answer(row, col, x, lambda x=x: self.send(x), expected)
            return
        pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="threshold-predict")
        try:
            for row, col, x in self._requests(source):
                while len(self.inflight) >= self.concurrency:
                    self._collect(wait(self.inflight, return_when=FIRST_COMPLETED).done)
                self.inflight[pool.submit(self.send, x)] = (row, col, x)
            while self.inflight:
                self._collect(wait(self.inflight, return_when=FIRST_COMPLETED).done)
        finally:
            for future in self.inflight:
                future.cancel()
            pool.shutdown(wait=False, cancel_futures=True)

    def _requests(self, source: InputArray):
        """(row, col, C-contiguous block) for every request, in input order."""
        for row, block in source.batches(self.plan.rows):
            for col in range(0, source.cols, self.plan.cols):
                x = block if self.plan.cols >= source.cols else block[:, col:col + self.plan.cols]
                yield row, col, np.ascontiguousarray(x)

    def _collect(self, futures) -> None:
        for future in futures:
            row, col, x = self.inflight.pop(future)
            self._answer(row, col, x, future.result)

    def _answer(self, row: int, col: int, x: np.ndarray, result: Callable[[], tuple[bytes, float]],
                expected: Future | None = None) -> None:
        try:
            response, latency = result()
        except grpc.RpcError as error:
            raise self._rpc_failure(error) from None
        self.stats.record(latency, x.size)
        self._place(row, col, x, response, expected)
        if self.progress is not None:
            self.progress(x.size)

    def _rpc_failure(self, error: grpc.RpcError) -> ThresholdClientError:
        failure = self.describe_failure(error)
        if isinstance(failure, ServerUnavailable) and self.stats.requests:
            failure = ServerUnavailable(
                f"lost the model server at {self.summary.address} mid-run, after {self.stats.values} of "
                f"{self.summary.values} values ({rpc_details(error) or 'unavailable'}); no output written")
        return failure

    def _place(self, row: int, col: int, x: np.ndarray, raw: bytes, expected: Future | None = None) -> None:
        where = f"rows {row}-{row + x.shape[0] - 1}" + (f", cols {col}-{col + x.shape[1] - 1}"
                                                         if self.plan.cols < self.summary.cols else "")
        try:
            # The shape asked for is checked before decoding: a response may declare any shape.
            response = wire.decode_response(raw, {self.out_key: x.shape})
            if self.out_key not in response.outputs:
                raise TensorDecodeError(f"no output {self.out_key!r} (got: {', '.join(response.names)})")
            got = response.outputs[self.out_key]
        except (TensorDecodeError, DecodeError) as exc:
            if self.checker is None:
                raise ResponseMismatch(f"response for {where}: {exc}") from None
            self.checker.report.add_problem(f"{where}: {exc}")
            return
        if self.checker is None:
            if got.shape != x.shape:
                raise ResponseMismatch(f"response for {where} has shape {got.shape}, expected {x.shape}")
        else:
            answered = response.version
            if answered is not None and self.summary.version is not None and answered != self.summary.version:
                self.checker.report.add_problem(f"{where}: answered by version {answered}, "
                                                f"but the bounds are version {self.summary.version}'s")
            if not self.checker.check_layout(where, got, x.shape):
                return
            self.checker.check_values(row, col, x, got, None if expected is None else expected.result())
        self.sink.write(row, col, got)
