"""Calling a server under test by hand: TF Serving's stubs and hand-built messages.

Built without the client library, so the server's behaviour is tested, not the client's codec.
"""

from __future__ import annotations

import grpc
import numpy as np
from grpc_health.v1 import health_pb2_grpc

from client.protos import (
    model_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
    tensor_pb2,
    tensor_shape_pb2,
    types_pb2,
)


class ServingStubs:
    """gRPC stubs for a server under test: TF Serving's two services and the health service."""

    def __init__(self, address: str, credentials=None, options=None):
        options = [
            ("grpc.max_receive_message_length", 256 << 20),
            ("grpc.max_send_message_length", 256 << 20),
            *(options or []),
        ]
        self.channel = (
            grpc.secure_channel(address, credentials, options=options)
            if credentials
            else grpc.insecure_channel(address, options=options)
        )
        self.prediction = prediction_service_pb2_grpc.PredictionServiceStub(self.channel)
        self.model = model_service_pb2_grpc.ModelServiceStub(self.channel)
        self.health = health_pb2_grpc.HealthStub(self.channel)

    def close(self) -> None:
        self.channel.close()


def tensor_proto(array):
    """A TensorProto with tensor_content, built by hand (the server's own codec is what is tested)."""
    array = np.asarray(array)  # tobytes() below is C order whatever the layout
    dtype = {
        np.dtype(np.float32): types_pb2.DT_FLOAT,
        np.dtype(np.float64): types_pb2.DT_DOUBLE,
        np.dtype(np.int32): types_pb2.DT_INT32,
        np.dtype(np.int64): types_pb2.DT_INT64,
        np.dtype(np.uint8): types_pb2.DT_UINT8,
    }[array.dtype]
    shape = tensor_shape_pb2.TensorShapeProto(
        dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=size) for size in array.shape]
    )
    return tensor_pb2.TensorProto(dtype=dtype, tensor_shape=shape, tensor_content=array.tobytes())


def tensor_array(proto):
    """The numpy array of a reply's TensorProto (tensor_content or typed values)."""
    dtype, field = {
        types_pb2.DT_FLOAT: (np.float32, "float_val"),
        types_pb2.DT_UINT8: (np.uint8, "int_val"),
        types_pb2.DT_INT32: (np.int32, "int_val"),
    }[proto.dtype]
    shape = [dim.size for dim in proto.tensor_shape.dim]
    if proto.tensor_content:
        return np.frombuffer(proto.tensor_content, dtype=dtype).reshape(shape)
    return np.asarray(getattr(proto, field), dtype=dtype).reshape(shape)


def predict_request(
    array=None,
    *,
    signature: str | None = None,
    model: str = "threshold",
    version: int | None = None,
    label: str | None = None,
    key: str = "x",
):
    """A PredictRequest for one input (x by default); None array means no inputs at all."""
    spec = model_pb2.ModelSpec(name=model, signature_name=signature or "")
    if version is not None:
        spec.version.value = version
    if label is not None:
        spec.version_label = label
    request = predict_pb2.PredictRequest(model_spec=spec)
    if array is not None:
        request.inputs[key].CopyFrom(tensor_proto(array))
    return request


def reload_config(
    stubs: ServingStubs, config_text: str, timeout: float = 60, metric_names: tuple[str, ...] = ()
):
    """ModelService.HandleReloadConfigRequest with a ModelServerConfig text proto (and the metrics
    whose increase it should report); its response."""
    from google.protobuf import text_format
    from tensorflow_serving.apis import (
        model_management_pb2,
        model_service_pb2_grpc,
    )  # the client never reloads

    request = model_management_pb2.ReloadConfigRequest()
    text_format.Parse(config_text, request.config)
    request.metric_names.extend(metric_names)
    return model_service_pb2_grpc.ModelServiceStub(stubs.channel).HandleReloadConfigRequest(
        request, timeout=timeout
    )
