"""TF Serving's version policy and base-path layout: which version directories to keep loaded."""

from __future__ import annotations

from pathlib import Path

from tensorflow_serving.config import file_system_storage_path_source_pb2

from export.layout import existing_versions

VersionPolicy = file_system_storage_path_source_pb2.FileSystemStoragePathSourceConfig.ServableVersionPolicy


def versions_on_disk(base_path: Path) -> list[int]:
    """Integer version directories under base_path, oldest first; anything else (.partial-*) is ignored."""
    try:
        return existing_versions(Path(base_path))
    except OSError:  # the directory vanished between listing and checking: nothing to serve now
        return []


def versions_to_serve(policy: VersionPolicy, on_disk: list[int]) -> list[int]:
    """The versions the policy keeps loaded, oldest first (default: latest { num_versions: 1 })."""
    kind = policy.WhichOneof("policy_choice")
    if kind == "all":
        return list(on_disk)
    if kind == "specific":
        wanted = set(policy.specific.versions)
        return [version for version in on_disk if version in wanted]
    count = policy.latest.num_versions if kind == "latest" and policy.latest.num_versions else 1
    return list(on_disk[-count:])
