"""A new user's first run: sample data, a server found from .serve/, honest preview and cast notes."""

from __future__ import annotations

import json
import re
import sys

import numpy as np
import pytest

from client.reader import from_array
from tests.support.models import REFERENCE_INPUT, REFERENCE_MASK
from tests.support.processes import cli_env, run_module


def _env(state_dir=None, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in cli_env().items() if k not in ("THRESHOLD_SERVER", "THRESHOLD_TOKEN")}
    env["SERVE_STATE_DIR"] = str(state_dir) if state_dir else "/nonexistent-serve-state"
    env.update(extra)
    return env


def _record_serve(state_dir, address: str, models: tuple[str, ...] = ("threshold",)) -> None:
    """What `make serve` leaves in .serve/: server.json and the rendered models.config."""
    (state_dir / "config").mkdir(parents=True)
    record = {"backend": "local", "grpc_address": address, "pid": 1}
    (state_dir / "server.json").write_text(json.dumps(record))
    configs = "".join(
        f'  config {{\n    name: "{name}"\n    base_path: "/models/{name}"\n  }}\n' for name in models
    )
    (state_dir / "config" / "models.config").write_text("model_config_list {\n" + configs + "}\n")


def test_sample_data_starts_with_the_reference_vector(tmp_path):
    path = tmp_path / "data.npy"
    result = run_module("client.sample", path, "--rows", "20", timeout=60)
    assert result.returncode == 0, result.stderr
    data = np.load(path)
    assert data.dtype == np.float32 and data.shape == (20, 256)
    assert data[0, :8].tolist() == np.float32(REFERENCE_INPUT).tolist()
    assert f"python -m client.predict {path}" in result.stdout
    assert [p.name for p in tmp_path.iterdir()] == ["data.npy"]  # no temp file left


def test_preview_says_exactly_which_rows_and_columns_it_prints(tmp_path, server):
    path = tmp_path / "data.npy"
    assert run_module("client.sample", path, "--rows", "20", timeout=60).returncode == 0
    result = run_module("client.predict", path, "--server", server.address, env=_env(), timeout=120)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    expected = REFERENCE_MASK + [int(abs(x) > 0.1) for x in np.load(path)[0, 8:10]]
    assert lines[0] == "[[" + " ".join(map(str, expected)) + "]"
    printed_rows = [line for line in lines if re.match(r"^ ?\[+[01 ]+\]+$", line)]
    assert len(printed_rows) == 10 and all(len(line.strip("[] ").split()) == 10 for line in printed_rows)
    assert lines[-1] == (
        "(the first 10 of 20 rows and the first 10 of 256 columns; --output FILE saves it all)"
    )


def test_a_client_run_from_the_checkout_finds_the_port_make_serve_used(tmp_path, server):
    _record_serve(tmp_path / ".serve", server.address)
    np.save(tmp_path / "x.npy", np.asarray([REFERENCE_INPUT], np.float32))
    result = run_module(
        "client.predict", tmp_path / "x.npy", "--json", env=_env(tmp_path / ".serve"), timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["server"] == server.address
    assert f"note: using {server.address}, the server `make serve` started here" in result.stderr
    explicit = run_module(
        "client.predict",
        tmp_path / "x.npy",
        "--server",
        "127.0.0.1:1",
        "--retries",
        "0",
        env=_env(tmp_path / ".serve"),
        timeout=120,
    )
    assert explicit.returncode == 6 and "note: using" not in explicit.stderr  # --server wins, silently


def test_an_unknown_model_names_the_models_the_server_has(tmp_path, server):
    _record_serve(tmp_path / ".serve", server.address, models=("threshold", "ghost"))
    np.save(tmp_path / "x.npy", np.asarray([REFERENCE_INPUT], np.float32))
    result = run_module(
        "client.predict",
        tmp_path / "x.npy",
        "--model",
        "nope",
        "--server",
        server.address,
        env=_env(tmp_path / ".serve"),
        timeout=120,
    )
    assert result.returncode == 7
    assert (
        "the server has 'threshold' (of the names asked for: 'threshold', 'ghost'; TF Serving has no "
        "call that lists every model)" in result.stderr
    )


def test_an_unknown_model_without_names_to_try_says_how_to_find_out(tmp_path, server):
    np.save(tmp_path / "x.npy", np.asarray([REFERENCE_INPUT], np.float32))
    result = run_module(
        "client.predict",
        tmp_path / "x.npy",
        "--model",
        "nope",
        "--server",
        server.address,
        env=_env(),
        timeout=120,
    )
    assert result.returncode == 7
    assert "the server has 'threshold'" in result.stderr  # the default model name is always asked for


def test_the_cast_note_says_what_rounding_did_and_what_overflowed():
    source = from_array(np.array([[0.1, 0.25, 1e39, -1e39, 1e-50, 2.0**30 + 1]], np.float64))
    list(source.batches(1))
    note = str(source.cast)
    assert source.cast.values == 6 and source.cast.changed == 5
    assert (source.cast.rounded, source.cast.to_inf, source.cast.to_zero) == (2, 2, 1)
    assert source.cast.max_rel_change == pytest.approx(abs(float(np.float32(0.1)) - 0.1) / 0.1, rel=1e-6)
    assert note.startswith(
        "cast from float64 to float32 changed 5 of 6 values: 2 rounded to the nearest "
        "float32, by at most 1 (1.49e-08 relative); 2 beyond float32's range "
        "(|x| > 3.4e38) became inf; 1 too small for float32 (|x| < 1.4e-45) became 0 "
        "(the first at row 0, col 2: 1e+39 -> inf)"
    )


def test_float64_input_prints_the_rounding_bound_not_damage(tmp_path, server):
    np.save(tmp_path / "x.npy", np.asarray([REFERENCE_INPUT], np.float64))
    result = run_module(
        "client.predict", tmp_path / "x.npy", "--server", server.address, env=_env(), timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert re.search(
        r"note: cast from float64 to float32 changed 8 of 8 values: 8 rounded to the nearest "
        r"float32, by at most [0-9.e-]+ \([0-9.e-]+ relative\)\n",
        result.stderr,
    ), result.stderr


def test_values_beyond_float32_get_the_note_and_no_numpy_warning(tmp_path, server):
    np.save(tmp_path / "x.npy", np.asarray([[1e39, *REFERENCE_INPUT[1:]]], np.float64))
    result = run_module(
        "client.predict", tmp_path / "x.npy", "--server", server.address, env=_env(), timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert "1 beyond float32's range (|x| > 3.4e38) became inf" in result.stderr
    assert "RuntimeWarning" not in result.stderr and "overflow" not in result.stderr


def test_the_progress_bar_knows_the_total(tmp_path, monkeypatch):
    from client import predict

    np.save(tmp_path / "x.npy", np.zeros((30, 7), np.float32))
    args = predict.build_parser().parse_args([str(tmp_path / "x.npy")])
    args.input = args.inputs[0]  # what run() does for a single-file run
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    with predict._progress_bar(args) as bar:
        assert bar.total == 210
