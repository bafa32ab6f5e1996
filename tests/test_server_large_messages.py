"""A 64 MiB request is served by default (the gRPC default limit would refuse anything over 4 MiB)."""

from __future__ import annotations

import numpy as np

from tests.support.grpc_calls import predict_request, tensor_array


def test_64_mib_request_is_served(server_stubs):
    x = np.tile(np.asarray([-0.5, 0.0, 0.5, 0.05], np.float32), (1 << 22, 1))  # 4M x 4 float32 = 64 MiB
    assert x.nbytes == 64 << 20
    for signature, dtype in ((None, np.float32), ("compact", np.uint8)):
        mask = tensor_array(
            server_stubs.prediction.Predict(predict_request(x, signature=signature), timeout=120).outputs[
                "mask"
            ]
        )
        assert mask.shape == x.shape and mask.dtype == dtype
        assert mask[0].tolist() == [1, 0, 1, 0] and mask[-1].tolist() == [1, 0, 1, 0]
        assert int(mask.sum()) == 2 * x.shape[0]
