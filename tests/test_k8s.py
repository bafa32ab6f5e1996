"""serving/k8s: the kustomize base and its overlays (cpu, gpu, tls) rendered with `kubectl kustomize`
and valid against the Kubernetes schemas, offline; KServe's required fields."""

from __future__ import annotations

import shutil
import subprocess
from functools import cache
from importlib.metadata import version
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from serving.image import default_tag
from serving.model_config import load_model_server_config
from serving.model_server_flags import ModelServerOptions, model_server_flags
from tests.support.processes import REPO

K8S = REPO / "serving" / "k8s"
BASE = K8S / "base"
MANIFESTS = sorted(p for p in BASE.glob("*.yaml") if p.name != "kustomization.yaml")
OVERLAYS = ("cpu", "gpu", "tls")
needs_kubectl = pytest.mark.skipif(
    shutil.which("kubectl") is None,
    reason="kubectl is not installed: `kubectl kustomize` renders the "
    "overlays offline (client only, no cluster needed)",
)
TFS_VERSION = version("tensorflow-serving-api")
MODEL_NAME = load_model_server_config().model_config_list.config[0].name


def _load(name: str) -> dict:
    (document,) = yaml.safe_load_all((BASE / name).read_text())
    return document


def _container() -> dict:
    (container,) = _load("deployment.yaml")["spec"]["template"]["spec"]["containers"]
    return container


@cache
def _render(overlay: str) -> tuple[dict, ...]:
    """The objects `kubectl kustomize serving/k8s/overlays/<overlay>` renders."""
    result = subprocess.run(
        ["kubectl", "kustomize", str(K8S / "overlays" / overlay)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return tuple(yaml.safe_load_all(result.stdout))


def _rendered(overlay: str, kind: str) -> dict:
    (document,) = [
        d for d in _render(overlay) if d["kind"] == kind and not d["metadata"]["name"].endswith("-headless")
    ]
    return document


def _rendered_container(overlay: str) -> dict:
    (container,) = _rendered(overlay, "Deployment")["spec"]["template"]["spec"]["containers"]
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


def test_kustomize_base_lists_every_manifest():
    kustomization = yaml.safe_load((BASE / "kustomization.yaml").read_text())
    assert sorted(kustomization["resources"]) == sorted(p.name for p in MANIFESTS)


@needs_kubectl
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_renders_objects_valid_against_the_kubernetes_schema(overlay):
    kinds = sorted(document["kind"] for document in _render(overlay))
    assert kinds == ["Deployment", "HorizontalPodAutoscaler", "PodDisruptionBudget", "Service", "Service"]
    for document in _render(overlay):
        kubernetes_validate.validate(document, kubernetes_validate.utils.latest_version(), strict=True)


@needs_kubectl
@pytest.mark.parametrize("overlay", ["gpu", "tls"])
def test_gpu_overlays_take_a_gpu_with_requests_and_limits_on_tainted_nodes(overlay):
    resources = _rendered_container(overlay)["resources"]
    assert resources["limits"]["nvidia.com/gpu"] == "1" == resources["requests"]["nvidia.com/gpu"]
    for kind in ("cpu", "memory"):
        assert resources["requests"][kind] and resources["limits"][kind]
    image = _rendered_container(overlay)["image"]
    assert image == f"threshold-serving:{TFS_VERSION}-gpu" == default_tag(gpu=True)
    tolerations = _rendered(overlay, "Deployment")["spec"]["template"]["spec"]["tolerations"]
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in tolerations


@needs_kubectl
def test_cpu_overlay_asks_for_no_gpu_and_runs_the_cpu_image():
    container = _rendered_container("cpu")
    assert container["image"] == f"threshold-serving:{TFS_VERSION}"
    assert "nvidia.com/gpu" not in str(_render("cpu"))
    assert container["resources"]["requests"]["cpu"] == container["resources"]["limits"]["cpu"]


@needs_kubectl
def test_tls_overlay_adds_the_ssl_config_file_from_a_secret_to_the_images_flags():
    container = _rendered_container("tls")
    # The image's flags (serving/Dockerfile's CMD) plus TF Serving's --ssl_config_file.
    assert container["args"] == model_server_flags(ModelServerOptions(ssl_config_file="/tls/ssl.config"))
    assert {"name": "tls", "mountPath": "/tls", "readOnly": True} in container["volumeMounts"]
    pod = _rendered("tls", "Deployment")["spec"]["template"]["spec"]
    (volume,) = [v for v in pod["volumes"] if v["name"] == "tls"]
    assert volume["secret"]["secretName"] == "threshold-serving-tls"
    assert pod["securityContext"]["runAsNonRoot"] is True  # the base's settings survive the patch
    assert pod["securityContext"]["fsGroup"] == pod["securityContext"]["runAsGroup"]
    # TF Serving's ssl config covers gRPC only: the probes stay on the plain REST port.
    assert container["readinessProbe"]["httpGet"]["port"] == "http"


def test_base_runs_the_cpu_image_and_asks_for_no_gpu():
    resources = _container()["resources"]
    assert "nvidia.com/gpu" not in resources["requests"] and "nvidia.com/gpu" not in resources["limits"]
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
    assert _container()["image"] == f"threshold-serving:{TFS_VERSION}" == default_tag(gpu=False)
    assert "replicas" not in _load("deployment.yaml")["spec"]  # the HPA owns the count


def test_service_and_hpa_point_at_the_deployment():
    deployment = _load("deployment.yaml")
    selector = deployment["spec"]["selector"]["matchLabels"]
    service = _load("service.yaml")
    assert service["spec"]["selector"] == selector
    assert {port["name"]: port["port"] for port in service["spec"]["ports"]} == {"grpc": 8500, "http": 8501}
    hpa = _load("hpa.yaml")
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": deployment["metadata"]["name"],
    }
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
