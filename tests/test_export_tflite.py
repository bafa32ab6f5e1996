"""The TFLite file is builtins-only, sits beside the base path, and computes the rule."""

from __future__ import annotations

import numpy as np
import pytest
from ai_edge_litert.interpreter import Interpreter

from export.tflite import run_tflite
from tests.support.models import REFERENCE_INPUT, REFERENCE_MASK, export_version

BUILTIN_OPS = {"LESS", "GREATER", "LOGICAL_OR", "CAST"}


@pytest.fixture(scope="module")
def tflite_file(tmp_path_factory):
    directory = tmp_path_factory.mktemp("tflite")
    result = export_version(directory, "--low", "-0.5", "--high", "0.25")
    path = directory / "threshold-1.tflite"
    assert str(path) in result.stdout
    return path


def test_tflite_sits_beside_the_base_path_not_in_a_version(tflite_file):
    base = tflite_file.parent / "threshold"
    assert sorted(p.name for p in base.iterdir()) == ["1"]
    assert not list(base.rglob("*.tflite"))


def test_tflite_uses_only_builtin_ops(tflite_file):
    interpreter = Interpreter(model_path=str(tflite_file))
    interpreter.allocate_tensors()
    ops = {op["op_name"] for op in interpreter._get_ops_details()}
    assert ops and ops <= BUILTIN_OPS, ops


def test_tflite_computes_the_rule_with_its_bounds(tflite_file):
    x = np.float32([REFERENCE_INPUT, [-0.5, 0.25, -0.51, 0.26, np.nan, np.inf, -np.inf, 0]])
    got = run_tflite(tflite_file, x)
    np.testing.assert_array_equal(got, ((x < np.float32(-0.5)) | (x > np.float32(0.25))).astype(np.float32))


def test_tflite_default_bounds_give_reference_mask(model_dir, tmp_path):
    from export.tflite import write_tflite

    path = write_tflite(-0.1, 0.1, tmp_path / "t.tflite")
    np.testing.assert_array_equal(run_tflite(path, np.float32([REFERENCE_INPUT])), [REFERENCE_MASK])
    assert run_tflite(path, np.zeros((3, 0), np.float32)).shape == (3, 0)
