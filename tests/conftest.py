"""Shared fixtures: the real export CLI, free loopback ports, subprocess helpers."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
from dataclasses import dataclass
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

    Answers like TF Serving (a real SignatureDefMap; values in the typed fields, ``float_val`` and
    ``int_val``, as TF Serving's default ``Tensor::AsProtoField`` does, or in ``tensor_content``
    with ``tensor_content=True``, as with ``--enable_serialization_as_tensor_content``) unless told
    to misbehave: ``fault`` is one of "flip" (first value of every answer flipped), "shape" (last
    column dropped), "dtype" (int32 instead of the declared dtype), "huge" (declares shape
    [16384, 16384] with one typed value), "unavailable" / "cancelled" (the first ``fail_first``
    Predicts fail with that code);
    ``delay(index, x)`` gives seconds to sleep before answering request ``index`` (to force
    out-of-order completion);
    ``stop_after`` shuts the server down when that many Predicts have arrived; ``reload_after``
    swaps the model for ``reload_to`` = (version, low, high) once that many Predicts have arrived,
    as a hot reload does (the old version answers NOT_FOUND from then on). ``predicts``,
    ``batch_shapes`` and ``answered`` (request indices in completion order) record what happened.
    """

    def __init__(self, *, low: float = -0.1, high: float = 0.1, name: str = "threshold", version: int = 1,
                 fault: str | None = None, fail_first: int = 0, delay=None, stop_after: int | None = None,
                 credentials=None, tensor_content: bool = False, reload_after: int | None = None,
                 reload_to: tuple[int, float, float] | None = None):
        import threading
        from concurrent import futures

        import grpc

        from client.protos import prediction_service_pb2_grpc

        self.low, self.high, self.name, self.version = low, high, name, version
        self.fault, self.fail_first, self.delay, self.stop_after = fault, fail_first, delay, stop_after
        self.tensor_content = tensor_content
        self.reload_after, self.reload_to = reload_after, reload_to
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

        with self._lock:
            if self.reload_to is not None and self.predicts >= self.reload_after:
                (self.version, self.low, self.high), self.reload_to = self.reload_to, None

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
            version, low, high = self.version, self.low, self.high  # one model answers, even mid-reload
        if self.stop_after is not None and index + 1 >= self.stop_after:
            self._server.stop(0)
        if self.fault in ("unavailable", "cancelled") and index < self.fail_first:
            context.abort(grpc.StatusCode[self.fault.upper()], "warming up" if self.fault == "unavailable"
                          else "server shutting down")
        x = from_tensor_proto(request.inputs["x"])
        self.batch_shapes.append(x.shape)
        if self.delay is not None:
            time.sleep(self.delay(index, x))
        self.answered.append(index)  # completion order, to show answers really came out of order
        response = predict_pb2.PredictResponse()
        response.model_spec.name, response.model_spec.version.value = self.name, version
        response.model_spec.signature_name = request.model_spec.signature_name

        def encode(array):
            if self.tensor_content:
                return to_tensor_proto(array)
            enum = {np.dtype(np.float32): types_pb2.DT_FLOAT, np.dtype(np.uint8): types_pb2.DT_UINT8,
                    np.dtype(np.int32): types_pb2.DT_INT32}[array.dtype]
            field = "float_val" if enum == types_pb2.DT_FLOAT else "int_val"
            return tensor_pb2.TensorProto(dtype=enum, tensor_shape=shape_proto(array.shape),
                                          **{field: array.ravel()})

        if request.model_spec.signature_name == "bounds":
            response.outputs["low"].CopyFrom(encode(np.float32(low)))
            response.outputs["high"].CopyFrom(encode(np.float32(high)))
            return response
        dtype = np.uint8 if request.model_spec.signature_name == "compact" else np.float32
        mask = ((x < np.float32(low)) | (x > np.float32(high))).astype(dtype)
        if self.fault == "flip" and mask.size:
            mask.reshape(-1)[0] = 1 - mask.reshape(-1)[0]
        elif self.fault == "shape":
            mask = mask[:, :-1]
        elif self.fault == "dtype":
            mask = mask.astype(np.int32)
        if self.fault == "huge":
            response.outputs["mask"].CopyFrom(tensor_pb2.TensorProto(
                dtype=types_pb2.DT_FLOAT, tensor_shape=shape_proto((16384, 16384)), float_val=[1]))
        else:
            response.outputs["mask"].CopyFrom(encode(mask))
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


