"""serving.local's gRPC side answers as tensorflow_model_server 2.21 with default flags does.

Each test names the TF Serving (or TensorFlow) source it follows; paths are in the
tensorflow/serving repository unless they start with tensorflow/. A real server runs on
loopback and is called over gRPC.
"""

from __future__ import annotations

import json
import time
import urllib.request

import grpc
import numpy as np
import pytest
from tensorflow_serving.apis import (  # TF Serving's own classes for the methods the client never calls
    classification_pb2,
    inference_pb2,
    model_management_pb2,
    regression_pb2,
)
from tensorflow_serving.apis import model_pb2 as tfs_model_pb2

from client.protos import get_model_status_pb2, model_pb2, tensor_pb2, tensor_shape_pb2, types_pb2
from tests.support.embedded_server import (
    config_server,
    embedded_server,
    embedded_server_and_stubs,
    wait_until_available,
)
from tests.support.grpc_calls import ServingStubs, predict_request, tensor_array
from tests.support.models import (
    REFERENCE_INPUT,
    REFERENCE_MASK,
    copy_version,
    export_example_model,
    models_config,
)
from tests.support.rest_client import rest_call

GOOD = np.asarray([REFERENCE_INPUT], dtype=np.float32)


def shape(*sizes: int) -> tensor_shape_pb2.TensorShapeProto:
    return tensor_shape_pb2.TensorShapeProto(
        dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=s) for s in sizes]
    )


def failure(call, request) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as error:
        call(request, timeout=30)
    return error.value


def predict_tensor(stubs, tensor: tensor_pb2.TensorProto, **spec):
    request = predict_request(None, **spec)
    request.inputs["x"].CopyFrom(tensor)
    return stubs.prediction.Predict(request, timeout=30)


def mask_of(x: np.ndarray) -> np.ndarray:
    return ((x < np.float32(-0.1)) | (x > np.float32(0.1))).astype(np.float32)


# --- response encoding: servables/tensorflow/predict_util.cc (kAsProtoField by default) ----------


def test_float_outputs_come_back_in_float_val_by_default(server_stubs):
    """predict_util.cc RunPredict uses Tensor::AsProtoField unless the flag asks for tensor_content."""
    mask = server_stubs.prediction.Predict(predict_request(GOOD), timeout=30).outputs["mask"]
    assert mask.dtype == types_pb2.DT_FLOAT and not mask.tensor_content
    assert list(mask.float_val) == REFERENCE_MASK
    assert [dim.size for dim in mask.tensor_shape.dim] == [1, 8]


def test_uint8_outputs_come_back_in_int_val_by_default(server_stubs):
    """tensorflow/core/framework/tensor.cc: ProtoHelper<uint8> keeps values in int_val."""
    mask = server_stubs.prediction.Predict(predict_request(GOOD, signature="compact"), timeout=30).outputs[
        "mask"
    ]
    assert mask.dtype == types_pb2.DT_UINT8 and not mask.tensor_content
    assert list(mask.int_val) == REFERENCE_MASK


def test_empty_outputs_carry_no_values(server_stubs):
    """tensor.cc: a tensor without elements writes dtype and shape only."""
    mask = server_stubs.prediction.Predict(predict_request(np.zeros((0, 8), np.float32)), timeout=30).outputs[
        "mask"
    ]
    assert not mask.float_val and not mask.tensor_content
    assert [dim.size for dim in mask.tensor_shape.dim] == [0, 8]


@pytest.fixture(scope="module")
def content_server(model_dir):
    """A server with --enable-serialization-as-tensor-content and a small request tensor budget."""
    with embedded_server(
        model_dir, "--enable-serialization-as-tensor-content", "--max-request-tensor-bytes", "16"
    ) as handle:
        stubs = ServingStubs(handle.address)
        yield stubs
        stubs.close()


def test_tensor_content_flag_answers_in_tensor_content(content_server):
    """model_servers/main.cc --enable_serialization_as_tensor_content: AsProtoTensorContent."""
    for signature, dtype in (("serving_default", np.float32), ("compact", np.uint8)):
        mask = content_server.prediction.Predict(
            predict_request(GOOD, signature=signature), timeout=30
        ).outputs["mask"]
        assert not mask.float_val and not mask.int_val
        assert np.frombuffer(mask.tensor_content, dtype).tolist() == REFERENCE_MASK


# --- running the model: predict_util.cc RunPredict -> Session::Run, no checks of its own ----------


@pytest.mark.parametrize(
    "x", [GOOD[0], GOOD.reshape(2, 2, 2), np.float32(0.5)], ids=["rank1", "rank3", "rank0"]
)
def test_any_rank_runs_and_gives_a_same_shape_mask(server_stubs, x):
    """TF Serving checks no shape before Session::Run (tensorflow_model_server_test.py sends rank 1)."""
    mask = server_stubs.prediction.Predict(predict_request(np.asarray(x)), timeout=30).outputs["mask"]
    assert tensor_array(mask).shape == np.shape(x)
    np.testing.assert_array_equal(tensor_array(mask), mask_of(np.asarray(x)))


