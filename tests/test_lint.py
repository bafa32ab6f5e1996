"""The tree stays ruff clean: `make lint` runs in CI through the test suite."""

from __future__ import annotations

from tests.conftest import run_module


def test_ruff_finds_nothing():
    result = run_module("ruff", "check", ".", timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
