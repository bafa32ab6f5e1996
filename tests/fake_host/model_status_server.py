"""The fake container's TF Serving: ModelService.GetModelStatus on 127.0.0.1:<port>, and with a
second port the REST model status (GET /v1/models/<name>), nothing else.

``python model_status_server.py PORT [REST_PORT]``. Like TF Serving under a latest-two policy, it reports
the two newest version directories under FAKE_MODEL_DIR/<name> AVAILABLE, looked up on each
call, for the model FAKE_MODEL_NAME (default threshold). Runs until SIGTERM.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
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


def rest_status_server(service: AvailableModelService, port: int) -> ThreadingHTTPServer:
    """TF Serving's REST model status, JSON as http_rest_api_handler.cc writes it (versions as strings)."""
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # quiet
            pass

        def do_GET(self):  # noqa: N802 - http.server's method name
            if self.path != f"/v1/models/{service.name}":
                self.send_error(404)
                return
            body = json.dumps({"model_version_status": [
                {"version": str(v), "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}
                for v in service.versions()]}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd


def main() -> None:
    service = AvailableModelService(os.environ.get("FAKE_MODEL_NAME", "threshold"),
                                    Path(os.environ["FAKE_MODEL_DIR"]))
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    # FAKE_GRPC=tls: the gRPC port wants TLS, which nothing here has; only REST can tell the status.
    if os.environ.get("FAKE_GRPC") != "tls":
        model_service_pb2_grpc.add_ModelServiceServicer_to_server(service, server)
    server.add_insecure_port(f"127.0.0.1:{int(sys.argv[1])}")
    server.start()
    if len(sys.argv) > 2:
        rest_status_server(service, int(sys.argv[2]))
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    print(f"fake model service on 127.0.0.1:{sys.argv[1]} for {service.base_path}", flush=True)
    stopped.wait()
    server.stop(grace=0)


if __name__ == "__main__":
    main()
