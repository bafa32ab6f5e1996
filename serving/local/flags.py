"""Command-line flags of ``python -m serving.local``, each with an environment-variable default.

The names follow tensorflow_model_server's flags (dashes for underscores) where one exists.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from pathlib import Path

from client import cli_options
from client.model_versions import simple_atoi

DEFAULT_CONFIG_FILE = Path("serving") / "models.config"
DEFAULT_MODEL_NAME = "threshold"
ENV_PREFIX = "SERVING_LOCAL_"


def schedulable_cpus() -> int:
    """port::NumSchedulableCPUs: the CPUs this process may run on (its affinity), not all the machine's."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # no affinity on this platform
        return os.cpu_count() or 1


# server.h: grpc_max_threads and http_num_threads are both 4.0 * NumSchedulableCPUs()
TF_SERVING_THREADS = 4 * schedulable_cpus()
# Not TF Serving's default for REST: its handlers parse JSON in C++, these in Python holding the
# GIL, each body up to 16 MiB, so more at once only stalls gRPC and grows memory (README, Reliability).
REST_THREADS = 4


@dataclass(frozen=True)
class SessionThreads:
    """The session's thread pools, as TF Serving's --tensorflow_*_parallelism flags set them.

    ``model_servers/server.cc``: with intra-op or inter-op parallelism given, the session gets
    those two (0 for one not given: TensorFlow picks); otherwise both get the session
    parallelism. 0 everywhere (the default) leaves both to TensorFlow, one thread per core.
    """

    session: int = 0
    intra_op: int = 0
    inter_op: int = 0

    def __post_init__(self):
        if self.session > 0 and self.intra_op > 0 and self.inter_op > 0:  # server.cc's own check
            raise ValueError(
                "Either configure server_options.tensorflow_session_parallelism or "
                "(server_options.tensorflow_intra_op_parallelism, "
                "server_options.tensorflow_inter_op_parallelism) separately. You cannot configure all."
            )

    @property
    def pools(self) -> tuple[int, int]:
        """(intra-op, inter-op) threads for the session's ConfigProto; 0 lets TensorFlow choose."""
        if self.intra_op > 0 or self.inter_op > 0:
            return self.intra_op, self.inter_op
        return self.session, self.session

    def describe(self) -> str:
        intra, inter = self.pools
        return f"intra-op {intra or 'auto'}, inter-op {inter or 'auto'}"


TF_CHOOSES = SessionThreads()  # the default: TensorFlow sizes both pools (one thread per core)


@dataclass(frozen=True)
class LoadRetries:
    """How a failed load is retried, as TF Serving's --max_num_load_retries and
    --load_retry_interval_micros set it (``core/loader_harness.cc`` Load, ``util/retrier.cc``).

    A failed load is tried again up to max_retries times, interval_micros apart (a negative
    interval: no wait); the version stays LOADING meanwhile, and ends in END with the last error.
    """

    max_retries: int = 5
    interval_micros: int = 60_000_000

    @property
    def interval_seconds(self) -> float:
        return max(self.interval_micros, 0) / 1e6


TF_SERVING_RETRIES = LoadRetries()  # tensorflow_model_server's defaults: 5 retries, one minute apart


