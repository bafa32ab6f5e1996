"""TF Serving's base-path layout: ``<model_dir>/<name>/<integer version>/`` (import-light)."""

from __future__ import annotations

from pathlib import Path

PARTIAL_PREFIX = ".partial-"


class ExportError(Exception):
    """An export could not be written; the message says why and what to do."""


def existing_versions(base_path: Path) -> list[int]:
    """Integer version directories under base_path, sorted (TF Serving ignores other names)."""
    if not base_path.is_dir():
        return []
    return sorted(int(p.name) for p in base_path.iterdir() if p.is_dir() and p.name.isdigit())


def next_version(base_path: Path) -> int:
    """One past the highest existing version, or 1."""
    versions = existing_versions(base_path)
    return versions[-1] + 1 if versions else 1


def require_free_version(base_path: Path, version: int) -> Path:
    """The directory for version, or ExportError if it is taken or not a positive integer."""
    if version < 1:
        raise ExportError(f"version must be a positive integer, got {version}")
    final = base_path / str(version)
    if final.exists():
        raise ExportError(f"version {version} already exists at {final}; "
                          "pick another --version or leave it out for the next free one")
    return final
