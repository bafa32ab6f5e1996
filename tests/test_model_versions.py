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

from client.model_versions import (
    VersionDirectory,
    aspired_versions,
    list_base_path,
    local_base_path,
    parse_version,
    versions_on_disk,
    versions_to_serve,
)
from export import layout
from serving.errors import InvalidModelConfig
from serving.model_config import served_models

Policy = file_system_storage_path_source_pb2.FileSystemStoragePathSourceConfig.ServableVersionPolicy


@given(st.one_of(st.text(max_size=24), st.integers(-5, 2**64).map(str)))
def test_export_and_serving_read_version_names_alike(name):
    """export/layout.py keeps its own copy (export imports nothing of ours): the two must agree."""
    assert parse_version(name) == layout.parse_version(name)


@pytest.mark.parametrize(
    ("name", "version"),
    [("7", 7), ("007", 7), ("+7", 7), (" 7", 7), ("7\n", 7), ("\t+7 ", 7), ("-3", -3), ("-0", 0)],
)
def test_names_absl_simple_atoi_reads_are_versions(name, version):
    """ParseVersionNumber is absl::SimpleAtoi: ASCII whitespace around, one sign, decimal digits
    (absl/strings/numbers.cc safe_parse_sign_and_base)."""
    assert parse_version(name) == version
    assert layout.parse_version(name) == version


@pytest.mark.parametrize(
    "name",
    ["²", "٣", str(2**63), str(-(2**63) - 1), ".partial-1-42", "1.5", "", " ", "+", "- 1", "0x1", "1_0"],
)
def test_names_that_are_no_int64_are_no_version(name):
    assert parse_version(name) is None


def _policy(text: str):
    from google.protobuf import text_format

    return text_format.Parse(text, Policy())


def test_every_child_that_parses_is_a_version_a_regular_file_too(tmp_path):
    """The source never checks that a child is a directory: a file 5 is aspired (and fails to load)."""
    for name in ("10", "2", "latest", ".partial-3-99"):
        (tmp_path / name).mkdir()
    (tmp_path / "5").write_text("a file, not a SavedModel")
    listing = list_base_path(tmp_path)
    assert list(listing.versions()) == [2, 5, 10] and listing.ignored() == {"latest"}
    assert versions_on_disk(tmp_path) == [2, 5, 10]
    assert versions_on_disk(tmp_path / "missing") == []
    with pytest.raises(FileNotFoundError):
        list_base_path(tmp_path / "missing")


def test_a_version_loads_from_its_own_child_name(tmp_path):
    """file_system_storage_path_source_test.cc SpecificVersionsLeadingZeros: 00017 loads from 00017."""
    (tmp_path / "00017").mkdir()
    listing = list_base_path(tmp_path)
    for policy in ("", "all {}", "specific { versions: 17 }"):
        assert aspired_versions(_policy(policy), listing) == [VersionDirectory(17, "00017")]


@pytest.mark.parametrize(
    ("policy", "name"),
    [
        ("", "1"),  # IndexChildrenByVersion: the last of "+1", "01", "1" (std::set order) wins
        ("specific { versions: 1 }", "1"),  # AspireSpecificVersionsFastPath finds <base>/1
        ("all {}", "+1"),  # all three aspired; the manager keeps the first it is given
    ],
)
def test_duplicate_versions_load_from_the_child_tf_serving_picks(tmp_path, policy, name):
    """file_system_storage_path_source.cc: IndexChildrenByVersion, AspireAllVersions; basic_manager.cc."""
    for child in ("1", "01", "+1"):
        (tmp_path / child).mkdir()
    assert aspired_versions(_policy(policy), list_base_path(tmp_path)) == [VersionDirectory(1, name)]


def test_the_specific_policy_reads_the_listing_when_a_version_is_not_under_its_plain_name(tmp_path):
    """AspireSpecificVersionsFastPath falls back to GetChildren when <base>/7 does not exist."""
    for child in ("007", " 7", "8"):
        (tmp_path / child).mkdir()
    assert aspired_versions(_policy("specific { versions: 7 versions: 8 }"), list_base_path(tmp_path)) == [
        VersionDirectory(7, "007"),
        VersionDirectory(8, "8"),
    ]


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
