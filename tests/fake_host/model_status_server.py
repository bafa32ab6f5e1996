"""The fake container's TF Serving: ModelService.GetModelStatus on 127.0.0.1:<port>, nothing else.

``python model_status_server.py PORT``. Like TF Serving under a latest-two policy, it reports
the two newest version directories under FAKE_MODEL_DIR/<name> AVAILABLE, looked up on each
call, for the model FAKE_MODEL_NAME (default threshold). Runs until SIGTERM.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from concurrent import futures
from pathlib import Path

import grpc

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from client.protos import get_model_status_pb2, model_service_pb2_grpc  # noqa: E402


class AvailableModelService(model_service_pb2_grpc.ModelServiceServicer):
    def __init__(self, name: str, models_dir: Path):
        self.name, self.base_path = name, models_dir / name

    def versions(self) -> list[int]:
        return sorted(int(p.name) for p in self.base_path.iterdir() if p.name.isdigit())[-2:]

    def GetModelStatus(self, request, context):  # noqa: N802 (gRPC method name)
        if request.model_spec.name != self.name:
            context.abort(grpc.StatusCode.NOT_FOUND, f"Servable not found for request: {request.model_spec}")
        response = get_model_status_pb2.GetModelStatusResponse()
        for version in self.versions():
            status = response.model_version_status.add()
            status.version = version
            status.state = get_model_status_pb2.ModelVersionStatus.AVAILABLE
        return response


def main() -> None:
    service = AvailableModelService(os.environ.get("FAKE_MODEL_NAME", "threshold"),
                                    Path(os.environ["FAKE_MODEL_DIR"]))
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(service, server)
    server.add_insecure_port(f"127.0.0.1:{int(sys.argv[1])}")
    server.start()
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    print(f"fake model service on 127.0.0.1:{sys.argv[1]} for {service.base_path}", flush=True)
    stopped.wait()
    server.stop(grace=0)


if __name__ == "__main__":
    main()
