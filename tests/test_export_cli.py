"""`python -m export` versions, refuses overwrites, leaves nothing half-written, explains errors."""

from __future__ import annotations

import pytest

from export import savedmodel
from tests.conftest import export_version, run_module


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


@pytest.mark.parametrize("args, fragment", [
    (["--low", "1", "--high", "0"], "low must be <= high"),
    (["--low", "nan"], "low must be a finite number"),
    (["--high", "inf"], "high must be a finite number"),
    (["--low", "abc"], "--low: must be a number"),
    (["--version", "0"], "--version: must be a positive integer"),
    (["--version", "x"], "--version: must be a positive integer"),
    (["--name", "../evil"], "--name must be a plain directory name"),
    (["--frobnicate"], "unrecognized arguments: --frobnicate"),
])
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
    for flag in ("--low", "--high", "--model-dir", "--name", "--version", "--no-tflite"):
        assert flag in result.stdout


@pytest.mark.parametrize("failure", [RuntimeError("disk full"), KeyboardInterrupt()])
def test_failed_export_leaves_no_partial_version(tmp_path, monkeypatch, failure):
    def fail(*_args, **_kwargs):
        raise failure

    monkeypatch.setattr(savedmodel, "write_warmup", fail)
    with pytest.raises(type(failure)):
        savedmodel.export_model(-0.1, 0.1, tmp_path, "threshold")
    assert list((tmp_path / "threshold").iterdir()) == []
