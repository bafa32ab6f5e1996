"""``python -m serving.local``'s flags: help, and one-line errors (no traceback) for what a user must fix."""

from __future__ import annotations

import os
import socket
import subprocess
import time
import urllib.request

import pytest

from tests.support.models import models_config
from tests.support.ports import free_port
from tests.support.processes import PYTHON, REPO, cli_env, run_module

FLAGS = [
    "--host",
    "--port",
    "--rest-port",
    "--model-config-file",
    "--models-dir",
    "--model-name",
    "--model-base-path",
    "--file-system-poll-wait-seconds",
    "--model-config-file-poll-wait-seconds",
    "--max-message-bytes",
    "--enable-batching",
    "--batching-parameters-file",
    "--max-batch-size",
    "--batch-timeout-micros",
    "--num-batch-threads",
    "--ssl-cert",
    "--ssl-key",
    "--ssl-client-ca",
    "--allow-insecure-remote",
    "--enable-serialization-as-tensor-content",
    "--max-request-tensor-bytes",
    "--tensorflow-session-parallelism",
    "--tensorflow-intra-op-parallelism",
    "--tensorflow-inter-op-parallelism",
    "--allow-version-labels-for-unavailable-models",
    "--grpc-max-threads",
    "--rest-api-num-threads",
    "--enable-grpc-healthcheck-service",
    "--monitoring-config-file",
    "--rest-api-enable-cors-support",
    "--enable-signature-method-name-check",
    "--saved-model-tags",
]


def failed_with_one_line(result, *fragments: str) -> None:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("serving.local: error: ")]
    assert len(errors) == 1, result.stderr
    for fragment in fragments:
        assert fragment in errors[0]


def test_help_explains_every_flag():
    result = run_module("serving.local", "--help", timeout=60)
    assert result.returncode == 0
    for flag in FLAGS:
        assert flag in result.stdout


def test_grpc_threads_default_to_four_per_schedulable_cpu():
    """TF Serving: tensorflow_serving/model_servers/server.h, grpc_max_threads = 4.0 *
    port::NumSchedulableCPUs() (the CPUs this process may run on). The REST pool keeps its own
    bound of 4 (README, Reliability: its JSON is parsed in Python, holding the GIL)."""
    from serving.local.flags import parse_options

    options = parse_options(["--model-base-path", "/models/threshold"])
    assert options.grpc_threads == 4 * len(os.sched_getaffinity(0))
    assert options.rest_api_num_threads == 4


def test_grpc_max_threads_is_tf_servings_flag_and_grpc_threads_still_names_it():
    """TF Serving: tensorflow_serving/model_servers/main.cc, --grpc_max_threads."""
    from serving.local.flags import parse_options

    for flag in ("--grpc-max-threads", "--grpc-threads"):
        assert parse_options(["--model-base-path", "/models/threshold", flag, "3"]).grpc_threads == 3


def test_bad_flag_value_is_a_usage_error():
    result = run_module("serving.local", "--port", "eighty", timeout=60)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "--port" in result.stderr


@pytest.mark.parametrize(
    "args,fragment",
    [
        (["--ssl-cert", "cert.pem"], "--ssl-cert and --ssl-key go together"),
        (["--port", "9000", "--rest-port", "9000"], "must differ"),
        (["--model-config-file", "a.config", "--model-base-path", "m"], "not both"),
    ],
)
def test_inconsistent_flags_are_usage_errors(args, fragment):
    result = run_module("serving.local", *args, timeout=60)
    assert result.returncode == 2 and fragment in result.stderr


def test_missing_config_file_is_named(tmp_path):
    result = run_module("serving.local", "--model-config-file", tmp_path / "nope.config", timeout=60)
    failed_with_one_line(result, "nope.config does not exist")


def test_non_loopback_host_needs_tls(tmp_path):
    result = run_module("serving.local", "--host", "0.0.0.0", "--model-base-path", tmp_path, timeout=60)
    failed_with_one_line(result, "refusing to serve plain text on 0.0.0.0", "--allow-insecure-remote")


def test_port_in_use_is_reported(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_module("serving.local", "--port", str(port), "--model-base-path", tmp_path, timeout=60)
    failed_with_one_line(result, f"gRPC port 127.0.0.1:{port} is taken", "pick another --port")


def test_no_versions_says_run_make_export(tmp_path):
    (tmp_path / "threshold" / ".partial-1-99").mkdir(parents=True)  # not a version
    result = run_module(
        "serving.local",
        "--models-dir",
        tmp_path,
        "--model-name",
        "threshold",
        "--rest-port",
        "0",
        "--port",
        str(free_port()),
        timeout=120,
    )
    failed_with_one_line(result, "no versions of model threshold", "run `make export`")


def test_config_with_another_platform_is_refused(tmp_path):
    config = models_config(tmp_path / "models.config")
    config.write_text(config.read_text().replace('"tensorflow"', '"tensorrt"'))
    result = run_module(
        "serving.local",
        "--model-config-file",
        config,
        "--models-dir",
        tmp_path,
        "--port",
        str(free_port()),
        "--rest-port",
        "0",
        timeout=120,
    )
    failed_with_one_line(result, "Model threshold requests unsupported platform tensorrt")  # server_core.cc


def test_startup_lines_are_printed_and_flushed(server):
    log = server.log()
    assert "serving.local: loaded threshold version 1\n" in log
    assert f"serving.local: listening on grpc {server.address}, rest 127.0.0.1:{server.rest_port}\n" in log


def test_broken_certificate_is_named_not_the_port(tmp_path, model_dir):
    broken = tmp_path / "broken.pem"
    broken.write_text("not a certificate\n")
    result = run_module(
        "serving.local",
        "--ssl-cert",
        broken,
        "--ssl-key",
        broken,
        "--port",
        str(free_port()),
        "--rest-port",
        "0",
        "--model-base-path",
        model_dir / "threshold",
        timeout=120,
    )
    failed_with_one_line(result, f"--ssl-cert {broken}", "cannot be loaded as a PEM certificate")
    assert "--port" not in result.stderr and "loaded threshold" not in result.stdout  # before the load


def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.skipif(not _ipv6_loopback(), reason="no IPv6 loopback on this machine")
def test_ipv6_loopback_serves_grpc_and_rest(tmp_path, model_dir):
    """--host ::1 listens on both ports (the REST port used to be blamed for the address family)."""
    grpc_port, rest_port = free_port(), free_port()
    log = tmp_path / "server.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [
                PYTHON,
                "-m",
                "serving.local",
                "--host",
                "::1",
                "--port",
                str(grpc_port),
                "--rest-port",
                str(rest_port),
                "--model-base-path",
                str(model_dir / "threshold"),
            ],
            cwd=REPO,
            env=cli_env(),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 120
        while "listening" not in log.read_text() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert f"listening on grpc [::1]:{grpc_port}, rest [::1]:{rest_port}" in log.read_text(), (
            log.read_text()
        )
        with urllib.request.urlopen(f"http://[::1]:{rest_port}/v1/models/threshold", timeout=30) as answer:
            assert answer.status == 200
    finally:
        process.terminate()
        process.wait(timeout=30)
