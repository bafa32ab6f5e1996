"""Models on disk for tests: the reference batch, versions exported by the real CLI, configs."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from tests.support.processes import run_module

# The seed case of the threshold rule (bounds -0.1 / 0.1): an input and the mask it maps to.
REFERENCE_INPUT = [0.04, -0.8, -1.2, 1.3, 0.85, 0.09, -0.08, 0.2]
REFERENCE_MASK = [0, 1, 1, 1, 1, 0, 0, 1]


def export_version(model_dir: Path, *args: str) -> subprocess.CompletedProcess:
    """Export through the real CLI and fail the test with its stderr if it fails."""
    result = run_module("export", "--model-dir", model_dir, *args)
    assert result.returncode == 0, result.stderr
    return result


def copy_version(
    source_model_dir: Path, target_model_dir: Path, version: int = 1, as_version: int | None = None
) -> Path:
    """Copy threshold/<version> to another model dir (cheaper than a second export); the new dir."""
    target = Path(target_model_dir) / "threshold" / str(as_version or version)
    shutil.copytree(Path(source_model_dir) / "threshold" / str(version), target)
    return target


def models_config(
    path: Path,
    *,
    num_versions: int = 2,
    labels: dict[str, int] | None = None,
    base_path: str = "/models/threshold",
) -> Path:
    """Write a TF Serving ModelServerConfig text proto for the threshold model; its path."""
    label_lines = "".join(
        f'    version_labels {{ key: "{key}" value: {value} }}\n' for key, value in (labels or {}).items()
    )
    Path(path).write_text(
        'model_config_list {\n  config {\n    name: "threshold"\n'
        f'    base_path: "{base_path}"\n    model_platform: "tensorflow"\n'
        f"    model_version_policy {{ latest {{ num_versions: {num_versions} }} }}\n"
        f"{label_lines}  }}\n}}\n"
    )
    return Path(path)


_EXAMPLE_MODEL = """
import sys
import tensorflow as tf

v1 = tf.compat.v1
graph = tf.Graph()
with graph.as_default():
    examples = v1.placeholder(tf.string, [None], name="examples")
    scores = tf.reshape(tf.cast(tf.strings.length(examples), tf.float32), [-1, 1], name="scores")
    builder = v1.saved_model.Builder(sys.argv[1])
    with v1.Session(graph=graph) as session:
        builder.add_meta_graph_and_variables(
            session,
            ["serve"],
            signature_def_map={
                "classify": v1.saved_model.classification_signature_def(examples, None, scores),
                "regress": v1.saved_model.regression_signature_def(examples, scores),
            },
        )
    builder.save()
"""


def export_example_model(model_dir: Path, name: str = "examples") -> Path:
    """A TF1 SavedModel at model_dir/name/1 whose signatures TF Serving would classify and regress
    tf.Examples with ("classify", "regress"); its base path."""
    base = Path(model_dir) / name
    result = subprocess.run(
        [sys.executable, "-c", _EXAMPLE_MODEL, str(base / "1")], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    return base
