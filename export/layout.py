"""TF Serving's base-path layout: ``<model_dir>/<name>/<integer version>/`` (import-light)."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

PARTIAL_PREFIX = ".partial-"
_ASCII_SPACE = " \t\n\v\f\r"  # absl::ascii_isspace
_SIGNED_DIGITS = re.compile(r"[+-]?[0-9]+")
_INT64_MIN = -(1 << 63)
_INT64_MAX = (1 << 63) - 1


class ExportError(Exception):
    """An export could not be written; the message says why and what to do."""


def parse_version(name: str) -> int | None:
    """The version a base path's child stands for, or None, as TF Serving reads it
    (``file_system_storage_path_source.cc`` ParseVersionNumber: ``absl::SimpleAtoi`` into an
    int64): surrounding ASCII whitespace and one ``+`` or ``-`` are accepted, so ``007`` is 7
    and ``-3`` is -3; ``²``, ``1.5`` or a 20-digit name are no version."""
    stripped = name.strip(_ASCII_SPACE)
    if not _SIGNED_DIGITS.fullmatch(stripped):
        return None
    version = int(stripped)
    return version if _INT64_MIN <= version <= _INT64_MAX else None


def existing_versions(base_path: Path) -> list[int]:
    """The versions TF Serving sees under base_path, sorted: every child whose name parses,
    a regular file too (the server tries to load it)."""
    if not base_path.is_dir():
        return []
    versions = (parse_version(p.name) for p in base_path.iterdir())
    return sorted({v for v in versions if v is not None})


def _process_is_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, another user's
        return False
    return False


def remove_stale_partials(directory: Path, prefix: str) -> list[Path]:
    """Remove ``<prefix>...-<pid>`` entries whose writer process no longer exists.

    Each writer names its temp file or directory after its pid and removes it itself unless it
    was killed (``kill -9``, a lost machine); an entry of a live process is another export still
    running, and stays.
    """
    removed = []
    if not directory.is_dir():
        return removed
    for entry in directory.iterdir():
        pid = entry.name.rpartition("-")[2]
        if not (entry.name.startswith(prefix) and PARTIAL_PREFIX in entry.name):
            continue
        if not (pid.isascii() and pid.isdigit()):
            continue
        if _process_is_gone(int(pid)):
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
            removed.append(entry)
    return removed


def next_version(base_path: Path) -> int:
    """One past the highest existing version, or 1 (also when all existing ones are below 1)."""
    versions = existing_versions(base_path)
    return max(versions[-1] + 1, 1) if versions else 1


def require_free_version(base_path: Path, version: int) -> Path:
    """The directory for version, or ExportError if it is taken or not a positive integer."""
    if version < 1:
        raise ExportError(f"version must be a positive integer, got {version}")
    final = base_path / str(version)
    same = [p for p in base_path.iterdir() if parse_version(p.name) == version] if base_path.is_dir() else []
    if final.exists() or same:  # "007" is version 7 to TF Serving too
        raise ExportError(
            f"version {version} already exists at {same[0] if same else final}; "
            "pick another --version or leave it out for the next free one"
        )
    return final
