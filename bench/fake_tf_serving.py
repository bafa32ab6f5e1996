"""The project's one fake TF Serving: the threshold model behind TF Serving's gRPC services, no TensorFlow.

The tests (through ``tests/conftest.py``'s ``fake_server`` and the fake docker's "container") and
the benchmark (``make bench``'s reference server) all run this module. It lives in ``bench/``
because both may import it there: ``export``, ``client`` and ``serving`` may import neither
``bench`` nor ``tests``, the benchmark must not depend on the test suite (pyproject's import
contracts enforce all three), and a fake is not product, so it stays out of the packages the
wheel ships (``export``, ``client``, ``serving``). It needs no TensorFlow: the messages and the
tensor codec are the client's protocol layer.

What it serves, over real loopback gRPC, with one raw-bytes handler:

- ``PredictionService/Predict``: the threshold rule in numpy (``serving_default`` a float32 mask,
  ``compact`` a uint8 one, ``bounds`` low and high once per row of x); an unknown signature is
  FAILED_PRECONDITION as in ``tensorflow_serving/servables/tensorflow/predict_util.cc``. Values
  go in the typed fields (``float_val``, ``int_val``), as TF Serving's default
  ``Tensor::AsProtoField`` writes them, or in ``tensor_content`` with ``tensor_content=True``
  (TF Serving's ``--enable_serialization_as_tensor_content``).
- ``PredictionService/GetModelMetadata``: the exported model's three signatures.
- ``ModelService/GetModelStatus`` (unless ``grpc_model_status=False``, as a TLS port looks to a
  plain-text caller) and, on ``rest_port``, the REST model status ``GET /v1/models/<name>``: the
  served version AVAILABLE or, with ``models_dir``, the two newest version directories under
  ``models_dir/<name>``, looked up on each call (TF Serving under a latest-two policy).
- ``/bench.Echo/Echo``: the Predict handler under another name, for the benchmark's echo.

A wrong model name or version is NOT_FOUND, as TF Serving answers it. For the benchmark,
``replay=True`` answers a request size it has seen with the bytes it made the first time (a dict
lookup: no parsing, no model), so a client-vs-echo ratio measures only the client's data path.
For the tests, ``fault`` makes it misbehave: "flip" (first value of every mask flipped), "shape"
(last column dropped), "dtype" (int32 instead of the declared dtype), "huge" (declares shape
[16384, 16384] with one typed value), "unavailable" / "cancelled" (the first ``fail_first``
Predicts fail with that code).

``python -m bench.fake_tf_serving --port N`` serves on 127.0.0.1 until killed or SIGTERM.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
from collections.abc import Callable
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import grpc
import numpy as np

from client import memory
from client.names import (
    DEFAULT_SIGNATURE,
    GET_MODEL_METADATA_METHOD,
    MODEL_SERVICE,
    PREDICT_METHOD,
    PREDICT_METHOD_NAME,
    SIGNATURE_DEF_FIELD,
    method_path,
)
from client.protos import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    meta_graph_pb2,
    predict_pb2,
    tensor_pb2,
    types_pb2,
)
from client.tensors import from_tensor_proto, shape_proto, to_tensor_proto

ECHO_METHOD = "/bench.Echo/Echo"
GET_MODEL_STATUS_METHOD = method_path(MODEL_SERVICE, "GetModelStatus")
SERVER_OPTIONS = (("grpc.max_send_message_length", -1), ("grpc.max_receive_message_length", -1))
LOW, HIGH = -0.1, 0.1
MASK_DTYPES = {DEFAULT_SIGNATURE: np.float32, "compact": np.uint8}
REPLAY_ENTRIES = 64
FAULTS = ("flip", "shape", "dtype", "huge", "unavailable", "cancelled")


def metadata_response(
    name: str = "threshold", version: int = 1
) -> get_model_metadata_pb2.GetModelMetadataResponse:
    """GetModelMetadataResponse with the exported model's signatures (x: float32 [-1, -1])."""

    def info(dtype: int, shape: tuple[int, ...]) -> meta_graph_pb2.TensorInfo:
        return meta_graph_pb2.TensorInfo(name="x:0", dtype=dtype, tensor_shape=shape_proto(shape))

    signatures = get_model_metadata_pb2.SignatureDefMap()
    for signature, outputs in (
        (DEFAULT_SIGNATURE, {"mask": info(types_pb2.DT_FLOAT, (-1, -1))}),
        ("compact", {"mask": info(types_pb2.DT_UINT8, (-1, -1))}),
        ("bounds", {"low": info(types_pb2.DT_FLOAT, (-1,)), "high": info(types_pb2.DT_FLOAT, (-1,))}),
    ):
        signatures.signature_def[signature].CopyFrom(
            meta_graph_pb2.SignatureDef(
                inputs={"x": info(types_pb2.DT_FLOAT, (-1, -1))},
                outputs=outputs,
                method_name=PREDICT_METHOD_NAME,
            )
        )
    response = get_model_metadata_pb2.GetModelMetadataResponse()
    response.model_spec.name = name
    response.model_spec.version.value = version
    response.metadata[SIGNATURE_DEF_FIELD].Pack(signatures)
    return response


