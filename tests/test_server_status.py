"""GetModelStatus reports what TF Serving reports (the health service: test_conformance_health.py)."""

from __future__ import annotations

import grpc
import pytest

from client.protos import get_model_status_pb2, model_pb2

AVAILABLE = get_model_status_pb2.ModelVersionStatus.AVAILABLE


def status(stubs, name="threshold", version=None):
    spec = model_pb2.ModelSpec(name=name)
    if version is not None:
        spec.version.value = version
    return stubs.model.GetModelStatus(get_model_status_pb2.GetModelStatusRequest(model_spec=spec), timeout=10)


def test_loaded_version_is_available_with_ok_status(server_stubs):
    (version,) = status(server_stubs).model_version_status
    assert (version.version, version.state) == (1, AVAILABLE)
    assert version.HasField("status") and version.status.error_code == 0


def test_status_of_one_version(server_stubs):
    assert [v.version for v in status(server_stubs, version=1).model_version_status] == [1]


def test_unknown_version_is_not_found(server_stubs):
    with pytest.raises(grpc.RpcError) as error:
        status(server_stubs, version=7)
    assert error.value.code() == grpc.StatusCode.NOT_FOUND
    assert error.value.details() == "Could not find version 7 of model threshold"


def test_unknown_model_is_not_found(server_stubs):
    with pytest.raises(grpc.RpcError) as error:
        status(server_stubs, name="nope")
    assert error.value.code() == grpc.StatusCode.NOT_FOUND
    assert error.value.details() == "Could not find any versions of model nope"
