"""After each kind of bad request the embedded server still gives the exact answer to a good one.

Each case sends its own bad request and then a good one with a fresh input, so the proof does
not depend on which other tests ran before, or in what order.
"""

from __future__ import annotations

import grpc
import numpy as np
import pytest

from client.checker import expected_mask
from client.protos import tensor_pb2, tensor_shape_pb2, types_pb2
from tests.support.grpc_calls import predict_request, tensor_array


def shape(*sizes):
    dims = [tensor_shape_pb2.TensorShapeProto.Dim(size=size) for size in sizes]
    return tensor_shape_pb2.TensorShapeProto(dim=dims)


def with_tensor(tensor):
    request = predict_request(None)
    request.inputs["x"].CopyFrom(tensor)
    return request


GOOD = np.random.default_rng(1).normal(scale=0.2, size=(3, 8)).astype(np.float32)
BAD_REQUESTS = {
    "unknown model": predict_request(GOOD, model="nope"),
    "unknown version": predict_request(GOOD, version=999),
    "unknown label": predict_request(GOOD, label="nope"),
    "unknown signature": predict_request(GOOD, signature="nope"),
    "no inputs": predict_request(None),
    "wrong input key": predict_request(GOOD, key="y"),
    "float64 input": predict_request(GOOD.astype(np.float64)),
    "tensor_content too short": with_tensor(
        tensor_pb2.TensorProto(
            dtype=types_pb2.DT_FLOAT, tensor_shape=shape(2, 8), tensor_content=GOOD[:1].tobytes()
        )
    ),
    "negative dimension": with_tensor(
        tensor_pb2.TensorProto(dtype=types_pb2.DT_FLOAT, tensor_shape=shape(-1, 2))
    ),
    "huge shape": with_tensor(
        tensor_pb2.TensorProto(dtype=types_pb2.DT_FLOAT, tensor_shape=shape(1 << 40, 1 << 40))
    ),
    "string input": with_tensor(
        tensor_pb2.TensorProto(dtype=types_pb2.DT_STRING, tensor_shape=shape(1), string_val=[b"0.5"])
    ),
}


@pytest.mark.parametrize("case", list(BAD_REQUESTS))
def test_a_good_request_after_a_bad_one_gets_the_exact_answer(server_stubs, case):
    with pytest.raises(grpc.RpcError) as failed:
        server_stubs.prediction.Predict(BAD_REQUESTS[case], timeout=30)
    assert failed.value.code() not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.UNKNOWN)

    x = np.random.default_rng(len(case)).normal(scale=0.2, size=(5, 8)).astype(np.float32)
    for signature, dtype in ((None, np.float32), ("compact", np.uint8)):
        response = server_stubs.prediction.Predict(predict_request(x, signature=signature), timeout=30)
        mask = tensor_array(response.outputs["mask"])
        assert mask.dtype == dtype and np.array_equal(mask, expected_mask(x, -0.1, 0.1).astype(dtype))
