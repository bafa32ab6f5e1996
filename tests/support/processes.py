"""Running the project's CLIs as subprocesses: the repo root, the interpreter, their environment."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PYTHON = sys.executable


def cli_env(**extra: str) -> dict[str, str]:
    """Environment for a CLI subprocess: the repo importable, TF's C++ logs quiet."""
    env = dict(os.environ, PYTHONPATH=str(REPO), TF_CPP_MIN_LOG_LEVEL="2")
    env.update(extra)
    return env


def run_module(
    module: str, *args: str | os.PathLike, timeout: float = 240, env: dict[str, str] | None = None, **kwargs
) -> subprocess.CompletedProcess:
    """Run ``python -m module args`` from the repo root and capture its output."""
    return subprocess.run(
        [PYTHON, "-m", module, *map(str, args)],
        cwd=REPO,
        env=env or cli_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        **kwargs,
    )


def one_line_error(
    result: subprocess.CompletedProcess, code: int, *fragments: str, prefix: str = "error: "
) -> str:
    """The one ``error: ...`` line (``prefix``: how the CLI starts it) a failed CLI printed, after
    checking its exit code, that it printed nothing else (no traceback) and that the line holds
    every fragment."""
    assert result.returncode == code, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(prefix), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], result.stderr
    return lines[0]
