"""The fake TF Serving (bench/fake_tf_serving.py) answers as TF Serving does where tests and bench lean on it.

The client tests pin its Predict and metadata answers through the client; these pin what only
the fake docker's "container" and the benchmark read: model status over gRPC and REST, the
unknown-signature error, and the benchmark's replay.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import grpc
import numpy as np
import pytest

from bench.fake_tf_serving import FakeTfServing
from client.protos import get_model_status_pb2, model_pb2
from tests.support.grpc_calls import ServingStubs, predict_request, tensor_array
from tests.support.ports import free_port


@pytest.fixture
def models_dir(tmp_path):
    for version in (1, 2, 3):
        (tmp_path / "threshold" / str(version)).mkdir(parents=True)
    (tmp_path / "threshold" / "not-a-version").mkdir()
    return tmp_path


@pytest.fixture
def start():
    started = []

    def start(**options) -> tuple[FakeTfServing, ServingStubs]:
        fake = FakeTfServing(**options)
        started.append((fake, ServingStubs(fake.address)))
        return started[-1]

    yield start
    for fake, stubs in started:
        stubs.close()
        fake.stop()


def _status(stubs: ServingStubs, name: str = "threshold") -> list[tuple[int, int]]:
    request = get_model_status_pb2.GetModelStatusRequest(model_spec=model_pb2.ModelSpec(name=name))
    answer = stubs.model.GetModelStatus(request, timeout=10)
    return [(status.version, status.state) for status in answer.model_version_status]


def test_model_status_reports_the_two_newest_version_directories_on_each_call(start, models_dir):
    _, stubs = start(models_dir=models_dir)
    available = get_model_status_pb2.ModelVersionStatus.AVAILABLE
    assert _status(stubs) == [(2, available), (3, available)]
    (models_dir / "threshold" / "10").mkdir()
    assert _status(stubs) == [(3, available), (10, available)]


def test_model_status_of_another_model_is_not_found(start):
    _, stubs = start()
    with pytest.raises(grpc.RpcError) as caught:
        _status(stubs, "other")
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


def test_without_grpc_model_status_the_method_is_unimplemented(start):
    _, stubs = start(grpc_model_status=False)
    with pytest.raises(grpc.RpcError) as caught:
        _status(stubs)
    assert caught.value.code() == grpc.StatusCode.UNIMPLEMENTED


def test_rest_model_status_is_tf_servings_json(start, models_dir):
    """Versions as strings, as tensorflow_serving/model_servers/http_rest_api_handler.cc writes them."""
    rest_port = free_port()
    start(models_dir=models_dir, rest_port=rest_port)
    with urllib.request.urlopen(f"http://127.0.0.1:{rest_port}/v1/models/threshold", timeout=10) as answer:
        body = json.load(answer)
    assert body == {
        "model_version_status": [
            {"version": version, "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}
            for version in ("2", "3")
        ]
    }
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(f"http://127.0.0.1:{rest_port}/v1/models/other", timeout=10)
    assert caught.value.code == 404


def test_an_unknown_signature_is_failed_precondition(start):
    """tensorflow_serving/servables/tensorflow/predict_util.cc: 'Serving signature key "..." not found.'"""
    _, stubs = start()
    with pytest.raises(grpc.RpcError) as caught:
        stubs.prediction.Predict(predict_request(np.zeros((1, 2), np.float32), signature="nope"), timeout=10)
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert caught.value.details() == 'Serving signature key "nope" not found.'


def test_the_answer_names_the_signature_that_ran(start):
    """predict_util.cc's MakeModelSpec fills in the resolved signature name (serving_default for "")."""
    _, stubs = start()
    response = stubs.prediction.Predict(predict_request(np.zeros((1, 2), np.float32)), timeout=10)
    assert response.model_spec.signature_name == "serving_default"


def test_replay_answers_a_seen_request_size_with_the_first_answers_bytes(start):
    fake, stubs = start(replay=True)
    first = stubs.prediction.Predict(predict_request(np.full((1, 2), 5.0, np.float32)), timeout=10)
    again = stubs.prediction.Predict(predict_request(np.zeros((1, 2), np.float32)), timeout=10)
    assert tensor_array(first.outputs["mask"]).tolist() == [[1.0, 1.0]]
    assert again == first and fake.predicts == 1
    computed, computed_stubs = start()
    answer = computed_stubs.prediction.Predict(predict_request(np.zeros((1, 2), np.float32)), timeout=10)
    assert tensor_array(answer.outputs["mask"]).tolist() == [[0.0, 0.0]]
