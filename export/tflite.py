"""Convert the threshold filter to a builtins-only TFLite file and prove it runs."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import tensorflow as tf

# LiteRT is TFLite's maintained runtime; tf.lite.Interpreter is deprecated.
from ai_edge_litert.interpreter import Interpreter, OpResolverType

from export.layer import ThresholdFilter
from export.layout import ExportError, remove_stale_partials
from export.savedmodel import REFERENCE_INPUT


def tflite_path(model_dir: Path, name: str, version: int) -> Path:
    """Beside the SavedModel base path, not inside it, so TF Serving never scans it."""
    return Path(model_dir) / f"{name}-{version}.tflite"


def convert(low: float, high: float) -> bytes:
    """TFLite flatbuffer of the filter using only TFLITE_BUILTINS ops."""
    layer = ThresholdFilter(low, high)

    @tf.function(input_signature=[tf.TensorSpec([None, None], tf.float32, name="x")])
    def mask(x):
        return {"mask": layer(x)}

    converter = tf.lite.TFLiteConverter.from_concrete_functions([mask.get_concrete_function()], layer)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    return converter.convert()


def run_tflite(model: bytes | str | Path, x: np.ndarray) -> np.ndarray:
    """Run the TFLite model in the LiteRT interpreter on a 2-D float32 array."""
    # The reference kernels, not the XNNPACK delegate: this run checks the rule, not speed.
    resolver = OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    if isinstance(model, (str, Path)):
        interpreter = Interpreter(model_path=str(model), experimental_op_resolver_type=resolver)
    else:
        interpreter = Interpreter(model_content=model, experimental_op_resolver_type=resolver)
    x = np.asarray(x, dtype=np.float32)
    interpreter.resize_tensor_input(interpreter.get_input_details()[0]["index"], x.shape)
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x)
    interpreter.invoke()
    return interpreter.get_tensor(interpreter.get_output_details()[0]["index"])


def write_tflite(low: float, high: float, path: Path) -> Path:
    """Convert, check the reference vector in the interpreter, then write atomically."""
    content = convert(low, high)
    reference = np.asarray([REFERENCE_INPUT], dtype=np.float32)
    got = run_tflite(content, reference)
    expected = ((reference < low) | (reference > high)).astype(np.float32)
    if not np.array_equal(got, expected):
        raise ExportError(f"TFLite model disagrees with the rule on the reference vector: {got}")
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_partials(path.parent, f".{path.stem.rpartition('-')[0]}-")
    partial = path.with_name(f".{path.name}.partial-{os.getpid()}")
    try:
        partial.write_bytes(content)
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)
    return path
