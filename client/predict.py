"""``python -m client.predict data.npy``: filter a .npy/.npz on the served model, checking every answer.

Only argument parsing and printing live here; the work is ``ThresholdClient.predict_file``.
Heavy imports (grpc, numpy, the protos) wait until after parsing so ``--help`` is instant.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys

from client import blas, cli_options, defaults, memory
from client.cli_options import byte_size, non_negative_int, positive_int, positive_seconds
from client.errors import EXIT_CODES

DESCRIPTION = """\
Send a .npy array (or one array of a .npz) to the threshold model on a TF Serving-compatible
server over gRPC, in batches, and check every answer against mask = (x < low) | (x > high)
computed locally with the bounds the server reports. 1-D input is one row; 2-D is rows.
The signature, its input/output keys and the bounds are learned from the server."""

EXAMPLES = """\
examples:
  python -m client.predict data.npy                      # preview the mask, check it, summarize
  python -m client.predict data.npy -o mask.npy --compact # save a uint8 mask (input's shape)
  python -m client.predict batch.npz --key x --server host:8500 --json
  python -m client.predict data/ -o masks/ --workers 2   # every .npy/.npz in data/, one output each
  python -m client.predict 'data/*.npy' -o masks/ --shard 0/4 --server dns:///threshold-serving-headless:8500
  THRESHOLD_SERVER=10.0.0.5:8500 python -m client.predict data.npy --tls --ca-cert ca.pem
  python -m client.predict data.npy --server ingress.example:443 --authority threshold.models.example \
      --ca-cert ca.pem --client-cert me.pem --client-key me.key --header "x-tenant: a"
  THRESHOLD_TOKEN=$(cat token) python -m client.predict data.npy   # sends authorization: Bearer ...
"""


def _exit_code_epilog() -> str:
    lines = [f"  {code:>3}  {text}" for code, text in EXIT_CODES.items()]
    return EXAMPLES + "\nexit codes:\n" + "\n".join(lines)


def _message_size(text: str) -> int:
    """A --max-message-bytes value: a size (4M, 64M, ...) leaving room for the request's own bytes."""
    return cli_options.at_least(byte_size, 64 * 1024 + 1024, "the request overhead allowance")(text)


