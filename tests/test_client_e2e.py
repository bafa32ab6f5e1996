"""End to end against the real model: the embedded TF Serving-compatible server over loopback gRPC.

Uses the session-scoped ``server`` fixture (``serving.local`` serving the exported SavedModel).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from client import ModelNotFound, ThresholdClient
from client.checker import expected_mask
from tests.support.models import REFERENCE_INPUT, REFERENCE_MASK
from tests.support.processes import run_module


def test_reference_vector_end_to_end(server, tmp_path):
    np.save(tmp_path / "ref.npy", np.array(REFERENCE_INPUT, np.float32))
    result = run_module("client.predict", tmp_path / "ref.npy", "--server", server.address, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[0 1 1 1 1 0 0 1]"
    assert "all 8 values match (x < -0.1) | (x > 0.1)" in result.stderr


def test_random_data_matches_the_numpy_rule(server):
    x = np.random.default_rng(11).normal(scale=0.2, size=(2000, 129)).astype(np.float32)
    x[0, :6] = [-0.1, 0.1, np.nan, np.inf, -np.inf, np.float32(0.1) + np.float32(1e-8)]
    with ThresholdClient(server.address) as client:
        assert client.bounds() == (np.float32(-0.1), np.float32(0.1))
        mask = client.predict(x, batch_size=300, concurrency=4)
        compact = client.predict(x, compact=True)
    assert mask.dtype == np.float32 and compact.dtype == np.uint8
    assert np.array_equal(mask, expected_mask(x, -0.1, 0.1)) and np.array_equal(compact, mask)


def test_compact_file_round_trip_with_json_summary(server, tmp_path):
    np.save(tmp_path / "ref.npy", np.array([REFERENCE_INPUT] * 3))
    result = run_module(
        "client.predict",
        tmp_path / "ref.npy",
        "--server",
        server.address,
        "--compact",
        "--json",
        "-o",
        tmp_path / "mask.npy",
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["ok"] and summary["signature"] == "compact" and summary["mismatches"] == 0
    assert summary["version"] is not None and summary["latency_p50_ms"] > 0
    mask = np.load(tmp_path / "mask.npy")
    assert mask.dtype == np.uint8 and mask.tolist() == [REFERENCE_MASK] * 3


def test_unknown_model_and_version_are_not_found(server, tmp_path):
    np.save(tmp_path / "ref.npy", np.array(REFERENCE_INPUT))
    result = run_module(
        "client.predict", tmp_path / "ref.npy", "--server", server.address, "--model", "nope", timeout=120
    )
    assert result.returncode == 7 and result.stderr.startswith("error: model 'nope'"), result.stderr
    with ThresholdClient(server.address, version=999) as client, pytest.raises(ModelNotFound) as caught:
        client.model_info()
    assert "version 999" in str(caught.value)
