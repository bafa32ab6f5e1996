"""The benchmark's measurements, one function per question; each returns plain JSON-ready data.

Every comparison runs its reference in the same run, interleaved round by round, and compares
medians, so a machine that gets busier halfway through slows both sides alike.
"""

from __future__ import annotations

import statistics
import subprocess
import tempfile
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench import processes

LARGE, SMALL = (1024, 256), (1, 8)
WORKLOADS = ("echo", "client", "library", "naive")


@dataclass(frozen=True)
class Settings:
    """How long and how often; ``quick`` shrinks everything to a smoke run."""

    rounds: int = 5
    duration: float = 1.2
    warmup: int = 20
    coldstart_reps: int = 7
    rss_mib: int = 1024
    batching_concurrency: int = 16


QUICK = Settings(rounds=1, duration=0.3, warmup=5, coldstart_reps=2, rss_mib=16, batching_concurrency=8)


def loadgen(workload: str, address: str, shapes, concurrency, settings: Settings,
            signature: str = "serving_default") -> list[dict]:
    """One ``bench.loadgen`` process: every (shape, concurrency) point of one workload."""
    args = ["-m", "bench.loadgen", "--workload", workload, "--server", address,
            "--concurrency", ",".join(map(str, concurrency)), "--signature", signature,
            "--duration", str(settings.duration), "--warmup", str(settings.warmup)]
    for rows, cols in shapes:
        args += ["--shape", f"{rows}x{cols}"]
    budget = 120 + len(shapes) * len(concurrency) * (settings.duration + 30)
    return processes.python_json(args, timeout=budget)


def throughput(address: str, settings: Settings, workloads=WORKLOADS, log=print) -> dict:
    """Median requests/s (and p50/p99) per workload, shape and concurrency, rounds interleaved."""
    samples: dict[tuple, list[dict]] = defaultdict(list)
    for round_index in range(settings.rounds):
        shift = round_index % len(workloads)  # rotate the order so no workload always goes first
        for workload in workloads[shift:] + workloads[:shift]:
            log(f"  round {round_index + 1}/{settings.rounds}: {workload}")
            for record in loadgen(workload, address, (LARGE, SMALL), (1, 4), settings):
                samples[(workload, record["rows"], record["cols"], record["concurrency"])].append(record)
    points = []
    for (workload, rows, cols, concurrency), records in sorted(samples.items()):
        points.append({
            "workload": workload, "rows": rows, "cols": cols, "concurrency": concurrency,
            "requests_per_s": statistics.median(r["requests_per_s"] for r in records),
            "requests_per_s_each_round": [r["requests_per_s"] for r in records],
            "p50_ms": statistics.median(r["p50_ms"] for r in records),
            "p99_ms": statistics.median(r["p99_ms"] for r in records),
            "errors": sum(r["errors"] for r in records),
            "request_bytes": records[0]["request_bytes"], "response_bytes": records[0]["response_bytes"],
        })
    return {"points": points}


def rate(section: dict, workload: str, shape: tuple[int, int], concurrency: int) -> float:
    """The median requests/s a throughput section measured for one point."""
    for point in section["points"]:
        if (point["workload"], (point["rows"], point["cols"]), point["concurrency"]) == (
                workload, shape, concurrency):
            return point["requests_per_s"]
    raise KeyError((workload, shape, concurrency))


def cold_start(address: str, settings: Settings, workdir: Path) -> dict:
    """Median wall seconds of the client CLI's start-up against ``import grpc, numpy``, both from bytecode."""
    one_row = workdir / "one_row.npy"
    np.save(one_row, np.array([[0.04, -0.8, -1.2, 1.3, 0.85, 0.09, -0.08, 0.2]], dtype=np.float32))
    commands = {
        "import grpc, numpy": ["-c", "import grpc, numpy"],
        "client.predict --help": ["-m", "client.predict", "--help"],
        "client.predict one row": ["-m", "client.predict", str(one_row), "--server", address],
    }
    # grpc and numpy start from the bytecode pip compiled at install; give the client the same
    # (an editable checkout run under PYTHONDONTWRITEBYTECODE=1 would recompile it every start).
    compiled = subprocess.run([processes.PYTHON, "-m", "compileall", "-q", "client"], cwd=processes.REPO,
                              env=processes.env(), capture_output=True, text=True, timeout=120)
    if compiled.returncode != 0:
        raise RuntimeError(f"compileall client failed:\n{compiled.stdout}{compiled.stderr}")
    times: dict[str, list[float]] = defaultdict(list)
    for _ in range(settings.coldstart_reps):  # interleaved, so a busy moment hits all three
        for name, args in commands.items():
            times[name].append(processes.timed(args))
    return {name: {"median_s": statistics.median(values), "each_s": values} for name, values in times.items()}


