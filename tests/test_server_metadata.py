"""GetModelMetadata returns the SavedModel's own SignatureDefMap, packed as TF Serving packs it."""

from __future__ import annotations

from client.protos import get_model_metadata_pb2, model_pb2


def metadata(stubs, **spec):
    request = get_model_metadata_pb2.GetModelMetadataRequest(
        model_spec=model_pb2.ModelSpec(name="threshold", **spec), metadata_field=["signature_def"]
    )
    return stubs.prediction.GetModelMetadata(request, timeout=30)


def saved_model_signatures(version_dir):
    from tensorflow.core.protobuf import saved_model_pb2

    saved_model = saved_model_pb2.SavedModel()
    saved_model.ParseFromString((version_dir / "saved_model.pb").read_bytes())
    (meta_graph,) = [m for m in saved_model.meta_graphs if list(m.meta_info_def.tags) == ["serve"]]
    return meta_graph.signature_def


def test_signature_def_map_is_the_saved_models(server_stubs, model_dir):
    response = metadata(server_stubs)
    assert list(response.metadata) == ["signature_def"]
    signatures = get_model_metadata_pb2.SignatureDefMap()
    assert response.metadata["signature_def"].Unpack(signatures)
    expected = saved_model_signatures(model_dir / "threshold" / "1")
    # Two descriptor pools (the client's messages, TensorFlow's SavedModel): compare their bytes.
    served = signatures.signature_def
    assert {name: sig.SerializeToString(deterministic=True) for name, sig in served.items()} == {
        name: sig.SerializeToString(deterministic=True) for name, sig in expected.items()
    }
    assert {"serving_default", "compact", "bounds"} <= set(signatures.signature_def)


def test_model_spec_names_model_and_version(server_stubs):
    response = metadata(server_stubs)
    assert response.model_spec.name == "threshold"
    assert response.model_spec.version.value == 1


def test_metadata_of_a_specific_version(server_stubs):
    request = get_model_metadata_pb2.GetModelMetadataRequest(
        model_spec=model_pb2.ModelSpec(name="threshold"), metadata_field=["signature_def"]
    )
    request.model_spec.version.value = 1
    assert server_stubs.prediction.GetModelMetadata(request, timeout=30).model_spec.version.value == 1