def _header(text: str) -> tuple[str, str]:
    from client.channel import parse_header  # grpc only once a header is given, never for --help

    try:
        return parse_header(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m client.predict",
        description=DESCRIPTION,
        epilog=_exit_code_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "inputs",
        nargs="+",
        metavar="input",
        help=".npy file, or .npz archive (with --key if it holds several arrays); several "
        "files, a directory (its .npy/.npz) or a quoted glob make a bulk run",
    )
    parser.add_argument("--key", help="which array of a .npz to filter")
    parser.add_argument(
        "-o",
        "--output",
        help="write the mask here as .npy, input's shape (atomically: "
        "nothing is left on failure). Default: print a preview. "
        "In a bulk run: the directory for <name>.npy outputs",
    )
    server = parser.add_argument_group("server")
    server.add_argument(
        "--server",
        default=cli_options.env_default(defaults.SERVER_ENV),
        help=f"gRPC host:port, or a gRPC target naming several replicas: "
        f"dns:///name:8500 (e.g. a headless Service), ipv4:HOST:PORT,HOST:PORT "
        f"(env {defaults.SERVER_ENV}; default: the server `make serve` recorded in "
        f".serve/ when run from the checkout, else {defaults.DEFAULT_SERVER})",
    )
    server.add_argument(
        "--lb-policy",
        choices=("pick_first", "round_robin"),
        help="how calls spread over the addresses the target resolves to (default "
        "round_robin for dns:/// and ipv4:/ipv6: lists, else pick_first)",
    )
    model = server.add_argument(
        "--model-name",
        default=cli_options.env_default(defaults.MODEL_ENV, defaults.DEFAULT_MODEL),
        help=f"model name (env {defaults.MODEL_ENV}, default {defaults.DEFAULT_MODEL})",
    )
    cli_options.add_hidden_alias(server, "--model", model)
    which = server.add_mutually_exclusive_group()
    which.add_argument("--version", type=positive_int, help="model version (default: the server's choice)")
    which.add_argument("--label", help="model version label, e.g. stable")
    server.add_argument(
        "--signature", help="signature to call (default serving_default, or the uint8 one with --compact)"
    )
    server.add_argument(
        "--compact", action="store_true", help="ask for the uint8 mask: a quarter of the response bytes"
    )
    server.add_argument("--tls", action="store_true", help="connect with TLS (system root certificates)")
    server.add_argument(
        "--ca-cert", help="PEM file of the CA that signed the server's certificate (implies --tls)"
    )
    server.add_argument(
        "--tls-server-name",
        help="name to verify in the server's certificate, when it differs from the host in --server",
    )
    server.add_argument(
        "--client-cert",
        help="PEM certificate this client presents (mutual TLS; implies --tls, needs --client-key)",
    )
    server.add_argument("--client-key", help="PEM private key of --client-cert")
    server.add_argument(
        "--authority",
        help="host name to send as :authority, e.g. the name an ingress "
        "(Istio, KServe) routes on when --server is its address",
    )
    server.add_argument(
        "--header",
        action="append",
        type=_header,
        default=[],
        metavar="'NAME: VALUE'",
        help="gRPC metadata sent with every call, repeatable, e.g. 'x-tenant: a'. "
        f"For secrets use env {defaults.TOKEN_ENV}=<token> (sends 'authorization: "
        "Bearer <token>'), which stays out of the process list",
    )
    sending = parser.add_argument_group("sending")
    sending.add_argument(
        "--batch-size",
        type=positive_int,
        help="rows per request (default: sized to fit --max-message-bytes and keep "
        "--concurrency requests busy)",
    )
    sending.add_argument(
        "--max-message-bytes",
        type=_message_size,
        default=defaults.DEFAULT_MAX_MESSAGE_BYTES,
        help="largest request/response to send, e.g. 64M (default 4M, gRPC's default "
        "limit; TF Serving itself accepts up to 2G)",
    )
    sending.add_argument(
        "--concurrency",
        type=positive_int,
        default=defaults.DEFAULT_CONCURRENCY,
        help=f"requests in flight at once (default {defaults.DEFAULT_CONCURRENCY})",
    )
    sending.add_argument(
        "--timeout",
        type=positive_seconds,
        default=defaults.DEFAULT_TIMEOUT,
        help=f"seconds per request before giving up: a positive, finite number, as grpc "
        f"deadlines are (default {defaults.DEFAULT_TIMEOUT:g})",
    )
    sending.add_argument(
        "--retries",
        type=non_negative_int,
        default=defaults.DEFAULT_RETRIES,
        help=f"retries with backoff while the server is UNAVAILABLE or cancels calls "
        f"(default {defaults.DEFAULT_RETRIES})",
    )
    bulk = parser.add_argument_group("bulk runs (several inputs)")
    bulk.add_argument(
        "--shard",
        metavar="K/N",
        help="take worker K's share (K from 0) of N workers that split the inputs, e.g. 0/4 "
        "(env THRESHOLD_SHARD, or an indexed Job's JOB_COMPLETION_INDEX with "
        "THRESHOLD_SHARD_COUNT=N); inputs whose output exists are skipped",
    )
    bulk.add_argument(
        "--workers",
        type=positive_int,
        default=1,
        help="processes on this machine, each with its own connection (default 1)",
    )
    report = parser.add_argument_group("checking and reporting")
    report.add_argument(
        "--no-check",
        action="store_true",
        help="skip checking the answers against the rule (and fetching the bounds)",
    )
    report.add_argument("--json", action="store_true", help="print the summary as JSON on stdout")
    return parser


PRINTED_COLS = 10  # a terminal's width of mask values; numpy then prints every one it is given


def _print_preview(summary) -> None:
    import numpy as np

    preview = summary.result[..., :PRINTED_COLS]
    text = np.array2string(
        preview,
        separator=" ",
        threshold=preview.size + 1,
        formatter={"float_kind": lambda value: f"{value:g}"},
    )
    print(text)
    shown_rows = 1 if preview.ndim == 1 else preview.shape[0]
    shown_cols = preview.shape[-1]
    if shown_rows < summary.rows or shown_cols < summary.cols:
        print(
            f"(the first {shown_rows} of {summary.rows} rows and the first {shown_cols} of {summary.cols} "
            "columns; --output FILE saves it all)"
        )


