"""serving/k8s scale-out manifests, offline: the headless Service and the indexed bulk-predict Job.

tests/test_k8s.py validates serving/k8s/base/*.yaml (the headless Service among them) and the
overlays against the Kubernetes schemas; the bulk Job lives in serving/k8s/bulk/ (outside the
kustomize base, so deploying an overlay starts servers, not a Job) and is
validated the same way here, with checks that the pieces fit and that the Job's command line is
one the client accepts.
"""

from __future__ import annotations

import kubernetes_validate
import pytest
import yaml

from client import bulk
from client.errors import (
    EXIT_CODES,
    InputFileError,
    InputFormatError,
    InvalidInput,
    ModelNotFound,
    ResponseMismatch,
    ServerUnavailable,
)
from client.inputs import shard_from_env
from client.predict import build_parser
from client.replicas import choose_lb_policy
from tests.support.processes import REPO

K8S = REPO / "serving" / "k8s"
BULK = sorted((K8S / "bulk").glob("*.yaml"))


def load(name: str) -> dict:
    (document,) = yaml.safe_load_all((K8S / name).read_text())
    return document


def job_container() -> dict:
    (container,) = load("bulk/job.yaml")["spec"]["template"]["spec"]["containers"]
    return container


@pytest.mark.parametrize("path", BULK, ids=lambda path: path.name)
def test_bulk_manifest_is_valid_against_the_kubernetes_schema(path):
    for document in yaml.safe_load_all(path.read_text()):
        kubernetes_validate.validate(document, kubernetes_validate.utils.latest_version(), strict=True)


def test_job_uses_the_claim_shipped_beside_it():
    volumes = {v["name"]: v for v in load("bulk/job.yaml")["spec"]["template"]["spec"]["volumes"]}
    assert volumes["data"]["persistentVolumeClaim"]["claimName"] == load("bulk/pvc.yaml")["metadata"]["name"]
    assert "ReadWriteMany" in load("bulk/pvc.yaml")["spec"]["accessModes"]  # every index mounts it


def test_headless_service_lists_the_model_server_pods():
    service = load("base/service-headless.yaml")
    deployment = load("base/deployment.yaml")
    assert service["spec"]["clusterIP"] == "None"
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
    (port,) = service["spec"]["ports"]
    assert (port["name"], port["port"], port["targetPort"]) == ("grpc", 8500, "grpc")
    assert not service["spec"].get("publishNotReadyAddresses", False)  # only pods serving the model


def test_job_runs_the_client_against_the_headless_service_with_round_robin():
    container = job_container()
    assert container["command"] == ["python", "-m", "client.predict"]
    args = build_parser().parse_args(container["args"])  # the client's own parser accepts them
    service = load("base/service-headless.yaml")["metadata"]["name"]
    assert args.server == f"dns:///{service}:8500"
    assert choose_lb_policy(args.server, args.lb_policy) == "round_robin"
    env = {item["name"]: item["value"] for item in container["env"]}
    assert bulk.requested(args, environ=env)  # a bulk run (the input directory exists only in the pod)
    mounts = {mount["mountPath"] for mount in container["volumeMounts"]}
    assert all(any(path.startswith(mount + "/") for mount in mounts) for path in [*args.inputs, args.output])


def test_job_indexes_split_the_inputs_into_as_many_shards_as_completions():
    job = load("bulk/job.yaml")["spec"]
    assert job["completionMode"] == "Indexed"
    env = {item["name"]: item["value"] for item in job_container()["env"]}
    count = job["completions"]
    assert job["parallelism"] <= count
    shards = [shard_from_env({**env, "JOB_COMPLETION_INDEX": str(index)}) for index in range(count)]
    assert [(shard.index, shard.count) for shard in shards] == [(index, count) for index in range(count)]


def test_job_retries_lost_servers_but_not_bad_inputs():
    job = load("bulk/job.yaml")["spec"]
    assert job["template"]["spec"]["restartPolicy"] == "Never" and job["backoffLimitPerIndex"] >= 1
    (fail_index,) = [rule for rule in job["podFailurePolicy"]["rules"] if rule["action"] == "FailIndex"]
    codes = set(fail_index["onExitCodes"]["values"])
    permanent = {InputFileError, InputFormatError, InvalidInput, ModelNotFound, ResponseMismatch}
    assert codes == {error.exit_code for error in permanent} and codes <= set(EXIT_CODES)
    assert ServerUnavailable.exit_code not in codes
