"""How the embedded server finds, loads, retries and forgets versions, as TF Serving's source and manager do.

TF Serving: tensorflow_serving/sources/storage_path/file_system_storage_path_source.cc (which
children are versions, and from which path each loads), core/loader_harness.cc with
util/retrier.cc (retries), core/aspired_versions_manager.cc FlushServables (forgetting a
failed version), session_bundle/oss/session_bundle_util.cc and TensorFlow's ReadBinaryProto
(the failed load's status).
"""

from __future__ import annotations

import contextlib
import shutil
import time
from pathlib import Path

import grpc
import numpy as np
from google.protobuf import text_format
from tensorflow.core.protobuf import saved_model_pb2

from client.protos import get_model_status_pb2, model_pb2
from tests.support.embedded_server import config_server, embedded_server, start_failure_log
from tests.support.grpc_calls import ServingStubs, predict_request, tensor_array
from tests.support.models import REFERENCE_INPUT, REFERENCE_MASK, copy_version, models_config

State = get_model_status_pb2.ModelVersionStatus
FAST_POLL = ("--file-system-poll-wait-seconds", "0.1")
NO_SAVED_MODEL = (
    "Specified file path does not appear to contain a SavedModel bundle (should have a file called "
    "`saved_model.pb`)\nSpecified file path: {}"
)


def version_status(stubs: ServingStubs, version: int) -> State | None:
    request = get_model_status_pb2.GetModelStatusRequest(model_spec=model_pb2.ModelSpec(name="threshold"))
    request.model_spec.version.value = version
    try:
        (status,) = stubs.model.GetModelStatus(request, timeout=10).model_version_status
    except grpc.RpcError:
        return None
    return status


def wait_for(condition, handle, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}:\n{handle.log()}"
        time.sleep(0.1)


def in_state(stubs, version: int, state: int) -> bool:
    status = version_status(stubs, version)
    return status is not None and status.state == state


def answers(stubs, version: int | None = None) -> int:
    """Predict the reference batch; the version that answered (after checking the mask)."""
    response = stubs.prediction.Predict(
        predict_request(np.asarray([REFERENCE_INPUT], np.float32), version=version), timeout=30
    )
    assert tensor_array(response.outputs["mask"]).tolist() == [REFERENCE_MASK]
    return response.model_spec.version.value


@contextlib.contextmanager
def serving_every_version(models: Path, **options):
    """The threshold model under models with every version aspired (policy all), no load retries."""
    config = models_config(models / "models.config", policy="all {}")
    with config_server(config, models, "--max-num-load-retries", "0", **options) as handle:
        yield handle


def write_version_atomically(model_dir: Path, models: Path, name: str) -> None:
    """A complete copy of threshold/1 appears as threshold/<name> in one rename."""
    staging = models / "threshold" / f".partial-{name}"
    shutil.copytree(Path(model_dir) / "threshold" / "1", staging)
    staging.rename(models / "threshold" / name)


def test_a_base_path_that_vanishes_keeps_its_versions_serving(model_dir, tmp_path):
    """PollFileSystemForServable: a missing base path is an error and no aspired versions are sent,
    "so we don't emit an empty aspired-versions list for a ... transiently unavailable base-path"."""
    copy_version(model_dir, tmp_path)
    base = tmp_path / "threshold"
    with embedded_server(tmp_path, *FAST_POLL) as handle:
        stubs = ServingStubs(handle.address)
        try:
            base.rename(tmp_path / "away")
            message = (
                f"Could not find base path {base} for servable threshold with error "
                f"NOT_FOUND: {base} not found"
            )
            wait_for(lambda: message in handle.log(), handle, "the poll to miss the base path")
            assert in_state(stubs, 1, State.AVAILABLE) and answers(stubs) == 1
            (tmp_path / "away").rename(base)
            assert in_state(stubs, 1, State.AVAILABLE) and answers(stubs) == 1
        finally:
            stubs.close()
        assert "unloaded threshold version 1" not in handle.log()
        assert handle.log().count(message) == 1  # said once per outage, not at every poll


