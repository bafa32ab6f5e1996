"""One load generator process: a workload, some (shape, concurrency) points, JSON on stdout.

Workloads, all driven by the same closed loop (``client.bench.run_point``) over the same client
channel (``client.channel.open_channel``):

* ``echo``   raw request bytes to ``/bench.Echo/Echo``, raw response bytes back: the gRPC ceiling.
* ``client`` what ``python -m client.bench`` sends: the wire codec (``client.wire``).
* ``proto``  the client library's codec alone: protobuf objects and ``client.tensors``.
* ``library`` the client library's public call as users run it, ``ThresholdClient.predict(batch)``
             with its defaults (checked; an array that fits one message goes in one request);
             metadata and bounds are fetched once, first.
* ``library-unchecked`` the same call with ``check=False``: what the check costs.
* ``naive``  what TF Serving's example clients do: ``tf.make_tensor_proto`` / ``tf.make_ndarray``
             with TensorFlow imported (so it runs in its own process; TensorFlow loads first).

``python -m bench.loadgen --workload client --server 127.0.0.1:N --shape 1024x256 --concurrency 1,4``
"""

from __future__ import annotations

import argparse
import json
import sys

import grpc

WORKLOADS = ("echo", "client", "proto", "library", "library-unchecked", "naive")


class FailedCall(grpc.RpcError):
    """A library call that failed; the load loop counts it as an error under ``code()``'s name."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self._name = name

    def code(self):
        return type("Code", (), {"name": self._name})()


class EchoWorkload:
    """The ceiling: the same request bytes every time, no encoding, the answer left undecoded."""

    def __init__(self, channel, target, batch):
        from bench.fake_tf_serving import ECHO_METHOD
        from client.bench.workload import encode_request

        self._call = channel.unary_unary(ECHO_METHOD)  # no (de)serializers: bytes both ways
        self._payload = encode_request(target, batch).SerializeToString()
        self._timeout = target.timeout
        self.request_bytes = len(self._payload)
        self.response_bytes = 0

    def probe(self) -> None:
        self.response_bytes = len(self.send())

    def send(self) -> bytes:
        return self._call(self._payload, timeout=self._timeout)


class LibraryWorkload:
    """What an application calling the client library gets: ``ThresholdClient.predict`` per batch."""

    def __init__(self, server, target, batch, check: bool = True):
        from client.api import ThresholdClient

        self._client = ThresholdClient(server, model=target.model_name, timeout=target.timeout)
        self._signature, self._batch, self._check = target.signature_name, batch, check
        self.request_bytes = self.response_bytes = 0

    def probe(self) -> None:
        from client.bench.workload import Target, encode_request

        self.send()  # learns metadata and bounds, like any first call
        self.request_bytes = encode_request(Target(signature_name=self._signature), self._batch).ByteSize()

    def send(self):
        from client.errors import ThresholdClientError

        try:
            return self._client.predict(self._batch, signature=self._signature, check=self._check)
        except ThresholdClientError as exc:  # counted like a failed RPC: the run is then an ERROR
            raise FailedCall(type(exc).__name__) from exc

    def close(self) -> None:
        self._client.close()


class NaiveWorkload:
    """TF Serving's example-client way: protos from tensorflow_serving.apis, TF's tensor helpers."""

    def __init__(self, channel, target, batch):
        import tensorflow as tf
        from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

        self._tf, self._predict_pb2 = tf, predict_pb2
        self._predict = prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict
        self._target, self._batch = target, batch
        self.request_bytes = self.response_bytes = 0

    def _request(self):
        request = self._predict_pb2.PredictRequest()
        request.model_spec.name = self._target.model_name
        request.model_spec.signature_name = self._target.signature_name
        request.inputs[self._target.input_name].CopyFrom(self._tf.make_tensor_proto(self._batch))
        return request

    def probe(self) -> None:
        request = self._request()
        response = self._predict(request, timeout=self._target.timeout)
        self.request_bytes, self.response_bytes = request.ByteSize(), response.ByteSize()

    def send(self) -> dict:
        response = self._predict(self._request(), timeout=self._target.timeout)
        return {name: self._tf.make_ndarray(tensor) for name, tensor in response.outputs.items()}


def _workload(name: str, server: str, channel, target, batch):
    if name == "echo":
        return EchoWorkload(channel, target, batch)
    if name == "naive":
        return NaiveWorkload(channel, target, batch)
    if name in ("library", "library-unchecked"):
        return LibraryWorkload(server, target, batch, check=name == "library")
    from client.bench.workload import PredictWorkload

    return PredictWorkload(channel, target, batch, codec="proto" if name == "proto" else "wire")


PAIRED_SLICES = 8  # per side and point: short enough that both sides see the same machine


def run_paired(send, reference_send, concurrency: int, *, duration: float, warmup: int):
    """``send`` and ``reference_send`` measured in turns: PAIRED_SLICES slices of duration /
    PAIRED_SLICES seconds each, alternating which goes first; the two merged PointResults.

    Both sides run in this process over one channel, seconds apart at most, so a machine that
    speeds up or slows down (other tenants, frequency) moves both alike: their ratio is steadier
    than one of two runs made in separate processes a few seconds apart.
    """
    import numpy as np

    from client.bench.load import PointResult, run_point

    sides = (send, reference_send)
    for side in sides:
        run_point(side, concurrency, requests=max(1, warmup), duration=duration, warmup_requests=0)
    parts: tuple[list, list] = ([], [])
    for index in range(PAIRED_SLICES):
        order = (0, 1) if index % 2 == 0 else (1, 0)
        for which in order:
            parts[which].append(
                run_point(sides[which], concurrency, requests=10**9, duration=duration / PAIRED_SLICES)
            )

    def merged(points) -> PointResult:
        codes: dict[str, int] = {}
        for point in points:
            for code, count in point.error_codes.items():
                codes[code] = codes.get(code, 0) + count
        return PointResult(
            concurrency=concurrency,
            requests=sum(p.requests for p in points),
            errors=sum(p.errors for p in points),
            seconds=sum(p.seconds for p in points),
            latencies=np.concatenate([p.latencies for p in points]),
            error_codes=codes,
        )

    return merged(parts[0]), merged(parts[1])


def run(
    workload: str,
    server: str,
    shapes: list[tuple[int, int]],
    concurrency: tuple[int, ...],
    signatures: list[str],
    duration: float,
    requests: int,
    warmup: int,
    shape_concurrency: dict[tuple[int, int], tuple[int, ...]] | None = None,
    paired: str | None = None,
) -> list[dict]:
    """Measure every (signature, shape, concurrency) point with one workload; one flat record per point.

    ``shape_concurrency`` gives some shapes their own concurrency levels. With ``paired`` (a
    workload name, e.g. "echo") each point measures that workload too, in turns with this one
    (``run_paired``), and the record carries it under "paired".
    """
    from client.bench.load import PERCENTILES, run_point
    from client.bench.workload import Target, connect, make_batch

    channel = connect(server)
    records = []
    try:
        for signature, (rows, cols) in ((s, shape) for s in signatures for shape in shapes):
            target = Target(signature_name=signature)
            work = _workload(workload, server, channel, target, make_batch(rows, cols))
            work.probe()
            reference = None
            if paired is not None:
                reference = _workload(paired, server, channel, target, make_batch(rows, cols))
                reference.probe()
            for level in (shape_concurrency or {}).get((rows, cols), concurrency):
                if reference is None:
                    point = run_point(
                        work.send, level, requests=requests, duration=duration, warmup_requests=warmup
                    )
                else:
                    point, other = run_paired(
                        work.send, reference.send, level, duration=duration, warmup=warmup
                    )
                record = {
                    "workload": workload,
                    "signature": signature,
                    "rows": rows,
                    "cols": cols,
                    "concurrency": level,
                    "requests": point.requests,
                    "errors": point.errors,
                    "requests_per_s": point.requests_per_s,
                    "request_bytes": work.request_bytes,
                    "response_bytes": work.response_bytes,
                }
                record.update({f"p{p}_ms": point.latency_ms(p) for p in PERCENTILES})
                if reference is not None:
                    record["paired"] = {
                        "workload": paired,
                        "requests": other.requests,
                        "errors": other.errors,
                        "requests_per_s": other.requests_per_s,
                    }
                records.append(record)
    finally:
        channel.close()
    return records


def parse_shape(text: str) -> tuple[int, int]:
    """'1024x256' -> (1024, 256)."""
    rows, _, cols = text.lower().partition("x")
    return int(rows), int(cols)


def main(argv: list[str] | None = None) -> int:
    from client import blas

    blas.one_blas_thread()  # as client.predict does, before numpy loads (client/blas.py)
    from client.bench.sweep import parse_concurrency

    parser = argparse.ArgumentParser(
        prog="python -m bench.loadgen",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--workload", choices=WORKLOADS, required=True)
    parser.add_argument("--server", required=True)
    parser.add_argument(
        "--shape",
        action="append",
        required=True,
        help="ROWSxCOLS, or ROWSxCOLS:C1,C2 for its own concurrency levels (repeatable)",
    )
    parser.add_argument("--concurrency", type=parse_concurrency, default=(1, 4))
    parser.add_argument(
        "--signature",
        default="serving_default",
        help="signature name, or several comma-separated (measured in that order)",
    )
    parser.add_argument("--duration", type=float, default=2.0)
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument(
        "--paired-with",
        choices=WORKLOADS,
        default=None,
        help="also measure this workload at every point, in turns with the first "
        "(slices of duration/8 each), over the same channel",
    )
    args = parser.parse_args(argv)
    from client import memory

    memory.reuse_freed_buffers()  # every workload and reference runs as tuned as client.predict
    if args.workload == "naive":  # TensorFlow first, so client.protos reuses its proto modules
        import tensorflow  # noqa: F401
    shapes, levels = [], {}
    for text in args.shape:
        shape_text, _, level_text = text.partition(":")
        shapes.append(parse_shape(shape_text))
        if level_text:
            levels[shapes[-1]] = parse_concurrency(level_text)
    records = run(
        args.workload,
        args.server,
        shapes,
        args.concurrency,
        args.signature.split(","),
        args.duration,
        args.requests,
        args.warmup,
        levels,
        paired=args.paired_with,
    )
    json.dump(records, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
