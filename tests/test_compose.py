"""compose.yaml: valid against the Compose Specification schema, and in step with `make serve`'s docker run.

No Docker engine here, so `docker compose config` cannot run: the file is validated offline
against the compose-spec project's JSON schema (tests/schemas/compose-spec.json, vendored), and
each service is compared with the command line the launcher itself prints (DRY_RUN=1 on a fake
docker host with and without a GPU).
"""

from __future__ import annotations

import json
import re
import shlex
from importlib.metadata import version

import jsonschema
import pytest
import yaml

from serving.model_config import load_model_server_config
from tests.support.processes import REPO
from tests.test_serve_docker import make_fake_host

COMPOSE = REPO / "compose.yaml"
SCHEMA = json.loads((REPO / "tests" / "schemas" / "compose-spec.json").read_text())
TFS_VERSION = version("tensorflow-serving-api")
SERVICES = {"gpu": "tensorflow-serving-gpu", "cpu": "tensorflow-serving-cpu"}


def _compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())  # YAML merge keys (<<) resolved as compose does


def _service(profile: str) -> dict:
    return _compose()["services"][SERVICES[profile]]


def _launcher_run(tmp_path, gpu: bool) -> list[str]:
    host = make_fake_host(tmp_path, gpu=gpu, nvidia_runtime=gpu)
    result = host.serve(DRY_RUN="1")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    return shlex.split(lines[lines.index("serve: dry run, the command would be:") + 1])


def test_compose_file_is_valid_against_the_compose_specification():
    jsonschema.Draft7Validator(SCHEMA).validate(_compose())


def test_schema_validation_catches_a_misspelt_field():
    broken = _compose()
    broken["services"][SERVICES["cpu"]]["read_onyl"] = True
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft7Validator(SCHEMA).validate(broken)


@pytest.mark.parametrize("profile", ["gpu", "cpu"])
def test_each_profile_runs_the_launchers_image_and_flags(tmp_path, profile):
    run = _launcher_run(tmp_path, gpu=profile == "gpu")
    image_at = run.index("--entrypoint") + 2
    service = _service(profile)
    assert service["profiles"] == [profile]
    assert service["entrypoint"] == [run[image_at - 1]] == ["tensorflow_model_server"]
    variant = "-gpu" if profile == "gpu" else ""
    assert service["image"] == run[image_at] == f"tensorflow/serving:{TFS_VERSION}{variant}"
    assert service["command"] == run[image_at + 1 :]  # the launcher's flag list, flag for flag


@pytest.mark.parametrize("profile", ["gpu", "cpu"])
def test_each_profile_is_locked_down_like_the_docker_run(tmp_path, profile):
    run = _launcher_run(tmp_path, gpu=profile == "gpu")
    service = _service(profile)
    assert "--read-only" in run and service["read_only"] is True
    assert run[run.index("--tmpfs") + 1] == "/tmp" and service["tmpfs"] == ["/tmp"]
    assert "--init" in run and service["init"] is True
    mounts = {
        m.split("target=")[1].split(",")[0]: m.endswith(",readonly")
        for m in run[1:]
        if m.startswith("type=bind")
    }
    assert (
        mounts
        == {volume["target"]: volume["read_only"] for volume in service["volumes"]}
        == {"/models": True, "/config": True}
    )
    published = [run[i + 1] for i, arg in enumerate(run) if arg == "--publish"]
    assert [p.split(":", 1)[0] for p in published] == ["127.0.0.1", "127.0.0.1"]
    assert [p.split(":")[0] for p in service["ports"]] == ["127.0.0.1", "127.0.0.1"]
    assert [p.rsplit(":", 1)[1] for p in service["ports"]] == [p.rsplit(":", 1)[1] for p in published]
    gpu_env = ["--env", "TF_FORCE_GPU_ALLOW_GROWTH=true"]
    if profile == "gpu":
        assert " ".join(gpu_env) in " ".join(run)
        assert service["environment"] == {"TF_FORCE_GPU_ALLOW_GROWTH": "true"}
        (device,) = service["deploy"]["resources"]["reservations"]["devices"]
        assert device == {"driver": "nvidia", "count": "all", "capabilities": ["gpu"]}
    else:
        assert "--gpus" not in run and "deploy" not in service and "environment" not in service


def test_healthcheck_asks_the_model_status_of_the_served_model():
    model = load_model_server_config().model_config_list.config[0].name
    for profile in SERVICES:
        test = _service(profile)["healthcheck"]["test"]
        assert test[:3] == ["CMD", "bash", "-c"]
        assert re.search(rf"GET /v1/models/{model} HTTP/1\.0", test[3]) and '"AVAILABLE"' in test[3]
        assert "/dev/tcp/127.0.0.1/8501" in test[3]  # the REST port inside the container
