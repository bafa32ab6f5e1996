"""A TF Serving double in this process (no TensorFlow), for the client's tests."""

from __future__ import annotations


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
