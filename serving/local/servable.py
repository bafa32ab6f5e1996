"""One loaded SavedModel version: its SignatureDefs (for metadata and checks) and callable signatures."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tensorflow.core.protobuf import meta_graph_pb2, saved_model_pb2

from export.quiet_tensorflow import import_tensorflow
from serving.local.errors import ModelRunFailed

SERVE_TAG = "serve"
WARMUP_FILE = Path("assets.extra") / "tf_serving_warmup_requests"


class SavedModelUnreadable(Exception):
    """A version directory does not hold a loadable SavedModel with the serve tag."""


def read_serving_meta_graph(version_dir: Path) -> meta_graph_pb2.MetaGraphDef:
    """The MetaGraphDef tagged 'serve' in version_dir/saved_model.pb, as TF Serving picks it."""
    saved_model = saved_model_pb2.SavedModel()
    try:
        saved_model.ParseFromString((Path(version_dir) / "saved_model.pb").read_bytes())
    except (OSError, ValueError) as exc:
        raise SavedModelUnreadable(f"{version_dir}: cannot read saved_model.pb: {exc}") from None
    for meta_graph in saved_model.meta_graphs:
        if list(meta_graph.meta_info_def.tags) == [SERVE_TAG]:
            return meta_graph
    raise SavedModelUnreadable(f"{version_dir}: no MetaGraphDef tagged {{{SERVE_TAG}}}")


@dataclass
class Servable:
    """A loaded version: name, version, SignatureDefs as written, and the signature functions."""

    name: str
    version: int
    path: Path
    signature_defs: dict[str, meta_graph_pb2.SignatureDef]
    _functions: dict
    _module: object  # keeps the loaded object (and its variables) alive while the servable is

    def run(self, signature: str, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Call the signature's concrete function on numpy inputs; outputs as numpy arrays."""
        tf = import_tensorflow()
        try:
            outputs = self._functions[signature](**{key: tf.constant(value) for key, value in inputs.items()})
            return {key: tensor.numpy() for key, tensor in outputs.items()}
        except (tf.errors.OpError, TypeError, ValueError) as exc:
            raise ModelRunFailed(f"running signature {signature!r} of {self.name} version "
                                 f"{self.version} failed: {exc}") from None


_load_lock = threading.Lock()  # tf.saved_model.load is not documented as thread-safe


def load_servable(name: str, version: int, version_dir: Path) -> Servable:
    """Load version_dir with tf.saved_model.load; SavedModelUnreadable if it cannot be served."""
    meta_graph = read_serving_meta_graph(version_dir)
    tf = import_tensorflow()
    with _load_lock:
        try:
            module = tf.saved_model.load(str(version_dir), tags=[SERVE_TAG])
        except Exception as exc:  # TF raises many kinds here; all mean "not loadable"
            raise SavedModelUnreadable(f"{version_dir}: {type(exc).__name__}: {exc}") from None
    functions = dict(module.signatures)
    return Servable(name=name, version=version, path=Path(version_dir),
                    signature_defs=dict(meta_graph.signature_def), _functions=functions, _module=module)


def warmup_records(version_dir: Path) -> list[bytes]:
    """The serialized PredictionLogs of the version's warmup file (none if it has no file)."""
    path = Path(version_dir) / WARMUP_FILE
    if not path.is_file():
        return []
    tf = import_tensorflow()
    return [record.numpy() for record in tf.data.TFRecordDataset(str(path))]
