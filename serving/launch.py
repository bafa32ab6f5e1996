"""``python -m serving.launch serve|stop|status|logs|image|render-config``: what the make targets run.

Only flags and exit codes live here; serving/lifecycle.py serves and stops, status.py and image.py
do the rest.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from client import cli_options
from client.serve_state import DEFAULT_STATE_DIR, STATE_DIR_ENV
from serving.backend_choice import SERVER_CHOICES
from serving.errors import PortInUse, ServeError
from serving.image import build_image
from serving.lifecycle import ServeSettings, render_config_files, serve, stop
from serving.model_config import MODELS_CONFIG
from serving.model_server_flags import DEFAULT_GPU_MEMORY_FRACTION
from serving.status import logs, status

DESCRIPTION = """\
serve: start TF Serving for serving/models.config and wait until the model is AVAILABLE.
  SERVER=auto picks TF Serving in Docker (the -gpu image when containers can use an NVIDIA GPU,
  else the CPU image of the same release) and, without a Docker engine, the embedded server
  (python -m serving.local). Exports a first model version if there is none. Running it again
  while serving waits for newly exported versions, then moves the labels onto them.
stop: stop what serve started (safe to run twice).
status: what serve started, its endpoints, and each model's versions, states and labels.
logs: the server's last log lines (docker logs, or the embedded server's log file).
image: build serving/Dockerfile (docker build; DRY_RUN=1 prints it).
render-config: only write the configs a server reads to <state-dir>/config (what
  serving/Dockerfile bakes in), and <state-dir>/tls/ssl.config with --tls-cert."""

COMMANDS = ("serve", "stop", "status", "logs", "image", "render-config")
_env = cli_options.env_default  # unset or blank: the default (`make serve TFS_IMAGE=` means the default)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m serving.launch",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("command", choices=COMMANDS)
    parser.add_argument(
        "--server",
        choices=SERVER_CHOICES,
        default=_env("SERVER", "auto"),
        help="auto, docker or local (env SERVER, default auto)",
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        default=_env("DRY_RUN", False),
        help="print the server command instead of running it (env DRY_RUN=1)",
    )
    parser.add_argument(
        "--image",
        default=_env("TFS_IMAGE"),
        help="TF Serving image (env TFS_IMAGE; default tensorflow/serving:<the "
        "tensorflow-serving-api version>[-gpu])",
    )
    parser.add_argument(
        "--bind-host",
        default=_env("BIND_HOST", "127.0.0.1"),
        help="address the ports are published on (env BIND_HOST, default 127.0.0.1: "
        "this machine only; 0.0.0.0 exposes the server to the network)",
    )
    parser.add_argument(
        "--grpc-port",
        type=cli_options.port,
        default=_env("GRPC_PORT", 8500),
        help="gRPC port on the host (env GRPC_PORT, default 8500)",
    )
    parser.add_argument(
        "--rest-port",
        type=cli_options.port,
        default=_env("REST_PORT", 8501),
        help="REST and metrics port on the host, 0 for none (env REST_PORT, default 8501)",
    )
    models_dir = parser.add_argument(
        "--models-dir",
        type=Path,
        default=_env("MODEL_DIR", Path("models")),
        help="directory holding the model base paths (env MODEL_DIR, default models)",
    )
    cli_options.add_hidden_alias(parser, "--model-dir", models_dir)
    parser.add_argument(
        "--model-config",
        type=Path,
        default=MODELS_CONFIG,
        help="ModelServerConfig to serve (default serving/models.config)",
    )
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=_env(STATE_DIR_ENV, Path(DEFAULT_STATE_DIR)),
        help="where serve records what it started and renders configs (env SERVE_STATE_DIR, default .serve)",
    )
    parser.add_argument(
        "--container-name",
        default=_env("TFS_CONTAINER_NAME", "threshold-serving"),
        help="Docker container name (env TFS_CONTAINER_NAME, default threshold-serving)",
    )
    parser.add_argument(
        "--gpu-memory-fraction",
        type=cli_options.fraction,
        default=_env("GPU_MEMORY_FRACTION", DEFAULT_GPU_MEMORY_FRACTION),
        help="cap on the GPU memory TF Serving takes, 0 for no cap "
        f"(env GPU_MEMORY_FRACTION, default {DEFAULT_GPU_MEMORY_FRACTION})",
    )
    parser.add_argument(
        "--no-gpu-allow-growth",
        dest="gpu_allow_growth",
        action="store_false",
        default=_env("GPU_ALLOW_GROWTH", True),
        help="take the GPU memory up front instead of as needed (env GPU_ALLOW_GROWTH=0)",
    )
    parser.add_argument(
        "--no-batching",
        dest="batching",
        action="store_false",
        default=_env("BATCHING", True),
        help="serve without server-side batching (env BATCHING=0)",
    )
    for pool, what in (
        ("intra-op", "threads one op may split its work over"),
        ("inter-op", "ops of one call that may run at the same time"),
    ):
        env = f"TF_{pool.upper().replace('-', '_')}_PARALLELISM"
        parser.add_argument(
            f"--tensorflow-{pool}-parallelism",
            type=cli_options.non_negative_int,
            default=_env(env, 0),
            metavar="N",
            help=f"{what}, in the model's TensorFlow session; 0 lets TensorFlow choose, one per core "
            f"(env {env}, default 0; both servers)",
        )
    parser.add_argument(
        "--timeout",
        type=cli_options.positive_seconds,
        default=_env("SERVE_TIMEOUT", 180.0),
        help="seconds to wait for the model to become AVAILABLE (env SERVE_TIMEOUT)",
    )
    tls = parser.add_argument_group("TLS on TF Serving's gRPC port (--ssl_config_file; Docker only)")
    tls.add_argument(
        "--tls-cert", type=Path, default=_env("TLS_CERT"), help="PEM server certificate (env TLS_CERT)"
    )
    tls.add_argument(
        "--tls-key", type=Path, default=_env("TLS_KEY"), help="PEM private key of --tls-cert (env TLS_KEY)"
    )
    tls.add_argument(
        "--tls-client-ca",
        type=Path,
        default=_env("TLS_CLIENT_CA"),
        help="PEM CA: require client certificates it signed, mutual TLS (env TLS_CLIENT_CA)",
    )
    logs = parser.add_argument_group("logs")
    logs.add_argument(
        "--lines",
        type=cli_options.positive_int,
        default=_env("LOG_LINES", 50),
        help="how many of the last log lines (env LOG_LINES, default 50)",
    )
    logs.add_argument(
        "--follow",
        action="store_true",
        default=_env("FOLLOW", False),
        help="keep printing new lines until Ctrl-C (env FOLLOW=1)",
    )
    image = parser.add_argument_group("image")
    image.add_argument(
        "--tag",
        default=_env("IMAGE_TAG"),
        help="image tag (env IMAGE_TAG, default threshold-serving:<release>[-gpu])",
    )
    image.add_argument(
        "--cpu-image",
        dest="gpu_image",
        action="store_false",
        default=_env("IMAGE_GPU", True),
        help="build on the CPU image instead of the -gpu one (env IMAGE_GPU=0)",
    )
    return parser


def settings_from_args(args: argparse.Namespace) -> ServeSettings:
    """The ServeSettings the parsed arguments ask for."""
    return ServeSettings(
        server=args.server,
        dry_run=args.dry_run,
        image=args.image,
        bind_host=args.bind_host,
        grpc_port=args.grpc_port,
        rest_port=args.rest_port,
        models_dir=args.models_dir,
        model_config=args.model_config,
        state_dir=args.state_dir,
        container_name=args.container_name,
        gpu_memory_fraction=args.gpu_memory_fraction,
        gpu_allow_growth=args.gpu_allow_growth,
        batching=args.batching,
        intra_op_parallelism=args.tensorflow_intra_op_parallelism,
        inter_op_parallelism=args.tensorflow_inter_op_parallelism,
        timeout_s=args.timeout,
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
        tls_client_ca=args.tls_client_ca,
    )


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = cli_options.parse_args(parser, argv)  # environment defaults too (SERVER is held to the choices)
    if (args.tls_cert is None) != (args.tls_key is None):
        parser.error("--tls-cert and --tls-key (TLS_CERT, TLS_KEY) go together")
    if args.tls_client_ca is not None and args.tls_cert is None:
        parser.error("--tls-client-ca (TLS_CLIENT_CA) needs --tls-cert and --tls-key")
    settings = settings_from_args(args)
    try:
        if args.command == "serve":
            return serve(settings)
        if args.command == "stop":
            return stop(settings)
        if args.command == "status":
            return status(settings, print)
        if args.command == "logs":
            return logs(settings, args.lines, args.follow, print)
        if args.command == "image":
            return build_image(settings, gpu=args.gpu_image, tag=args.tag)
        for model in render_config_files(settings):
            print(f"render-config: {model.name} labels {model.labels} -> {settings.config_dir}")
        return 0
    except PortInUse as exc:
        print(
            f"{args.command}: error: {exc}: `make stop` if it is an earlier make serve, else pick another "
            f"port ({exc.flag}=)",
            file=sys.stderr,
        )
        return exc.exit_code
    except ServeError as exc:
        print(f"{args.command}: error: {exc}", file=sys.stderr)
        return exc.exit_code


if __name__ == "__main__":
    sys.exit(main())
