"""``python -m client.bench``: a perf_analyzer-like load generator for any TF Serving Predict endpoint.

Library use (what the CLI does)::

    from client.bench import Load, Target, run_sweep, table
    sweep = run_sweep("127.0.0.1:8500", Target(), rows=1024, cols=256, load=Load(concurrency=(1, 4)))
    print(table(sweep))
"""

from client.bench.load import PERCENTILES, PointResult, run_point
from client.bench.report import plot, table, to_csv, to_json
from client.bench.sweep import Load, Sweep, run_sweep, sweep_send
from client.bench.workload import (
    PredictWorkload,
    Target,
    UnexpectedResponse,
    connect,
    decode_outputs,
    encode_request,
    make_batch,
)

__all__ = [
    "Load",
    "PERCENTILES",
    "PointResult",
    "PredictWorkload",
    "Sweep",
    "Target",
    "UnexpectedResponse",
    "connect",
    "decode_outputs",
    "encode_request",
    "make_batch",
    "plot",
    "run_point",
    "run_sweep",
    "sweep_send",
    "table",
    "to_csv",
    "to_json",
]
