"""What `pip install` gives: the client without TensorFlow, console scripts, a server that runs anywhere.

Each test installs the project for real with pip (from a copy of this tree, so no build output lands
in the checkout); pip may answer from its cache. They skip, saying so, only when pip can reach no
package index at all.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from tests.support.embedded_server import ServerHandle, embedded_server, wait_until_available
from tests.support.models import REFERENCE_INPUT, REFERENCE_MASK
from tests.support.ports import free_port
from tests.support.processes import PYTHON, REPO

pytestmark = [pytest.mark.install, pytest.mark.timeout(900)]  # pip may have to download

#: The issue's goal for a client-only venv (a venv with ovmsclient, a TF Serving client shipping its
#: own protos, measured 125 MB).
CLIENT_VENV_GOAL_MB = 125
CONSOLE_SCRIPTS = {
    "threshold-predict": "client.predict:main",
    "threshold-bench": "client.bench.__main__:main",
    "threshold-serve-local": "serving.local.main:main",
}
SERVER_CONFIGS = [
    "serving/models.config",
    "serving/batching.config",
    "serving/monitoring.config",
    "serving/k8s/base/deployment.yaml",
    "serving/k8s/base/service.yaml",
    "serving/k8s/overlays/gpu/kustomization.yaml",
    "serving/k8s/components/tls/ssl-config.yaml",
    "serving/observability/grafana-dashboard.json",
    "serving/observability/servicemonitor.yaml",
    "serving/k8s/kserve/inferenceservice.yaml",
    "serving/k8s/bulk/job.yaml",
]
_NOT_SOURCE = shutil.ignore_patterns(
    ".git",
    ".venv",
    "models",
    "build",
    "*.egg-info",
    "__pycache__",
    ".serve",
    ".pytest_cache",
    ".hypothesis",
    ".ruff_cache",
    "results*",
    "*.png",
)
_NO_INDEX = (
    "Could not find a version",
    "No matching distribution",
    "NewConnectionError",
    "Temporary failure in name resolution",
    "Network is unreachable",
)


def _env(**extra: str) -> dict[str, str]:
    """Nothing of the checkout on the path: what runs is what pip installed."""
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(TF_CPP_MIN_LOG_LEVEL="2", **extra)
    return env


def _run(*argv: str | Path, cwd: Path, timeout: float = 300, **extra_env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(arg) for arg in argv],
        cwd=cwd,
        env=_env(**extra_env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _pip(python: str | Path, *args: str | Path, cwd: Path) -> subprocess.CompletedProcess:
    result = _run(python, "-m", "pip", "--disable-pip-version-check", *args, cwd=cwd, timeout=600)
    if result.returncode != 0 and any(marker in result.stdout + result.stderr for marker in _NO_INDEX):
        pytest.skip(f"pip cannot reach a package index: {result.stderr.strip().splitlines()[-1]}")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def _source_copy(tmp_path: Path) -> Path:
    source = tmp_path / "source"
    shutil.copytree(REPO, source, ignore=_NOT_SOURCE)
    return source


def _size_mb(directory: Path) -> float:
    files = [path for path in directory.rglob("*") if path.is_file() and not path.is_symlink()]
    total = sum(path.stat().st_size for path in files)
    return total / 1e6


@pytest.fixture(scope="module")
def client_venv(tmp_path_factory) -> Path:
    """A fresh venv holding `pip install <this project>` without extras."""
    tmp_path = tmp_path_factory.mktemp("client-install")
    source = _source_copy(tmp_path)
    venv = tmp_path / "venv"
    # The interpreter behind this venv, so the new venv is as fresh as `python -m venv` makes it.
    result = _run(getattr(sys, "_base_executable", PYTHON), "-m", "venv", venv, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    _pip(venv / "bin" / "python", "install", source, cwd=tmp_path)
    return venv


def test_the_client_installs_without_tensorflow_and_predicts(client_venv, model_dir, tmp_path):
    python = client_venv / "bin" / "python"
    listed = json.loads(_pip(python, "list", "--format=json", cwd=tmp_path).stdout)
    installed = sorted(package["name"].lower() for package in listed)
    assert not [name for name in installed if name.startswith(("tensorflow", "keras"))], installed
    probe = _run(
        python,
        "-c",
        "import importlib.util as u, client; print(client.__file__); "
        "print([m for m in ('tensorflow', 'tensorflow_serving') if u.find_spec(m)])",
        cwd=tmp_path,
    )
    assert probe.returncode == 0, probe.stderr
    location, missing = probe.stdout.splitlines()
    assert Path(location).is_relative_to(client_venv) and missing == "[]", probe.stdout

    np.save(tmp_path / "x.npy", np.array([REFERENCE_INPUT], np.float32))
    with embedded_server(model_dir) as server:  # the server runs from the full venv of this suite
        result = _run(
            python,
            "-m",
            "client.predict",
            "x.npy",
            "--server",
            server.address,
            "--output",
            "m.npy",
            cwd=tmp_path,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr
        assert np.load(tmp_path / "m.npy").tolist() == [REFERENCE_MASK]
        script = _run(
            client_venv / "bin" / "threshold-predict",
            "x.npy",
            "--server",
            server.address,
            "--output",
            "m2.npy",
            cwd=tmp_path,
            timeout=120,
        )
        assert script.returncode == 0, script.stderr
        assert np.load(tmp_path / "m2.npy").tolist() == [REFERENCE_MASK]

    size = _size_mb(client_venv)
    print(f"\nclient-only venv: {size:.0f} MB ({', '.join(installed)})")
    assert size <= CLIENT_VENV_GOAL_MB, f"the client-only venv is {size:.0f} MB: {installed}"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The project's wheel, built by pip from a copy of this tree."""
    tmp_path = tmp_path_factory.mktemp("wheel")
    source = _source_copy(tmp_path)
    _pip(PYTHON, "wheel", "--no-deps", "--wheel-dir", tmp_path / "dist", source, cwd=tmp_path)
    (built,) = (tmp_path / "dist").glob("threshold_serving-*.whl")
    return built