@pytest.mark.parametrize("dtype,name", [(np.float64, "double"), (np.int32, "int32"), (np.uint8, "uint8")])
def test_wrong_dtype_fails_with_the_runtimes_words(server_stubs, dtype, name):
    """The session's call frame (tensorflow/core/common_runtime/direct_session.cc) rejects the feed."""
    error = failure(server_stubs.prediction.Predict, predict_request(GOOD.astype(dtype)))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.details() == f"Expects arg[0] to be float but {name} is provided"


def test_init_op_signature_fails_on_its_input_count(server_stubs):
    """predict_util.cc: the method-name check is off by default, so VerifyRequestInputsSize answers."""
    error = failure(server_stubs.prediction.Predict, predict_request(GOOD, signature="__saved_model_init_op"))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.details() == (
        "input size does not match signature: 1!=0 len({x}) != len({}). "
        "Sent extra: {x}. Missing but required: {}."
    )


# --- decoding: tensorflow/cc/saved_model/util.cc GetInputValues + tensor.cc Tensor::FromProto ----


@pytest.mark.parametrize(
    "tensor",
    [
        tensor_pb2.TensorProto(
            dtype=types_pb2.DT_FLOAT, tensor_shape=shape(2, 8), tensor_content=GOOD.tobytes()
        ),
        tensor_pb2.TensorProto(dtype=types_pb2.DT_FLOAT, tensor_shape=shape(-1, 2)),
        tensor_pb2.TensorProto(dtype=types_pb2.DT_FLOAT, tensor_shape=shape(*[1] * 255)),
        tensor_pb2.TensorProto(dtype=types_pb2.DT_FLOAT, tensor_shape=shape(1 << 40, 1 << 40)),
        tensor_pb2.TensorProto(dtype=types_pb2.DT_INVALID, tensor_shape=shape(1)),
        tensor_pb2.TensorProto(dtype=types_pb2.DT_FLOAT_REF, tensor_shape=shape(1)),
        tensor_pb2.TensorProto(dtype=types_pb2.DT_BOOL, tensor_shape=shape(2), tensor_content=b"\x01\x02"),
        tensor_pb2.TensorProto(dtype=types_pb2.DT_STRING, tensor_shape=shape(2), tensor_content=b"\x05"),
    ],
    ids=[
        "content-length",
        "negative-dim",
        "rank-255",
        "int64-overflow",
        "dt-invalid",
        "dt-float-ref",
        "bool-byte-2",
        "string-content-cut",
    ],
)
def test_tensors_from_proto_rejects_are_parsing_errors(server_stubs, tensor):
    """util.cc GetInputValues: a failed Tensor::FromProto is exactly `tensor parsing error: <alias>`.

    tensor.cc: Helper<bool>::Decode refuses bytes other than 0 and 1; Helper<tstring>::Decode
    needs a length and the bytes of every string; reference dtypes have no decoder.
    """
    request = predict_request(None)
    request.inputs["x"].CopyFrom(tensor)
    error = failure(server_stubs.prediction.Predict, request)
    assert (error.code(), error.details()) == (grpc.StatusCode.INVALID_ARGUMENT, "tensor parsing error: x")


def test_unknown_rank_is_ignored_and_the_dims_decide(server_stubs):
    """tensor_shape.cc IsValid: "TensorShape allows parsing protos with unknown_shape() set"."""
    unknown = tensor_shape_pb2.TensorShapeProto(unknown_rank=True)
    scalar = tensor_pb2.TensorProto(dtype=types_pb2.DT_FLOAT, tensor_shape=unknown, float_val=[0.5])
    mask = predict_tensor(server_stubs, scalar).outputs["mask"]
    assert tensor_array(mask).shape == () and list(mask.float_val) == [1]
    row = tensor_pb2.TensorProto(
        dtype=types_pb2.DT_FLOAT, tensor_shape=shape(1, 8), tensor_content=GOOD.tobytes()
    )
    row.tensor_shape.unknown_rank = True
    mask = predict_tensor(server_stubs, row).outputs["mask"]
    assert tensor_array(mask).shape == (1, 8) and list(mask.float_val) == REFERENCE_MASK


def _string_content(*strings: bytes) -> bytes:
    """tensorflow/core/platform/tensor_coding.cc EncodeStringList: varint lengths, then the bytes."""
    return bytes(len(s) for s in strings) + b"".join(strings)


