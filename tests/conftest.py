"""Shared fixtures: the real export CLI, free loopback ports, subprocess helpers."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
REFERENCE_INPUT = [0.04, -0.8, -1.2, 1.3, 0.85, 0.09, -0.08, 0.2]
REFERENCE_MASK = [0, 1, 1, 1, 1, 0, 0, 1]


def cli_env(**extra: str) -> dict[str, str]:
    """Environment for a CLI subprocess: the repo importable, TF's C++ logs quiet."""
    env = dict(os.environ, PYTHONPATH=str(REPO), TF_CPP_MIN_LOG_LEVEL="2")
    env.update(extra)
    return env


def run_module(module: str, *args: str | os.PathLike, timeout: float = 240,
               env: dict[str, str] | None = None, **kwargs) -> subprocess.CompletedProcess:
    """Run ``python -m module args`` from the repo root and capture its output."""
    return subprocess.run([PYTHON, "-m", module, *map(str, args)], cwd=REPO, env=env or cli_env(),
                          capture_output=True, text=True, timeout=timeout, **kwargs)


def export_version(model_dir: Path, *args: str) -> subprocess.CompletedProcess:
    """Export through the real CLI and fail the test with its stderr if it fails."""
    result = run_module("export", "--model-dir", model_dir, *args)
    assert result.returncode == 0, result.stderr
    return result


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory) -> Path:
    """A model directory with threshold/1 (default bounds) exported by the real CLI.

    Shared read-only by the session: tests that add versions make their own directory.
    """
    directory = tmp_path_factory.mktemp("models")
    export_version(directory)
    return directory
