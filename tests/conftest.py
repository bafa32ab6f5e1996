"""Shared fixtures: the real export CLI, free loopback ports, subprocess helpers."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
REFERENCE_INPUT = [0.04, -0.8, -1.2, 1.3, 0.85, 0.09, -0.08, 0.2]
REFERENCE_MASK = [0, 1, 1, 1, 1, 0, 0, 1]


def cli_env(**extra: str) -> dict[str, str]:
    """Environment for a CLI subprocess: the repo importable, TF's C++ logs quiet."""
    env = dict(os.environ, PYTHONPATH=str(REPO), TF_CPP_MIN_LOG_LEVEL="2")
    env.update(extra)
    return env


def run_module(module: str, *args: str | os.PathLike, timeout: float = 240,
               env: dict[str, str] | None = None, **kwargs) -> subprocess.CompletedProcess:
    """Run ``python -m module args`` from the repo root and capture its output."""
    return subprocess.run([PYTHON, "-m", module, *map(str, args)], cwd=REPO, env=env or cli_env(),
                          capture_output=True, text=True, timeout=timeout, **kwargs)


def export_version(model_dir: Path, *args: str) -> subprocess.CompletedProcess:
    """Export through the real CLI and fail the test with its stderr if it fails."""
    result = run_module("export", "--model-dir", model_dir, *args)
    assert result.returncode == 0, result.stderr
    return result


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory) -> Path:
    """A model directory with threshold/1 (default bounds) exported by the real CLI.

    Shared read-only by the session: tests that add versions make their own directory.
    """
    directory = tmp_path_factory.mktemp("models")
    export_version(directory)
    return directory


# --- client: a TF Serving test double over real loopback gRPC (no TensorFlow) -----------------

