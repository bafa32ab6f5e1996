"""Child processes of the benchmark: servers it starts and stops, and timed or measured commands."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PYTHON = sys.executable


def env() -> dict[str, str]:
    """The children's environment: the repo importable, TensorFlow's C++ logs quiet."""
    path = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    return dict(os.environ, PYTHONPATH=path, TF_CPP_MIN_LOG_LEVEL="2")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServerFailed(RuntimeError):
    """A server the benchmark started exited or never said it was listening."""


@dataclass(frozen=True)
class ServerSpec:
    """A server the benchmark runs: ``python args``, ready once it prints ``ready``.

    Its address is ``address`` when given, else the HOST:PORT printed after ``ready``.
    """

    args: list[str]
    ready: str
    timeout: float = 180.0
    log: Path | None = None
    address: str | None = None
    env: dict[str, str] | None = None  # set in the server's environment, over the children's


class _Running:
    """One started server: its process and the lines of its stdout, read by a thread."""

    def __init__(self, spec: ServerSpec) -> None:
        self.spec = spec
        self.log_file = open(spec.log, "w") if spec.log else subprocess.DEVNULL  # noqa: SIM115 - closed in stop
        self.process = subprocess.Popen(
            [PYTHON, *spec.args],
            cwd=REPO,
            env={**env(), **(spec.env or {})},
            stdout=subprocess.PIPE,
            stderr=self.log_file,
            text=True,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self) -> None:  # keeps reading after the ready line, so a chatty server never blocks on a pipe
        for line in self.process.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def wait_ready(self) -> str:
        spec = self.spec
        what = " ".join(spec.args)
        deadline = time.monotonic() + spec.timeout
        pattern = re.compile(re.escape(spec.ready) + r"(?:.*?(\d+\.\d+\.\d+\.\d+:\d+))?")
        while True:
            try:
                line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise ServerFailed(f"{what} did not print {spec.ready!r} within {spec.timeout:g} s") from None
            if line is None:
                self.process.wait()
                raise ServerFailed(
                    f"{what} exited with {self.process.returncode} before listening"
                    + (f" (log: {spec.log})" if spec.log else "")
                )
            match = pattern.search(line)
            if match:
                found = spec.address or match.group(1)
                if not found:
                    raise ServerFailed(f"no HOST:PORT after {spec.ready!r} in {line.strip()!r}")
                return found

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if self.spec.log:
            self.log_file.close()


@contextlib.contextmanager
def servers(specs: dict[str, ServerSpec]) -> Iterator[dict[str, str]]:
    """Start every server at once (their start-ups overlap), wait for all; yield name -> address; stop all."""
    running: dict[str, _Running] = {}
    try:
        for name, spec in specs.items():
            running[name] = _Running(spec)
        yield {name: server.wait_ready() for name, server in running.items()}
    finally:
        for server in running.values():
            server.stop()


def python_json(args: list[str], timeout: float) -> object:
    """Run ``python args`` and parse its stdout as JSON; RuntimeError with its stderr on failure."""
    result = subprocess.run(
        [PYTHON, *args], cwd=REPO, env=env(), capture_output=True, text=True, timeout=timeout
    )
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({result.returncode}):\n{result.stderr[-2000:]}")
    return json.loads(result.stdout)


def timed(args: list[str], timeout: float = 60.0) -> float:
    """Wall seconds of ``python args`` run to completion (start-up included); it must succeed."""
    start = time.perf_counter()
    result = subprocess.run(
        [PYTHON, *args],
        cwd=REPO,
        env=env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        timeout=timeout,
    )
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        tail = result.stderr.decode()[-2000:]
        raise RuntimeError(f"{' '.join(args)} failed ({result.returncode}):\n{tail}")
    return seconds


# Peak RSS comes from wait4's ru_maxrss, which Linux carries across exec: a child started by
# vfork (as subprocess does) inherits the *parent's* high-water mark, so the benchmark's own
# memory would be charged to the command. A tiny launcher (no imports) forks the command instead;
# what it can pass on is its own few MB, and the baseline command is measured the same way.
_LAUNCHER = """
import os, sys
pid = os.fork()
if pid == 0:
    os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
    os.execv(sys.argv[1], sys.argv[1:])
_, status, usage = os.wait4(pid, 0)
print(usage.ru_maxrss * (1 if sys.platform == "darwin" else 1024))
sys.exit(os.waitstatus_to_exitcode(status))
"""


def peak_rss(args: list[str], timeout: float = 600.0) -> tuple[float, int]:
    """Wall seconds and peak RSS in bytes of ``python args``, measured by a fork-and-wait4 launcher."""
    start = time.perf_counter()
    result = subprocess.run(
        [PYTHON, "-S", "-c", _LAUNCHER, PYTHON, *args],
        cwd=REPO,
        env=env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({result.returncode}):\n{result.stderr[-2000:]}")
    return seconds, int(result.stdout.strip().splitlines()[-1])