class FakeTfServing:
    """The fake TF Serving, started on 127.0.0.1 (``address``; ``port``); ``stop()`` ends it.

    ``delay(index, x)`` gives seconds to sleep before answering request ``index`` (to force
    out-of-order completion); ``stop_after`` shuts the server down when that many Predicts have
    arrived; ``reload_after`` swaps the model for ``reload_to`` = (version, low, high) once that
    many Predicts have arrived, as a hot reload does (the old version answers NOT_FOUND from then
    on). ``predicts``, ``metadata_calls``, ``batch_shapes`` (of the data requests, not the bounds
    calls) and ``answered`` (request indices in completion order) record what happened; replayed
    answers are not counted.
    """

    def __init__(
        self,
        *,
        low: float = LOW,
        high: float = HIGH,
        name: str = "threshold",
        version: int = 1,
        tensor_content: bool = False,
        fault: str | None = None,
        fail_first: int = 0,
        delay: Callable[[int, np.ndarray], float] | None = None,
        stop_after: int | None = None,
        reload_after: int | None = None,
        reload_to: tuple[int, float, float] | None = None,
        replay: bool = False,
        port: int = 0,
        rest_port: int | None = None,
        models_dir: Path | None = None,
        grpc_model_status: bool = True,
        credentials: grpc.ServerCredentials | None = None,
        workers: int = 16,
    ) -> None:
        if fault is not None and fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}: one of {', '.join(FAULTS)}")
        self.low, self.high, self.name, self.version = low, high, name, version
        self.tensor_content, self.fault, self.fail_first = tensor_content, fault, fail_first
        self.delay, self.stop_after = delay, stop_after
        self.reload_after, self.reload_to = reload_after, reload_to
        self.replay, self.models_dir, self.grpc_model_status = replay, models_dir, grpc_model_status
        self.predicts = 0
        self.metadata_calls = 0
        self.batch_shapes: list[tuple[int, ...]] = []
        self.answered: list[int] = []
        self._lock = threading.Lock()
        self._replies: dict[int, bytes] = {}
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=workers), options=SERVER_OPTIONS)
        self._server.add_generic_rpc_handlers((_Handler(self),))
        self.port = (
            self._server.add_secure_port(f"127.0.0.1:{port}", credentials)
            if credentials
            else self._server.add_insecure_port(f"127.0.0.1:{port}")
        )
        self.address = f"127.0.0.1:{self.port}"
        self._server.start()
        self._rest = _rest_model_status(self, rest_port) if rest_port is not None else None

    def stop(self) -> None:
        self._server.stop(0)
        if self._rest is not None:
            self._rest.shutdown()
            self._rest.server_close()

    def wait(self) -> None:
        """Block until the gRPC server stops."""
        self._server.wait_for_termination()

    def available_versions(self) -> list[int]:
        """The versions GetModelStatus reports AVAILABLE."""
        if self.models_dir is None:
            return [self.version]
        base_path = Path(self.models_dir) / self.name
        return sorted(int(path.name) for path in base_path.iterdir() if path.name.isdigit())[-2:]

    def _check_spec(self, spec, context: grpc.ServicerContext) -> None:
        with self._lock:
            if self.reload_to is not None and self.predicts >= (self.reload_after or 0):
                (self.version, self.low, self.high), self.reload_to = self.reload_to, None
        if spec.name != self.name or (spec.HasField("version") and spec.version.value != self.version):
            context.abort(grpc.StatusCode.NOT_FOUND, f"Servable not found for request: {spec}")

    def _predict_bytes(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        if self.replay:
            reply = self._replies.get(len(request))
            if reply is not None:
                return reply
        try:
            parsed = predict_pb2.PredictRequest.FromString(request)
        except Exception as exc:  # noqa: BLE001 - a bad request is the caller's to see
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"cannot parse the request: {exc}")
        reply = self._predict(parsed, context).SerializeToString()
        if self.replay:
            with self._lock:
                if len(self._replies) >= REPLAY_ENTRIES:
                    self._replies.clear()
                self._replies[len(request)] = reply
        return reply

    def _predict(self, request: predict_pb2.PredictRequest, context) -> predict_pb2.PredictResponse:
        self._check_spec(request.model_spec, context)
        with self._lock:
            index = self.predicts
            self.predicts += 1
            version, low, high = self.version, self.low, self.high  # one model answers, even mid-reload
        if self.stop_after is not None and index + 1 >= self.stop_after:
            self._server.stop(0)
        if self.fault in ("unavailable", "cancelled") and index < self.fail_first:
            context.abort(
                grpc.StatusCode[self.fault.upper()],
                "warming up" if self.fault == "unavailable" else "server shutting down",
            )
        signature = request.model_spec.signature_name or DEFAULT_SIGNATURE
        x = np.zeros((0, 0), np.float32)  # bounds needs no input
        if "x" in request.inputs or signature != "bounds":
            try:
                x = from_tensor_proto(request.inputs["x"])
            except Exception as exc:  # noqa: BLE001 - a bad tensor is the caller's to see
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"cannot read input x: {exc}")
        if signature != "bounds":
            self.batch_shapes.append(x.shape)
        if self.delay is not None:
            time.sleep(self.delay(index, x))
        self.answered.append(index)  # completion order, to show answers really came out of order
        response = predict_pb2.PredictResponse()
        response.model_spec.name = self.name
        response.model_spec.version.value = version
        response.model_spec.signature_name = signature
        if signature == "bounds":
            rows = x.shape[0] if x.ndim else 0  # one value per row of x, as the export answers
            response.outputs["low"].CopyFrom(self._encode(np.full(rows, low, np.float32)))
            response.outputs["high"].CopyFrom(self._encode(np.full(rows, high, np.float32)))
            return response
        if signature not in MASK_DTYPES:
            context.abort(
                grpc.StatusCode.FAILED_PRECONDITION, f'Serving signature key "{signature}" not found.'
            )
        mask = ((x < np.float32(low)) | (x > np.float32(high))).astype(MASK_DTYPES[signature])
        if self.fault == "flip" and mask.size:
            mask.reshape(-1)[0] = 1 - mask.reshape(-1)[0]
        elif self.fault == "shape":
            mask = mask[:, :-1]
        elif self.fault == "dtype":
            mask = mask.astype(np.int32)
        if self.fault == "huge":
            response.outputs["mask"].CopyFrom(
                tensor_pb2.TensorProto(
                    dtype=types_pb2.DT_FLOAT, tensor_shape=shape_proto((16384, 16384)), float_val=[1]
                )
            )
        else:
            response.outputs["mask"].CopyFrom(self._encode(mask))
        return response

    def _encode(self, array: np.ndarray) -> tensor_pb2.TensorProto:
        return to_tensor_proto(array, as_content=self.tensor_content)

    def _metadata_bytes(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        parsed = get_model_metadata_pb2.GetModelMetadataRequest.FromString(request)
        self._check_spec(parsed.model_spec, context)
        with self._lock:
            self.metadata_calls += 1
        return metadata_response(self.name, self.version).SerializeToString()

    def _status_bytes(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        parsed = get_model_status_pb2.GetModelStatusRequest.FromString(request)
        if parsed.model_spec.name != self.name:
            context.abort(grpc.StatusCode.NOT_FOUND, f"Servable not found for request: {parsed.model_spec}")
        response = get_model_status_pb2.GetModelStatusResponse()
        for version in self.available_versions():
            status = response.model_version_status.add()
            status.version = version
            status.state = get_model_status_pb2.ModelVersionStatus.AVAILABLE
        return response.SerializeToString()


class _Handler(grpc.GenericRpcHandler):
    """Raw bytes in and out, so a replayed answer costs a dict lookup and nothing else."""

    def __init__(self, fake: FakeTfServing) -> None:
        predict = grpc.unary_unary_rpc_method_handler(fake._predict_bytes)
        self._methods = {
            ECHO_METHOD: predict,
            PREDICT_METHOD: predict,
            GET_MODEL_METADATA_METHOD: grpc.unary_unary_rpc_method_handler(fake._metadata_bytes),
        }
        if fake.grpc_model_status:
            self._methods[GET_MODEL_STATUS_METHOD] = grpc.unary_unary_rpc_method_handler(fake._status_bytes)

    def service(self, handler_call_details):
        return self._methods.get(handler_call_details.method)


def _rest_model_status(fake: FakeTfServing, port: int) -> ThreadingHTTPServer:
    """TF Serving's REST model status, JSON as http_rest_api_handler.cc writes it (versions as strings)."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:  # quiet
            pass

        def do_GET(self) -> None:  # noqa: N802 - http.server's method name
            if self.path != f"/v1/models/{fake.name}":
                self.send_error(404)
                return
            body = json.dumps(
                {
                    "model_version_status": [
                        {
                            "version": str(v),
                            "state": "AVAILABLE",
                            "status": {"error_code": "OK", "error_message": ""},
                        }
                        for v in fake.available_versions()
                    ]
                }
            ).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.fake_tf_serving",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--port", type=int, default=0, help="gRPC port on 127.0.0.1 (default: a free one)")
    parser.add_argument("--rest-port", type=int, help="serve the REST model status on this port too")
    parser.add_argument("--model-name", default="threshold", help="the served model's name")
    parser.add_argument(
        "--models-dir",
        type=Path,
        help="report the two newest version directories under MODELS_DIR/<name> AVAILABLE",
    )
    parser.add_argument(
        "--no-grpc-model-status",
        action="store_true",
        help="no ModelService on the gRPC port (as a TLS port looks to a plain caller)",
    )
    parser.add_argument(
        "--replay",
        action="store_true",
        help="answer a request size seen before with the first answer's bytes (benchmark)",
    )
    parser.add_argument(
        "--typed-fields",
        action="store_true",
        help="answer in float_val / int_val (TF Serving's default), not tensor_content",
    )
    args = parser.parse_args(argv)
    memory.reuse_freed_buffers()  # as the embedded server does (client/memory.py): a fair reference
    fake = FakeTfServing(
        port=args.port,
        rest_port=args.rest_port,
        name=args.model_name,
        models_dir=args.models_dir,
        grpc_model_status=not args.no_grpc_model_status,
        replay=args.replay,
        tensor_content=not args.typed_fields,
    )
    signal.signal(signal.SIGTERM, lambda *_: fake.stop())
    print(f"bench.fake_tf_serving: listening on 127.0.0.1:{fake.port}", flush=True)
    try:
        fake.wait()
    except KeyboardInterrupt:
        fake.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
