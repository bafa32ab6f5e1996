"""The tree stays lint clean: `make lint` runs in CI through the test suite."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.support.processes import PYTHON, REPO, cli_env, run_module


def test_ruff_finds_nothing():
    result = run_module("ruff", "check", ".", timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_format_changes_nothing():
    """The house style: `ruff format` clean, so a change's diff shows only what it changes."""
    result = run_module("ruff", "format", "--check", ".", timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_imports_point_one_way():
    """pyproject.toml's [tool.importlinter] contracts: export and client import nothing else of ours."""
    lint_imports = Path(PYTHON).parent / "lint-imports"
    assert lint_imports.exists(), "lint-imports is missing: `make venv` installs it (dev extra)"
    result = subprocess.run(
        [lint_imports, "--no-cache"], cwd=REPO, env=cli_env(), capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "0 broken" in result.stdout, result.stdout
