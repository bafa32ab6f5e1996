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
    policy: str | None = None,
) -> Path:
    """Write a TF Serving ModelServerConfig text proto for the threshold model; its path.

    The version policy is ``latest { num_versions }`` unless policy gives another (``all {}``)."""
    policy = policy or f"latest {{ num_versions: {num_versions} }}"
    label_lines = "".join(
        f'    version_labels {{ key: "{key}" value: {value} }}\n' for key, value in (labels or {}).items()
    )
    Path(path).write_text(
        'model_config_list {\n  config {\n    name: "threshold"\n'
        f'    base_path: "{base_path}"\n    model_platform: "tensorflow"\n'
        f"    model_version_policy {{ {policy} }}\n"
        f"{label_lines}  }}\n}}\n"
    )
    return Path(path)


def save_scalar_output_model(model_dir: Path) -> Path:
    """A SavedModel with scalar outputs, served as model_dir/threshold/1; its version directory.

    Shaped as this project's exports were before their bounds were batchable: ``serving_default``
    maps x [-1, -1] to the threshold rule's float mask (bounds -0.1 / 0.1) and ``bounds`` answers
    ``low`` and ``high`` as scalars. Two more signatures show a batch's output rules: ``total``
    answers a scalar (the sum of x), ``first_row`` x's first row whatever the number of rows.
    Built with TensorFlow itself (imported here, not at test collection).
    """
    import tensorflow as tf

    spec = tf.TensorSpec([None, None], tf.float32, name="x")
    low, high = tf.constant(-0.1, tf.float32), tf.constant(0.1, tf.float32)

    class ScalarOutputs(tf.Module):
        @tf.function(input_signature=[spec])
        def mask(self, x):
            return {"mask": tf.cast((x < low) | (x > high), tf.float32)}

        @tf.function(input_signature=[spec])
        def bounds(self, x):
            del x
            return {"low": low, "high": high}

        @tf.function(input_signature=[spec])
        def total(self, x):
            return {"total": tf.reduce_sum(x)}

        @tf.function(input_signature=[spec])
        def first_row(self, x):
            return {"row": x[:1]}

    module = ScalarOutputs()
    target = Path(model_dir) / "threshold" / "1"
    signatures = {
        "serving_default": module.mask.get_concrete_function(),
        "bounds": module.bounds.get_concrete_function(),
        "total": module.total.get_concrete_function(),
        "first_row": module.first_row.get_concrete_function(),
    }
    tf.saved_model.save(module, str(target), signatures=signatures)
    return target


def write_warmup_file(version_dir: Path, records: list[bytes]) -> Path:
    """Write records as the version's assets.extra/tf_serving_warmup_requests TFRecord file; its path."""
    from export.quiet_tensorflow import import_tensorflow

    path = Path(version_dir) / "assets.extra" / "tf_serving_warmup_requests"
    path.parent.mkdir(parents=True, exist_ok=True)
    with import_tensorflow().io.TFRecordWriter(str(path)) as writer:
        for record in records:
            writer.write(record)
    return path


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
