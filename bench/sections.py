"""The benchmark's measurements, one function per question; each returns plain JSON-ready data.

Every comparison runs its reference in the same run, round by round, with the order of the
sides rotated each round, and keeps every round: a ratio is computed within each round (the
two sides ran seconds apart) and reported as min / median / max over rounds, so a machine that
gets busier halfway through slows both sides of a round alike and shows up as spread.
A record with failed calls is kept with its error count: the ratio table reports that
comparison as ERROR, never as a number. The client's own workloads are compared with the gRPC
echo measured in the same process, the two taking turns in short slices
(``bench.loadgen --paired-with echo``): on a shared machine whose speed drifts by tens of
percent within seconds, that is the difference between a ratio and a coin toss.
"""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench import processes

LARGE, SMALL = (1024, 256), (1, 8)
WORKLOADS = ("echo", "client", "library", "library-unchecked", "naive")
SIGNATURES = ("serving_default", "compact")
# Concurrency levels per batch shape: the 1 MiB batch is the data path the goals are about; the
# 8-value request (all call overhead) is shown for what it is, at one level to keep the run short.
THROUGHPUT_POINTS = {LARGE: (1, 4), SMALL: (1,)}
TENSOR_CONTENT_FLAG = "--enable-serialization-as-tensor-content"


@dataclass(frozen=True)
class Settings:
    """How long and how often; ``quick`` marks the smoke run, whose goals are not judged."""

    rounds: int = 5
    info_rounds: int = 3  # for comparisons shown without a goal (compact, batching)
    duration: float = 0.8
    warmup: int = 20
    coldstart_reps: int = 5
    rss_mib: tuple[int, int] = (256, 1024)
    rss_repeats: int = 5
    batching_concurrency: int = 16
    quick: bool = False


QUICK = Settings(
    rounds=2,
    info_rounds=2,
    duration=0.2,
    warmup=3,
    coldstart_reps=2,
    rss_mib=(16, 64),
    rss_repeats=1,
    batching_concurrency=8,
    quick=True,
)


def rotated(items: tuple | list, round_index: int) -> list:
    """``items`` started at a different place each round, so no side always runs first."""
    shift = round_index % len(items)
    return list(items[shift:]) + list(items[:shift])


def loadgen(
    workload: str,
    address: str,
    shapes,
    concurrency,
    settings: Settings,
    signatures: tuple[str, ...] = ("serving_default",),
    paired: str | None = None,
) -> list[dict]:
    """One ``bench.loadgen`` process: every (signature, shape, concurrency) point of one workload.

    ``concurrency`` is a tuple of levels for every shape, or a dict shape -> levels. With
    ``paired`` each point also measures that workload, in turns with this one, in the same process.
    """
    levels = concurrency if isinstance(concurrency, dict) else dict.fromkeys(shapes, concurrency)
    args = [
        "-m",
        "bench.loadgen",
        "--workload",
        workload,
        "--server",
        address,
        "--signature",
        ",".join(signatures),
        "--duration",
        str(settings.duration),
        "--warmup",
        str(settings.warmup),
    ]
    for (rows, cols), shape_levels in levels.items():
        args += ["--shape", f"{rows}x{cols}:{','.join(map(str, shape_levels))}"]
    if paired is not None:
        args += ["--paired-with", paired]
    points = len(signatures) * sum(map(len, levels.values())) * (1 if paired is None else 2)
    budget = 120 + points * (settings.duration + 30)
    return processes.python_json(args, timeout=budget)


def _point(record: dict) -> dict:
    point = {
        "requests_per_s": record["requests_per_s"],
        "errors": record["errors"],
        "p50_ms": record["p50_ms"],
        "p99_ms": record["p99_ms"],
    }
    if "paired" in record:
        point["paired"] = record["paired"]
    return point


#: workloads measured in turns with the echo in their own process: goal 1 is each client workload
#: over its echo, goal 2 that over the naive client's (each side normalised by its own echo)
PAIRED_WITH_ECHO = ("client", "library", "library-unchecked", "naive")