@dataclass(frozen=True)
class ServerOptions:
    """Everything one run of the embedded server depends on."""

    host: str = "127.0.0.1"
    grpc_port: int = 8500  # 0: no gRPC over TCP (then grpc_socket_path)
    rest_port: int = 8501
    grpc_socket_path: str = ""  # a UNIX socket to serve gRPC on too
    grpc_channel_arguments: tuple[tuple[str, int | str], ...] = ()
    model_config_file: Path | None = None
    models_dir: Path = Path("models")
    model_name: str = DEFAULT_MODEL_NAME
    model_base_path: Path | None = None
    file_system_poll_wait_seconds: float = 1.0
    model_config_file_poll_wait_seconds: float = 0.0  # server.h: 0, the file is read once
    allow_version_labels_for_unavailable_models: bool = False
    max_message_bytes: int = 256 << 20
    grpc_threads: int = TF_SERVING_THREADS
    enable_batching: bool = False
    batching_parameters_file: Path | None = None
    max_batch_size: int | None = None  # None: the file's, or TF Serving's default
    batch_timeout_micros: int | None = None
    num_batch_threads: int | None = None
    session_threads: SessionThreads = TF_CHOOSES
    load_retries: LoadRetries = TF_SERVING_RETRIES
    ssl_cert: Path | None = None
    ssl_key: Path | None = None
    ssl_client_ca: Path | None = None
    allow_insecure_remote: bool = False
    shutdown_grace_seconds: float = 30.0
    enable_model_warmup: bool = True
    num_request_iterations_for_warmup: int = 0  # 0: TF Serving's default, each record once
    rest_max_request_bytes: int = (256 << 20) // 16
    rest_timeout_seconds: float = 30.0
    rest_api_num_threads: int = REST_THREADS
    enable_serialization_as_tensor_content: bool = False
    enable_grpc_healthcheck_service: bool = False
    max_request_tensor_bytes: int | None = None  # None: a quarter of max_message_bytes
    auth_token_file: Path | None = None
    monitoring_config_file: Path | None = None  # None: no metrics, as TF Serving
    rest_api_enable_cors_support: bool = False
    enable_signature_method_name_check: bool = False
    saved_model_tags: tuple[str, ...] = ("serve",)
    log_format: str = "text"

    @property
    def request_tensor_budget(self) -> int:
        """Bytes a request's value fields may expand to (the decoded input, its output and the
        response each take about as much, so a quarter of the message limit keeps a request's
        footprint near one message)."""
        if self.max_request_tensor_bytes is not None:
            return self.max_request_tensor_bytes
        return self.max_message_bytes // 4

    @property
    def tls(self) -> bool:
        return self.ssl_cert is not None

    @property
    def warmup_iterations(self) -> int:
        """How often each warmup record runs: main.cc's flag only counts when > 0 (server.cc)."""
        return self.num_request_iterations_for_warmup or 1


def _env(name: str, default=None):
    """The flag's default from SERVING_LOCAL_<NAME>, parsed after the command line (client.cli_options)."""
    return cli_options.env_default(ENV_PREFIX + name, default)


def grpc_channel_arguments(text: str) -> list[tuple[str, int | str]]:
    """--grpc-channel-arguments as TF Serving reads --grpc_channel_arguments: the items between
    commas, each split at "=" into a key and a value (anything after a second "=" dropped), the
    value an int32 where ``absl::SimpleAtoi`` reads one, else the text (``model_servers/server.cc``:
    parseGrpcChannelArgs and BuildAndStart). ValueError for an item with no "=" or no key, which
    TF Serving reads past the end of (undefined behaviour there)."""
    arguments = []
    for item in text.split(",") if text else []:
        key, sep, rest = item.partition("=")
        if not sep or not key:
            raise ValueError(f"{item!r} is not key=value")
        value = rest.split("=", 1)[0]
        number = simple_atoi(value, 32)
        arguments.append((key, value if number is None else number))
    return arguments


