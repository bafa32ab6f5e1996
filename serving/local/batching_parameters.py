"""The batch scheduler's settings: TF Serving's BatchingParameters, read as it reads them.

model_servers/server.cc reads --batching_parameters_file with ParseProtoTextFile when
--enable_batching is set (and refuses the file without it); with no file every field keeps its
default. servables/tensorflow/bundle_factory_util.h GetQueueOptions copies the fields that are
set over SharedBatchScheduler's QueueOptions defaults (tensorflow/core/kernels/batching_util/
shared_batch_scheduler.h): 1000 rows, no timeout, 10 enqueued batches, no splitting, a batch
thread per CPU. This server's own --max-batch-size, --batch-timeout-micros and
--num-batch-threads, when given, take the place of the file's fields.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from serving.local.config import read_proto_text_file
from serving.local.errors import InvalidServerConfig
from serving.local.flags import ServerOptions, schedulable_cpus

WITHOUT_ENABLE_BATCHING = (
    "server_options.batching_parameters_file is set without setting "
    "server_options.enable_batching to true."
)  # server.cc, word for word


@dataclass(frozen=True)
class BatchingSettings:
    """One batching queue's options (QueueOptions) and the scheduler's thread count."""

    max_batch_size: int = 1000  # input_batch_size_limit: a larger request is refused
    batch_timeout_micros: int = 0
    num_batch_threads: int = 1
    max_enqueued_batches: int = 10
    enable_large_batch_splitting: bool = False
    max_execution_batch_size: int = 1000  # counts only with splitting on
    allowed_batch_sizes: tuple[int, ...] = ()

    @property
    def execution_limit(self) -> int:
        """Queue::GetMaxExecutionBatchSize: rows per model call."""
        return self.max_execution_batch_size if self.enable_large_batch_splitting else self.max_batch_size

    def padded(self, rows: int) -> int:
        """The batch size the model runs once padded up to the next allowed size (as recorded by
        the processed_batch_size metric); padding rows would be cut off again, so none is added."""
        return next((size for size in self.allowed_batch_sizes if size >= rows), rows)

    def load_error(self) -> str | None:
        """Why wrapping a version's session for batching fails, in TF Serving's words, or None:
        WrapSessionForBatching, CreateBatchingSession, then AddQueueAfterRewritingOptions."""
        sizes = self.allowed_batch_sizes
        if sizes and sizes[-1] != self.max_batch_size:
            return (
                "Last entry in allowed_batch_sizes must match max_batch_size; last entry was "
                f"{sizes[-1]}; expected {self.max_batch_size}"
            )
        if any(later <= earlier for earlier, later in itertools.pairwise(sizes)):
            return "allowed_batch_sizes entries must be monotonically increasing"
        if self.max_batch_size <= 0:
            return f"input_batch_size_limit must be positive; was {self.max_batch_size}"
        if self.batch_timeout_micros < 0:
            return f"batch_timeout_micros must be non-negative; was {self.batch_timeout_micros}"
        if self.max_enqueued_batches <= 0:
            return f"max_enqueued_batches must be positive; was {self.max_enqueued_batches}"
        if self.enable_large_batch_splitting and self.max_execution_batch_size <= 0:
            # TF Serving's split would divide by it; this server's own words
            return (
                "max_execution_batch_size must be positive with enable_large_batch_splitting; "
                f"was {self.max_execution_batch_size}"
            )
        if self.enable_large_batch_splitting and self.max_batch_size < self.max_execution_batch_size:
            # errors::InvalidArgument StrCats its arguments with nothing between them
            return (
                "When enable_large_batch_splitting is true, input_batch_size_limit must be greater "
                "than or equal to max_execution_batch_size."
                f"1{self.max_batch_size}{self.max_execution_batch_size}"
            )
        return None


def batching_settings(options: ServerOptions) -> BatchingSettings:
    """The settings --enable-batching runs with: the file's fields over the defaults, then the flags.

    Raises InvalidServerConfig for a file without --enable-batching, or for a thread count
    SharedBatchScheduler::Create refuses.
    """
    if options.batching_parameters_file is not None and not options.enable_batching:
        raise InvalidServerConfig(WITHOUT_ENABLE_BATCHING)
    from serving.config_protos import BatchingParameters

    params = BatchingParameters()
    if options.batching_parameters_file is not None:
        params = read_proto_text_file(options.batching_parameters_file, params, "--batching-parameters-file")

    def field(name: str, default: int) -> int:
        return getattr(params, name).value if params.HasField(name) else default

    splitting = params.HasField("enable_large_batch_splitting") and params.enable_large_batch_splitting.value
    max_batch_size = field("max_batch_size", BatchingSettings.max_batch_size)
    if options.max_batch_size is not None:
        max_batch_size = options.max_batch_size
    max_enqueued = field("max_enqueued_batches", BatchingSettings.max_enqueued_batches)
    if not splitting and max_enqueued == 0:
        max_enqueued = 1  # SharedBatchScheduler::AddQueue rewrites it, for old low-traffic models
    threads = field("num_batch_threads", schedulable_cpus())
    if options.num_batch_threads is not None:
        threads = options.num_batch_threads
    if threads < 1:
        raise InvalidServerConfig(f"num_batch_threads must be positive; was {threads}")
    timeout = field("batch_timeout_micros", BatchingSettings.batch_timeout_micros)
    if options.batch_timeout_micros is not None:
        timeout = options.batch_timeout_micros
    return BatchingSettings(
        max_batch_size=max_batch_size,
        batch_timeout_micros=timeout,
        num_batch_threads=threads,
        max_enqueued_batches=max_enqueued,
        enable_large_batch_splitting=splitting,
        # GetQueueOptions: with splitting on and no max_execution_batch_size, max_batch_size
        max_execution_batch_size=(
            field("max_execution_batch_size", params.max_batch_size.value) if splitting else 1000
        ),
        allowed_batch_sizes=tuple(params.allowed_batch_sizes),
    )
