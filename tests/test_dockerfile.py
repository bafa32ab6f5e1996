"""serving/Dockerfile: hadolint clean, pinned to the TF Serving release, the flags make serve uses."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

from serving.model_server_flags import ModelServerOptions, model_server_flags
from tests.support.processes import REPO

DOCKERFILE = REPO / "serving" / "Dockerfile"
DOCKERIGNORE = REPO / "serving" / "Dockerfile.dockerignore"


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, comments dropped (no line continuations are used)."""
    pairs = []
    for line in DOCKERFILE.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            keyword, _, rest = line.strip().partition(" ")
            pairs.append((keyword.upper(), rest))
    return pairs


def _tool(name: str) -> str:
    path = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed: it comes with the dev extra (make venv)")
    return path


def test_dockerfile_is_hadolint_clean():
    result = subprocess.run(
        [_tool("hadolint"), "--failure-threshold", "info", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_base_is_the_official_gpu_image_of_the_tensorflow_serving_api_release():
    instructions = _instructions()
    assert ("ARG", f"TFS_VERSION={version('tensorflow-serving-api')}") in instructions
    assert ("ARG", "TFS_VARIANT=-gpu") in instructions  # `make image` IMAGE_GPU=0 passes TFS_VARIANT=
    assert ("FROM", "tensorflow/serving:${TFS_VERSION}${TFS_VARIANT}") in instructions


def test_image_runs_the_server_as_non_root_with_the_flags_make_serve_uses():
    instructions = dict(_instructions())
    assert re.fullmatch(r"[1-9]\d*(:[1-9]\d*)?", instructions["USER"]), "must be a numeric non-root user"
    assert json.loads(instructions["ENTRYPOINT"]) == ["tensorflow_model_server"]
    assert json.loads(instructions["CMD"]) == model_server_flags(ModelServerOptions())
    assert instructions["ENV"] == "TF_FORCE_GPU_ALLOW_GROWTH=true"
    assert set(instructions["EXPOSE"].split()) == {"8500", "8501"}


def test_build_context_keeps_only_what_the_image_copies():
    copied = [args.split()[0] for keyword, args in _instructions() if keyword == "COPY"]
    assert copied == ["models/threshold", ".serve/config/"]
    patterns = [line for line in DOCKERIGNORE.read_text().splitlines() if line and not line.startswith("#")]
    assert patterns[0] == "*"
    assert {"!models/threshold/", "!.serve/config/", "models/threshold/.partial-*"} <= set(patterns)