def write_large_npy(path: Path, mib: int, cols: int = 256) -> int:
    """A float32 [rows, cols] .npy of about ``mib`` MiB, written in chunks; returns its size in bytes."""
    rows = max(1, mib * 1024 * 1024 // (4 * cols))
    array = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(rows, cols))
    rng = np.random.default_rng(0)
    step = 65536
    for start in range(0, rows, step):
        stop = min(rows, start + step)
        array[start:stop] = rng.normal(0.0, 0.2, size=(stop - start, cols)).astype(np.float32)
    array.flush()
    del array
    return path.stat().st_size


def peak_memory(address: str, settings: Settings, workdir: Path) -> dict:
    """Peak RSS of ``client.predict`` on a large .npy, and of a bare ``import grpc, numpy``."""
    path = workdir / "large.npy"
    size = write_large_npy(path, settings.rss_mib)
    seconds, rss = processes.peak_rss(["-m", "client.predict", str(path), "--server", address])
    _, baseline = processes.peak_rss(["-c", "import grpc, numpy"])
    path.unlink()
    return {"file_bytes": size, "client_peak_rss_bytes": rss, "client_seconds": seconds,
            "import_grpc_numpy_peak_rss_bytes": baseline}


def compact(address: str, settings: Settings) -> dict:
    """float32 vs uint8 (``compact``) responses on the large batch: bytes and requests/s."""
    samples: dict[tuple, list[dict]] = defaultdict(list)
    for _ in range(settings.rounds):
        for signature in ("serving_default", "compact"):
            for record in loadgen("client", address, (LARGE,), (1, 4), settings, signature=signature):
                samples[(signature, record["concurrency"])].append(record)
    return {"points": [{"signature": signature, "concurrency": concurrency,
                        "requests_per_s": statistics.median(r["requests_per_s"] for r in records),
                        "response_bytes": records[0]["response_bytes"],
                        "request_bytes": records[0]["request_bytes"]}
                       for (signature, concurrency), records in sorted(samples.items())]}


def embedded_server_available() -> bool:
    """Whether this tree has the embedded server (``serving.local``)."""
    return (processes.REPO / "serving" / "local.py").exists() or (
        processes.REPO / "serving" / "local" / "__main__.py").exists()


def export_model(workdir: Path) -> Path:
    """The real model, exported once into ``workdir/models`` by the export CLI; the models dir."""
    models = workdir / "models"
    if not (models / "threshold").is_dir():
        command = [processes.PYTHON, "-m", "export", "--model-dir", str(models), "--no-tflite"]
        exported = subprocess.run(command, cwd=processes.REPO, env=processes.env(), capture_output=True,
                                  text=True, timeout=300)
        if exported.returncode != 0:
            raise RuntimeError(f"export failed:\n{exported.stderr[-2000:]}")
    return models


def embedded_server(workdir: Path, name: str, *extra: str):
    """``python -m serving.local`` on a free port serving the exported model; yields its address."""
    port = processes.free_port()
    args = ["-m", "serving.local", "--host", "127.0.0.1", "--port", str(port), "--rest-port", "0",
            "--models-dir", str(export_model(workdir)), *extra]
    return processes.server(args, "serving.local: listening on", address=f"127.0.0.1:{port}",
                            log=workdir / f"serving-{name}.log")


def batching(settings: Settings, workdir: Path, log=print) -> dict:
    """The embedded server with server-side batching off and on, many small concurrent requests."""
    rates: dict[str, list[float]] = defaultdict(list)
    for _ in range(settings.rounds):
        for mode, extra in (("off", []), ("on", ["--enable-batching"])):
            log(f"  embedded server, batching {mode}")
            with embedded_server(workdir, f"batching-{mode}", *extra) as address:
                records = loadgen("client", address, (SMALL,), (settings.batching_concurrency,), settings)
            rates[mode].append(records[0]["requests_per_s"])
    return {"concurrency": settings.batching_concurrency, "rows": SMALL[0], "cols": SMALL[1],
            **{f"batching_{mode}_requests_per_s": statistics.median(v) for mode, v in rates.items()},
            "each_round": rates}


def reference_server(log_dir: Path, compute: bool = False):
    """The echo / Predict double (``bench.servers``) as a child process; yields its address."""
    args = ["-m", "bench.servers", "--port", "0"] + (["--compute"] if compute else [])
    name = "compute" if compute else "replay"
    return processes.server(args, "bench.servers: listening on", timeout=60,
                            log=Path(tempfile.mkdtemp(dir=log_dir)) / f"servers-{name}.log")
