"""``python -m client.bench``: sweep concurrency against a TF Serving Predict endpoint and report."""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

import grpc

from client import blas, cli_options, defaults, memory
from client.bench import report
from client.bench.load import PointResult
from client.bench.sweep import Load, parse_concurrency, run_sweep
from client.bench.workload import Target, UnexpectedResponse
from client.cli_options import non_negative_int, positive_int, positive_seconds
from client.errors import ResponseMismatch, ServerUnavailable, from_rpc_error
from client.names import DEFAULT_SIGNATURE

DESCRIPTION = """\
Closed-loop load against TF Serving's gRPC Predict, like perf_analyzer: at each concurrency level
N threads each send the next request as soon as their last one answers. Every request encodes a
float32 [rows, cols] batch and decodes the answer, as a client application would.

Each level runs --warmup requests unrecorded, then stops at --requests answered or --duration
seconds, whichever comes first. Reports requests/s, elements/s, MB/s (request + response message
bytes), p50/p90/p95/p99 latency and errors per level."""

EPILOG = """\
examples:
  python -m client.bench                                   # 127.0.0.1:8500, 1024x256, concurrency 1,2,4,8
  python -m client.bench --rows 1 --cols 8 --concurrency 1,8,32 --duration 10
  python -m client.bench --signature compact --csv out.csv --json out.json --plot out.png"""


def _levels(text: str) -> tuple[int, ...]:
    try:
        return parse_concurrency(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m client.bench",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    target = parser.add_argument_group("target")
    target.add_argument(
        "--server",
        default=cli_options.env_default(defaults.SERVER_ENV, defaults.DEFAULT_SERVER),
        help=f"gRPC address HOST:PORT (env {defaults.SERVER_ENV}, default {defaults.DEFAULT_SERVER})",
    )
    model = target.add_argument(
        "--model-name",
        default=cli_options.env_default(defaults.MODEL_ENV, defaults.DEFAULT_MODEL),
        help=f"model to call (env {defaults.MODEL_ENV}, default {defaults.DEFAULT_MODEL})",
    )
    cli_options.add_hidden_alias(target, "--model", model)
    target.add_argument(
        "--signature",
        default=DEFAULT_SIGNATURE,
        help="signature to call (default serving_default; compact answers uint8)",
    )
    target.add_argument("--input-name", default="x", help="input tensor key (default x)")
    target.add_argument(
        "--timeout", type=positive_seconds, default=30.0, help="per-request deadline in seconds (default 30)"
    )
    target.add_argument(
        "--wait",
        type=positive_seconds,
        default=10.0,
        help="seconds to wait for the server to accept a connection (default 10)",
    )
    load = parser.add_argument_group("load")
    load.add_argument("--rows", type=positive_int, default=1024, help="batch rows (default 1024)")
    load.add_argument("--cols", type=positive_int, default=256, help="batch columns (default 256)")
    load.add_argument(
        "--concurrency",
        type=_levels,
        default=(1, 2, 4, 8),
        help="comma-separated concurrency levels (default 1,2,4,8)",
    )
    load.add_argument(
        "--duration", type=positive_seconds, default=5.0, help="seconds per level at most (default 5)"
    )
    load.add_argument(
        "--requests",
        type=positive_int,
        default=100_000,
        help="recorded requests per level at most (default 100000)",
    )
    load.add_argument(
        "--warmup",
        type=non_negative_int,
        default=20,
        help="unrecorded requests before each level (default 20)",
    )
    output = parser.add_argument_group("output (the table always goes to stdout)")
    output.add_argument("--csv", type=Path, help="write the points as CSV ('-' for stdout)")
    output.add_argument("--json", type=Path, help="write the setting and points as JSON ('-' for stdout)")
    output.add_argument("--plot", type=Path, help="write throughput and latency vs concurrency as a PNG")
    output.add_argument("--quiet", action="store_true", help="no table and no progress on stderr")
    return parser


def _write(path: Path, text: str) -> None:
    if str(path) == "-":
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
    else:
        path.write_text(text if text.endswith("\n") else text + "\n")


def main(argv: list[str] | None = None) -> int:
    args = cli_options.parse_args(build_parser(), argv)
    blas.one_blas_thread()  # as client.predict does (client/blas.py)
    memory.reuse_freed_buffers()  # as client.predict does: measure what users run
    if args.plot and importlib.util.find_spec("matplotlib") is None:  # fail before the load, not after
        print("error: --plot needs matplotlib: pip install matplotlib", file=sys.stderr)
        return 2
    target = Target(args.model_name, args.signature, args.input_name, args.timeout)
    load = Load(args.concurrency, args.requests, args.duration, args.warmup)

    def progress(point: PointResult) -> None:
        if not args.quiet:
            print(
                f"concurrency {point.concurrency}: {point.requests_per_s:.1f} req/s, {point.errors} errors",
                file=sys.stderr,
                flush=True,
            )

    try:
        sweep = run_sweep(
            args.server, target, args.rows, args.cols, load, on_point=progress, connect_wait=args.wait
        )
    except ConnectionError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return ServerUnavailable.exit_code
    except UnexpectedResponse as exc:
        print(f"error: {args.server} answered Predict wrongly: {exc}", file=sys.stderr)
        return ResponseMismatch.exit_code
    except grpc.RpcError as exc:  # the first (checked) request failed: the setting is wrong
        print(f"error: Predict on {args.server} failed: {exc.code().name}: {exc.details()}", file=sys.stderr)
        return from_rpc_error(exc, address=args.server, what="Predict").exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    if not args.quiet:
        print(report.table(sweep), flush=True)
    if args.csv:
        _write(args.csv, report.to_csv(sweep))
    if args.json:
        _write(args.json, report.to_json(sweep))
    if args.plot:
        print(f"plot: {report.plot(sweep, args.plot)}", file=sys.stderr)
    # A level that got no answer at all fails the run, so scripts notice a dead endpoint.
    return ServerUnavailable.exit_code if any(not point.requests for point in sweep.points) else 0


if __name__ == "__main__":
    sys.exit(main())