@pytest.mark.parametrize(
    "tensor,name",
    [
        (
            tensor_pb2.TensorProto(dtype=types_pb2.DT_STRING, tensor_shape=shape(1, 2), string_val=[b"a"]),
            "string",
        ),
        (
            tensor_pb2.TensorProto(
                dtype=types_pb2.DT_STRING, tensor_shape=shape(2), tensor_content=_string_content(b"ab", b"")
            ),
            "string",
        ),
        (
            tensor_pb2.TensorProto(dtype=types_pb2.DT_BFLOAT16, tensor_shape=shape(1, 8), half_val=[16256]),
            "bfloat16",
        ),
        (tensor_pb2.TensorProto(dtype=types_pb2.DT_HALF, tensor_shape=shape(1, 8), half_val=[15360]), "half"),
        (
            tensor_pb2.TensorProto(dtype=types_pb2.DT_COMPLEX64, tensor_shape=shape(2), scomplex_val=[1, 2]),
            "complex64",
        ),
        (
            tensor_pb2.TensorProto(
                dtype=types_pb2.DT_COMPLEX128, tensor_shape=shape(2), tensor_content=bytes(32)
            ),
            "complex128",
        ),
        (tensor_pb2.TensorProto(dtype=types_pb2.DT_QINT8, tensor_shape=shape(2), int_val=[3]), "qint8"),
        (tensor_pb2.TensorProto(dtype=types_pb2.DT_QUINT16, tensor_shape=shape(2)), "quint16"),
        (
            tensor_pb2.TensorProto(
                dtype=types_pb2.DT_FLOAT8_E4M3FN, tensor_shape=shape(2), float8_val=b"\x38"
            ),
            "float8_e4m3fn",
        ),
        (tensor_pb2.TensorProto(dtype=types_pb2.DT_INT4, tensor_shape=shape(3), int_val=[7]), "int4"),
    ],
    ids=lambda value: value if isinstance(value, str) else types_pb2.DataType.Name(value.dtype),
)
def test_dtypes_the_model_does_not_take_reach_the_session(server_stubs, tensor, name):
    """tensor.cc FromProto decodes every dtype; the session refuses the feed (direct_session.cc)."""
    request = predict_request(None)
    request.inputs["x"].CopyFrom(tensor)
    error = failure(server_stubs.prediction.Predict, request)
    assert (error.code(), error.details()) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        f"Expects arg[0] to be float but {name} is provided",
    )


def test_more_float_val_than_the_shape_holds_are_cut_off(server_stubs):
    """tensor.cc FromProtoField copies min(n, values) and ignores the rest."""
    tensor = tensor_pb2.TensorProto(
        dtype=types_pb2.DT_FLOAT, tensor_shape=shape(1, 2), float_val=[1, 0, 5, 5]
    )
    assert list(predict_tensor(server_stubs, tensor).outputs["mask"].float_val) == [1, 0]


def test_fewer_float_val_repeat_the_last_and_none_are_zeros(server_stubs):
    """tensor.cc FromProtoField: the last value fills the rest; no values at all mean zeros."""
    tensor = tensor_pb2.TensorProto(dtype=types_pb2.DT_FLOAT, tensor_shape=shape(1, 3), float_val=[0, 1])
    assert list(predict_tensor(server_stubs, tensor).outputs["mask"].float_val) == [0, 1, 1]
    tensor = tensor_pb2.TensorProto(dtype=types_pb2.DT_FLOAT, tensor_shape=shape(2, 2))
    assert list(predict_tensor(server_stubs, tensor).outputs["mask"].float_val) == [0, 0, 0, 0]


def test_values_in_another_dtypes_field_are_not_read(server_stubs):
    """tensor.cc reads only the dtype's own field: double_val of a DT_FLOAT tensor is ignored (zeros)."""
    tensor = tensor_pb2.TensorProto(dtype=types_pb2.DT_FLOAT, tensor_shape=shape(1, 2), double_val=[5, 5])
    assert list(predict_tensor(server_stubs, tensor).outputs["mask"].float_val) == [0, 0]


def test_tensor_content_wins_over_value_fields(server_stubs):
    """tensor.cc FromProto: a non-empty tensor_content is decoded, value fields are not looked at."""
    tensor = tensor_pb2.TensorProto(
        dtype=types_pb2.DT_FLOAT, tensor_shape=shape(1, 8), tensor_content=GOOD.tobytes(), float_val=[0.0]
    )
    assert list(predict_tensor(server_stubs, tensor).outputs["mask"].float_val) == REFERENCE_MASK


# --- bounded allocation (no TF Serving counterpart: it would try to allocate) ---------------------


@pytest.mark.parametrize("sizes", [(1, 1 << 26), (1 << 20, 1 << 20)])
def test_one_value_cannot_expand_past_the_budget(server_stubs, sizes):
    """A 41-byte request must not make the server allocate gigabytes: refused before decoding."""
    tensor = tensor_pb2.TensorProto(dtype=types_pb2.DT_FLOAT, tensor_shape=shape(*sizes), float_val=[1.0])
    request = predict_request(None)
    request.inputs["x"].CopyFrom(tensor)
    error = failure(server_stubs.prediction.Predict, request)
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "--max-request-tensor-bytes" in error.details()