def _print_summary(summary) -> None:
    from client.checker import float32_text
    from client.stats import counted

    data = summary.as_dict()
    if summary.check is not None and summary.check.ok:
        verdict = (
            f"all {summary.check.checked} values match (x < {float32_text(summary.low)}) | "
            f"(x > {float32_text(summary.high)})"
        )
    elif summary.check is None:
        verdict = "not checked (--no-check)"
    else:
        verdict = summary.check.summary()
    version = f" v{summary.version}" if summary.version is not None else ""
    p50, p99 = data["latency_p50_ms"], data["latency_p99_ms"]
    latency = f"p50 {p50:.2f} ms, p99 {p99:.2f} ms" if p50 is not None else "n/a"
    rate = data["values_per_second"]
    print(
        f"{summary.model}{version} {summary.signature}: {counted(summary.rows, 'row')} x {summary.cols} "
        f"= {summary.values} values, {verdict}",
        file=sys.stderr,
    )
    print(
        f"  {counted(data['batches'], 'batch', 'batches')} of <= {counted(summary.batch_rows, 'row')} in "
        f"{data['seconds']:.3f} s ({rate or 0:,.0f} values/s), latency {latency}, "
        f"{counted(data['retries'], 'retry', 'retries')}"
        + (f", written to {summary.output}" if summary.output else ""),
        file=sys.stderr,
    )
    if len(summary.answered_by) > 1:
        print(f"  answered by {answered_by_text(summary.answered_by)}", file=sys.stderr)


def answered_by_text(answered_by: dict[str, int]) -> str:
    """'127.0.0.1:8500 40, 127.0.0.1:8501 38' (requests each address answered)."""
    return ", ".join(f"{address} {count}" for address, count in answered_by.items())


def _fail(args, code: int, message: str, details: list[str] = (), summary=None) -> int:
    print(f"error: {message}", file=sys.stderr)
    for line in details:
        print(line, file=sys.stderr)
    if args.json:
        payload = {"ok": False, "exit_code": code, "error": message}
        if summary is not None:
            payload.update({k: v for k, v in summary.as_dict().items() if k != "ok"})
        print(json.dumps(payload))
    return code


def _input_values(args) -> int | None:
    """How many values the input holds (its header only), for the bar's percentage and ETA."""
    from client.errors import ThresholdClientError
    from client.reader import open_input

    try:
        with open_input(args.input, args.key) as source:
            return source.size
    except ThresholdClientError:
        return None  # the run itself reports it, with its exit code


def _progress_bar(args):
    """A tqdm bar on stderr when it is a terminal (shown after 1 s); nothing, not even tqdm, in pipes."""
    if not sys.stderr.isatty():
        return contextlib.nullcontext()
    from tqdm import tqdm  # 30 ms of imports a one-row run in a pipe need not pay

    return tqdm(
        total=_input_values(args),
        unit="value",
        unit_scale=True,
        delay=1.0,
        leave=False,
        file=sys.stderr,
        dynamic_ncols=True,
    )


def _server(args) -> tuple[str, tuple[str, ...]]:
    """The address to call, and the model names `make serve` configured there (for a not-found hint)."""
    from client import serve_state
    from client.channel import normalize_address

    recorded = serve_state.recorded_server()
    if args.server:
        local = recorded is not None and normalize_address(args.server) == recorded
        return args.server, serve_state.recorded_models() if local else ()
    if recorded is None:
        return defaults.DEFAULT_SERVER, ()
    if recorded != defaults.DEFAULT_SERVER:
        print(
            f"note: using {recorded}, the server `make serve` started here "
            f"({serve_state.state_dir() / serve_state.STATE_FILE}); --server or "
            f"{defaults.SERVER_ENV} picks another",
            file=sys.stderr,
        )
    return recorded, serve_state.recorded_models()


