"""Wait until the model is AVAILABLE, asking the server's ModelService.GetModelStatus over gRPC."""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Callable, Iterable

from serving.errors import ModelNotAvailable

CALL_TIMEOUT_S = 2.0
POLL_INTERVAL_S = 0.5


def model_version_states(address: str, model_name: str, timeout: float = CALL_TIMEOUT_S) -> dict[int, str]:
    """{version: state name} as the server reports it; grpc.RpcError if it does not answer."""
    from export.quiet_tensorflow import import_tensorflow

    import_tensorflow()  # the TF Serving protos import tensorflow's; load it once, quietly
    import grpc
    from tensorflow_serving.apis import get_model_status_pb2, model_service_pb2_grpc

    request = get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = model_name
    state_name = get_model_status_pb2.ModelVersionStatus.State.Name
    with grpc.insecure_channel(address) as channel:
        response = model_service_pb2_grpc.ModelServiceStub(channel).GetModelStatus(request, timeout=timeout)
    return {status.version: state_name(status.state) for status in response.model_version_status}


def rest_version_states(rest_url: str, model_name: str, timeout: float = CALL_TIMEOUT_S) -> dict[int, str]:
    """{version: state name} from TF Serving's REST model status (GET /v1/models/<name>); OSError if none.

    TF Serving's --ssl_config_file secures the gRPC port only, so a TLS server that wants client
    certificates is still asked here, on its plain REST port.
    """
    with urllib.request.urlopen(f"{rest_url}/v1/models/{model_name}", timeout=timeout) as response:
        body = json.load(response)
    return {int(status["version"]): status["state"] for status in body.get("model_version_status", [])}


def wait_until_available(
    address: str,
    model_name: str,
    versions: Iterable[int],
    timeout_s: float,
    check_server: Callable[[], None] = lambda: None,
    rest_url: str | None = None,
) -> dict[int, str]:
    """Poll until every one of versions is AVAILABLE; the final states.

    check_server raises (ServerExitedEarly) once the server is gone, so a crash fails at once
    instead of at the deadline; ModelNotAvailable says what the server last reported. With
    rest_url the states come from the REST API instead of gRPC (a TLS gRPC port).
    """
    import grpc

    wanted = sorted(set(versions))
    deadline = time.monotonic() + timeout_s
    last = "no answer yet"
    while True:
        check_server()
        try:
            states = (
                rest_version_states(rest_url, model_name)
                if rest_url
                else model_version_states(address, model_name)
            )
            if states and all(states.get(v) == "AVAILABLE" for v in wanted):
                return states
            last = ", ".join(f"version {v}: {s}" for v, s in sorted(states.items())) or "no versions"
        except grpc.RpcError as exc:
            last = f"{exc.code().name}: {exc.details()}"
        except (OSError, ValueError, KeyError) as exc:  # REST: refused, HTTP error, not TF Serving's JSON
            last = f"REST: {exc}"
        if time.monotonic() >= deadline:
            raise ModelNotAvailable(
                f"model {model_name} versions {wanted} not AVAILABLE at {address} after {timeout_s:g} s "
                f"(last status: {last})"
            )
        time.sleep(POLL_INTERVAL_S)