def test_shape_no_array_can_hold_is_refused_clearly(server_stubs):
    """[0, 2^62] is a valid TensorShape with no elements, but no numpy array can have it."""
    request = predict_request(None)
    request.inputs["x"].CopyFrom(
        tensor_pb2.TensorProto(dtype=types_pb2.DT_FLOAT, tensor_shape=shape(0, 1 << 62))
    )
    error = failure(server_stubs.prediction.Predict, request)
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "[0,4611686018427387904]" in error.details()


def test_one_string_cannot_expand_past_the_budget(server_stubs):
    """A string_val of one value is repeated like any value field: bounded before TensorFlow decodes it."""
    tensor = tensor_pb2.TensorProto(dtype=types_pb2.DT_STRING, tensor_shape=shape(1 << 26), string_val=[b"a"])
    request = predict_request(None)
    request.inputs["x"].CopyFrom(tensor)
    error = failure(server_stubs.prediction.Predict, request)
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "--max-request-tensor-bytes" in error.details()


@pytest.mark.parametrize("rank", [65, 254])
def test_ranks_past_numpys_limit_are_refused_clearly(server_stubs, rank):
    """tensor_shape.cc allows 254 dims, numpy 64: this server cannot feed more, and says so (not INTERNAL)."""
    tensor = tensor_pb2.TensorProto(dtype=types_pb2.DT_FLOAT, tensor_shape=shape(*[1] * rank), float_val=[1])
    request = predict_request(None)
    request.inputs["x"].CopyFrom(tensor)
    error = failure(server_stubs.prediction.Predict, request)
    assert (error.code(), error.details()) == (
        grpc.StatusCode.UNIMPLEMENTED,
        f"input x has {rank} dimensions; this server feeds at most 64 (TensorFlow takes up to 254)",
    )


@pytest.mark.parametrize("dtype", [types_pb2.DT_RESOURCE, types_pb2.DT_VARIANT], ids=types_pb2.DataType.Name)
def test_handle_dtypes_are_refused_clearly(server_stubs, dtype):
    """tensor.cc decodes resource and variant tensors, but no numpy array can carry them to the session."""
    request = predict_request(None)
    request.inputs["x"].CopyFrom(tensor_pb2.TensorProto(dtype=dtype, tensor_shape=shape(1)))
    error = failure(server_stubs.prediction.Predict, request)
    assert (error.code(), error.details()) == (
        grpc.StatusCode.UNIMPLEMENTED,
        f"input x is a {types_pb2.DataType.Name(dtype)} tensor, which this server cannot feed to a model",
    )


def test_budget_is_a_flag_and_spares_tensor_content(content_server):
    """--max-request-tensor-bytes bounds value fields; tensor_content is a view of the message."""
    tensor = tensor_pb2.TensorProto(
        dtype=types_pb2.DT_FLOAT, tensor_shape=shape(1, 8), float_val=REFERENCE_INPUT
    )
    request = predict_request(None)
    request.inputs["x"].CopyFrom(tensor)
    assert failure(content_server.prediction.Predict, request).code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert content_server.prediction.Predict(predict_request(GOOD), timeout=30).outputs["mask"].tensor_content


# --- Classify / Regress: servables/tensorflow/classifier.cc, regressor.cc ------------------------


def _inference_call(stubs, method: str, request_class, response_class, service: str = "PredictionService"):
    return stubs.channel.unary_unary(
        f"/tensorflow.serving.{service}/{method}",
        request_serializer=request_class.SerializeToString,
        response_deserializer=response_class.FromString,
    )


def test_classify_on_a_predict_signature_names_the_missing_inputs(server_stubs):
    """classifier.cc PreProcessClassification: no "inputs" alias -> INVALID_ARGUMENT with the SignatureDef."""
    call = _inference_call(
        server_stubs,
        "Classify",
        classification_pb2.ClassificationRequest,
        classification_pb2.ClassificationResponse,
    )
    request = classification_pb2.ClassificationRequest(model_spec=tfs_model_pb2.ModelSpec(name="threshold"))
    error = failure(call, request)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.details().startswith("No classification inputs found in SignatureDef: ")
    assert 'name: "serving_default_x:0"' in error.details()
    assert failure(call, classification_pb2.ClassificationRequest()).details() == "Missing ModelSpec"


