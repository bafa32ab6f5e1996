"""Batching: how big each request is, and the loop that keeps requests in flight.

Requests are sized to fit the message budget (gRPC's 4 MB default unless told otherwise) with
room for the response; since the rule is elementwise, a row too big for one message is sent in
slices of columns. Results are placed by (row, col), so completion order never matters.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Protocol

import grpc
import numpy as np
from google.protobuf.message import DecodeError

from client import wire
from client.checker import ResponseChecker
from client.errors import ResponseMismatch, ServerUnavailable, ThresholdClientError, rpc_details
from client.output import Output
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


def plan_batches(
    cols: int,
    out_itemsize: int,
    max_message_bytes: int,
    batch_size: int | None = None,
    rows: int | None = None,
    concurrency: int = 1,
) -> BatchPlan:
    """Rows (and columns) per request so that request and response fit max_message_bytes.

    Without a batch_size, requests are as large as fit, but small enough that a run of ``rows``
    rows makes at least two requests per in-flight slot (so sending, serving and checking
    overlap), and never under MIN_REQUEST_BYTES (so small inputs are not chopped into tiny RPCs).
    """
    budget = max(max_message_bytes - MESSAGE_OVERHEAD, 1024)
    per_value = max(4, out_itemsize)
    fit = budget // (cols * per_value)
    if fit == 0:  # the rule is elementwise, so a row can be split across requests
        return BatchPlan(
            1,
            budget // per_value,
            f"rows of {cols} values exceed the {max_message_bytes}-byte message budget; "
            "each row is sent in slices",
        )
    if batch_size is None:
        if rows is None:
            return BatchPlan(fit, cols)
        spread = math.ceil(rows / (2 * concurrency))
        floor = max(1, MIN_REQUEST_BYTES // (cols * per_value))
        return BatchPlan(max(1, min(fit, max(spread, floor))), cols)
    if batch_size > fit:
        return BatchPlan(
            fit,
            cols,
            f"--batch-size {batch_size} would exceed the {max_message_bytes}-byte "
            f"message budget; using {fit} rows per request",
        )
    return BatchPlan(batch_size, cols)


class BatchStream:
    """One streamed run: up to ``concurrency`` requests in flight, answers checked and placed.

    The main thread reads batches, submits them to a thread pool (each worker does one blocking,
    retried Predict) and, whenever ``concurrency`` are in flight, takes whichever finished first:
    writes it at its own offset. The worker also decodes and checks its answer before handing it
    back: numpy releases the GIL, so checking one answer overlaps the other calls' transfers and
    the main thread's reading instead of queueing behind them. So at most ``concurrency`` batches
    are in memory, and completion order does not matter. With ``concurrency=1``, or a single
    request, there is nothing to overlap, so the main thread makes each call itself. (Computing
    the rule on a helper thread while the request is in flight was measured slower on a 2-core
    machine, where that thread competes with the server and gRPC for the cores.)

    A sink that ``keeps`` a block whole (``ArrayOutput``, for a result that is one block) is
    handed the checker's own copy of a verified answer (``ResponseChecker.verify``) rather than a
    view of the response to copy.
    """

    def __init__(
        self,
        send: Callable[[np.ndarray], tuple[bytes, float]],
        out_key: str,
        plan: BatchPlan,
        concurrency: int,
        checker: ResponseChecker | None,
        sink: Output,
        summary,
        progress: Callable[[int], object] | None,
        describe_failure: Callable[[grpc.RpcError], ThresholdClientError],
        versions: VersionFollower | None = None,
    ):
        self.send, self.out_key, self.plan = send, out_key, plan
        self.concurrency, self.checker, self.sink = concurrency, checker, sink
        self.summary, self.stats, self.progress = summary, summary.stats, progress
        self.describe_failure = describe_failure
        self.versions = versions
        self.inflight: dict[Future, _Batch] = {}
        #: version -> (first row, end row) of every block it answered, for the summary
        self.answered_rows: dict[int | None, list[tuple[int, int]]] = {}

    def run(self, source: InputArray) -> None:
        one_request = source.rows <= self.plan.rows and source.cols <= self.plan.cols
        if self.concurrency == 1 or one_request:  # nothing to overlap: no pool, no thread hand-offs
            for batch in self._requests(source):
                self._answer(batch, lambda batch=batch: self._send_and_verify(batch))
            return
        pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="threshold-predict")
        try:
            for batch in self._requests(source):
                while len(self.inflight) >= self.concurrency:
                    self._collect(wait(self.inflight, return_when=FIRST_COMPLETED).done)
                self.inflight[pool.submit(self._send_and_verify, batch)] = batch
            while self.inflight:
                self._collect(wait(self.inflight, return_when=FIRST_COMPLETED).done)
        finally:
            for future in self.inflight:
                future.cancel()
            pool.shutdown(wait=False, cancel_futures=True)

    def _batch(self, row: int, col: int, x: np.ndarray) -> _Batch:
        version = None if self.versions is None else self.versions.pinned()
        bounds = None if self.checker is None else self.checker.bounds.get(version)
        return _Batch(row, col, x, version, bounds)

    def _requests(self, source: InputArray):
        """A _Batch (row, col, C-contiguous block, version pinned) for every request, in input order."""
        for row, block in source.batches(self.plan.rows):
            for col in range(0, source.cols, self.plan.cols):
                x = block if self.plan.cols >= source.cols else block[:, col : col + self.plan.cols]
                yield self._batch(row, col, np.ascontiguousarray(x))

    def _collect(self, futures) -> None:
        for future in futures:
            self._answer(self.inflight.pop(future), future.result)

    def _send_and_verify(self, batch: _Batch) -> tuple[bytes, float, _Verified]:
        """The call, then its answer decoded and checked: on a worker thread, or inline at concurrency 1.

        The rule is computed first (``ResponseChecker.rule``): x is then in cache for building
        the request, instead of read again from memory after the round trip.
        """
        rule = None if self.checker is None else self.checker.rule(batch.x, batch.bounds)
        response, latency = self.send(batch.x)
        return response, latency, self._verify(batch, response, rule)

    def _answer(self, batch: _Batch, result: Callable[[], tuple[bytes, float, _Verified]]) -> None:
        try:
            try:
                _, latency, verified = result()
            except grpc.RpcError as error:
                # The pinned version was unloaded (a hot reload): go on with the version the server
                # now serves if the client may (see VersionFollower), resending this batch there.
                if not (
                    error.code() == grpc.StatusCode.NOT_FOUND
                    and self.versions is not None
                    and self.versions.follow(batch.version)
                ):
                    raise
                batch = self._batch(batch.row, batch.col, batch.x)
                _, latency, verified = self._send_and_verify(batch)
        except grpc.RpcError as error:
            raise self._rpc_failure(error) from None
        self.stats.record(latency, batch.x.size)
        got, answered, owned = verified
        if got is not None:
            self.sink.write(batch.row, batch.col, got, owned=owned)
            self.answered_rows.setdefault(answered, []).append((batch.row, batch.row + batch.x.shape[0]))
        if self.progress is not None:
            self.progress(batch.x.size)

    def _rpc_failure(self, error: grpc.RpcError) -> ThresholdClientError:
        failure = self.describe_failure(error)
        if isinstance(failure, ServerUnavailable) and self.stats.requests:
            failure = ServerUnavailable(
                f"lost the model server at {self.summary.address} mid-run, after {self.stats.values} of "
                f"{self.summary.values} values ({rpc_details(error) or 'unavailable'}); no output written"
            )
        return failure

    def _verify(self, batch: _Batch, raw: bytes, rule: np.ndarray | None = None) -> _Verified:
        """Decode one answer and check it: (the mask to write, or None if it is unusable; the version
        that answered; whether the mask is an array of its own, not a view of the response).
        Safe on any thread: the checker locks its report."""
        row, col, x = batch.row, batch.col, batch.x
        where = f"rows {row}-{row + x.shape[0] - 1}" + (
            f", cols {col}-{col + x.shape[1] - 1}" if self.plan.cols < self.summary.cols else ""
        )
        try:
            # The shape asked for is checked before decoding: a response may declare any shape.
            response = wire.decode_response(raw, {self.out_key: x.shape})
            if self.out_key not in response.outputs:
                raise TensorDecodeError(f"no output {self.out_key!r} (got: {', '.join(response.names)})")
            got = response.outputs[self.out_key]
        except (TensorDecodeError, DecodeError) as exc:
            if self.checker is None:
                raise ResponseMismatch(f"response for {where}: {exc}") from None
            self.checker.add_problem(f"{where}: {exc}")
            return None, batch.version, False
        answered = response.version if response.version is not None else batch.version
        if self.checker is None:
            if got.shape != x.shape:
                raise ResponseMismatch(f"response for {where} has shape {got.shape}, expected {x.shape}")
        else:
            bounds = self.checker.bounds.get(answered)
            if bounds is None:  # never silently mix: only versions whose bounds were fetched are checked
                self.checker.add_problem(
                    f"{where}: answered by version {answered}, but the bounds are version {batch.version}'s"
                )
                bounds = batch.bounds
            if not self.checker.check_layout(where, got, x.shape):
                return None, answered, False
            if bounds != batch.bounds:  # the rule made before sending used the pinned version's bounds
                rule = None
            if not self.sink.keeps(row, col, x.shape):  # a file, a preview or a part: copied anyway
                self.checker.check_values(row, col, x, got, bounds=bounds, expected=rule)
                return got, answered, False
            kept = self.checker.verify(row, col, x, got, bounds=bounds, expected=rule)
            if kept is not None:  # bit for bit the answer, in an array of its own: no copy to make
                return kept, answered, True
        return got, answered, False

    def version_ranges(self) -> dict[int | None, str]:
        """'0-99, 200-299' per version: the rows each version answered, merged."""
        ranges = {}
        for version, spans in self.answered_rows.items():
            merged: list[list[int]] = []
            for start, end in sorted(spans):
                if merged and start <= merged[-1][1]:
                    merged[-1][1] = max(merged[-1][1], end)
                else:
                    merged.append([start, end])
            ranges[version] = ", ".join(f"{start}-{end - 1}" for start, end in merged)
        return ranges


#: what ``BatchStream._verify`` found: the mask to write (None: unusable), the version that answered,
#: and whether the mask is an array of its own (an output may keep it rather than copy it)
_Verified = tuple[np.ndarray | None, int | None, bool]


@dataclass(frozen=True)
class _Batch:
    """One request: where its block goes, the version it was sent to and that version's bounds."""

    row: int
    col: int
    x: np.ndarray
    version: int | None
    bounds: tuple[float, float] | None


class VersionFollower(Protocol):
    """How a run follows a hot reload: the client's pinned version, and the move to a new one."""

    def pinned(self) -> int | None:
        """The version requests go to now."""

    def follow(self, failed_version: int | None) -> bool:
        """A request pinned to ``failed_version`` got NOT_FOUND: True to resend it (the client now
        pins the version its label or latest names, with its bounds); False to fail the run."""
