"""Every shell script in the repository passes shellcheck."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.processes import REPO

SHELL_SHEBANGS = (b"#!/bin/sh", b"#!/bin/bash", b"#!/usr/bin/env bash", b"#!/usr/bin/env sh")
SKIPPED_DIRS = {".git", ".venv", "models", "build", ".serve", "node_modules"}


def shell_scripts() -> list[Path]:
    """Files named *.sh or starting with a sh/bash shebang, outside venvs and generated dirs."""
    scripts = []
    for path in sorted(REPO.rglob("*")):
        if not path.is_file() or SKIPPED_DIRS & set(path.relative_to(REPO).parts):
            continue
        with open(path, "rb") as handle:
            first_line = handle.readline(200)
        if path.suffix == ".sh" or first_line.startswith(SHELL_SHEBANGS):
            scripts.append(path)
    return scripts


def test_repository_has_the_shell_scripts_it_should():
    names = {path.relative_to(REPO).as_posix() for path in shell_scripts()}
    assert {"tests/fake_host/docker", "tests/fake_host/nvidia-smi"} <= names


@pytest.mark.parametrize("script", shell_scripts(), ids=lambda path: path.relative_to(REPO).as_posix())
def test_shell_script_passes_shellcheck(script: Path):
    venv_bin = str(Path(sys.executable).parent)
    shellcheck = shutil.which("shellcheck", path=venv_bin) or shutil.which("shellcheck")
    assert shellcheck, "shellcheck is not installed: it comes with the dev extra (make venv)"
    result = subprocess.run(
        [shellcheck, "--severity=style", str(script)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
