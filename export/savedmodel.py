"""Write the threshold filter as a versioned SavedModel in TF Serving's layout.

``<model_dir>/<name>/<version>/`` holds ``saved_model.pb``, ``variables/`` and
``assets.extra/tf_serving_warmup_requests``. Each version is built in a hidden
directory beside its final place and renamed into it, so a server polling the base
path never sees half a version.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_log_pb2

from export.layer import ThresholdFilter, validate_bounds
from export.layout import PARTIAL_PREFIX, next_version, remove_stale_partials, require_free_version

# TensorFlow's key, as the client and server name it (client.names); export imports nothing of ours.
SIGNATURE_DEFAULT = tf.saved_model.DEFAULT_SERVING_SIGNATURE_DEF_KEY
SIGNATURE_COMPACT = "compact"
SIGNATURE_BOUNDS = "bounds"
INPUT_KEY = "x"
OUTPUT_KEY = "mask"
WARMUP_FILE = "tf_serving_warmup_requests"
REFERENCE_INPUT = [0.04, -0.8, -1.2, 1.3, 0.85, 0.09, -0.08, 0.2]

_BATCH_SPEC = tf.TensorSpec([None, None], tf.float32, name=INPUT_KEY)


@dataclass(frozen=True)
class ExportResult:
    """What one export wrote."""

    version: int
    version_dir: Path
    signatures: tuple[str, ...]


class ThresholdModel(tf.Module):
    """The serving surface: the Keras layer behind three Predict signatures."""

    def __init__(self, low: float, high: float):
        super().__init__(name="threshold")
        self.mask_filter = ThresholdFilter(low, high, name="threshold_filter")
        self.compact_filter = ThresholdFilter(
            low, high, output_dtype="uint8", name="threshold_filter_compact"
        )

    @tf.function(input_signature=[_BATCH_SPEC])
    def predict_mask(self, x):
        """float32 mask, same shape as x."""
        return {OUTPUT_KEY: self.mask_filter(x)}

    @tf.function(input_signature=[_BATCH_SPEC])
    def predict_compact(self, x):
        """uint8 mask: a quarter of the response bytes of the float32 one."""
        return {OUTPUT_KEY: self.compact_filter(x)}

    @tf.function(input_signature=[_BATCH_SPEC])
    def bounds(self, x):
        """The model's (low, high), once per row of x: any [n, m] float32 tensor will do.

        It takes the usual input because TF Serving refuses signatures without inputs, and
        answers one value per row because TF Serving's batching (``--enable_batching``) runs every
        signature through a batch and splits each output along its first dimension: a scalar
        output fails there with ``Batched output tensor has 0 dimensions``.
        """
        rows = tf.shape(x)[:1]
        return {
            "low": tf.fill(rows, tf.constant(self.mask_filter.low, tf.float32)),
            "high": tf.fill(rows, tf.constant(self.mask_filter.high, tf.float32)),
        }

    def signatures(self) -> dict:
        return {
            SIGNATURE_DEFAULT: self.predict_mask.get_concrete_function(),
            SIGNATURE_COMPACT: self.predict_compact.get_concrete_function(),
            SIGNATURE_BOUNDS: self.bounds.get_concrete_function(),
        }


def _warmup_records(name: str) -> list[bytes]:
    reference = np.asarray([REFERENCE_INPUT], dtype=np.float32)
    batch = np.linspace(-1.0, 1.0, 64 * 32, dtype=np.float32).reshape(64, 32)
    requests = [
        (SIGNATURE_DEFAULT, reference),
        (SIGNATURE_DEFAULT, batch),
        (SIGNATURE_COMPACT, reference),
        (SIGNATURE_BOUNDS, np.zeros((1, 1), np.float32)),
    ]
    records = []
    for signature, array in requests:
        request = predict_pb2.PredictRequest(
            model_spec=model_pb2.ModelSpec(name=name, signature_name=signature)
        )
        request.inputs[INPUT_KEY].CopyFrom(tf.make_tensor_proto(array))
        log = prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=request))
        records.append(log.SerializeToString())
    return records


def write_warmup(version_dir: Path, name: str) -> Path:
    """Write the TFRecord of PredictionLogs that TF Serving replays on load."""
    path = version_dir / "assets.extra" / WARMUP_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    with tf.io.TFRecordWriter(str(path)) as writer:
        for record in _warmup_records(name):
            writer.write(record)
    return path


def write_savedmodel(
    model: ThresholdModel, base_path: Path, name: str, version: int | None = None
) -> ExportResult:
    """Write model as base_path/<version>, atomically; never overwrite a version."""
    base_path.mkdir(parents=True, exist_ok=True)
    remove_stale_partials(base_path, PARTIAL_PREFIX)
    if version is None:
        version = next_version(base_path)
    final = require_free_version(base_path, version)
    partial = base_path / f"{PARTIAL_PREFIX}{version}-{os.getpid()}"
    try:
        signatures = model.signatures()
        tf.saved_model.save(model, str(partial), signatures=signatures)
        write_warmup(partial, name)
        require_free_version(base_path, version)  # another exporter may have won the race
        partial.rename(final)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return ExportResult(version=version, version_dir=final, signatures=tuple(signatures))


def export_model(
    low: float, high: float, model_dir: Path, name: str, version: int | None = None
) -> ExportResult:
    """Validate the bounds and write a new version of the SavedModel."""
    low, high = validate_bounds(low, high)
    return write_savedmodel(ThresholdModel(low, high), Path(model_dir) / name, name, version)