def test_a_failed_load_is_retried_and_stays_loading_meanwhile(model_dir, tmp_path):
    """loader_harness.cc Load: Retry(max_num_load_retries, load_retry_interval_micros) while the
    harness stays kLoading; a version completed during the retries loads."""
    copy_version(model_dir, tmp_path)
    with embedded_server(
        tmp_path, *FAST_POLL, "--max-num-load-retries", "100000", "--load-retry-interval-micros", "100000"
    ) as handle:
        stubs = ServingStubs(handle.address)
        try:
            (tmp_path / "threshold" / "2").mkdir()
            retried = "Retrying of Loading servable: {name: threshold version: 2} retry: 1"
            wait_for(lambda: retried in handle.log(), handle, "a retry")
            assert in_state(stubs, 2, State.LOADING) and answers(stubs) == 1
            for item in (model_dir / "threshold" / "1").iterdir():  # saved_model.pb last: then it loads
                if item.name != "saved_model.pb":
                    (shutil.copytree if item.is_dir() else shutil.copy)(
                        item, tmp_path / "threshold" / "2" / item.name
                    )
            shutil.copy(model_dir / "threshold" / "1" / "saved_model.pb", tmp_path / "threshold" / "2")
            wait_for(lambda: in_state(stubs, 2, State.AVAILABLE), handle, "version 2 to load on a retry")
            assert answers(stubs) == 2
        finally:
            stubs.close()
        failed = NO_SAVED_MODEL.format(tmp_path / "threshold" / "2")
        assert f"Loading servable: {{name: threshold version: 2}} failed: {failed}" in handle.log()


def test_a_failed_version_no_longer_aspired_is_forgotten_and_loads_when_written_again(model_dir, tmp_path):
    """aspired_versions_manager.cc FlushServables: a version in kError that is no longer aspired
    stops being managed, so the same number aspired again gets a new load."""
    copy_version(model_dir, tmp_path)
    with embedded_server(tmp_path, *FAST_POLL, "--max-num-load-retries", "0") as handle:
        stubs = ServingStubs(handle.address)
        try:
            (tmp_path / "threshold" / "2").mkdir()
            wait_for(lambda: in_state(stubs, 2, State.END), handle, "version 2 to fail")
            assert "Retrying" not in handle.log()  # --max-num-load-retries 0: tried once
            (tmp_path / "threshold" / "2").rmdir()
            forgot = "forgot the failed threshold version 2: it is no longer aspired"
            wait_for(lambda: forgot in handle.log(), handle, "version 2 to be forgotten")
            write_version_atomically(model_dir, tmp_path, "2")
            wait_for(lambda: in_state(stubs, 2, State.AVAILABLE), handle, "version 2 to load again")
            assert answers(stubs) == 2
        finally:
            stubs.close()


def test_versions_load_from_their_own_child_and_fail_with_tf_servings_status(model_dir, tmp_path):
    """file_system_storage_path_source.cc: "007" is version 7 and loads from <base>/007
    (SpecificVersionsLeadingZeros); a regular file "9" is aspired too, as nothing checks for a
    directory. The failures: session_bundle_util.cc's NOT_FOUND for a version without
    saved_model.pb, ReadBinaryProto's DATA_LOSS for one that does not parse."""
    base = tmp_path / "threshold"
    copy_version(model_dir, tmp_path, as_version=7)
    (base / "7").rename(base / "007")
    (base / "9").write_text("a file, not a SavedModel")
    (base / "4").mkdir()
    (base / "3").mkdir()
    (base / "3" / "saved_model.pb").write_bytes(b"\xff\xff not a SavedModel")
    copy_version(model_dir, tmp_path, as_version=10)  # the latest loads, so the server starts
    with serving_every_version(tmp_path) as handle:
        stubs = ServingStubs(handle.address)
        try:
            assert answers(stubs, version=7) == 7 and answers(stubs) == 10
            expected = {
                9: (grpc.StatusCode.NOT_FOUND, NO_SAVED_MODEL.format(base / "9")),
                4: (grpc.StatusCode.NOT_FOUND, NO_SAVED_MODEL.format(base / "4")),
                3: (
                    grpc.StatusCode.DATA_LOSS,
                    f"Can't parse {base / '3' / 'saved_model.pb'} as binary proto",
                ),
            }
            for version, (code, message) in expected.items():
                status = version_status(stubs, version)
                assert status.state == State.END
                assert (status.status.error_code, status.status.error_message) == (code.value[0], message)
        finally:
            stubs.close()
        assert "loaded threshold version 7" in handle.log()


