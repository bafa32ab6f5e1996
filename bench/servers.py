"""The reference server for ratios: a raw-bytes echo and a TF Serving double, one gRPC handler.

``/bench.Echo/Echo`` and ``/tensorflow.serving.PredictionService/Predict`` are the same handler:
it takes the request as raw bytes and, for a request size it has seen, returns the response bytes
it made the first time (a dict lookup: no deserialization, no model). The first request of each
size is parsed and answered by the threshold rule in numpy (``serving_default`` float32,
``compact`` uint8, ``bounds``), which is why warmups must come first and why a benchmark sends
one batch per size. The echo is called with the serialized PredictRequest as raw bytes, so it
moves the same bytes both ways as Predict; a client-vs-echo ratio then measures only the
client's data path: same server, process, channel options, sizes and concurrency.

GetModelMetadata answers the exported model's signatures, so the client library can run
against it too.

``--typed-fields`` answers as TF Serving does by default (``float_val`` for a float32 mask,
``int_val`` for the uint8 one; see ``tensorflow_serving/servables/tensorflow/predict_util.cc`` and
its ``--enable_serialization_as_tensor_content`` flag): the same answers, in the form the client
decodes more slowly, so a typed-vs-tensor_content ratio measures the client's decoder alone.

``python -m bench.servers --port N`` serves on 127.0.0.1 until killed; ``--compute`` answers every
request by the rule (no replay), a stand-in model server for runs that send many batches.
"""

from __future__ import annotations

import argparse
import sys
import threading
from concurrent import futures

import grpc
import numpy as np

from client.names import DEFAULT_SIGNATURE, GET_MODEL_METADATA_METHOD, PREDICT_METHOD, PREDICT_METHOD_NAME
from client.protos import get_model_metadata_pb2, meta_graph_pb2, predict_pb2, types_pb2
from client.tensors import from_tensor_proto, to_tensor_proto

ECHO_METHOD = "/bench.Echo/Echo"
METADATA_METHOD = GET_MODEL_METADATA_METHOD
SERVER_OPTIONS = (("grpc.max_send_message_length", -1), ("grpc.max_receive_message_length", -1))
LOW, HIGH = -0.1, 0.1
MASK_DTYPES = {"serving_default": np.float32, "compact": np.uint8}
CACHE_ENTRIES = 64


def predict(request: predict_pb2.PredictRequest, typed: bool = False) -> predict_pb2.PredictResponse:
    """The threshold model's answer, in numpy; ``typed``: in the typed value fields, as TF Serving
    answers by default (the codec's AsProtoField)."""
    def encode(array: np.ndarray):
        return to_tensor_proto(array, as_content=not typed)

    signature = request.model_spec.signature_name or DEFAULT_SIGNATURE
    response = predict_pb2.PredictResponse()
    response.model_spec.name = request.model_spec.name
    response.model_spec.signature_name = signature
    response.model_spec.version.value = 1
    if signature == "bounds":
        response.outputs["low"].CopyFrom(encode(np.asarray(LOW, np.float32)))
        response.outputs["high"].CopyFrom(encode(np.asarray(HIGH, np.float32)))
        return response
    x = from_tensor_proto(request.inputs["x"])
    mask = ((x < LOW) | (x > HIGH)).astype(MASK_DTYPES[signature])
    response.outputs["mask"].CopyFrom(encode(mask))
    return response


def metadata(model_name: str = "threshold") -> bytes:
    """A serialized GetModelMetadataResponse with the exported model's three signatures."""
    def info(dtype: int, rank: int) -> meta_graph_pb2.TensorInfo:
        tensor = meta_graph_pb2.TensorInfo(dtype=dtype)
        for _ in range(rank):
            tensor.tensor_shape.dim.add().size = -1
        return tensor

    scalar = info(types_pb2.DT_FLOAT, 0)
    signatures = get_model_metadata_pb2.SignatureDefMap()
    for name, outputs in (("serving_default", {"mask": info(types_pb2.DT_FLOAT, 2)}),
                          ("compact", {"mask": info(types_pb2.DT_UINT8, 2)}),
                          ("bounds", {"low": scalar, "high": scalar})):
        signature = signatures.signature_def[name]
        signature.method_name = PREDICT_METHOD_NAME
        signature.inputs["x"].CopyFrom(info(types_pb2.DT_FLOAT, 2))
        for key, tensor in outputs.items():
            signature.outputs[key].CopyFrom(tensor)
    response = get_model_metadata_pb2.GetModelMetadataResponse()
    response.model_spec.name = model_name
    response.model_spec.version.value = 1
    response.metadata["signature_def"].Pack(signatures)
    return response.SerializeToString()


class ReferenceHandler(grpc.GenericRpcHandler):
    """Echo and Predict: cached response bytes by request size; GetModelMetadata: fixed bytes."""

    def __init__(self, cache: bool = True, typed: bool = False) -> None:
        self._cache, self._typed = cache, typed
        self._responses: dict[int, bytes] = {}
        self._lock = threading.Lock()
        self._predict = grpc.unary_unary_rpc_method_handler(self._answer)  # bytes in, bytes out
        answer = metadata()
        self._metadata = grpc.unary_unary_rpc_method_handler(lambda request, context: answer)

    def _answer(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        response = self._responses.get(len(request))
        if response is None:
            try:
                answer = predict(predict_pb2.PredictRequest.FromString(request), self._typed)
                response = answer.SerializeToString()
            except Exception as exc:  # noqa: BLE001 - a bad request is the caller's to see
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"cannot answer this request: {exc}")
            if not self._cache:
                return response
            with self._lock:
                if len(self._responses) >= CACHE_ENTRIES:
                    self._responses.clear()
                self._responses[len(request)] = response
        return response

    def service(self, handler_call_details):
        if handler_call_details.method in (ECHO_METHOD, PREDICT_METHOD):
            return self._predict
        if handler_call_details.method == METADATA_METHOD:
            return self._metadata
        return None


def start(port: int = 0, workers: int = 16, cache: bool = True, typed: bool = False) -> grpc.Server:
    """A started reference server on 127.0.0.1:port (0 picks a port; see ``server.port``).

    ``cache=False`` computes every answer (a stand-in model server for runs that send many
    different batches, like ``client.predict`` on a file); ``typed`` answers in the typed fields.
    """
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=workers), options=SERVER_OPTIONS)
    server.add_generic_rpc_handlers((ReferenceHandler(cache, typed),))
    server.port = server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    return server


def parse_shape(text: str) -> tuple[int, int]:
    """'1024x256' -> (1024, 256)."""
    rows, _, cols = text.lower().partition("x")
    return int(rows), int(cols)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.servers", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: a free one)")
    parser.add_argument("--compute", action="store_true",
                        help="compute every answer instead of replaying the first one of each size")
    parser.add_argument("--typed-fields", action="store_true",
                        help="answer in float_val / int_val (TF Serving's default), not tensor_content")
    args = parser.parse_args(argv)
    server = start(args.port, cache=not args.compute, typed=args.typed_fields)
    print(f"bench.servers: listening on 127.0.0.1:{server.port}", flush=True)
    try:
        server.wait_for_termination()
    except KeyboardInterrupt:
        server.stop(0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
