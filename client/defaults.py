"""The client's defaults, in one light module (the CLI reads them for ``--help`` without grpc)."""

DEFAULT_SERVER = "127.0.0.1:8500"  # TF Serving's gRPC port
SERVER_ENV = "THRESHOLD_SERVER"
TOKEN_ENV = "THRESHOLD_TOKEN"  # a bearer token, sent as authorization metadata
DEFAULT_MODEL = "threshold"  # the model name clients ask for; servers take it from MODEL_NAME too
MODEL_ENV = "MODEL_NAME"
DEFAULT_MAX_MESSAGE_BYTES = 4 * 1024 * 1024  # gRPC's default receive limit: fits any server
DEFAULT_CONCURRENCY = 4
DEFAULT_TIMEOUT = 30.0
DEFAULT_RETRIES = 3
