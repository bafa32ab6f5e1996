"""TF Serving's base-path layout and version policy: which version directories a server loads.

Written once for the launcher (``serving.model_config``: what ``make serve`` waits for) and the
embedded server (``serving.local``: what it loads). ``export/layout.py`` keeps its own
``parse_version``, because export imports nothing of ours; tests hold the two to the same rule.

A base path holds one directory per version, named by an int64 (``file_system_storage_path_source.cc``
``ParseVersionNumber``); a ``ServableVersionPolicy`` (``file_system_storage_path_source.proto``)
picks ``all``, ``specific { versions }`` or ``latest { num_versions }`` of them, the default
being the latest one. Config base paths name the TF Serving container's ``/models/...``; on this
machine they map under the models directory.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Protocol

CONTAINER_MODELS_ROOT = "/models"  # where make serve mounts the models directory in the container
_VERSION_NAME = re.compile(r"[0-9]+")  # ASCII digits only: "²" is a digit to Python, not to absl
_INT64_MAX = (1 << 63) - 1


class VersionPolicy(Protocol):
    """What is read of a ServableVersionPolicy message (tensorflow-serving-api's class)."""

    specific: Any
    latest: Any

    def WhichOneof(self, oneof_group: str) -> str | None: ...  # noqa: N802 - protobuf's name


def parse_version(name: str) -> int | None:
    """The version a directory name stands for, or None: only names that parse as an int64."""
    if _VERSION_NAME.fullmatch(name) and int(name) <= _INT64_MAX:
        return int(name)
    return None


def scan_base_path(base_path: Path) -> tuple[list[int], set[str]]:
    """The version directories under base_path, oldest first, and the names skipped as no version.

    Anything that is no version (``.partial-*``, ``²``, a number past int64) is skipped, never an
    error. Dot-names are skipped silently: they are work in progress by design.
    """
    versions, ignored = [], set()
    try:
        children = list(Path(base_path).iterdir())
    except OSError:  # no base path (yet), or it vanished: nothing to serve now
        return [], set()
    for child in children:
        version = parse_version(child.name)
        if version is not None:
            try:
                if child.is_dir():
                    versions.append(version)
            except OSError:
                continue
        elif not child.name.startswith("."):
            ignored.add(child.name)
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


def container_relative(base_path: str) -> str | None:
    """The part of a config base_path under the container's /models/, or None if it lies elsewhere."""
    prefix = CONTAINER_MODELS_ROOT + "/"
    if not base_path.startswith(prefix) or ".." in Path(base_path).parts:
        return None
    return base_path[len(prefix) :]


def local_base_path(base_path: str, models_dir: Path) -> Path:
    """A config base_path on this machine: /models/<rest> maps to models_dir/<rest>; others are themselves."""
    relative = container_relative(base_path)
    return Path(base_path) if relative is None else Path(models_dir) / relative
