"""client.model_versions: one rule for version directories and version policies, launcher and server alike.

Follows TF Serving's file_system_storage_path_source.cc (ParseVersionNumber, the policies of
file_system_storage_path_source.proto).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from tensorflow_serving.config import file_system_storage_path_source_pb2, model_server_config_pb2

from client.model_versions import local_base_path, parse_version, scan_base_path, versions_to_serve
from export import layout
from serving.errors import InvalidModelConfig
from serving.model_config import served_models

Policy = file_system_storage_path_source_pb2.FileSystemStoragePathSourceConfig.ServableVersionPolicy


@given(st.one_of(st.text(max_size=24), st.integers(-5, 2**64).map(str)))
def test_export_and_serving_read_version_names_alike(name):
    """export/layout.py keeps its own copy (export imports nothing of ours): the two must agree."""
    assert parse_version(name) == layout.parse_version(name)


@pytest.mark.parametrize("name", ["²", "-3", str(2**63), ".partial-1-42", "1.5", " 7"])
def test_names_that_are_no_int64_are_no_version(name):
    assert parse_version(name) is None


def test_scan_lists_versions_oldest_first_and_names_what_it_skipped(tmp_path):
    for name in ("10", "2", "latest", ".partial-3-99"):
        (tmp_path / name).mkdir()
    (tmp_path / "5").write_text("a file, not a version")
    assert scan_base_path(tmp_path) == ([2, 10], {"latest"})
    assert scan_base_path(tmp_path / "missing") == ([], set())


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        ("", [9]),
        ("latest { num_versions: 2 }", [4, 9]),
        ("all {}", [1, 4, 9]),
        ("specific { versions: 1 versions: 7 }", [1]),
    ],
)
def test_version_policies(policy, expected):
    from google.protobuf import text_format

    assert versions_to_serve(text_format.Parse(policy, Policy()), [1, 4, 9]) == expected


def test_base_paths_under_the_container_root_map_under_the_models_dir():
    assert local_base_path("/models/threshold", Path("m")) == Path("m/threshold")
    assert local_base_path("/srv/threshold", Path("m")) == Path("/srv/threshold")
    assert local_base_path("/models/../etc", Path("m")) == Path("/models/../etc")


def test_the_launcher_refuses_base_paths_the_container_cannot_see(tmp_path):
    config = model_server_config_pb2.ModelServerConfig()
    config.model_config_list.config.add(name="t", base_path="/srv/t", model_platform="tensorflow")
    with pytest.raises(InvalidModelConfig, match="must lie under /models/"):
        served_models(config, tmp_path)