def test_regress_on_predict_signatures_fails_as_regressor_cc(server_stubs):
    """regressor.cc PreProcessRegression: one output required, then the "inputs" alias."""
    call = _inference_call(
        server_stubs, "Regress", regression_pb2.RegressionRequest, regression_pb2.RegressionResponse
    )

    def spec(signature=""):
        return regression_pb2.RegressionRequest(
            model_spec=tfs_model_pb2.ModelSpec(name="threshold", signature_name=signature)
        )

    error = failure(call, spec())
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.details().startswith("No regression inputs found in SignatureDef: ")
    assert failure(call, spec("bounds")).details() == "Expected one output Tensor."
    assert failure(call, spec("nope")).details() == "No signature was found with the name: nope"


CLASSIFY, REGRESS = "tensorflow/serving/classify", "tensorflow/serving/regress"


def _multi_inference(stubs, *tasks: tuple[str, str, str]) -> grpc.RpcError:
    """A MultiInference call of tasks (model, signature, method_name); the error it fails with."""
    request = inference_pb2.MultiInferenceRequest()
    for model, signature, method in tasks:
        request.tasks.add(
            model_spec=tfs_model_pb2.ModelSpec(name=model, signature_name=signature), method_name=method
        )
    call = _inference_call(
        stubs, "MultiInference", inference_pb2.MultiInferenceRequest, inference_pb2.MultiInferenceResponse
    )
    return failure(call, request)


def test_multi_inference_resolves_the_first_tasks_model(server_stubs):
    """multi_inference_helper.cc: the first task's ModelSpec (or an empty one) names the servable."""
    error = _multi_inference(server_stubs)
    assert (error.code(), error.details()) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "ModelSpec has no name specified.",
    )
    error = _multi_inference(server_stubs, ("nope", "", CLASSIFY), ("threshold", "", CLASSIFY))
    assert (error.code(), error.details()) == (
        grpc.StatusCode.NOT_FOUND,
        "Servable not found for request: Latest(nope)",
    )


@pytest.fixture(scope="module")
def examples_stubs(tmp_path_factory):
    """A server of a model with real classification and regression signatures ("classify", "regress")."""
    base = export_example_model(tmp_path_factory.mktemp("examples"))
    with embedded_server(
        None, "--model-name", "examples", "--model-base-path", str(base), wait=False
    ) as handle:
        wait_until_available(handle, "examples")
        stubs = ServingStubs(handle.address)
        yield stubs
        stubs.close()


@pytest.mark.parametrize(
    "tasks,message",
    [
        (
            (("examples", "classify", CLASSIFY), ("", "regress", REGRESS)),
            "Found ModelSpec with an empty model name.",
        ),
        (
            (("examples", "classify", CLASSIFY), ("other", "regress", REGRESS)),
            "All ModelSpecs in a MultiInferenceRequest must access the same model name.",
        ),
        (
            (("examples", "classify", CLASSIFY), ("examples", "classify", REGRESS)),
            "Duplicate evaluation of signature: classify",
        ),
        (
            (("examples", "classify", CLASSIFY), ("examples", "regress", CLASSIFY)),
            'Expected classification signature outputs to contain at least one of "classes" or "scores". '
            "Signature was: ",
        ),
    ],
    ids=["empty-name", "two-models", "duplicate", "classify-a-regression"],
)
def test_multi_inference_checks_every_task_in_order(examples_stubs, tasks, message):
    """multi_inference.cc Infer: each task's name, model, signature and method, the first task passing."""
    error = _multi_inference(examples_stubs, *tasks)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.details() == message or (message.endswith("was: ") and error.details().startswith(message))


def test_multi_inference_this_server_would_have_to_run_is_unimplemented(examples_stubs):
    """Tasks TF Serving would run on tf.Examples (multi_inference.cc): this server runs Predict only."""
    tasks = (("examples", "classify", CLASSIFY), ("examples", "regress", REGRESS))
    error = _multi_inference(examples_stubs, *tasks)
    assert (error.code(), error.details()) == (
        grpc.StatusCode.UNIMPLEMENTED,
        "MultiInference is not supported by this server; use Predict",
    )


@pytest.mark.parametrize(
    "tasks,message",
    [
        ((("threshold", "nope", "nope"),), "Requested signature not found in model graph: nope"),
        ((("threshold", "bounds", REGRESS),), "Expected one output Tensor."),
    ],
    ids=["no-signature", "regress-outputs"],
)
def test_multi_inference_on_predict_signatures_fails_as_classify_and_regress(server_stubs, tasks, message):
    """multi_inference.cc Infer: the signature must exist, then PreProcessClassification/Regression."""
    error = _multi_inference(server_stubs, *tasks)
    assert (error.code(), error.details()) == (grpc.StatusCode.INVALID_ARGUMENT, message)


def test_multi_inference_classify_on_a_predict_signature_names_the_missing_inputs(server_stubs):
    """multi_inference.cc -> classifier.cc PreProcessClassification, as Classify answers it."""
    error = _multi_inference(server_stubs, ("threshold", "compact", CLASSIFY))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.details().startswith("No classification inputs found in SignatureDef: ")
    assert 'name: "compact_x:0"' in error.details()


