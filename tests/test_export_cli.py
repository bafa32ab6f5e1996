"""`python -m export` versions, refuses overwrites, leaves nothing half-written, explains errors."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from export import savedmodel
from tests.support.models import export_version
from tests.support.processes import run_module


def version_names(model_dir):
    return sorted(p.name for p in (model_dir / "threshold").iterdir())


def assert_one_line_error(result, fragment):
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1 and fragment in errors[0], result.stderr


def test_versions_auto_increment_and_explicit_versions_are_kept(tmp_path):
    first = export_version(tmp_path, "--no-tflite")
    assert "version 1" in first.stdout and "serving_default, compact, bounds" in first.stdout
    export_version(tmp_path, "--no-tflite", "--version", "7")
    third = export_version(tmp_path)
    assert "version 8" in third.stdout
    assert version_names(tmp_path) == ["1", "7", "8"]
    assert (tmp_path / "threshold-8.tflite").is_file()
    assert not (tmp_path / "threshold-1.tflite").exists()


def test_existing_version_is_never_overwritten(tmp_path):
    export_version(tmp_path, "--no-tflite")
    before = (tmp_path / "threshold" / "1" / "saved_model.pb").read_bytes()
    result = run_module("export", "--model-dir", tmp_path, "--version", "1", "--no-tflite")
    assert_one_line_error(result, "version 1 already exists")
    assert (tmp_path / "threshold" / "1" / "saved_model.pb").read_bytes() == before


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--low", "1", "--high", "0"], "low must be <= high"),
        (["--low", "nan"], "low must be a finite number"),
        (["--high", "inf"], "high must be a finite number"),
        (["--low", "abc"], "--low: must be a number"),
        (["--version", "0"], "--version: must be a positive integer"),
        (["--version", "x"], "--version: must be a positive integer"),
        (["--name", "../evil"], "--model-name must be a plain directory name"),
        (["--model-name", ".hidden"], "--model-name must be a plain directory name"),
        (["--frobnicate"], "unrecognized arguments: --frobnicate"),
    ],
)
def test_bad_flags_give_one_line_error_and_nonzero_exit(tmp_path, args, fragment):
    result = run_module("export", "--model-dir", tmp_path, "--no-tflite", *args)
    assert_one_line_error(result, fragment)
    assert not (tmp_path / "threshold").exists() or version_names(tmp_path) == []


def test_unwritable_model_dir_is_a_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    result = run_module("export", "--model-dir", blocker, "--no-tflite")
    assert_one_line_error(result, "cannot write under")


def test_help_explains_every_flag():
    result = run_module("export", "--help", timeout=30)
    assert result.returncode == 0
    for flag in ("--low", "--high", "--models-dir", "--model-name", "--version", "--no-tflite"):
        assert flag in result.stdout


@pytest.mark.parametrize("failure", [RuntimeError("disk full"), KeyboardInterrupt()])
def test_failed_export_leaves_no_partial_version(tmp_path, monkeypatch, failure):
    def fail(*_args, **_kwargs):
        raise failure

    monkeypatch.setattr(savedmodel, "write_warmup", fail)
    with pytest.raises(type(failure)):
        savedmodel.export_model(-0.1, 0.1, tmp_path, "threshold")
    assert list((tmp_path / "threshold").iterdir()) == []


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_stale_partials_of_dead_exporters_are_removed_live_ones_kept(tmp_path):
    base = tmp_path / "threshold"
    dead, alive = _dead_pid(), os.getpid()
    stale_version = base / f".partial-3-{dead}"
    stale_version.mkdir(parents=True)
    (stale_version / "saved_model.pb").write_bytes(b"half written")
    stale_tflite = tmp_path / f".threshold-3.tflite.partial-{dead}"
    stale_tflite.write_bytes(b"half written")
    busy = base / f".partial-4-{alive}"  # an export still running: not ours to remove
    busy.mkdir()
    export_version(tmp_path)
    assert not stale_version.exists() and not stale_tflite.exists()
    assert busy.is_dir()
    assert version_names(tmp_path) == [f".partial-4-{alive}", "1"]


def test_entries_that_are_not_versions_are_ignored(tmp_path):
    # TF Serving's file_system_storage_path_source.cc takes only names absl::SimpleAtoi reads as
    # an int64; "-3" is one (version -3), but the next version is still 1
    base = tmp_path / "threshold"
    for name in ("²", "99999999999999999999", "notes", "-3", "0x10"):
        (base / name).mkdir(parents=True)
    first = export_version(tmp_path, "--no-tflite")
    assert "version 1" in first.stdout
    assert (base / "1" / "saved_model.pb").is_file()


def test_the_next_version_counts_what_tf_serving_would_aspire(tmp_path):
    # The source never checks that a child is a directory, and "007" is version 7: a new export
    # below either would not be the latest version TF Serving serves
    base = tmp_path / "threshold"
    base.mkdir()
    (base / "12").write_text("a file, not a version directory")
    assert "version 13" in export_version(tmp_path, "--no-tflite").stdout
    (base / "0020").mkdir()
    result = run_module("export", "--model-dir", tmp_path, "--no-tflite", "--version", "20")
    assert result.returncode != 0 and f"version 20 already exists at {base / '0020'}" in result.stderr
