"""make serve's TLS option, make status, make logs and make image, against the fake docker on PATH.

The fake docker (tests/fake_host/docker) records every call: the exact command lines are
asserted, and its "container" answers GetModelStatus over real loopback gRPC.
"""

from __future__ import annotations

import os
import shlex
import signal
import stat
from importlib.metadata import version

from google.protobuf import text_format

from client.errors import SERVER_NOT_STARTED, ServerUnavailable
from serving.config_protos import SSLConfig
from tests.support.certificates import CertificateAuthority
from tests.support.processes import REPO, run_module
from tests.test_serve_docker import make_fake_host, no_leftover_containers  # noqa: F401 - a fixture

TFS_VERSION = version("tensorflow-serving-api")


def _printed_command(result, header: str) -> list[str]:
    assert result.returncode == 0, result.stderr + result.stdout
    lines = result.stdout.splitlines()
    return shlex.split(lines[lines.index(header) + 1])


def _tls_env(tmp_path) -> dict[str, str]:
    ca = CertificateAuthority(tmp_path)
    server = ca.issue("server", "threshold.models.example")
    return {"TLS_CERT": str(server.cert), "TLS_KEY": str(server.key), "TLS_CLIENT_CA": str(ca.pem.cert)}


def test_tls_adds_the_ssl_config_file_flag_and_a_read_only_tls_mount(tmp_path):
    host = make_fake_host(tmp_path)
    result = host.serve(DRY_RUN="1", **_tls_env(tmp_path))
    command = _printed_command(result, "serve: dry run, the command would be:")
    plain = host.expected_run(f"tensorflow/serving:{TFS_VERSION}", gpu=False)
    after_mounts = plain.index("--mount") + 4  # after the models and config mounts
    tls_mount = ["--mount", f"type=bind,source={(host.state_dir / 'tls').resolve()},target=/tls,readonly"]
    assert command == [
        *plain[:after_mounts],
        *tls_mount,
        *plain[after_mounts:],
        "--ssl_config_file=/tls/ssl.config",
    ]


def test_tls_serve_waits_on_the_plain_rest_status_and_status_asks_it_too(tmp_path, no_leftover_containers):  # noqa: F811 - a fixture
    # TF Serving's --ssl_config_file covers gRPC only, and may demand a client certificate there:
    # the launcher and `make status` ask the plain REST port. The fake's gRPC answers nothing.
    host = make_fake_host(tmp_path)
    env = {**_tls_env(tmp_path), "FAKE_GRPC": "tls"}
    served = host.serve(**env)
    assert served.returncode == 0, served.stderr + served.stdout
    (run,) = host.docker_runs()
    assert run[-1] == "--ssl_config_file=/tls/ssl.config"
    assert "threshold AVAILABLE (versions 1; labels stable=1, canary=1)" in served.stdout
    assert "--ca-cert" in served.stdout and "--client-cert" in served.stdout  # what the client needs
    status = run_module("serving.launch", "status", env={**host.env, **env}, timeout=60)
    assert status.returncode == 0, status.stdout + status.stderr
    assert f"  gRPC     127.0.0.1:{host.grpc_port} (TLS)" in status.stdout
    assert "  model    threshold: version 1 AVAILABLE; labels canary=1, stable=1" in status.stdout
    assert host.stop().returncode == 0


def test_render_config_writes_an_ssl_config_tf_serving_parses_private_and_outside_the_image(tmp_path):
    host = make_fake_host(tmp_path)
    env = _tls_env(tmp_path)
    result = run_module("serving.launch", "render-config", env={**host.env, **env}, timeout=120)
    assert result.returncode == 0, result.stderr
    path = host.state_dir / "tls" / "ssl.config"
    config = text_format.Parse(path.read_text(), SSLConfig())  # TF Serving's SSLConfig fields, by name
    assert config.server_key == open(env["TLS_KEY"]).read()  # noqa: SIM115 - the PEM texts themselves
    assert config.server_cert == open(env["TLS_CERT"]).read()  # noqa: SIM115
    assert config.custom_ca == open(env["TLS_CLIENT_CA"]).read()  # noqa: SIM115
    assert config.client_verify is True
    assert stat.S_IMODE(path.stat().st_mode) == 0o600  # it holds a private key
    assert not list((host.state_dir / "config").glob("ssl*"))  # .serve/config/ is baked into images


def test_tls_with_a_missing_key_file_is_one_line(tmp_path):
    host = make_fake_host(tmp_path)
    env = {**_tls_env(tmp_path), "TLS_KEY": str(tmp_path / "absent.key")}
    result = run_module("serving.launch", "render-config", env={**host.env, **env}, timeout=120)
    assert result.returncode == SERVER_NOT_STARTED
    assert result.stderr.strip() == (
        f"render-config: error: cannot read --tls-key {tmp_path / 'absent.key'}: No such file or directory"
    )


def test_tls_cert_without_its_key_is_refused(tmp_path):
    host = make_fake_host(tmp_path)
    result = host.serve(DRY_RUN="1", TLS_CERT=str(tmp_path / "a.pem"))
    assert result.returncode == 2
    assert "--tls-cert and --tls-key (TLS_CERT, TLS_KEY) go together" in result.stderr