def _channel_arguments_flag(text: str) -> list[tuple[str, int | str]]:
    try:
        return grpc_channel_arguments(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{exc}: give comma-separated key=value pairs") from None


def _saved_model_tags(text: str) -> tuple[str, ...]:
    """main.cc: absl::StrSplit(saved_model_tags, ",") into a set: each tag once, empty ones dropped."""
    tags = tuple(dict.fromkeys(tag for tag in text.split(",") if tag))
    if not tags:
        raise argparse.ArgumentTypeError("give at least one tag, e.g. serve")
    return tags


def build_parser() -> argparse.ArgumentParser:
    """The argument parser; every default can also come from SERVING_LOCAL_<NAME>."""
    parser = argparse.ArgumentParser(
        prog="python -m serving.local",
        description="Serve SavedModels over TF Serving's gRPC API (and its REST API) without Docker. "
        f"Every flag defaults to the environment variable {ENV_PREFIX}<FLAG> "
        "(upper case, underscores) when that is set.",
    )
    add = parser.add_argument
    add(
        "--host",
        default=_env("HOST", "127.0.0.1"),
        help="address to bind (default 127.0.0.1); a non-loopback address needs --ssl-cert/--ssl-key "
        "or --allow-insecure-remote",
    )
    add(
        "--port",
        type=cli_options.port,
        default=_env("PORT", 8500),
        help="gRPC port (default 8500); 0 serves gRPC on --grpc-socket-path only, as TF Serving's --port",
    )
    add(
        "--grpc-socket-path",
        default=_env("GRPC_SOCKET_PATH", ""),
        help="also serve gRPC on this UNIX socket (a client's --server unix:PATH); TF Serving's "
        "--grpc_socket_path",
    )
    add(
        "--grpc-channel-arguments",
        type=_channel_arguments_flag,
        default=_env("GRPC_CHANNEL_ARGUMENTS", ""),
        help="comma-separated key=value gRPC server arguments, e.g. grpc.max_connection_age_ms=30000 "
        "(a value that reads as a 32-bit integer is passed as one); TF Serving's --grpc_channel_arguments",
    )
    add(
        "--rest-port",
        type=cli_options.port,
        default=_env("REST_PORT", 8501),
        help="REST port for /v1/models/... and, with --monitoring-config-file, Prometheus metrics "
        "(default 8501; 0 disables)",
    )
    add(
        "--monitoring-config-file",
        type=Path,
        default=_env("MONITORING_CONFIG_FILE"),
        help="a MonitoringConfig text proto (serving/monitoring.config): with prometheus_config "
        "{ enable: true } the REST port serves Prometheus metrics at its path (default "
        "/monitoring/prometheus/metrics). Without it there are no metrics, as TF Serving's "
        "--monitoring_config_file; make serve passes it",
    )
    add(
        "--rest-api-enable-cors-support",
        action="store_true",
        default=_env("REST_API_ENABLE_CORS_SUPPORT", False),
        help="add CORS headers (Access-Control-Allow-Origin: *) to REST API answers, so a page on "
        "another origin may call it; TF Serving's --rest_api_enable_cors_support",
    )
    add(
        "--model-config-file",
        type=Path,
        default=_env("MODEL_CONFIG_FILE"),
        help="ModelServerConfig text proto (TF Serving's --model_config_file); default "
        f"{DEFAULT_CONFIG_FILE} if it exists and no --model-name/--model-base-path is given",
    )
    add(
        "--models-dir",
        type=Path,
        default=_env("MODELS_DIR", Path("models")),
        help="local directory standing in for the container's /models: a base_path /models/X is read "
        "from <models-dir>/X (default ./models); other paths are used as they are",
    )
    add(
        "--model-name",
        default=_env("MODEL_NAME"),
        help=f"model name when no config file is used (default {DEFAULT_MODEL_NAME})",
    )
    add(
        "--model-base-path",
        type=Path,
        default=_env("MODEL_BASE_PATH"),
        help="directory of integer version subdirectories when no config file is used "
        "(default <models-dir>/<model-name>)",
    )
    add(
        "--file-system-poll-wait-seconds",
        type=cli_options.non_negative_seconds,
        default=_env("FILE_SYSTEM_POLL_WAIT_SECONDS", 1.0),
        help="how often base paths are scanned for new or removed versions (default 1; 0 disables)",
    )
    add(
        "--model-config-file-poll-wait-seconds",
        type=cli_options.non_negative_seconds,
        default=_env("MODEL_CONFIG_FILE_POLL_WAIT_SECONDS", 0.0),
        help="how often the config file is re-read and applied, e.g. to move labels; each poll applies it "
        "again, replacing a config sent by HandleReloadConfigRequest (default 0: read once at start-up; "
        "TF Serving's --model_config_file_poll_wait_seconds)",
    )
    add(
        "--allow-version-labels-for-unavailable-models",
        action="store_true",
        default=_env("ALLOW_VERSION_LABELS_FOR_UNAVAILABLE_MODELS", False),
        help="let a config give a new label (or keep one) to a version that is not loaded yet; moving a "
        "label still needs its new version AVAILABLE. Without it, such a config is refused, at start-up "
        "too (TF Serving's --allow_version_labels_for_unavailable_models). On when the config is the "
        f"default {DEFAULT_CONFIG_FILE}, as make serve passes it",
    )
    add(
        "--max-message-bytes",
        type=cli_options.positive_int,
        default=_env("MAX_MESSAGE_BYTES", 256 << 20),
        help="largest gRPC request or response in bytes (default 256 MiB)",
    )
    add(
        "--max-request-tensor-bytes",
        type=cli_options.non_negative_int,
        default=_env("MAX_REQUEST_TENSOR_BYTES"),
        help="most bytes the tensors of one request may expand to from value fields (float_val, ...), "
        "checked before anything is allocated; tensor_content needs no limit of its own, as the "
        "message limit bounds it (default: a quarter of --max-message-bytes)",
    )
    add(
        "--enable-serialization-as-tensor-content",
        action="store_true",
        default=_env("ENABLE_SERIALIZATION_AS_TENSOR_CONTENT", False),
        help="answer Predict with tensor_content (raw bytes) instead of the typed value fields "
        "(float_val, int_val, ...), like tensorflow_model_server's "
        "--enable_serialization_as_tensor_content=true",
    )
    add(
        "--enable-grpc-healthcheck-service",
        action="store_true",
        default=_env("ENABLE_GRPC_HEALTHCHECK_SERVICE", False),
        help="serve the standard gRPC health service (grpc.health.v1.Health): '', ModelService and "
        "PredictionService answer SERVING. Off by default, as "
        "TF Serving's --enable_grpc_healthcheck_service; make serve turns it on",
    )
    add(
        "--saved-model-tags",
        type=_saved_model_tags,
        default=_env("SAVED_MODEL_TAGS", "serve"),
        help="comma-separated tags of the MetaGraphDef to load from each SavedModel (default serve), "
        "as TF Serving's --saved_model_tags",
    )
    add(
        "--enable-signature-method-name-check",
        action="store_true",
        default=_env("ENABLE_SIGNATURE_METHOD_NAME_CHECK", False),
        help="refuse Predict on a signature whose method_name is not predict, classify or regress, "
        "and Classify/Regress on one not of their own method. Off by default (native TF2 "
        "models), as TF Serving's --enable_signature_method_name_check",
    )
    add(
        "--grpc-max-threads",
        "--grpc-threads",
        dest="grpc_threads",
        type=cli_options.positive_int,
        default=_env("GRPC_MAX_THREADS", _env("GRPC_THREADS", TF_SERVING_THREADS)),
        help="gRPC requests handled at the same time (default 4 per CPU this process may use, here "
        f"{TF_SERVING_THREADS}; TF Serving's --grpc_max_threads)",
    )
    add(
        "--enable-batching",
        action="store_true",
        default=_env("ENABLE_BATCHING", False),
        help="merge small concurrent Predict requests with the same signature into one model call, "
        "like TF Serving's --enable_batching (requests of different row widths in one batch fail "
        "together, as there)",
    )
    add(
        "--batching-parameters-file",
        type=Path,
        default=_env("BATCHING_PARAMETERS_FILE"),
        help="a BatchingParameters text proto (serving/batching.config) for --enable-batching, as TF "
        "Serving's --batching_parameters_file: max_batch_size (larger requests are refused), "
        "batch_timeout_micros, num_batch_threads, max_enqueued_batches (a full queue answers "
        "UNAVAILABLE), enable_large_batch_splitting and max_execution_batch_size. Without it, TF "
        "Serving's defaults: 1000 rows, no timeout, 10 batches, a thread per CPU; make serve passes it",
    )
    add(
        "--max-batch-size",
        type=cli_options.positive_int,
        default=_env("MAX_BATCH_SIZE"),
        help="max_batch_size over the file's (this server's own flag): the most rows one request "
        "may have, and the most merged into one model call without splitting",
    )
    add(
        "--batch-timeout-micros",
        type=cli_options.non_negative_int,
        default=_env("BATCH_TIMEOUT_MICROS"),
        help="batch_timeout_micros over the file's (this server's own flag): how long a request "
        "waits for others to merge with",
    )
    add(
        "--num-batch-threads",
        type=cli_options.positive_int,
        default=_env("NUM_BATCH_THREADS"),
        help="num_batch_threads over the file's (this server's own flag): batches run in parallel "
        "on this many threads",
    )
    for flag, env, what in (
        (
            "--tensorflow-session-parallelism",
            "TENSORFLOW_SESSION_PARALLELISM",
            "threads of each of the session's two pools, unless the next two are given",
        ),
        (
            "--tensorflow-intra-op-parallelism",
            "TENSORFLOW_INTRA_OP_PARALLELISM",
            "threads one op may split its work over",
        ),
        (
            "--tensorflow-inter-op-parallelism",
            "TENSORFLOW_INTER_OP_PARALLELISM",
            "ops of one call that may run at the same time",
        ),
    ):
        add(
            flag,
            type=cli_options.non_negative_int,
            default=_env(env, 0),
            metavar="N",
            help=f"{what}; 0 lets TensorFlow choose, one per core (default 0; TF Serving's "
            f"--{flag[2:].replace('-', '_')})",
        )
    add(
        "--max-num-load-retries",
        type=cli_options.non_negative_int,
        default=_env("MAX_NUM_LOAD_RETRIES", 5),
        metavar="N",
        help="times a failed version load is retried before the version ends in END with its error; "
        "0 tries once (default 5; TF Serving's --max_num_load_retries)",
    )
    add(
        "--load-retry-interval-micros",
        type=cli_options.integer,
        default=_env("LOAD_RETRY_INTERVAL_MICROS", 60_000_000),
        metavar="MICROS",
        help="wait between load retries; negative: no wait (default 60000000, one minute; TF "
        "Serving's --load_retry_interval_micros)",
    )
    add("--ssl-cert", type=Path, default=_env("SSL_CERT"), help="PEM server certificate (enables TLS)")
    add("--ssl-key", type=Path, default=_env("SSL_KEY"), help="PEM private key of --ssl-cert")
    add(
        "--ssl-client-ca",
        type=Path,
        default=_env("SSL_CLIENT_CA"),
        help="PEM CA bundle: require client certificates signed by it (mutual TLS)",
    )
    add(
        "--allow-insecure-remote",
        action="store_true",
        default=_env("ALLOW_INSECURE_REMOTE", False),
        help="allow a non-loopback --host without TLS (anyone on the network can call the model)",
    )
    add(
        "--shutdown-grace-seconds",
        type=cli_options.non_negative_seconds,
        default=_env("SHUTDOWN_GRACE_SECONDS", 30.0),
        help="on SIGTERM/SIGINT, how long in-flight requests may take to finish (default 30)",
    )
    add(
        "--rest-max-request-bytes",
        type=cli_options.positive_int,
        default=_env("REST_MAX_REQUEST_BYTES"),
        help="largest REST request body; larger ones get 413 (default --max-message-bytes / 16: JSON "
        "takes about three times the bytes of a TensorProto and far longer to parse)",
    )
    add(
        "--rest-timeout-seconds",
        type=cli_options.positive_seconds,
        default=_env("REST_TIMEOUT_SECONDS", 30.0),
        help="a REST connection is closed when its TLS handshake, a request, an answer or the wait "
        "between requests takes longer (default 30)",
    )
    add(
        "--rest-api-num-threads",
        type=cli_options.positive_int,
        default=_env("REST_API_NUM_THREADS", REST_THREADS),
        help=f"REST requests parsed and run at the same time; more wait (default {REST_THREADS}; TF "
        "Serving's --rest_api_num_threads, whose default of 4 per CPU suits its C++ JSON parsing)",
    )
    add(
        "--no-model-warmup",
        dest="enable_model_warmup",
        action="store_false",
        default=_env("ENABLE_MODEL_WARMUP", True),
        help="do not replay assets.extra/tf_serving_warmup_requests before a version is AVAILABLE",
    )
    add(
        "--num-request-iterations-for-warmup",
        type=cli_options.non_negative_int,
        default=_env("NUM_REQUEST_ITERATIONS_FOR_WARMUP", 0),
        metavar="N",
        help="run each warmup request N times when a version loads; 0 runs it once (default 0; TF "
        "Serving's --num_request_iterations_for_warmup)",
    )
    add(
        "--auth-token-file",
        type=Path,
        default=_env("AUTH_TOKEN_FILE"),
        help="file holding a bearer token every gRPC and REST call must send ('authorization: Bearer "
        "<token>'); a missing or wrong one is UNAUTHENTICATED (HTTP 401). Health checks and "
        "metrics stay open",
    )
    add(
        "--log-format",
        choices=("text", "json"),
        default=_env("LOG_FORMAT", "text"),
        help="text lines, or one JSON object per line for a log collector (default text)",
    )
    return parser


def parse_options(argv: list[str] | None = None) -> ServerOptions:
    """Parse argv into ServerOptions; exits 2 with argparse's message on a bad flag."""
    parser = build_parser()
    args = cli_options.parse_args(parser, argv)
    if args.rest_port and args.rest_port == args.port:
        parser.error("--port and --rest-port must differ")
    if args.port == 0 and not args.grpc_socket_path:
        # server.cc BuildAndStart: "At least one of server_options.grpc_port or
        # server_options.grpc_socket_path must be set."
        parser.error(
            "at least one of --port or --grpc-socket-path must be set (--port 0 turns gRPC over TCP off)"
        )
    if (args.ssl_cert is None) != (args.ssl_key is None):
        parser.error("--ssl-cert and --ssl-key go together")
    if args.ssl_client_ca is not None and args.ssl_cert is None:
        parser.error("--ssl-client-ca needs --ssl-cert and --ssl-key")
    try:
        session_threads = SessionThreads(
            args.tensorflow_session_parallelism,
            args.tensorflow_intra_op_parallelism,
            args.tensorflow_inter_op_parallelism,
        )
    except ValueError as exc:  # all three given: TF Serving refuses to start, in these words
        parser.error(str(exc))
    if args.rest_max_request_bytes is None:
        args.rest_max_request_bytes = args.max_message_bytes // 16
    single_model = args.model_name is not None or args.model_base_path is not None
    if args.model_config_file is not None and single_model:
        parser.error("give either --model-config-file or --model-name/--model-base-path, not both")
    config_file = args.model_config_file
    # No model named: the checkout's own config, run as make serve runs it, whose flags let its
    # labels (stable, canary) name versions that are still loading.
    checkout_config = config_file is None and not single_model and DEFAULT_CONFIG_FILE.is_file()
    if checkout_config:
        config_file = DEFAULT_CONFIG_FILE
    return ServerOptions(
        host=args.host,
        grpc_port=args.port,
        rest_port=args.rest_port,
        grpc_socket_path=args.grpc_socket_path,
        grpc_channel_arguments=tuple(args.grpc_channel_arguments),  # argparse runs type= on a str default too
        model_config_file=config_file,
        models_dir=args.models_dir,
        model_name=args.model_name or DEFAULT_MODEL_NAME,
        model_base_path=args.model_base_path,
        file_system_poll_wait_seconds=args.file_system_poll_wait_seconds,
        model_config_file_poll_wait_seconds=args.model_config_file_poll_wait_seconds,
        allow_version_labels_for_unavailable_models=(
            args.allow_version_labels_for_unavailable_models or checkout_config
        ),
        max_message_bytes=args.max_message_bytes,
        grpc_threads=args.grpc_threads,
        enable_batching=args.enable_batching,
        batching_parameters_file=args.batching_parameters_file,
        max_batch_size=args.max_batch_size,
        batch_timeout_micros=args.batch_timeout_micros,
        num_batch_threads=args.num_batch_threads,
        session_threads=session_threads,
        load_retries=LoadRetries(args.max_num_load_retries, args.load_retry_interval_micros),
        ssl_cert=args.ssl_cert,
        ssl_key=args.ssl_key,
        ssl_client_ca=args.ssl_client_ca,
        allow_insecure_remote=args.allow_insecure_remote,
        shutdown_grace_seconds=args.shutdown_grace_seconds,
        enable_model_warmup=args.enable_model_warmup,
        num_request_iterations_for_warmup=args.num_request_iterations_for_warmup,
        rest_max_request_bytes=args.rest_max_request_bytes,
        rest_timeout_seconds=args.rest_timeout_seconds,
        rest_api_num_threads=args.rest_api_num_threads,
        enable_serialization_as_tensor_content=args.enable_serialization_as_tensor_content,
        enable_grpc_healthcheck_service=args.enable_grpc_healthcheck_service,
        max_request_tensor_bytes=args.max_request_tensor_bytes,
        auth_token_file=args.auth_token_file,
        monitoring_config_file=args.monitoring_config_file,
        rest_api_enable_cors_support=args.rest_api_enable_cors_support,
        enable_signature_method_name_check=args.enable_signature_method_name_check,
        saved_model_tags=tuple(args.saved_model_tags),  # argparse runs type= on a str default too
        log_format=args.log_format,
    )