def throughput(address: str, settings: Settings, workloads=WORKLOADS, log=print) -> dict:
    """Requests/s per workload, shape and concurrency, every round kept (workload order rotated).

    The client's workloads and the naive client carry, per point, the echo measured in turns
    with them in the same process ("paired"); the echo's own run is kept too.
    """
    rounds = []
    for round_index in range(settings.rounds):
        measured: dict[str, dict] = {}
        for workload in rotated(workloads, round_index):
            log(f"  round {round_index + 1}/{settings.rounds}: {workload}")
            paired = "echo" if workload in PAIRED_WITH_ECHO else None
            for record in loadgen(workload, address, None, THROUGHPUT_POINTS, settings, paired=paired):
                measured[point_key(workload, (record["rows"], record["cols"]), record["concurrency"])] = (
                    _point(record)
                )
        rounds.append(measured)
    return {"rounds": rounds}


def point_key(workload: str, shape: tuple[int, int], concurrency: int, signature: str = "") -> str:
    """The key of one measured point in a round: 'client 1024x256 c=1' (plus the signature)."""
    return f"{workload} {shape[0]}x{shape[1]} c={concurrency}" + (f" {signature}" if signature else "")


def typed_fields(servers: dict[str, str], settings: Settings, log=print) -> dict:
    """client.wire requests/s with typed-field answers against tensor_content ones, both signatures.

    ``servers`` maps "typed" and "tensor_content" to reference servers that differ only in how
    they encode the (same, replayed) answer, so the ratio is the client's decoder and nothing else.
    """
    rounds = []
    for round_index in range(settings.rounds):
        measured = {}
        for encoding in rotated(("tensor_content", "typed"), round_index):
            log(f"  round {round_index + 1}/{settings.rounds}: {encoding} answers")
            for record in loadgen("client", servers[encoding], (LARGE,), (1,), settings, SIGNATURES):
                measured[f"{encoding} {record['signature']}"] = _point(record)
        rounds.append(measured)
    return {"rounds": rounds, "shape": list(LARGE), "concurrency": 1}