class FakeThresholdServer:
    """PredictionService (Predict + GetModelMetadata) for the threshold model, in this process.

    Answers like TF Serving (a real SignatureDefMap, tensor_content) unless told to misbehave:
    ``fault`` is one of "flip" (first value of every answer flipped), "shape" (last column dropped),
    "dtype" (int32 instead of the declared dtype), "float_val" (values in the typed field, which is
    legal), "unavailable" (the first ``fail_first`` calls are refused); ``delay(index, x)`` gives
    seconds to sleep before answering request ``index`` (to force out-of-order completion);
    ``stop_after`` shuts the server down when that many Predicts have arrived. ``predicts``,
    ``batch_shapes`` and ``answered`` (request indices in completion order) record what happened.
    """

    def __init__(self, *, low: float = -0.1, high: float = 0.1, name: str = "threshold", version: int = 1,
                 fault: str | None = None, fail_first: int = 0, delay=None, stop_after: int | None = None,
                 credentials=None):
        import threading
        from concurrent import futures

        import grpc

        from client.protos import prediction_service_pb2_grpc

        self.low, self.high, self.name, self.version = low, high, name, version
        self.fault, self.fail_first, self.delay, self.stop_after = fault, fail_first, delay, stop_after
        self.predicts, self.metadata_calls, self.batch_shapes, self.answered = 0, 0, [], []
        self._lock = threading.Lock()
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=16), options=[
            ("grpc.max_receive_message_length", 64 << 20), ("grpc.max_send_message_length", 64 << 20)])
        servicer = type("Servicer", (prediction_service_pb2_grpc.PredictionServiceServicer,), {
            "Predict": lambda _, request, context: self._predict(request, context),
            "GetModelMetadata": lambda _, request, context: self._metadata(request, context)})()
        prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(servicer, self._server)
        port = (self._server.add_secure_port("127.0.0.1:0", credentials) if credentials
                else self._server.add_insecure_port("127.0.0.1:0"))
        self.address = f"127.0.0.1:{port}"
        self._server.start()

    def stop(self) -> None:
        self._server.stop(0)

    def _check_spec(self, spec, context):
        import grpc

        if spec.name != self.name or (spec.HasField("version") and spec.version.value != self.version):
            context.abort(grpc.StatusCode.NOT_FOUND, f"Servable not found for request: {spec}")

    def _metadata(self, request, context):
        from client.protos import get_model_metadata_pb2, meta_graph_pb2, types_pb2
        from client.tensors import shape_proto

        self._check_spec(request.model_spec, context)
        self.metadata_calls += 1

        def info(dtype, shape):
            return meta_graph_pb2.TensorInfo(name="x:0", dtype=dtype, tensor_shape=shape_proto(shape))
        matrix = info(types_pb2.DT_FLOAT, (-1, -1))
        signatures = get_model_metadata_pb2.SignatureDefMap()
        for name, outputs in (("serving_default", {"mask": info(types_pb2.DT_FLOAT, (-1, -1))}),
                              ("compact", {"mask": info(types_pb2.DT_UINT8, (-1, -1))}),
                              ("bounds", {"low": info(types_pb2.DT_FLOAT, ()),
                                          "high": info(types_pb2.DT_FLOAT, ())})):
            signatures.signature_def[name].CopyFrom(meta_graph_pb2.SignatureDef(
                inputs={"x": matrix}, outputs=outputs, method_name="tensorflow/serving/predict"))
        response = get_model_metadata_pb2.GetModelMetadataResponse()
        response.model_spec.name, response.model_spec.version.value = self.name, self.version
        response.metadata["signature_def"].Pack(signatures)
        return response

    def _predict(self, request, context):
        import time

        import grpc
        import numpy as np

        from client.protos import predict_pb2, tensor_pb2, types_pb2
        from client.tensors import from_tensor_proto, shape_proto, to_tensor_proto

        self._check_spec(request.model_spec, context)
        with self._lock:
            index = self.predicts
            self.predicts += 1
        if self.stop_after is not None and index + 1 >= self.stop_after:
            self._server.stop(0)
        if self.fault == "unavailable" and index < self.fail_first:
            context.abort(grpc.StatusCode.UNAVAILABLE, "warming up")
        x = from_tensor_proto(request.inputs["x"])
        self.batch_shapes.append(x.shape)
        if self.delay is not None:
            time.sleep(self.delay(index, x))
        self.answered.append(index)  # completion order, to show answers really came out of order
        response = predict_pb2.PredictResponse()
        response.model_spec.name, response.model_spec.version.value = self.name, self.version
        response.model_spec.signature_name = request.model_spec.signature_name
        if request.model_spec.signature_name == "bounds":
            response.outputs["low"].CopyFrom(to_tensor_proto(np.float32(self.low)))
            response.outputs["high"].CopyFrom(to_tensor_proto(np.float32(self.high)))
            return response
        dtype = np.uint8 if request.model_spec.signature_name == "compact" else np.float32
        mask = ((x < np.float32(self.low)) | (x > np.float32(self.high))).astype(dtype)
        if self.fault == "flip" and mask.size:
            mask.reshape(-1)[0] = 1 - mask.reshape(-1)[0]
        elif self.fault == "shape":
            mask = mask[:, :-1]
        elif self.fault == "dtype":
            mask = mask.astype(np.int32)
        if self.fault == "float_val" and dtype == np.float32:
            response.outputs["mask"].CopyFrom(tensor_pb2.TensorProto(
                dtype=types_pb2.DT_FLOAT, tensor_shape=shape_proto(mask.shape), float_val=mask.ravel()))
        else:
            response.outputs["mask"].CopyFrom(to_tensor_proto(mask))
        return response


@pytest.fixture
def fake_server():
    """Start FakeThresholdServer(**options) on a free loopback port; all are stopped afterwards."""
    started = []

    def start(**options) -> FakeThresholdServer:
        started.append(FakeThresholdServer(**options))
        return started[-1]

    yield start
    for server in started:
        server.stop()
