"""Fixtures shared by the tests; what they build lives in tests/support/."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bench.fake_tf_serving import FakeTfServing
from tests.support.embedded_server import WITH_METRICS, ServerHandle, embedded_server
from tests.support.grpc_calls import ServingStubs
from tests.support.models import REFERENCE_INPUT, export_version


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory) -> Path:
    """A model directory with threshold/1 (default bounds) exported by the real CLI.

    Shared read-only by the session: tests that add versions make their own directory.
    """
    directory = tmp_path_factory.mktemp("models")
    export_version(directory)
    return directory


@pytest.fixture(scope="session")
def server(model_dir) -> ServerHandle:
    """serving.local on the session's model_dir (threshold/1), shared read-only by the session;
    TF Serving's default flags but for the metrics page make serve turns on (WITH_METRICS)."""
    with embedded_server(model_dir, *WITH_METRICS) as handle:
        yield handle


@pytest.fixture(scope="session")
def server_stubs(server) -> ServingStubs:
    """Stubs connected to the session's ``server``."""
    stubs = ServingStubs(server.address)
    yield stubs
    stubs.close()


@pytest.fixture
def reference_file(tmp_path) -> Path:
    """The seed case as a float32 .npy file."""
    np.save(tmp_path / "ref.npy", np.array(REFERENCE_INPUT, np.float32))
    return tmp_path / "ref.npy"


@pytest.fixture
def fake_server():
    """Start the fake TF Serving, ``FakeTfServing(**options)``, on a free loopback port; all are
    stopped afterwards."""
    started = []

    def start(**options) -> FakeTfServing:
        started.append(FakeTfServing(**options))
        return started[-1]

    yield start
    for server in started:
        server.stop()
