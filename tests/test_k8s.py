"""serving/k8s: manifests valid against the Kubernetes schemas, offline; KServe's required fields."""

from __future__ import annotations

from importlib.metadata import version
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from serving.model_config import load_model_server_config
from tests.conftest import REPO

K8S = REPO / "serving" / "k8s"
MANIFESTS = sorted(K8S.glob("*.yaml"))
TFS_VERSION = version("tensorflow-serving-api")
MODEL_NAME = load_model_server_config().model_config_list.config[0].name


def _load(name: str) -> dict:
    (document,) = yaml.safe_load_all((K8S / name).read_text())
    return document


def _container() -> dict:
    (container,) = _load("deployment.yaml")["spec"]["template"]["spec"]["containers"]
    return container


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda path: path.name)
def test_manifest_is_valid_against_the_kubernetes_schema(path: Path):
    for document in yaml.safe_load_all(path.read_text()):
        kubernetes_validate.validate(document, kubernetes_validate.utils.latest_version(), strict=True)


def test_schema_validation_catches_a_misspelt_field():
    deployment = _load("deployment.yaml")
    deployment["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, kubernetes_validate.utils.latest_version(), strict=True)


def test_deployment_takes_a_gpu_with_requests_and_limits():
    resources = _container()["resources"]
    assert resources["limits"]["nvidia.com/gpu"] == "1" == resources["requests"]["nvidia.com/gpu"]
    for kind in ("cpu", "memory"):
        assert resources["requests"][kind] and resources["limits"][kind]


def test_probes_ask_the_model_status_endpoint():
    container = _container()
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    assert ports == {"grpc": 8500, "http": 8501}
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"] == {"path": f"/v1/models/{MODEL_NAME}", "port": "http"}, probe


def test_container_is_locked_down():
    pod = _load("deployment.yaml")["spec"]["template"]["spec"]
    security = _container()["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False and security["capabilities"]["drop"] == ["ALL"]
    assert pod["securityContext"]["runAsNonRoot"] is True


def test_deployment_runs_the_image_built_from_the_pinned_release():
    assert _container()["image"].endswith(f":{TFS_VERSION}-gpu")
    assert "replicas" not in _load("deployment.yaml")["spec"]  # the HPA owns the count


def test_service_and_hpa_point_at_the_deployment():
    deployment = _load("deployment.yaml")
    selector = deployment["spec"]["selector"]["matchLabels"]
    service = _load("service.yaml")
    assert service["spec"]["selector"] == selector
    assert {port["name"]: port["port"] for port in service["spec"]["ports"]} == {"grpc": 8500, "http": 8501}
    hpa = _load("hpa.yaml")
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment",
                                             "name": deployment["metadata"]["name"]}
    assert 1 < hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]


def test_kserve_inference_service_has_its_required_fields():
    (service,) = yaml.safe_load_all((K8S / "kserve" / "inferenceservice.yaml").read_text())
    assert service["apiVersion"] == "serving.kserve.io/v1beta1" and service["kind"] == "InferenceService"
    assert service["metadata"]["name"] == MODEL_NAME  # KServe's TF runtime serves it under this name
    model = service["spec"]["predictor"]["model"]
    assert model["modelFormat"]["name"] == "tensorflow"
    assert model["runtimeVersion"] == f"{TFS_VERSION}-gpu"
    assert model["storageUri"].rstrip("/").endswith(f"/{MODEL_NAME}")
    assert model["resources"]["limits"]["nvidia.com/gpu"] == "1"