def cold_start(address: str, settings: Settings, workdir: Path) -> dict:
    """Wall seconds of the client CLI's start-up against ``import grpc, numpy``, both from bytecode."""
    one_row = workdir / "one_row.npy"
    np.save(one_row, np.array([[0.04, -0.8, -1.2, 1.3, 0.85, 0.09, -0.08, 0.2]], dtype=np.float32))
    commands = {
        "import grpc, numpy": ["-c", "import grpc, numpy"],
        "client.predict --help": ["-m", "client.predict", "--help"],
        "client.predict one row": ["-m", "client.predict", str(one_row), "--server", address],
    }
    # grpc and numpy start from the bytecode pip compiled at install; give the client the same
    # (an editable checkout run under PYTHONDONTWRITEBYTECODE=1 would recompile it every start).
    compiled = subprocess.run(
        [processes.PYTHON, "-m", "compileall", "-q", "client"],
        cwd=processes.REPO,
        env=processes.env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    if compiled.returncode != 0:
        raise RuntimeError(f"compileall client failed:\n{compiled.stdout}{compiled.stderr}")
    rounds = []
    for round_index in range(settings.coldstart_reps):  # a busy moment hits all three alike
        rounds.append(
            {
                name: {"seconds": processes.timed(commands[name]), "errors": 0}
                for name in rotated(list(commands), round_index)
            }
        )
    return {"rounds": rounds}


def write_large_npy(path: Path, mib: int, cols: int = 256) -> int:
    """A float32 [rows, cols] .npy of about ``mib`` MiB, written in chunks; returns its size in bytes.

    One random block is repeated: what peak RSS measures is how the client streams, not the values.
    """
    rows = max(1, mib * 1024 * 1024 // (4 * cols))
    block = np.random.default_rng(0).normal(0.0, 0.2, size=(min(rows, 16384), cols)).astype(np.float32)
    array = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(rows, cols))
    for start in range(0, rows, len(block)):
        stop = min(rows, start + len(block))
        array[start:stop] = block[: stop - start]
    array.flush()
    del array
    return path.stat().st_size


def peak_memory(address: str, settings: Settings, workdir: Path, log=print) -> dict:
    """Peak RSS of ``client.predict`` on two file sizes, repeated, sizes interleaved and rotated.

    Streaming in O(batch) means the larger file's peak is the smaller one's: the ratio of peaks
    is flat however much larger the file is.
    """
    files = {}
    for mib in settings.rss_mib:
        path = workdir / f"rss-{mib}.npy"
        files[f"{mib} MiB"] = (path, write_large_npy(path, mib))
    _, baseline = processes.peak_rss(["-c", "import grpc, numpy"])
    rounds = []
    for repeat in range(settings.rss_repeats):
        measured = {}
        for name in rotated(list(files), repeat):
            log(f"  repeat {repeat + 1}/{settings.rss_repeats}: client.predict on {name}")
            path, size = files[name]
            seconds, rss = processes.peak_rss(["-m", "client.predict", str(path), "--server", address])
            measured[name] = {"peak_rss_bytes": rss, "file_bytes": size, "seconds": seconds, "errors": 0}
        rounds.append(measured)
    return {"rounds": rounds, "sizes": list(files), "import_grpc_numpy_peak_rss_bytes": baseline}


def compact(address: str, settings: Settings, log=print) -> dict:
    """float32 vs uint8 (``compact``) answers on the large batch: bytes and requests/s, order rotated."""
    rounds = []
    response_bytes = {}
    for round_index in range(settings.info_rounds):
        measured = {}
        for signature in rotated(SIGNATURES, round_index):
            for record in loadgen("client", address, (LARGE,), (1, 4), settings, (signature,)):
                measured[f"{signature} c={record['concurrency']}"] = _point(record)
                response_bytes[signature] = record["response_bytes"]
        rounds.append(measured)
    return {"rounds": rounds, "response_bytes": response_bytes}


WRITTEN = "written with -o"  # the cli_end_to_end run that writes the mask to a file


def written_run(encoding: str) -> str:
    """The cli_end_to_end record of the float32 run against ``encoding``'s server that writes its mask."""
    return f"{encoding} {SIGNATURES[0]} {WRITTEN}"


def cli_end_to_end(
    servers: dict[str, str], echo_address: str, path: Path, settings: Settings, log=print
) -> dict:
    """``python -m client.predict`` values/s on a file against a gRPC echo of the same requests.

    The CLI's own ``values_per_second`` (--json): reading the file, every request, the decode,
    the check, from its first request to its last answer; start-up is the cold-start section's.
    One more run against the first server writes the mask with ``-o`` as users do (every block
    written to the file as it is checked; the final fsync and rename come after the last answer).
    The echo sends the CLI's request size at the CLI's concurrency through the same channel
    options to a handler that replays its answer: the most any Python gRPC client could move.
    """
    written = path.with_name(f"{path.stem}-mask.npy")

    def cli(address: str, compact_: bool, output: Path | None = None) -> dict:
        args = ["-m", "client.predict", str(path), "--server", address, "--json"]
        args += ["-o", str(output)] if output is not None else []
        try:  # a failed run (exit code, failed check) counts as an error, not a number
            summary = processes.python_json(args + (["--compact"] if compact_ else []), timeout=600)
        except RuntimeError as exc:
            log(f"  client.predict failed: {str(exc).strip().splitlines()[-1]}")
            return {"values_per_s": 0.0, "batch_rows": 0, "cols": 0, "errors": 1}
        return {
            "values_per_s": summary["values_per_second"],
            "batch_rows": summary["batch_rows"],
            "cols": summary["cols"],
            "errors": 0 if summary["ok"] else 1,
        }

    first = cli(next(iter(servers.values())), False)  # warms the server up; gives the request shape
    if first["errors"]:
        raise RuntimeError(f"python -m client.predict {path} failed against the embedded server")
    shape = (first["batch_rows"], first["cols"])
    runs = {
        f"{name} {signature}": (address, signature == "compact")
        for name, address in servers.items()
        for signature in SIGNATURES
    }
    first_name, first_address = next(iter(servers.items()))
    runs[written_run(first_name)] = (first_address, False, written)
    rounds = []
    for round_index in range(settings.rounds):
        measured = {}
        for name in rotated([*runs, "echo"], round_index):
            log(f"  round {round_index + 1}/{settings.rounds}: {name}")
            if name == "echo":
                record = loadgen("echo", echo_address, (shape,), (4,), settings)[0]
                measured[name] = {
                    "values_per_s": record["requests_per_s"] * shape[0] * shape[1],
                    "errors": record["errors"],
                }
            else:
                measured[name] = cli(*runs[name])
        rounds.append(measured)
    written.unlink(missing_ok=True)
    return {
        "rounds": rounds,
        "request_shape": list(shape),
        "concurrency": 4,
        "file_bytes": path.stat().st_size,
    }


def batching(servers: dict[str, str], settings: Settings, log=print) -> dict:
    """The embedded server with server-side batching off and on, many small concurrent requests."""
    rounds = []
    for round_index in range(settings.info_rounds):
        measured = {}
        for mode in rotated(("off", "on"), round_index):
            log(f"  round {round_index + 1}/{settings.rounds}: batching {mode}")
            record = loadgen("client", servers[mode], (SMALL,), (settings.batching_concurrency,), settings)[0]
            measured[mode] = _point(record)
        rounds.append(measured)
    return {
        "rounds": rounds,
        "concurrency": settings.batching_concurrency,
        "rows": SMALL[0],
        "cols": SMALL[1],
    }


def embedded_server_available() -> bool:
    """Whether this tree has the embedded server (``serving.local``)."""
    return (processes.REPO / "serving" / "local" / "__main__.py").exists()


def embedded_server_has_tensor_content_flag() -> bool:
    """Whether ``serving.local`` can be told to answer in tensor_content (else it always does)."""
    result = subprocess.run(
        [processes.PYTHON, "-m", "serving.local", "--help"],
        cwd=processes.REPO,
        env=processes.env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    return TENSOR_CONTENT_FLAG in result.stdout


def export_model(workdir: Path) -> Path:
    """The real model, exported once into ``workdir/models`` by the export CLI; the models dir."""
    models = workdir / "models"
    if not (models / "threshold").is_dir():
        command = [processes.PYTHON, "-m", "export", "--models-dir", str(models), "--no-tflite"]
        exported = subprocess.run(
            command, cwd=processes.REPO, env=processes.env(), capture_output=True, text=True, timeout=300
        )
        if exported.returncode != 0:
            raise RuntimeError(f"export failed:\n{exported.stderr[-2000:]}")
    return models


def embedded_server_spec(workdir: Path, name: str, *extra: str) -> processes.ServerSpec:
    """``python -m serving.local`` on a free port serving the exported model."""
    port = processes.free_port()
    args = [
        "-m",
        "serving.local",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--rest-port",
        "0",
        "--models-dir",
        str(export_model(workdir)),
        *extra,
    ]
    return processes.ServerSpec(
        args, "serving.local: listening on", address=f"127.0.0.1:{port}", log=workdir / f"serving-{name}.log"
    )


def reference_server_spec(workdir: Path, compute: bool = False, typed: bool = False) -> processes.ServerSpec:
    """The echo / Predict double (``bench.fake_tf_serving``) as a child process; it replays the
    first answer of each request size unless ``compute``."""
    args = (
        ["-m", "bench.fake_tf_serving", "--port", "0"]
        + ([] if compute else ["--replay"])
        + (["--typed-fields"] if typed else [])
    )
    name = ("compute" if compute else "replay") + ("-typed" if typed else "")
    # numpy loads with the module, before its main runs: the one-BLAS-thread setting the client
    # CLIs make for themselves (client/blas.py) comes from the environment here
    return processes.ServerSpec(
        args,
        "bench.fake_tf_serving: listening on",
        timeout=60,
        log=workdir / f"servers-{name}.log",
        env={"OPENBLAS_NUM_THREADS": "1"},
    )


@contextlib.contextmanager
def reference_server(workdir: Path, compute: bool = False, typed: bool = False) -> Iterator[str]:
    """One reference server; yields its address."""
    with processes.servers({"ref": reference_server_spec(workdir, compute, typed)}) as addresses:
        yield addresses["ref"]