def _metadata(args) -> tuple[tuple[str, str], ...]:
    from client.channel import bearer_header

    token = cli_options.env_text(defaults.TOKEN_ENV, "")
    return (*args.header, *([bearer_header(token)] if token else []))


def run(args: argparse.Namespace) -> int:
    """Do what the parsed arguments ask; return the exit code."""
    from client import bulk
    from client.cli_hints import with_hint
    from client.errors import ThresholdClientError

    if (args.client_cert is None) != (args.client_key is None):
        return _fail(args, 2, "--client-cert and --client-key go together")
    args.server, configured_models = _server(args)
    args.metadata = _metadata(args)  # headers and THRESHOLD_TOKEN, for bulk runs as for one file
    try:
        if bulk.requested(args):
            return bulk.run_bulk(args)
    except bulk.InputListError as error:
        return _fail(args, 2, str(error))
    except ThresholdClientError as error:
        return _fail(args, error.exit_code, with_hint(error))
    args.input = args.inputs[0]

    from client.api import ThresholdClient
    from client.errors import ResponseMismatch

    try:
        with (
            ThresholdClient(
                args.server,
                model=args.model_name,
                version=args.version,
                label=args.label,
                tls=args.tls,
                ca_cert=args.ca_cert,
                server_name=args.tls_server_name,
                client_cert=args.client_cert,
                client_key=args.client_key,
                authority=args.authority,
                metadata=args.metadata,
                known_models=(*configured_models, defaults.DEFAULT_MODEL),
                timeout=args.timeout,
                retries=args.retries,
                max_message_bytes=args.max_message_bytes,
                lb_policy=args.lb_policy,
            ) as client,
            _progress_bar(args) as bar,
        ):
            summary = client.predict_file(
                args.input,
                key=args.key,
                output=args.output,
                signature=args.signature,
                compact=args.compact,
                check=not args.no_check,
                batch_size=args.batch_size,
                concurrency=args.concurrency,
                progress=None if bar is None else bar.update,
            )
    except ResponseMismatch as error:
        details = error.report.details() if error.report is not None else []
        details.append(
            "no output written: the answers failed the check (--no-check keeps them)"
            if args.output
            else "the answers failed the check"
        )
        return _fail(args, error.exit_code, with_hint(error), details, getattr(error, "summary", None))
    except ThresholdClientError as error:
        return _fail(args, error.exit_code, with_hint(error))
    for note in (summary.plan_note, summary.cast_note, summary.version_note):
        if note:
            print(f"note: {note}", file=sys.stderr)
    if args.json:
        print(json.dumps(summary.as_dict()))
    else:
        if summary.output is None:
            _print_preview(summary)
        _print_summary(summary)
    return 0


class Terminated(BaseException):
    """SIGTERM arrived: unwinds like Ctrl-C, so the partial output is removed on the way out."""


def _raise_terminated(signum, frame) -> None:
    raise Terminated


def main(argv: list[str] | None = None) -> int:
    args = cli_options.parse_args(build_parser(), argv)
    blas.one_blas_thread()  # before numpy loads: its spinning BLAS threads only take CPU (client/blas.py)
    memory.reuse_freed_buffers()  # every request is a few MiB: reuse freed pages (client/memory.py)
    # gRPC core logs connection events ("Got goaway", ...) at INFO on stderr; every failure the user
    # must see is reported as one line of ours. Set before grpc loads; an explicit setting wins.
    os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
    try:
        previous = signal.signal(signal.SIGTERM, _raise_terminated)
    except ValueError:  # not the main thread: the calling program owns its signals
        previous = None
    try:
        return run(args)
    except KeyboardInterrupt:
        print("error: interrupted (SIGINT): no output written", file=sys.stderr)
        return 130
    except Terminated:
        print("error: terminated (SIGTERM): no output written", file=sys.stderr)
        return 143
    except BrokenPipeError:  # stdout closed early (e.g. piped into head): not our failure
        sys.stderr.close()
        return 0
    except Exception as error:  # a bug, not a user error: still one line, never a traceback
        return _fail(args, 1, f"unexpected {type(error).__name__}: {error} (please report this)")
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
