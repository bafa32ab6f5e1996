"""``python -m serving.launch serve|stop|render-config``: what `make serve` and `make stop` run."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from serving.backend_choice import SERVER_CHOICES
from serving.errors import ServeError
from serving.launcher import ServeSettings, render_config_files, serve, stop
from serving.model_config import MODELS_CONFIG
from serving.model_server_flags import DEFAULT_GPU_MEMORY_FRACTION

DESCRIPTION = """\
serve: start TF Serving for serving/models.config and wait until the model is AVAILABLE.
  SERVER=auto picks TF Serving in Docker (the -gpu image when containers can use an NVIDIA GPU,
  else the CPU image of the same release) and, without a Docker engine, the embedded server
  (python -m serving.local). Exports a first model version if there is none. Running it again
  while serving waits for newly exported versions, then moves the labels onto them.
stop: stop what serve started (safe to run twice).
render-config: only write the configs a server reads to <state-dir>/config (what
  serving/Dockerfile bakes in)."""

_FALSE = ("", "0", "false", "no", "off")


def _env_flag(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    return default if value is None else value.strip().lower() not in _FALSE


def _env(name: str, default: str) -> str:
    value = os.environ.get(name, "")
    return value if value.strip() else default  # `make serve TFS_IMAGE=` means "the default"


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a port number, got {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be a port number (0-65535), got {value}")
    return value


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number in [0, 1], got {text!r}") from None
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"must be a number in [0, 1], got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m serving.launch", description=DESCRIPTION,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=("serve", "stop", "render-config"))
    parser.add_argument("--server", choices=SERVER_CHOICES, default=_env("SERVER", "auto"),
                        help="auto, docker or local (env SERVER, default auto)")
    parser.add_argument("--dry-run", action="store_true", default=_env_flag("DRY_RUN", False),
                        help="print the server command instead of running it (env DRY_RUN=1)")
    parser.add_argument("--image", default=_env("TFS_IMAGE", "") or None,
                        help="TF Serving image (env TFS_IMAGE; default tensorflow/serving:<the "
                             "tensorflow-serving-api version>[-gpu])")
    parser.add_argument("--bind-host", default=_env("BIND_HOST", "127.0.0.1"),
                        help="address the ports are published on (env BIND_HOST, default 127.0.0.1: "
                             "this machine only; 0.0.0.0 exposes the server to the network)")
    parser.add_argument("--grpc-port", type=_port, default=_env("GRPC_PORT", "8500"),
                        help="gRPC port on the host (env GRPC_PORT, default 8500)")
    parser.add_argument("--rest-port", type=_port, default=_env("REST_PORT", "8501"),
                        help="REST and metrics port on the host, 0 for none (env REST_PORT, default 8501)")
    parser.add_argument("--models-dir", type=Path, default=Path(_env("MODEL_DIR", "models")),
                        help="directory holding the model base paths (env MODEL_DIR, default models)")
    parser.add_argument("--model-config", type=Path, default=MODELS_CONFIG,
                        help="ModelServerConfig to serve (default serving/models.config)")
    parser.add_argument("--state-dir", type=Path, default=Path(_env("SERVE_STATE_DIR", ".serve")),
                        help="where serve records what it started and renders configs "
                             "(env SERVE_STATE_DIR, default .serve)")
    parser.add_argument("--container-name", default=_env("TFS_CONTAINER_NAME", "threshold-serving"),
                        help="Docker container name (env TFS_CONTAINER_NAME, default threshold-serving)")
    parser.add_argument("--gpu-memory-fraction", type=_fraction,
                        default=_env("GPU_MEMORY_FRACTION", str(DEFAULT_GPU_MEMORY_FRACTION)),
                        help="cap on the GPU memory TF Serving takes, 0 for no cap "
                             f"(env GPU_MEMORY_FRACTION, default {DEFAULT_GPU_MEMORY_FRACTION})")
    parser.add_argument("--no-gpu-allow-growth", dest="gpu_allow_growth", action="store_false",
                        default=_env_flag("GPU_ALLOW_GROWTH", True),
                        help="take the GPU memory up front instead of as needed (env GPU_ALLOW_GROWTH=0)")
    parser.add_argument("--no-batching", dest="batching", action="store_false",
                        default=_env_flag("BATCHING", True),
                        help="serve without server-side batching (env BATCHING=0)")
    parser.add_argument("--timeout", type=float, default=float(_env("SERVE_TIMEOUT", "180")),
                        help="seconds to wait for the model to become AVAILABLE (env SERVE_TIMEOUT)")
    return parser


def settings_from_args(args: argparse.Namespace) -> ServeSettings:
    """The ServeSettings the parsed arguments ask for."""
    return ServeSettings(
        server=args.server, dry_run=args.dry_run, image=args.image, bind_host=args.bind_host,
        grpc_port=args.grpc_port, rest_port=args.rest_port, models_dir=args.models_dir,
        model_config=args.model_config, state_dir=args.state_dir, container_name=args.container_name,
        gpu_memory_fraction=args.gpu_memory_fraction, gpu_allow_growth=args.gpu_allow_growth,
        batching=args.batching, timeout_s=args.timeout)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.server not in SERVER_CHOICES:  # argparse checks choices on the command line, not env defaults
        parser.error(f"SERVER must be one of {', '.join(SERVER_CHOICES)}, got {args.server!r}")
    settings = settings_from_args(args)
    try:
        if args.command == "serve":
            return serve(settings)
        if args.command == "stop":
            return stop(settings)
        for model in render_config_files(settings):
            print(f"render-config: {model.name} labels {model.labels} -> {settings.config_dir}")
        return 0
    except ServeError as exc:
        print(f"{args.command}: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
