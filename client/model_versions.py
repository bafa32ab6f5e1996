"""TF Serving's base-path layout and version policy: which version directories a server loads.

Written once for the launcher (``serving.model_config``: what ``make serve`` waits for) and the
embedded server (``serving.local``: what it loads). ``export/layout.py`` keeps its own
``parse_version``, because export imports nothing of ours; tests hold the two to the same rule.

A base path holds one child per version, named by an int64 as ``absl::SimpleAtoi`` reads it
(``file_system_storage_path_source.cc`` ``ParseVersionNumber``): ``007`` and `` +7`` are version
7, ``-3`` is version -3. The source never checks that a child is a directory: a regular file
``9`` is version 9, and its load fails. A ``ServableVersionPolicy``
(``file_system_storage_path_source.proto``) picks ``all``, ``specific { versions }`` or
``latest { num_versions }`` of them, the default being the latest one. Config base paths name
the TF Serving container's ``/models/...``; on this machine they map under the models directory.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

CONTAINER_MODELS_ROOT = "/models"  # where make serve mounts the models directory in the container
_ASCII_SPACE = " \t\n\v\f\r"  # absl::ascii_isspace
_SIGNED_DIGITS = re.compile(r"[+-]?[0-9]+")  # ASCII digits only: "²" is a digit to Python, not to absl


class VersionPolicy(Protocol):
    """What is read of a ServableVersionPolicy message (tensorflow-serving-api's class)."""

    specific: Any
    latest: Any

    def WhichOneof(self, oneof_group: str) -> str | None: ...  # noqa: N802 - protobuf's name


@dataclass(frozen=True)
class VersionDirectory:
    """One aspired version: its number and the base path's child it loads from (``007`` for 7)."""

    version: int
    name: str


@dataclass(frozen=True)
class BasePathListing:
    """The children of a base path, in the byte order of TF Serving's ``std::set<string>``."""

    names: tuple[str, ...]

    def versions(self) -> dict[int, list[str]]:
        """Each version number and the children naming it, in listing order (duplicates: ``01``, ``1``)."""
        by_version: dict[int, list[str]] = {}
        for name in self.names:
            version = parse_version(name)
            if version is not None:
                by_version.setdefault(version, []).append(name)
        return dict(sorted(by_version.items()))

    def ignored(self) -> set[str]:
        """Children that are no version; dot-names are left out: they are work in progress by design."""
        return {name for name in self.names if parse_version(name) is None and not name.startswith(".")}


def simple_atoi(text: str, bits: int = 64) -> int | None:
    """The integer ``absl::SimpleAtoi`` reads from text into a signed ``bits``-bit int, or None.

    ASCII whitespace around the number and one leading ``+`` or ``-`` are accepted; anything
    else (``1.5``, ``0x1``, ``²``, a number past the type's range) is no number.
    """
    stripped = text.strip(_ASCII_SPACE)
    if not _SIGNED_DIGITS.fullmatch(stripped):
        return None
    value = int(stripped)
    return value if -(1 << (bits - 1)) <= value < 1 << (bits - 1) else None


def parse_version(name: str) -> int | None:
    """The version a child's name stands for, or None: ``absl::SimpleAtoi`` into an int64."""
    return simple_atoi(name, 64)


def list_base_path(base_path: Path) -> BasePathListing:
    """Every child of base_path; OSError when it cannot be listed (FileNotFoundError: no base path)."""
    names = [child.name for child in Path(base_path).iterdir()]
    return BasePathListing(tuple(sorted(names, key=os.fsencode)))


def versions_on_disk(base_path: Path) -> list[int]:
    """The version numbers under base_path, oldest first; none when it cannot be listed."""
    try:
        return list(list_base_path(base_path).versions())
    except OSError:
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


def aspired_versions(policy: VersionPolicy, listing: BasePathListing) -> list[VersionDirectory]:
    """What ``PollFileSystemForServable`` aspires: the policy's versions and the child each loads from.

    Where two children name one version (``01`` and ``1``), TF Serving's choice is kept:
    ``IndexChildrenByVersion`` (latest and specific policies) keeps the last in listing order;
    ``AspireAllVersions`` emits both and the manager keeps the first
    (``BasicManager::ManageServableInternal``: "This servable is already being managed").
    """
    if policy.WhichOneof("policy_choice") == "specific":
        requested = sorted(set(policy.specific.versions))
        names = set(listing.names)
        if all(str(version) in names for version in requested):  # AspireSpecificVersionsFastPath
            return [VersionDirectory(version, str(version)) for version in requested]
    by_version = listing.versions()
    pick = 0 if policy.WhichOneof("policy_choice") == "all" else -1
    return [
        VersionDirectory(version, by_version[version][pick])
        for version in versions_to_serve(policy, list(by_version))
    ]


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