@pytest.mark.parametrize("method", ["", "tensorflow/serving/predict"])
def test_multi_inference_other_method_names_are_unimplemented(server_stubs, method):
    """multi_inference.cc: a task neither classify nor regress is UNIMPLEMENTED, after the spec checks."""
    error = _multi_inference(server_stubs, ("threshold", "", method))
    assert (error.code(), error.details()) == (
        grpc.StatusCode.UNIMPLEMENTED,
        f"Unsupported signature method_name: {method}",
    )


def _reload_call(stubs):
    return _inference_call(
        stubs,
        "HandleReloadConfigRequest",
        model_management_pb2.ReloadConfigRequest,
        model_management_pb2.ReloadConfigResponse,
        service="ModelService",
    )


def test_reload_config_with_an_unsupported_config_is_invalid(server_stubs):
    """model_servers/model_service_impl.cc HandleReloadConfigRequest: only model_config_list."""
    error = failure(_reload_call(server_stubs), model_management_pb2.ReloadConfigRequest())
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.details() == (
        "ServerModelConfig type not supported by HandleReloadConfigRequest. "
        "Only ModelConfigList is currently supported"
    )


# --- request bytes that are no message: grpc's include/grpcpp/impl/proto_utils.h ---------------


@pytest.mark.parametrize(
    "method",
    [
        "PredictionService/Predict",
        "PredictionService/GetModelMetadata",
        "PredictionService/Classify",
        "PredictionService/Regress",
        "PredictionService/MultiInference",
        "ModelService/GetModelStatus",
        "ModelService/HandleReloadConfigRequest",
    ],
)
def test_request_bytes_that_do_not_parse_are_internal_with_no_message(server_stubs, method):
    """grpc's include/grpcpp/impl/proto_utils.h GenericDeserialize: a failed ParseFromZeroCopyStream
    is Status(INTERNAL, msg->InitializationErrorString()), which is empty for proto3 messages (no
    required fields); the method itself never runs. b"\x0a\xff\xff": field 1, length-delimited, its
    length a varint cut off."""
    call = server_stubs.channel.unary_unary(f"/tensorflow.serving.{method}")
    error = failure(call, b"\x0a\xff\xff")
    assert (error.code(), error.details()) == (grpc.StatusCode.INTERNAL, "")


# --- metrics: util/prometheus_exporter.cc, servables/tensorflow/util.cc ------------------------


def _metrics_page(server) -> str:
    url = f"http://127.0.0.1:{server.rest_port}/monitoring/prometheus/metrics"
    with urllib.request.urlopen(url, timeout=30) as answer:
        return answer.read().decode()


def test_metrics_use_tf_serving_names_and_labels(server, server_stubs):
    """prometheus_exporter.cc: `/` becomes `:`, counters keep their name, no HELP; util.cc labels."""
    server_stubs.prediction.Predict(predict_request(GOOD), timeout=30)
    page = _metrics_page(server)
    assert "# TYPE :tensorflow:serving:request_count counter" in page
    assert ':tensorflow:serving:request_count{model_name="threshold",status="OK"}' in page
    assert "_total" not in page and "# HELP" not in page
    assert (
        '\n:tensorflow:serving:request_latency_bucket{model_name="threshold",API="Predict",'
        'entrypoint="GRPC",le="10"}'
    ) in page
    assert (
        ':tensorflow:serving:runtime_latency_count{model_name="threshold",API="Predict",runtime="TF1"}'
        in page
    )
    assert 'le="+Inf"' in page


def test_requests_for_unknown_models_add_no_labels(server, server_stubs):
    """A model name is a label only for served models, so no request can grow the page for good."""
    name = "n" * (512 * 1024)
    with pytest.raises(grpc.RpcError):
        server_stubs.prediction.Predict(predict_request(GOOD, model=name), timeout=30)
    page = _metrics_page(server)
    assert name not in page and len(page) < 64 * 1024


# --- model status: get_model_status_impl.cc, ServableStateMonitor -----------------------------


