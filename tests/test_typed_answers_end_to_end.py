"""Answers in the typed value fields, as TF Serving sends them by default, end to end through the client.

TF Serving encodes a Predict response with ``Tensor::AsProtoField`` unless started with
``--enable_serialization_as_tensor_content=true`` (tensorflow_serving/servables/tensorflow/
predict_util.cc, model_servers/server.cc): a float32 mask arrives in ``float_val``, the uint8
``compact`` mask in ``int_val``. The reference server (``python -m bench.fake_tf_serving --typed-fields``)
answers that way, and so does the embedded server unless given the tensor_content flag.
"""

from __future__ import annotations

import subprocess

import numpy as np
import pytest

from bench.sections import TENSOR_CONTENT_FLAG
from client.checker import expected_mask
from tests.support.embedded_server import embedded_server
from tests.support.grpc_calls import ServingStubs, predict_request
from tests.support.processes import PYTHON, REPO, cli_env, run_module


@pytest.fixture(scope="module")
def typed_server():
    """``python -m bench.fake_tf_serving --typed-fields`` on a free port: its address."""
    process = subprocess.Popen(
        [PYTHON, "-m", "bench.fake_tf_serving", "--port", "0", "--typed-fields"],
        cwd=REPO,
        env=cli_env(),
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = process.stdout.readline()
        assert "listening on" in line, line
        yield line.rsplit(" ", 1)[-1].strip()
    finally:
        process.terminate()
        process.wait(timeout=20)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    x = np.random.default_rng(9).normal(scale=0.2, size=(3000, 77)).astype(np.float32)
    x[0, :6] = [-0.1, 0.1, np.nan, np.inf, -np.inf, np.float32(0.1) + np.float32(1e-8)]
    path = tmp_path_factory.mktemp("typed") / "x.npy"
    np.save(path, x)
    return x, path


def fields_used(address: str, signature: str) -> set[str]:
    stubs = ServingStubs(address)
    try:
        mask = stubs.prediction.Predict(
            predict_request(np.ones((2, 3), np.float32), signature=signature), timeout=30
        ).outputs["mask"]
    finally:
        stubs.close()
    return {field.name for field, _ in mask.ListFields()} & {"tensor_content", "float_val", "int_val"}


def assert_exact_answers(address: str, data, tmp_path) -> None:
    x, path = data
    expected = expected_mask(x, -0.1, 0.1)
    for args, dtype in (((), np.float32), (("--compact",), np.uint8)):
        out = tmp_path / f"mask-{dtype.__name__}.npy"
        result = run_module(
            "client.predict", path, "--server", address, *args, "-o", out, "--batch-size", "400", timeout=120
        )
        assert result.returncode == 0, result.stderr
        assert f"all {x.size} values match" in result.stderr
        mask = np.load(out)
        assert mask.dtype == dtype and np.array_equal(mask, expected.astype(dtype))


def test_float_val_and_int_val_answers_are_exact_through_the_cli(typed_server, data, tmp_path):
    assert fields_used(typed_server, "serving_default") == {"float_val"}
    assert fields_used(typed_server, "compact") == {"int_val"}
    assert_exact_answers(typed_server, data, tmp_path)


def test_the_embedded_servers_default_typed_answers_are_exact_through_the_cli(model_dir, data, tmp_path):
    with embedded_server(model_dir) as handle:
        assert fields_used(handle.address, "serving_default") == {"float_val"}
        assert fields_used(handle.address, "compact") == {"int_val"}
        assert_exact_answers(handle.address, data, tmp_path)
    with embedded_server(model_dir, TENSOR_CONTENT_FLAG) as handle:
        assert fields_used(handle.address, "compact") == {"tensor_content"}
        assert_exact_answers(handle.address, data, tmp_path)
