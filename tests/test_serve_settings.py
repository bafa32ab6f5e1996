"""`make serve` settings that change what runs: BIND_HOST, GPU_ALLOW_GROWTH, BATCHING, the session's
thread pools, render-config, and the "never AVAILABLE" timeout; against the fake docker
(tests/fake_host) or the real embedded server."""

from __future__ import annotations

import json
from pathlib import Path

import grpc

from client.errors import SERVER_NOT_STARTED, DeadlineExceeded
from client.protos import get_model_status_pb2, model_service_pb2_grpc
from serving.model_config import BATCHING_CONFIG, MONITORING_CONFIG
from tests.support.processes import PYTHON, run_module
from tests.test_serve_docker import TFS_VERSION, _dry_run_command, make_fake_host
from tests.test_serve_local import _pid_alive


def test_bind_host_publishes_docker_ports_on_that_address(tmp_path):
    host = make_fake_host(tmp_path)
    command = _dry_run_command(host.serve(DRY_RUN="1", BIND_HOST="0.0.0.0"))
    published = [command[i + 1] for i, arg in enumerate(command) if arg == "--publish"]
    assert published == [f"0.0.0.0:{host.grpc_port}:8500", f"0.0.0.0:{host.rest_port}:8501"]


def test_gpu_allow_growth_0_and_batching_0_drop_their_flags(tmp_path):
    host = make_fake_host(tmp_path, gpu=True, nvidia_runtime=True)
    image = f"tensorflow/serving:{TFS_VERSION}-gpu"
    default = _dry_run_command(host.serve(DRY_RUN="1"))
    assert default == host.expected_run(image, gpu=True)
    command = _dry_run_command(host.serve(DRY_RUN="1", GPU_ALLOW_GROWTH="0", BATCHING="0"))
    expected = [
        arg
        for arg in host.expected_run(image, gpu=True)
        if not arg.startswith(("--enable_batching", "--batching_parameters_file"))
    ]
    at = expected.index("TF_FORCE_GPU_ALLOW_GROWTH=true")
    del expected[at - 1 : at + 1]  # the --env and its value
    assert command == expected


def test_batching_0_starts_the_embedded_server_without_batching(tmp_path):
    host = make_fake_host(tmp_path, docker=False)
    assert "--enable-batching" in _dry_run_command(host.serve(DRY_RUN="1"))
    assert "--enable-batching" not in _dry_run_command(host.serve(DRY_RUN="1", BATCHING="0"))


def test_session_thread_pools_reach_tf_serving_as_its_own_flags(tmp_path):
    """TF_INTRA_OP_PARALLELISM / TF_INTER_OP_PARALLELISM become tensorflow_model_server's
    --tensorflow_intra_op_parallelism / --tensorflow_inter_op_parallelism (model_servers/main.cc)."""
    host = make_fake_host(tmp_path)
    image = f"tensorflow/serving:{TFS_VERSION}"
    command = _dry_run_command(
        host.serve(DRY_RUN="1", TF_INTRA_OP_PARALLELISM="1", TF_INTER_OP_PARALLELISM="2")
    )
    assert command == [
        *host.expected_run(image, gpu=False),
        "--tensorflow_intra_op_parallelism=1",
        "--tensorflow_inter_op_parallelism=2",
    ]
    only_intra = _dry_run_command(host.serve(DRY_RUN="1", TF_INTRA_OP_PARALLELISM="3"))
    assert only_intra == [*host.expected_run(image, gpu=False), "--tensorflow_intra_op_parallelism=3"]


def test_session_thread_pools_reach_the_embedded_server(tmp_path):
    host = make_fake_host(tmp_path, docker=False)
    default = _dry_run_command(host.serve(DRY_RUN="1"))
    assert not any("parallelism" in arg for arg in default)
    command = _dry_run_command(
        host.serve(DRY_RUN="1", TF_INTRA_OP_PARALLELISM="1", TF_INTER_OP_PARALLELISM="1")
    )
    assert command == [
        *default,
        "--tensorflow-intra-op-parallelism",
        "1",
        "--tensorflow-inter-op-parallelism",
        "1",
    ]