@pytest.fixture(scope="module")
def two_version_server(model_dir, tmp_path_factory):
    """Versions 1 and 2 served (latest 2), a broken version 3, and stray entries in the base path.

    Version 3 appears once the server runs: a failed latest version at start-up would keep it from
    starting (server_core.cc WaitUntilModelsAvailable; tests/test_server_version_loading.py)."""
    models = tmp_path_factory.mktemp("two-versions")
    copy_version(model_dir, models, 1)
    copy_version(model_dir, models, 1, as_version=2)
    (models / "threshold" / "\u00b2").mkdir()  # a digit to Python, not to absl::SimpleAtoi
    (models / "threshold" / str(1 << 64)).mkdir()  # past int64
    config = models_config(models / "models.config", num_versions=3)
    with config_server(
        config,
        models,
        "--file-system-poll-wait-seconds",
        "0.2",
        "--max-num-load-retries",
        "0",  # version 3 fails for good at once, not after five one-minute retries
    ) as handle:
        stubs = ServingStubs(handle.address)
        (models / "threshold" / "3").mkdir()  # no saved_model.pb: session_bundle_util.cc says NOT_FOUND
        request = get_model_status_pb2.GetModelStatusRequest(model_spec=model_pb2.ModelSpec(name="threshold"))
        request.model_spec.version.value = 3
        deadline = time.monotonic() + 60
        while not _reported(stubs, request, get_model_status_pb2.ModelVersionStatus.END):
            assert time.monotonic() < deadline, f"version 3 never failed:\n{handle.log()}"
            time.sleep(0.1)
        yield handle, stubs, models
        stubs.close()


def _reported(stubs, request, state: int) -> bool:
    """Whether GetModelStatus reports the request's version in state (not found yet: False)."""
    try:
        (status,) = stubs.model.GetModelStatus(request, timeout=10).model_version_status
    except grpc.RpcError:
        return False
    return status.state == state


def test_model_status_lists_versions_newest_first(two_version_server):
    """ServableStateMonitor's VersionMap is ordered newest first; GetModelStatus walks it."""
    _, stubs, _ = two_version_server
    request = get_model_status_pb2.GetModelStatusRequest(model_spec=model_pb2.ModelSpec(name="threshold"))
    versions = [
        status.version for status in stubs.model.GetModelStatus(request, timeout=10).model_version_status
    ]
    assert versions == sorted(versions, reverse=True) and {1, 2, 3} <= set(versions)


def test_failed_version_reports_the_loaders_code(two_version_server):
    """The monitor keeps the loader's status: a version without saved_model.pb is NOT_FOUND
    (session_bundle/oss/session_bundle_util.cc, LoadSessionBundleOrSavedModelBundle)."""
    _, stubs, _ = two_version_server
    request = get_model_status_pb2.GetModelStatusRequest(model_spec=model_pb2.ModelSpec(name="threshold"))
    request.model_spec.version.value = 3
    (status,) = stubs.model.GetModelStatus(request, timeout=10).model_version_status
    assert status.state == get_model_status_pb2.ModelVersionStatus.END
    assert status.status.error_code == grpc.StatusCode.NOT_FOUND.value[0]
    assert status.status.error_message.startswith(
        "Specified file path does not appear to contain a SavedModel bundle"
    )


def test_stray_directories_are_ignored_and_logged_once(two_version_server):
    """file_system_storage_path_source.cc ParseVersionNumber: names that are no int64 are skipped."""
    handle, stubs, models = two_version_server
    assert stubs.prediction.Predict(predict_request(GOOD), timeout=30).model_spec.version.value == 2
    copy_version(models, models, 1, as_version=4)  # polling still works with the strays there
    request = get_model_status_pb2.GetModelStatusRequest(model_spec=model_pb2.ModelSpec(name="threshold"))
    request.model_spec.version.value = 4
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            (status,) = stubs.model.GetModelStatus(request, timeout=10).model_version_status
            if status.state == get_model_status_pb2.ModelVersionStatus.AVAILABLE:
                break
        except grpc.RpcError:
            pass
        time.sleep(0.2)
    assert stubs.prediction.Predict(predict_request(GOOD), timeout=30).model_spec.version.value == 4
    log = handle.log()
    assert log.count("ignoring \u00b2") == 1 and log.count(f"ignoring {1 << 64}") == 1


def test_reload_config_with_a_model_config_list_applies_it(two_version_server):
    """model_service_impl.cc: a model_config_list goes to ServerCore::ReloadConfig; OK in the response."""
    _, stubs, models = two_version_server
    from serving.local.config import parse_model_server_config

    request = model_management_pb2.ReloadConfigRequest()
    request.config.CopyFrom(parse_model_server_config((models / "models.config").read_text()))
    response = _reload_call(stubs)(request, timeout=60)
    assert response.status.error_code == 0
    assert stubs.prediction.Predict(predict_request(GOOD), timeout=30).outputs["mask"].float_val


# --- the value-field encoder: bytes identical to protobuf's own serialization ----------------------

_FIELDS = {
    np.float32: "float_val",
    np.float64: "double_val",
    np.int32: "int_val",
    np.int16: "int_val",
    np.int8: "int_val",
    np.uint8: "int_val",
    np.uint16: "int_val",
    np.int64: "int64_val",
    np.bool_: "bool_val",
    np.uint32: "uint32_val",
    np.uint64: "uint64_val",
}