def test_status_and_logs_report_what_make_serve_started(tmp_path, no_leftover_containers):  # noqa: F811
    host = make_fake_host(tmp_path)
    nothing = run_module("serving.launch", "status", env=host.env, timeout=60)
    assert nothing.returncode == 0 and "status: nothing running" in nothing.stdout

    served = host.serve()
    assert served.returncode == 0, served.stderr + served.stdout
    # The closing lines: the exact client command for this endpoint (not the default port).
    assert f"-m client.predict data.npy --server 127.0.0.1:{host.grpc_port}" in served.stdout
    assert "make status" in served.stdout

    status = run_module("serving.launch", "status", env=host.env, timeout=60)
    assert status.returncode == 0, status.stderr + status.stdout
    assert status.stdout.splitlines()[:2] == [
        "status: running: TF Serving in Docker, container threshold-serving, "
        f"image tensorflow/serving:{TFS_VERSION}",
        f"  gRPC     127.0.0.1:{host.grpc_port}",
    ]
    assert "  model    threshold: version 1 AVAILABLE; labels canary=1, stable=1" in status.stdout

    logs = run_module("serving.launch", "logs", env={**host.env, "LOG_LINES": "7"}, timeout=60)
    assert logs.returncode == 0
    assert host.docker_calls()[-1] == ["docker", "logs", "--tail", "7", "threshold-serving"]
    assert "fake failure: the model could not be loaded" in logs.stderr  # docker logs' own output

    assert host.stop().returncode == 0
    gone = run_module("serving.launch", "status", env=host.env, timeout=60)
    assert "status: nothing running" in gone.stdout


def test_status_of_a_container_that_died_says_so_and_fails(tmp_path, no_leftover_containers):  # noqa: F811
    host = make_fake_host(tmp_path)
    assert host.serve().returncode == 0
    container = host.containers / "threshold-serving"
    os.kill(int(container.read_text().split()[1]), signal.SIGTERM)  # its process dies,
    container.write_text("exited 0\n")  # and docker says so
    status = run_module("serving.launch", "status", env=host.env, timeout=60)
    assert status.returncode == ServerUnavailable.exit_code
    assert "status: not running" in status.stdout and "make logs" in status.stdout
    host.stop()


def test_make_image_dry_run_prints_the_exact_docker_build(tmp_path):
    host = make_fake_host(tmp_path)
    result = run_module("serving.launch", "image", env={**host.env, "DRY_RUN": "1"}, timeout=60)
    expected = [
        "docker",
        "build",
        "--file",
        "serving/Dockerfile",
        "--build-arg",
        f"TFS_VERSION={TFS_VERSION}",
        "--build-arg",
        "TFS_VARIANT=-gpu",
        "--tag",
        f"threshold-serving:{TFS_VERSION}-gpu",
        ".",
    ]
    assert _printed_command(result, "image: dry run, the command would be:") == expected
    assert host.docker_calls() == []
    cpu = run_module(
        "serving.launch",
        "image",
        env={**host.env, "DRY_RUN": "1", "IMAGE_GPU": "0", "IMAGE_TAG": "registry.example/tfs:cpu"},
        timeout=60,
    )
    assert _printed_command(cpu, "image: dry run, the command would be:")[-5:] == [
        "--build-arg",
        "TFS_VARIANT=",
        "--tag",
        "registry.example/tfs:cpu",
        ".",
    ]


def test_make_image_renders_the_configs_then_runs_docker_build(tmp_path):
    host = make_fake_host(tmp_path)
    result = run_module("serving.launch", "image", env=host.env, timeout=180)
    assert result.returncode == 0, result.stderr + result.stdout
    assert host.docker_calls() == [
        [
            "docker",
            "build",
            "--file",
            "serving/Dockerfile",
            "--build-arg",
            f"TFS_VERSION={TFS_VERSION}",
            "--build-arg",
            "TFS_VARIANT=-gpu",
            "--tag",
            f"threshold-serving:{TFS_VERSION}-gpu",
            ".",
        ]
    ]
    assert (host.state_dir / "config" / "models.config").is_file()  # what the Dockerfile copies
    assert f"image: built threshold-serving:{TFS_VERSION}-gpu" in result.stdout


def test_make_targets_run_the_launcher_commands():
    import subprocess

    for target, command in (
        ("sample", "-m client.sample data.npy"),
        ("status", "-m serving.launch status"),
        ("logs", "-m serving.launch logs"),
        ("image", "-m serving.launch image"),
    ):
        dry = subprocess.run(
            ["make", "-n", "-o", ".venv/.installed-stamp", target],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert dry.returncode == 0 and command in dry.stdout, (target, dry.stdout + dry.stderr)


def test_the_closing_client_command_names_the_server_only_off_the_default_port():
    from serving.lifecycle import ServeSettings, client_command

    default = shlex.split(client_command(ServeSettings()))
    assert default[1:] == ["-m", "client.predict", "data.npy"]
    moved = shlex.split(client_command(ServeSettings(grpc_port=9500, bind_host="0.0.0.0")))
    assert moved[1:] == ["-m", "client.predict", "data.npy", "--server", "127.0.0.1:9500"]