def test_the_wheel_ships_the_servers_configs_and_the_console_scripts(wheel):
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        (entry_points,) = [name for name in names if name.endswith(".dist-info/entry_points.txt")]
        scripts = archive.read(entry_points).decode()
    assert set(SERVER_CONFIGS) <= names, sorted(name for name in names if name.startswith("serving/"))
    for script, target in CONSOLE_SCRIPTS.items():
        assert f"{script} = {target}" in scripts, scripts
    assert not [name for name in names if name.startswith("tests/")]


def test_an_installed_server_works_outside_the_checkout(wheel, model_dir, tmp_path):
    """Installed without the repo: the packaged configs render, and threshold-serve-local serves."""
    target = tmp_path / "installed"
    # Into a folder of its own; this suite's venv already has the server's dependencies.
    _pip(PYTHON, "install", "--no-deps", "--target", target, wheel, cwd=tmp_path)
    work = tmp_path / "elsewhere"
    work.mkdir()
    state = work / "state"
    rendered = _run(
        PYTHON,
        "-m",
        "serving.launch",
        "render-config",
        "--models-dir",
        model_dir,
        "--state-dir",
        state,
        cwd=work,
        PYTHONPATH=str(target),
    )
    assert rendered.returncode == 0, rendered.stderr
    assert sorted(path.name for path in (state / "config").iterdir()) == [
        "batching.config",
        "models.config",
        "monitoring.config",
    ]

    where = _run(
        PYTHON,
        "-c",
        "import client, serving; print(client.__file__); print(serving.__file__)",
        cwd=work,
        PYTHONPATH=str(target),
    )
    locations = where.stdout.split()
    assert locations and all(Path(line).is_relative_to(target) for line in locations), where.stderr

    port = free_port()
    log_path = tmp_path / "server.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                target / "bin" / "threshold-serve-local",
                "--port",
                str(port),
                "--rest-port",
                "0",
                "--models-dir",
                str(model_dir),
            ],
            cwd=work,
            env=_env(PYTHONPATH=str(target)),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    handle = ServerHandle(f"127.0.0.1:{port}", port, 0, process, log_path)
    try:
        wait_until_available(handle)
        np.save(work / "x.npy", np.array([REFERENCE_INPUT], np.float32))
        result = _run(
            target / "bin" / "threshold-predict",
            "x.npy",
            "--server",
            handle.address,
            "--output",
            "m.npy",
            cwd=work,
            timeout=120,
            PYTHONPATH=str(target),
        )
        assert result.returncode == 0, result.stderr
        assert np.load(work / "m.npy").tolist() == [REFERENCE_MASK]
    finally:
        process.terminate()
        process.wait(timeout=30)