def test_a_latest_version_that_fails_keeps_the_server_from_starting_though_an_older_one_loads(
    model_dir, tmp_path
):
    """server_core.cc WaitUntilModelsAvailable: versions load one at a time, the highest first
    (main.cc --num_load_threads 0), and the server starts on the first version of each model
    that is AVAILABLE or END (servable_state_monitor.cc HasAnyServableInStreamReachedState). So a
    failed latest version fails the start, in its words, though version 1 would load."""
    copy_version(model_dir, tmp_path)
    (tmp_path / "threshold" / "2").mkdir()
    log = start_failure_log(serving_every_version(tmp_path, wait=False))
    failed = NO_SAVED_MODEL.format(tmp_path / "threshold" / "2")
    expected = (
        # "{" + ("{" + ServableId::DebugString() + " due to error: " + status + "}, ") + "}"
        "serving.local: error: 1 model(s) did not become available: {{{name: threshold version: 2} "
        f"due to error: NOT_FOUND: {failed}}}, }}: run `make export` to write a fresh version"
    )
    assert expected in log, log
    assert "loaded threshold version 1" in log  # the older version loaded, and did not help


def test_a_version_written_as_saved_model_pbtxt_loads_and_a_broken_one_is_data_loss(model_dir, tmp_path):
    """TensorFlow's cc/saved_model/reader.cc ReadSavedModel reads saved_model.pb, else
    saved_model.pbtxt (MaybeSavedModelDirectory accepts either); a text file that does not parse
    is env.cc ReadTextProto's DATA_LOSS."""
    for version in (1, 2):
        version_dir = copy_version(model_dir, tmp_path, as_version=version)
        binary = version_dir / "saved_model.pb"
        saved_model = saved_model_pb2.SavedModel.FromString(binary.read_bytes())
        binary.unlink()
        text = text_format.MessageToString(saved_model) if version == 2 else "saved_model_schema_version: x"
        (version_dir / "saved_model.pbtxt").write_text(text)
    with serving_every_version(tmp_path) as handle:
        stubs = ServingStubs(handle.address)
        try:
            assert answers(stubs) == 2
            status = version_status(stubs, 1)
            assert status.state == State.END
            assert (status.status.error_code, status.status.error_message) == (
                grpc.StatusCode.DATA_LOSS.value[0],
                f"Can't parse {tmp_path / 'threshold' / '1' / 'saved_model.pbtxt'} as text proto",
            )
        finally:
            stubs.close()


def test_saved_model_tags_pick_the_meta_graph_and_a_missing_set_fails_the_load(model_dir):
    """main.cc --saved_model_tags; TensorFlow's cc/saved_model/reader.cc FindMetaGraphDef: NOT_FOUND
    when no MetaGraphDef carries exactly that set of tags (the export's is {serve})."""
    flags = ("--saved-model-tags", "gpu", "--max-num-load-retries", "0")
    log = start_failure_log(embedded_server(model_dir, *flags, wait=False))
    assert (
        "1 model(s) did not become available: {{{name: threshold version: 1} due to error: "
        "NOT_FOUND: Could not find meta graph def matching supplied tags: { gpu }. To inspect "
        "available tag-sets in the SavedModel, please use the SavedModel CLI: `saved_model_cli`}, }"
    ) in log, log
    with embedded_server(model_dir, "--saved-model-tags", "serve") as handle:
        stubs = ServingStubs(handle.address)
        try:
            assert answers(stubs) == 1
        finally:
            stubs.close()
