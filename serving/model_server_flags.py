"""TF Serving's image and ``tensorflow_model_server`` flags, written once for every launch.

`make serve`'s docker run and serving/Dockerfile's CMD both start the server with these
flags (a test holds the Dockerfile to them); Kubernetes runs the Dockerfile's image as is.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version

TFS_IMAGE_REPOSITORY = "tensorflow/serving"
# Fixed ports inside the container; the host side is what GRPC_PORT / REST_PORT publish.
CONTAINER_GRPC_PORT = 8500
CONTAINER_REST_PORT = 8501
CONTAINER_CONFIG_DIR = "/config"
CONTAINER_TLS_DIR = "/tls"  # ssl.config: a private key, so never inside /config (baked into the image)
# A new version directory is picked up within this many seconds (TF Serving's default is 1 s;
# 5 s is plenty for exports and saves a directory scan per second).
FILE_SYSTEM_POLL_WAIT_SECONDS = 5
# models.config is re-read this often, so moved labels take effect without a restart.
MODEL_CONFIG_POLL_WAIT_SECONDS = 10
# Default cap on the GPU memory TF Serving may take (it grabs nearly all of it otherwise).
# This model needs a few MiB per batch; the cap leaves the GPU to its other tenants.
DEFAULT_GPU_MEMORY_FRACTION = 0.25
TENSOR_CONTENT_FLAG = "--enable_serialization_as_tensor_content=true"
ALLOW_UNAVAILABLE_LABELS_FLAG = "--allow_version_labels_for_unavailable_models=true"


def tfs_version() -> str:
    """The TF Serving release that matches the installed tensorflow-serving-api (e.g. 2.21.0)."""
    try:
        return version("tensorflow-serving-api")
    except PackageNotFoundError:
        raise RuntimeError("tensorflow-serving-api is not installed: run `make venv`") from None


def tfs_image(gpu: bool) -> str:
    """The official TF Serving image of that release: the -gpu variant or the CPU one."""
    return f"{TFS_IMAGE_REPOSITORY}:{tfs_version()}{'-gpu' if gpu else ''}"


@dataclass(frozen=True)
class ModelServerOptions:
    """The knobs of a tensorflow_model_server launch that differ between launches."""

    batching: bool = True
    gpu_memory_fraction: float | None = None  # None or 0: TF's default (no cap)
    ssl_config_file: str | None = None  # SSLConfig path inside the container: TLS on the gRPC port
    # The session's thread pools (--tensorflow_intra_op_parallelism / _inter_op_); 0: TF chooses.
    intra_op_parallelism: int = 0
    inter_op_parallelism: int = 0


def model_server_flags(options: ModelServerOptions) -> list[str]:
    """``tensorflow_model_server`` flags for the configs mounted at /config."""
    flags = [
        f"--port={CONTAINER_GRPC_PORT}",
        # The REST port also serves Prometheus metrics (monitoring.config needs it).
        f"--rest_api_port={CONTAINER_REST_PORT}",
        f"--model_config_file={CONTAINER_CONFIG_DIR}/models.config",
        f"--model_config_file_poll_wait_seconds={MODEL_CONFIG_POLL_WAIT_SECONDS}",
        f"--file_system_poll_wait_seconds={FILE_SYSTEM_POLL_WAIT_SECONDS}",
        # models.config has labels, and TF Serving checks them before it loads anything: without
        # this the first config is refused (server_core.cc UpdateModelVersionLabelMap). Moving a
        # label to a version that is not AVAILABLE is still refused.
        ALLOW_UNAVAILABLE_LABELS_FLAG,
        f"--monitoring_config_file={CONTAINER_CONFIG_DIR}/monitoring.config",
        "--enable_grpc_healthcheck_service=true",
        # Replays assets.extra/tf_serving_warmup_requests before a version is AVAILABLE,
        # so the first real request does not pay for graph and kernel set-up.
        "--enable_model_warmup=true",
        # Predict answers carry raw tensor_content instead of float_val/int_val (TF Serving's
        # default): the client reads it as a view of the received bytes, and the server copies
        # it out whole instead of converting element by element (see README, Serving).
        TENSOR_CONTENT_FLAG,
    ]
    if options.batching:
        flags += [
            "--enable_batching=true",
            f"--batching_parameters_file={CONTAINER_CONFIG_DIR}/batching.config",
        ]
    if options.gpu_memory_fraction:
        flags.append(f"--per_process_gpu_memory_fraction={options.gpu_memory_fraction:g}")
    if options.ssl_config_file:
        flags.append(f"--ssl_config_file={options.ssl_config_file}")
    flags += [
        f"--tensorflow_{pool}_parallelism={threads}"
        for pool, threads in (
            ("intra_op", options.intra_op_parallelism),
            ("inter_op", options.inter_op_parallelism),
        )
        if threads
    ]
    return flags
