"""One client across many replicas: gRPC target syntax, round_robin, a replica lost mid-run.

Three embedded servers (``python -m serving.local``) on loopback ports stand in for the pods
behind a headless Service; each server's own Prometheus counter
(``:tensorflow:serving:request_count``, TF Serving's name, see
tensorflow_serving/model_servers/prometheus_exporter.cc) shows the share it answered.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import time
import urllib.request

import numpy as np
import pytest

from client.channel import normalize_address
from client.replicas import choose_lb_policy, names_several_replicas
from tests.support.embedded_server import WITH_METRICS, embedded_server, wait_until_available
from tests.support.processes import PYTHON, REPO, cli_env, run_module

LOW, HIGH = np.float32(-0.1), np.float32(0.1)  # the exported model's default bounds
OK_COUNT = re.compile(
    r'^:tensorflow:serving:request_count(?:_total)?\{model_name="threshold",status="OK"\} (\S+)$', re.M
)


@pytest.fixture(scope="module")
def replicas(model_dir):
    """Three embedded servers on the same model, started together."""
    with contextlib.ExitStack() as stack:
        handles = [
            stack.enter_context(embedded_server(model_dir, *WITH_METRICS, wait=False)) for _ in range(3)
        ]
        for handle in handles:
            wait_until_available(handle)
        yield handles


def ipv4_target(handles) -> str:
    return "ipv4:" + ",".join(handle.address for handle in handles)


def requests_answered(handle) -> int:
    """The server's own count of OK Predicts (the bounds one included), from its REST metrics; TF Serving
    counts Predict, Classify and Regress there, not GetModelMetadata."""
    url = f"http://127.0.0.1:{handle.rest_port}/monitoring/prometheus/metrics"
    text = urllib.request.urlopen(url, timeout=10).read().decode()
    match = OK_COUNT.search(text)
    return int(float(match.group(1))) if match else 0


def data(tmp_path, rows: int, cols: int = 64):
    path = tmp_path / "data.npy"
    array = np.random.default_rng(rows).normal(0, 0.2, (rows, cols)).astype(np.float32)
    np.save(path, array)
    return path, ((array < LOW) | (array > HIGH)).astype(np.float32)


def predict_json(*args) -> tuple[int, dict, str]:
    result = run_module("client.predict", *args, "--json", timeout=120)
    return result.returncode, json.loads(result.stdout.strip().splitlines()[-1]), result.stderr


@pytest.mark.parametrize(
    ("target", "several"),
    [
        ("dns:///threshold-serving-headless:8500", True),
        ("ipv4:10.0.0.1:8500,10.0.0.2:8500", True),
        ("ipv6:[::1]:8500,[::1]:8501", True),
        ("ipv4:10.0.0.1:8500", False),
        ("host:8500", False),
        ("127.0.0.1:8500", False),
    ],
)
def test_targets_that_name_several_replicas_get_round_robin(target, several):
    assert names_several_replicas(target) is several
    assert choose_lb_policy(target) == ("round_robin" if several else "pick_first")
    assert choose_lb_policy(target, "pick_first") == "pick_first"
    assert normalize_address(target) == target  # host:port already has its port; URIs pass unchanged


def test_round_robin_spreads_one_run_over_every_replica(replicas, tmp_path):
    path, expected = data(tmp_path, rows=1200)
    before = [requests_answered(handle) for handle in replicas]
    code, summary, stderr = predict_json(
        path, "--server", ipv4_target(replicas), "--batch-size", "10", "-o", tmp_path / "mask.npy"
    )
    assert code == 0, stderr
    np.testing.assert_array_equal(np.load(tmp_path / "mask.npy"), expected)
    served = [requests_answered(handle) - old for handle, old in zip(replicas, before, strict=True)]
    assert all(count > 0 for count in served), served
    # Every replica's own count covers what the client says it answered; the bounds Predict of
    # discovery is the only other one counted (GetModelMetadata is not a counted request).
    answered = summary["answered_by"]
    assert set(answered) == {handle.address for handle in replicas}
    assert sum(answered.values()) == summary["batches"] == 120
    assert sum(served) == summary["batches"] + 1
    for handle, count in zip(replicas, served, strict=True):
        assert count - answered[handle.address] in (0, 1, 2)


def test_pick_first_keeps_one_run_on_one_replica(replicas, tmp_path):
    path, expected = data(tmp_path, rows=300)
    before = [requests_answered(handle) for handle in replicas]
    code, summary, stderr = predict_json(
        path,
        "--server",
        ipv4_target(replicas),
        "--batch-size",
        "10",
        "--lb-policy",
        "pick_first",
        "-o",
        tmp_path / "mask.npy",
    )
    assert code == 0, stderr
    np.testing.assert_array_equal(np.load(tmp_path / "mask.npy"), expected)
    served = [requests_answered(handle) - old for handle, old in zip(replicas, before, strict=True)]
    assert sorted(served) == [0, 0, 31], served
    assert list(summary["answered_by"].values()) == [30]


def test_text_summary_says_what_each_address_answered(replicas, tmp_path):
    path, _ = data(tmp_path, rows=300)
    result = run_module(
        "client.predict",
        path,
        "--server",
        ipv4_target(replicas),
        "--batch-size",
        "10",
        "-o",
        tmp_path / "mask.npy",
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    (line,) = [line for line in result.stderr.splitlines() if "answered by" in line]
    counts = dict(re.findall(r"(127\.0\.0\.1:\d+) (\d+)", line))
    assert set(counts) == {handle.address for handle in replicas}
    assert sum(map(int, counts.values())) == 30


def test_a_replica_killed_mid_run_loses_and_duplicates_nothing(replicas, model_dir, tmp_path):
    """SIGKILL one of three replicas while the client has requests in flight: they go to the others.

    The client is paused (SIGSTOP) once the victim has answered some requests, so the kill lands
    mid-run however fast this machine is; then it resumes against a dead connection.
    """
    path, expected = data(tmp_path, rows=6000)
    with embedded_server(model_dir, *WITH_METRICS) as victim:
        target = ipv4_target([replicas[0], replicas[1], victim])
        command = [
            PYTHON,
            "-m",
            "client.predict",
            str(path),
            "--server",
            target,
            "--batch-size",
            "2",
            "--concurrency",
            "4",
            "-o",
            str(tmp_path / "mask.npy"),
            "--json",
        ]
        client = subprocess.Popen(
            command, cwd=REPO, env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        try:
            while requests_answered(victim) < 20 and client.poll() is None:
                time.sleep(0.01)
            os.kill(client.pid, signal.SIGSTOP)
            assert client.poll() is None, "the run finished before a replica could be killed"
            victim.process.kill()
            victim.process.wait()
            os.kill(client.pid, signal.SIGCONT)
            stdout, stderr = client.communicate(timeout=120)
        finally:
            if client.poll() is None:
                client.kill()
                client.wait()
    assert client.returncode == 0, stderr
    np.testing.assert_array_equal(np.load(tmp_path / "mask.npy"), expected)
    summary = json.loads(stdout)
    assert summary["ok"] and summary["batches"] == 3000
    answered = summary["answered_by"]
    assert sum(answered.values()) == 3000  # each batch answered once, retried ones included
    # It served its share until it died: 20 counted, less discovery (1) and what was still in flight (4).
    assert answered[victim.address] >= 20 - 1 - 4
    assert answered[replicas[0].address] > 0 and answered[replicas[1].address] > 0
