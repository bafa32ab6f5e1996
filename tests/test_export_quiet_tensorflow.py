"""TF's start-up notices are filtered from stderr; anything else still shows."""

from __future__ import annotations

from export.quiet_tensorflow import filter_startup_noise
from tests.support.processes import run_module

NOISE = (
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
    "I0000 00:00:1795580836.382596    2396 port.cc:153] oneDNN custom operations are on.\n"
    "I0000 00:00:1795580836.382930    2396 cudart_stub.cc:31] Could not find cuda drivers on your machine\n"
    "E0000 00:00:1795580838.222819    2396 cuda_platform.cc:52] failed call to cuInit: INTERNAL\n"
    "To enable the following instructions: AVX2 FMA, in other operations, rebuild TensorFlow with "
    "the appropriate compiler flags.\n"
)


def test_known_startup_notices_are_dropped_and_other_lines_kept():
    real = "E0000 00:00:1.0  1 saved_model.cc:9] could not load\nerror: disk full\n"
    assert filter_startup_noise(NOISE + real) == real


def test_export_cli_stderr_is_clean(tmp_path):
    result = run_module("export", "--model-dir", tmp_path, "--no-tflite")
    assert result.returncode == 0, result.stderr
    assert "cuda" not in result.stderr.lower() and "I0000" not in result.stderr, result.stderr
