"""TF Serving's version policy and base-path layout: which version directories to keep loaded."""

from __future__ import annotations

import re
from pathlib import Path

from tensorflow_serving.config import file_system_storage_path_source_pb2

VersionPolicy = file_system_storage_path_source_pb2.FileSystemStoragePathSourceConfig.ServableVersionPolicy


_VERSION_NAME = re.compile(r"[0-9]+")  # ASCII digits only: "²" is a digit to Python, not to absl
_INT64_MAX = (1 << 63) - 1


def scan_base_path(base_path: Path) -> tuple[list[int], set[str]]:
    """The version directories under base_path, oldest first, and the names skipped as no version.

    A child is a version when its name parses as an int64, as file_system_storage_path_source.cc's
    ParseVersionNumber decides; anything else (``.partial-*``, ``²``, a number past int64) is
    skipped, never an error. Dot-names are skipped silently: they are work in progress by design.
    """
    versions, ignored = [], set()
    try:
        children = list(Path(base_path).iterdir())
    except OSError:  # no base path (yet), or it vanished: nothing to serve now
        return [], set()
    for child in children:
        name = child.name
        if _VERSION_NAME.fullmatch(name) and int(name) <= _INT64_MAX:
            try:
                if child.is_dir():
                    versions.append(int(name))
            except OSError:
                continue
        elif not name.startswith("."):
            ignored.add(name)
    return sorted(versions), ignored


def versions_on_disk(base_path: Path) -> list[int]:
    """Version directories under base_path, oldest first (see scan_base_path)."""
    return scan_base_path(base_path)[0]


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