def test_a_negative_thread_count_is_refused_in_one_line(tmp_path):
    host = make_fake_host(tmp_path, docker=False)
    result = host.serve(DRY_RUN="1", TF_INTRA_OP_PARALLELISM="-2")
    assert result.returncode != 0 and "Traceback" not in result.stderr, result.stderr
    assert "TF_INTRA_OP_PARALLELISM='-2': must be an integer >= 0" in result.stderr, result.stderr


def test_render_config_writes_the_three_configs_with_labels_on_the_versions_on_disk(tmp_path):
    host = make_fake_host(tmp_path, docker=False)
    (host.models_dir / "threshold" / "2").mkdir()
    (host.models_dir / "threshold" / "3").mkdir()
    result = run_module("serving.launch", "render-config", env=host.env, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == (
        f"render-config: threshold labels {{'stable': 2, 'canary': 3}} -> {host.state_dir / 'config'}"
    )
    config = host.state_dir / "config"
    rendered = (config / "models.config").read_text()
    assert 'key: "stable"\n      value: 2' in rendered and 'key: "canary"\n      value: 3' in rendered
    assert (config / "batching.config").read_text() == BATCHING_CONFIG.read_text()
    assert (config / "monitoring.config").read_text() == MONITORING_CONFIG.read_text()
    assert sorted(p.name for p in config.iterdir()) == [
        "batching.config",
        "models.config",
        "monitoring.config",
    ]


def test_a_model_that_never_becomes_available_times_out_and_removes_the_container(tmp_path):
    host = make_fake_host(tmp_path)
    # The fake TF Serving in the container serves another model: threshold stays NOT_FOUND.
    result = host.serve(SERVE_TIMEOUT="3", FAKE_MODEL_NAME="another")
    assert result.returncode == DeadlineExceeded.exit_code
    assert (
        f"model threshold versions [1] not AVAILABLE at 127.0.0.1:{host.grpc_port} after 3 s "
        "(last status: NOT_FOUND" in result.stderr
    )
    assert "container removed" in result.stderr
    assert [call[1] for call in host.docker_calls()][-2:] == ["stop", "rm"]
    assert list(host.containers.iterdir()) == [] and not (host.state_dir / "server.json").exists()


def test_bind_host_off_loopback_with_the_embedded_server_says_what_to_add(tmp_path):
    host = make_fake_host(tmp_path, docker=False)
    result = host.serve(BIND_HOST="0.0.0.0", SERVING_LOCAL_ALLOW_INSECURE_REMOTE="")
    assert result.returncode == SERVER_NOT_STARTED
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr
    assert lines[0].startswith("serve: error: BIND_HOST=0.0.0.0 would expose the embedded server's")
    assert "add SERVING_LOCAL_ALLOW_INSECURE_REMOTE=1" in lines[0]
    assert not (host.state_dir / "server.json").exists()


def test_bind_host_0000_serves_with_the_embedded_server_once_allowed(tmp_path, model_dir):
    host = make_fake_host(tmp_path, docker=False, models_dir=model_dir)
    env = {"BIND_HOST": "0.0.0.0", "SERVING_LOCAL_ALLOW_INSECURE_REMOTE": "1", "SERVE_TIMEOUT": "120"}
    served = host.serve(**env)
    state = host.state_dir / "server.json"
    pid = json.loads(state.read_text())["pid"] if state.exists() else None
    try:
        assert served.returncode == 0, served.stdout + served.stderr
        assert f"gRPC     127.0.0.1:{host.grpc_port}" in served.stdout
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        assert argv[argv.index(b"--host") + 1] == b"0.0.0.0" and argv[0] == PYTHON.encode()
        request = get_model_status_pb2.GetModelStatusRequest()
        request.model_spec.name = "threshold"
        with grpc.insecure_channel(f"127.0.0.1:{host.grpc_port}") as channel:
            response = model_service_pb2_grpc.ModelServiceStub(channel).GetModelStatus(request, timeout=10)
        available = get_model_status_pb2.ModelVersionStatus.AVAILABLE
        assert [s.state for s in response.model_version_status] == [available]
    finally:
        stopped = host.stop()
    assert stopped.returncode == 0 and pid is not None and not _pid_alive(pid)