# --- serving.local: the embedded TF-Serving-compatible server in a subprocess ----------------

SERVER_START_TIMEOUT_S = 90


@dataclass(frozen=True)
class ServerHandle:
    """A running ``python -m serving.local``: where it listens and its process (output in log_path)."""

    address: str  # "127.0.0.1:PORT", the gRPC target
    grpc_port: int
    rest_port: int  # 0 when REST is disabled
    process: subprocess.Popen
    log_path: Path

    def log(self) -> str:
        """Everything the server printed so far (stdout and stderr)."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def _flag_given(args: tuple[str, ...], *flags: str) -> bool:
    return any(arg == flag or arg.startswith(flag + "=") for arg in args for flag in flags)


def wait_until_available(handle: ServerHandle, model: str = "threshold",
                         timeout: float = SERVER_START_TIMEOUT_S, credentials=None) -> None:
    """Poll GetModelStatus until some version is AVAILABLE; fail with the server's output if not."""
    import time

    import grpc

    from client.protos import get_model_status_pb2, model_pb2, model_service_pb2_grpc

    deadline = time.monotonic() + timeout
    request = get_model_status_pb2.GetModelStatusRequest(model_spec=model_pb2.ModelSpec(name=model))
    last = "no answer yet"
    options = [("grpc.ssl_target_name_override", "localhost")] if credentials else None
    with (grpc.secure_channel(handle.address, credentials, options=options) if credentials
          else grpc.insecure_channel(handle.address)) as channel:
        stub = model_service_pb2_grpc.ModelServiceStub(channel)
        while time.monotonic() < deadline:
            if handle.process.poll() is not None:
                pytest.fail(f"serving.local exited with {handle.process.returncode} before serving:\n"
                            f"{handle.log()}")
            try:
                states = stub.GetModelStatus(request, timeout=2).model_version_status
                if any(s.state == get_model_status_pb2.ModelVersionStatus.AVAILABLE for s in states):
                    return
                last = str(list(states))
            except grpc.RpcError as exc:
                last = f"{exc.code()}: {exc.details()}"
            time.sleep(0.2)
    pytest.fail(f"serving.local did not make {model} AVAILABLE within {timeout:.0f}s ({last}):\n"
                f"{handle.log()}")


@contextlib.contextmanager
def embedded_server(model_dir: Path | None, *extra_args: str, wait: bool = True, credentials=None,
                    env: dict[str, str] | None = None):
    """Start ``python -m serving.local`` on free loopback ports; yield a ServerHandle; stop it after.

    Serves ``model_dir/threshold`` unless extra_args name a --model-config-file or base path;
    extra_args override --port/--rest-port too. Waits (bounded) until GetModelStatus reports a
    version AVAILABLE unless wait=False (pass credentials for a TLS server). On exit: SIGTERM,
    then SIGKILL after 20 s.
    """
    import tempfile

    args = list(extra_args)
    grpc_port = free_port()
    rest_port = free_port()
    if _flag_given(extra_args, "--port"):
        grpc_port = int(_flag_value(extra_args, "--port"))
    else:
        args += ["--port", str(grpc_port)]
    if _flag_given(extra_args, "--rest-port"):
        rest_port = int(_flag_value(extra_args, "--rest-port"))
    else:
        args += ["--rest-port", str(rest_port)]
    if model_dir is not None and not _flag_given(extra_args, "--model-config-file", "--model-base-path"):
        args += ["--model-base-path", str(Path(model_dir) / "threshold")]
    log_fd, log_name = tempfile.mkstemp(prefix="serving-local-", suffix=".log")
    with os.fdopen(log_fd, "wb") as log_file:
        process = subprocess.Popen([PYTHON, "-m", "serving.local", *args], cwd=REPO, env=env or cli_env(),
                                   stdout=log_file, stderr=subprocess.STDOUT)
    handle = ServerHandle(f"127.0.0.1:{grpc_port}", grpc_port, rest_port, process, Path(log_name))
    try:
        if wait:
            wait_until_available(handle, credentials=credentials)
        yield handle
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        Path(log_name).unlink(missing_ok=True)


def _flag_value(args: tuple[str, ...], flag: str) -> str:
    for index, arg in enumerate(args):
        if arg.startswith(flag + "="):
            return arg.split("=", 1)[1]
        if arg == flag:
            return args[index + 1]
    raise KeyError(flag)


@pytest.fixture(scope="session")
def server(model_dir) -> ServerHandle:
    """serving.local on the session's model_dir (threshold/1), shared read-only by the session."""
    with embedded_server(model_dir) as handle:
        yield handle