@pytest.mark.parametrize(
    "array",
    [
        np.linspace(-3, 3, 12, dtype=np.float32).reshape(3, 4),
        np.array([0.1, -1e300, np.inf], np.float64),
        np.array([0, 1, 127, 128, 300, -1, -(2**31), 2**31 - 1], np.int32),
        np.array([-32768, 0, 32767], np.int16),
        np.array([-128, -1, 0, 1, 127], np.int8),
        np.arange(256, dtype=np.uint8).reshape(16, 16),
        np.array([[0, 1], [1, 0]], np.uint8),
        np.array([0, 65535], np.uint16),
        np.array([-(2**63), -1, 0, 2**63 - 1], np.int64),
        np.array([True, False, True]),
        np.array([0, 2**32 - 1], np.uint32),
        np.array([0, 2**64 - 1], np.uint64),
        np.float32(0.5),
        np.zeros((0, 3), np.float32),
    ],
    ids=lambda array: f"{np.asarray(array).dtype}{list(np.shape(array))}",
)
def test_value_fields_are_encoded_as_protobuf_would(array):
    """tensor.cc AsProtoField: every element into the dtype's packed field, dtype and shape first."""
    from client.tensors import dtype_enum, encode_tensor

    array = np.asarray(array)
    expected = tensor_pb2.TensorProto(dtype=dtype_enum(array.dtype))
    expected.tensor_shape.SetInParent()
    for size in array.shape:
        expected.tensor_shape.dim.add(size=size)
    getattr(expected, _FIELDS[array.dtype.type]).extend(array.reshape(-1).tolist())
    assert b"".join(encode_tensor(array, as_content=False)) == expected.SerializeToString()


def test_half_values_are_their_bit_patterns():
    """tensor.cc ProtoHelper<Eigen::half>: half_val holds each value's 16 bits."""
    from client.tensors import encode_tensor

    array = np.array([1.0, -2.5, 65504], np.float16)
    decoded = tensor_pb2.TensorProto.FromString(b"".join(encode_tensor(array, as_content=False)))
    assert decoded.dtype == types_pb2.DT_HALF
    assert np.array(decoded.half_val, np.uint16).view(np.float16).tolist() == array.tolist()


# --- --enable-signature-method-name-check: predict_util.cc VerifySignature, classifier.cc, regressor.cc


@pytest.fixture(scope="module")
def method_check_server(model_dir):
    with embedded_server_and_stubs(model_dir, "--enable-signature-method-name-check") as served:
        yield served


def test_with_the_method_name_check_predict_signatures_still_serve(method_check_server):
    _, stubs = method_check_server
    response = stubs.prediction.Predict(predict_request(GOOD), timeout=30)
    assert tensor_array(response.outputs["mask"]).tolist() == [REFERENCE_MASK]


def test_with_the_method_name_check_predict_refuses_the_init_op_by_its_method(method_check_server):
    """VerifySignature runs before the input count: INTERNAL, naming the three accepted methods."""
    _, stubs = method_check_server
    error = failure(stubs.prediction.Predict, predict_request(GOOD, signature="__saved_model_init_op"))
    assert (error.code(), error.details()) == (
        grpc.StatusCode.INTERNAL,
        "Expected prediction signature method_name to be one of {tensorflow/serving/predict, "
        "tensorflow/serving/classify, tensorflow/serving/regress}. Was: ",
    )


def test_with_the_method_name_check_classify_and_regress_name_the_method(method_check_server):
    """GetClassificationSignatureDef / GetRegressionSignatureDef check the method before the inputs,
    and PreProcessClassification does for MultiInference's tasks (multi_inference.cc)."""
    handle, stubs = method_check_server
    classify = _inference_call(
        stubs, "Classify", classification_pb2.ClassificationRequest, classification_pb2.ClassificationResponse
    )
    regress = _inference_call(
        stubs, "Regress", regression_pb2.RegressionRequest, regression_pb2.RegressionResponse
    )
    spec = tfs_model_pb2.ModelSpec(name="threshold")
    was = "Was: tensorflow/serving/predict"
    expected_classify = f"Expected classification signature method_name to be {CLASSIFY}. {was}"
    for call, request, message in (
        (classify, classification_pb2.ClassificationRequest(model_spec=spec), expected_classify),
        (
            regress,
            regression_pb2.RegressionRequest(model_spec=spec),
            f"Expected regression signature method_name to be {REGRESS}. {was}",
        ),
    ):
        error = failure(call, request)
        assert (error.code(), error.details()) == (grpc.StatusCode.INVALID_ARGUMENT, message)
    error = _multi_inference(stubs, ("threshold", "", CLASSIFY))
    assert (error.code(), error.details()) == (grpc.StatusCode.INVALID_ARGUMENT, expected_classify)
    status, text = rest_call(
        handle.rest_port, "POST", "/v1/models/threshold:classify", {"examples": [{"x": 1.0}]}
    )
    assert (status, json.loads(text)) == (400, {"error": expected_classify})
