"""The bulk side of ``python -m client.predict``: many inputs, one output each, shards and workers.

``python -m client.predict data/ -o masks/`` filters every .npy/.npz in data/ into masks/;
``--shard K/N`` (or an indexed Job's ``JOB_COMPLETION_INDEX`` with ``THRESHOLD_SHARD_COUNT``)
takes this worker's share, ``--workers N`` runs N processes. The work is
``client.inputs`` (which jobs) and ``client.workers`` (running them); this module turns parsed
arguments into those calls and prints what happened.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from pathlib import Path

from client.errors import InputFileError, OutputFileError
from client.inputs import (
    SHARD_COUNT_ENV,
    SHARD_ENV,
    InputListError,
    expand_inputs,
    is_bulk,
    parse_shard,
    shard_from_env,
)


def requested(args: argparse.Namespace, environ=os.environ) -> bool:
    """Whether the arguments ask for a bulk run (several inputs, a directory or glob, shards, workers)."""
    return (
        is_bulk(args.inputs)
        or args.shard is not None
        or args.workers > 1
        or bool(environ.get(SHARD_ENV) or environ.get(SHARD_COUNT_ENV))
    )


def client_options(args: argparse.Namespace) -> dict:
    """``ThresholdClient`` keywords from the parsed arguments."""
    return {
        "address": args.server,
        "model": args.model_name,
        "version": args.version,
        "label": args.label,
        "tls": args.tls,
        "ca_cert": args.ca_cert,
        "server_name": args.tls_server_name,
        "timeout": args.timeout,
        "retries": args.retries,
        "max_message_bytes": args.max_message_bytes,
        "lb_policy": args.lb_policy,
        "client_cert": args.client_cert,
        "client_key": args.client_key,
        "authority": args.authority,
        "metadata": getattr(args, "metadata", ()),
    }


def predict_options(args: argparse.Namespace) -> dict:
    """``predict_file`` keywords (other than the output) from the parsed arguments."""
    return {
        "key": args.key,
        "signature": args.signature,
        "compact": args.compact,
        "check": not args.no_check,
        "batch_size": args.batch_size,
        "concurrency": args.concurrency,
    }


def output_directory(args: argparse.Namespace) -> Path:
    """-o as the directory for a bulk run's outputs, created if missing."""
    if args.output is None:
        directories = [spec for spec in args.inputs if Path(spec).is_dir()]
        if len(args.inputs) == 1 and directories:
            raise InputFileError(
                f"input is a directory, not a .npy/.npz file: {directories[0]}; "
                "give -o DIR to filter every .npy/.npz in it, one output each"
            )
        raise InputListError("several inputs need -o DIR: each input's mask is written there as <name>.npy")
    directory = Path(args.output)
    if directory.exists() and not directory.is_dir():
        raise InputListError(f"-o {directory} is a file; with several inputs -o names a directory")
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputFileError(f"cannot create output directory {directory}: {exc.strerror or exc}") from None
    return directory


def run_bulk(args: argparse.Namespace) -> int:
    """Expand, shard, run and report; the exit code. Raises InputListError / ThresholdClientError for
    arguments that cannot make a run (nothing is run then)."""
    from client.workers import run_jobs

    shard = parse_shard(args.shard) if args.shard is not None else shard_from_env()
    directory = output_directory(args)
    jobs = expand_inputs(args.inputs, directory)
    mine = shard.select(jobs) if shard is not None else jobs

    def report_failure(result) -> None:
        if result.status == "failed":
            print(f"error: {result.error}", file=sys.stderr, flush=True)

    # SIGTERM (a Job pod deleted, a node drained) stops the run like Ctrl-C: no partial files.
    terminated = []

    def on_sigterm(signum, frame) -> None:
        terminated.append(signum)
        raise KeyboardInterrupt  # unwinds client.workers.run_jobs the way Ctrl-C does

    previous = signal.signal(signal.SIGTERM, on_sigterm)
    try:
        bulk = run_jobs(
            mine, client_options(args), predict_options(args), workers=args.workers, on_result=report_failure
        )
    finally:
        signal.signal(signal.SIGTERM, previous)
    if terminated:
        bulk.interrupt_exit_code = 143  # as for a single input (client.errors.EXIT_CODES)
    if args.json:
        print(
            json.dumps(
                {**bulk.as_dict(), "shard": None if shard is None else str(shard), "all_inputs": len(jobs)}
            )
        )
    print_summary(bulk, shard, len(jobs))
    if bulk.interrupted:
        how = "terminated (SIGTERM)" if terminated else "interrupted (SIGINT)"
        print(
            f"error: {how}: {bulk.count('written')} outputs written in this run, no partial files; "
            "run it again to do the rest",
            file=sys.stderr,
        )
    return bulk.exit_code


def print_summary(bulk, shard, all_inputs: int) -> None:
    """Totals, one line per input, and the requests each address answered (stderr)."""
    from client.stats import counted

    share = f" (shard {shard} of {all_inputs})" if shard is not None else ""
    counts = ", ".join(
        f"{bulk.count(status)} {status}" for status in ("written", "skipped", "failed", "not run")
    )
    rate = bulk.values / bulk.seconds if bulk.seconds > 0 else 0
    print(
        f"{len(bulk.results)} inputs{share}: {counts} in {bulk.seconds:.2f} s ({rate:,.0f} values/s)",
        file=sys.stderr,
    )
    width = max((len(result.source) for result in bulk.results), default=0)
    for result in bulk.results:
        line = f"  {result.status:<8} {result.source:<{width}}"
        if result.status == "written":
            line += (
                f" -> {result.output}: {result.values} values, "
                f"{counted(result.batches, 'batch', 'batches')}, {result.seconds:.2f} s"
            )
        elif result.status == "skipped":
            line += f" -> {result.output}: output already complete"
        elif result.status == "failed":
            line += f"  exit {result.exit_code}"
        print(line, file=sys.stderr)
    if bulk.answered_by:
        answered = ", ".join(f"{address} {count}" for address, count in bulk.answered_by.items())
        print(f"  answered by {answered}", file=sys.stderr)