class ServingStubs:
    """gRPC stubs for a server under test: TF Serving's two services and the health service."""

    def __init__(self, address: str, credentials=None, options=None):
        import grpc
        from grpc_health.v1 import health_pb2_grpc

        from client.protos import model_service_pb2_grpc, prediction_service_pb2_grpc

        options = [("grpc.max_receive_message_length", 256 << 20),
                   ("grpc.max_send_message_length", 256 << 20), *(options or [])]
        self.channel = (grpc.secure_channel(address, credentials, options=options) if credentials
                        else grpc.insecure_channel(address, options=options))
        self.prediction = prediction_service_pb2_grpc.PredictionServiceStub(self.channel)
        self.model = model_service_pb2_grpc.ModelServiceStub(self.channel)
        self.health = health_pb2_grpc.HealthStub(self.channel)

    def close(self) -> None:
        self.channel.close()


def tensor_proto(array):
    """A TensorProto with tensor_content, built by hand (the server's own codec is what is tested)."""
    import numpy as np

    from client.protos import tensor_pb2, tensor_shape_pb2, types_pb2

    array = np.asarray(array)  # tobytes() below is C order whatever the layout
    dtype = {np.dtype(np.float32): types_pb2.DT_FLOAT, np.dtype(np.float64): types_pb2.DT_DOUBLE,
             np.dtype(np.int32): types_pb2.DT_INT32, np.dtype(np.int64): types_pb2.DT_INT64,
             np.dtype(np.uint8): types_pb2.DT_UINT8}[array.dtype]
    shape = tensor_shape_pb2.TensorShapeProto(
        dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=size) for size in array.shape])
    return tensor_pb2.TensorProto(dtype=dtype, tensor_shape=shape, tensor_content=array.tobytes())


def tensor_array(proto):
    """The numpy array of a reply's TensorProto (tensor_content or typed values)."""
    import numpy as np

    from client.protos import types_pb2

    dtype, field = {types_pb2.DT_FLOAT: (np.float32, "float_val"), types_pb2.DT_UINT8: (np.uint8, "int_val"),
                    types_pb2.DT_INT32: (np.int32, "int_val")}[proto.dtype]
    shape = [dim.size for dim in proto.tensor_shape.dim]
    if proto.tensor_content:
        return np.frombuffer(proto.tensor_content, dtype=dtype).reshape(shape)
    return np.asarray(getattr(proto, field), dtype=dtype).reshape(shape)


def predict_request(array=None, *, signature: str | None = None, model: str = "threshold",
                    version: int | None = None, label: str | None = None, key: str = "x"):
    """A PredictRequest for one input (x by default); None array means no inputs at all."""
    from client.protos import model_pb2, predict_pb2

    spec = model_pb2.ModelSpec(name=model, signature_name=signature or "")
    if version is not None:
        spec.version.value = version
    if label is not None:
        spec.version_label = label
    request = predict_pb2.PredictRequest(model_spec=spec)
    if array is not None:
        request.inputs[key].CopyFrom(tensor_proto(array))
    return request


@pytest.fixture(scope="session")
def server_stubs(server) -> ServingStubs:
    """Stubs connected to the session's ``server``."""
    stubs = ServingStubs(server.address)
    yield stubs
    stubs.close()


def copy_version(source_model_dir: Path, target_model_dir: Path, version: int = 1,
                 as_version: int | None = None) -> Path:
    """Copy threshold/<version> to another model dir (cheaper than a second export); the new dir."""
    import shutil

    target = Path(target_model_dir) / "threshold" / str(as_version or version)
    shutil.copytree(Path(source_model_dir) / "threshold" / str(version), target)
    return target


def models_config(path: Path, *, num_versions: int = 2, labels: dict[str, int] | None = None,
                  base_path: str = "/models/threshold") -> Path:
    """Write a TF Serving ModelServerConfig text proto for the threshold model; its path."""
    label_lines = "".join(f'    version_labels {{ key: "{key}" value: {value} }}\n'
                          for key, value in (labels or {}).items())
    Path(path).write_text(
        "model_config_list {\n  config {\n    name: \"threshold\"\n"
        f"    base_path: \"{base_path}\"\n    model_platform: \"tensorflow\"\n"
        f"    model_version_policy {{ latest {{ num_versions: {num_versions} }} }}\n"
        f"{label_lines}  }}\n}}\n")
    return Path(path)
