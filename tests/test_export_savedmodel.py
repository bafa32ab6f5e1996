"""The exported SavedModel has the signatures, layout and warmup TF Serving expects."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow_serving.apis import prediction_log_pb2

from tests.support.models import REFERENCE_INPUT

PREDICT_METHOD = "tensorflow/serving/predict"
EXPECTED = {
    "serving_default": {"mask": tf.float32},
    "compact": {"mask": tf.uint8},
    "bounds": {"low": tf.float32, "high": tf.float32},
}


@pytest.fixture(scope="module")
def version_dir(model_dir):
    return model_dir / "threshold" / "1"


@pytest.fixture(scope="module")
def meta_graph(version_dir):
    saved_model = saved_model_pb2.SavedModel.FromString((version_dir / "saved_model.pb").read_bytes())
    (graph,) = saved_model.meta_graphs
    return graph


def test_layout_is_tf_serving_versioned_base_path(model_dir, version_dir):
    assert [p.name for p in (model_dir / "threshold").iterdir()] == ["1"]
    assert (version_dir / "saved_model.pb").is_file()
    assert (version_dir / "variables").is_dir()
    assert (version_dir / "assets.extra" / "tf_serving_warmup_requests").is_file()


def test_signatures_are_typed_predict_signatures(meta_graph):
    assert list(meta_graph.meta_info_def.tags) == ["serve"]
    signatures = {k: v for k, v in meta_graph.signature_def.items() if not k.startswith("__")}
    assert set(signatures) == set(EXPECTED)
    for name, outputs in EXPECTED.items():
        signature = signatures[name]
        assert signature.method_name == PREDICT_METHOD
        ((key, tensor),) = signature.inputs.items()
        assert key == "x" and tensor.dtype == tf.float32.as_datatype_enum
        assert [d.size for d in tensor.tensor_shape.dim] == [-1, -1]
        assert {k: v.dtype for k, v in signature.outputs.items()} == {
            k: v.as_datatype_enum for k, v in outputs.items()
        }


def test_mask_outputs_keep_the_input_shape_and_bounds_come_one_per_row(meta_graph):
    """Every output has a leading batch dimension: TF Serving's batching splits every signature's
    outputs along it (tensorflow_serving/batching/batching_session.cc, SplitOutputTensors)."""
    for name in ("serving_default", "compact"):
        shape = meta_graph.signature_def[name].outputs["mask"].tensor_shape
        assert [d.size for d in shape.dim] == [-1, -1]
    for key in ("low", "high"):
        assert [d.size for d in meta_graph.signature_def["bounds"].outputs[key].tensor_shape.dim] == [-1]


def test_loaded_signatures_are_callable(version_dir):
    loaded = tf.saved_model.load(str(version_dir))
    assert set(loaded.signatures) == set(EXPECTED)
    spec = loaded.signatures["serving_default"].structured_input_signature[1]["x"]
    assert spec.dtype == tf.float32 and spec.shape.as_list() == [None, None]
    out = loaded.signatures["serving_default"](x=tf.constant([REFERENCE_INPUT]))
    assert out["mask"].dtype == tf.float32 and out["mask"].shape == (1, 8)


def test_warmup_requests_are_prediction_logs_with_the_reference_vector(version_dir):
    path = version_dir / "assets.extra" / "tf_serving_warmup_requests"
    logs = [
        prediction_log_pb2.PredictionLog.FromString(record.numpy())
        for record in tf.data.TFRecordDataset(str(path))
    ]
    assert 1 <= len(logs) <= 10
    signatures = set()
    loaded = tf.saved_model.load(str(version_dir))
    for log in logs:
        request = log.predict_log.request
        assert request.model_spec.name == "threshold"
        signatures.add(request.model_spec.signature_name)
        x = tf.make_ndarray(request.inputs["x"])
        assert x.dtype == np.float32 and x.ndim == 2
        loaded.signatures[request.model_spec.signature_name](x=tf.constant(x))  # replays cleanly
    assert signatures == set(EXPECTED)
    inputs = [tf.make_ndarray(log.predict_log.request.inputs["x"]).tolist() for log in logs]
    assert [np.float32(v).item() for v in REFERENCE_INPUT] in [row for x in inputs for row in x]
