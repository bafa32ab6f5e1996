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


@contextlib.contextmanager
def server(args: list[str], ready: str, timeout: float = 120.0, log: Path | None = None,
           address: str | None = None) -> Iterator[str]:
    """Run ``python args`` until it prints ``ready``; yield its address; stop it.

    The address is ``address`` when given, else the HOST:PORT printed after ``ready``.
    """
    log_file = open(log, "w") if log else subprocess.DEVNULL  # noqa: SIM115 - closed below
    process = subprocess.Popen([PYTHON, *args], cwd=REPO, env=env(), stdout=subprocess.PIPE,
                               stderr=log_file, text=True)
    lines: queue.Queue[str | None] = queue.Queue()

    def drain() -> None:  # keeps reading after the ready line, so a chatty server never blocks on a pipe
        for line in process.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=drain, daemon=True).start()
    try:
        deadline = time.monotonic() + timeout
        pattern = re.compile(re.escape(ready) + r"(?:.*?(\d+\.\d+\.\d+\.\d+:\d+))?")
        found = None
        while found is None:
            try:
                line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise ServerFailed(f"{' '.join(args)} did not print {ready!r} within {timeout:g} s") from None
            if line is None:
                process.wait()
                raise ServerFailed(f"{' '.join(args)} exited with {process.returncode} before listening"
                                   + (f" (log: {log})" if log else ""))
            match = pattern.search(line)
            if match:
                found = address or match.group(1)
                if not found:
                    raise ServerFailed(f"no HOST:PORT after {ready!r} in {line.strip()!r}")
        yield found
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if log:
            log_file.close()


def python_json(args: list[str], timeout: float) -> object:
    """Run ``python args`` and parse its stdout as JSON; RuntimeError with its stderr on failure."""
    result = subprocess.run([PYTHON, *args], cwd=REPO, env=env(), capture_output=True, text=True,
                            timeout=timeout)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({result.returncode}):\n{result.stderr[-2000:]}")
    return json.loads(result.stdout)


def timed(args: list[str], timeout: float = 60.0) -> float:
    """Wall seconds of ``python args`` run to completion (start-up included); it must succeed."""
    start = time.perf_counter()
    result = subprocess.run([PYTHON, *args], cwd=REPO, env=env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, timeout=timeout)
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
    result = subprocess.run([PYTHON, "-S", "-c", _LAUNCHER, PYTHON, *args], cwd=REPO, env=env(),
                            capture_output=True, text=True, timeout=timeout)
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({result.returncode}):\n{result.stderr[-2000:]}")
    return seconds, int(result.stdout.strip().splitlines()[-1])
