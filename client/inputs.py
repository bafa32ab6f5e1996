"""Bulk runs: input files, directories and globs expanded into (input, output) jobs, split into shards.

Every worker of a bulk run expands the same arguments into the same sorted list, so worker K of
N (``--shard K/N``, or a Kubernetes indexed Job's ``JOB_COMPLETION_INDEX``) takes jobs K, K+N,
K+2N, ...: no coordination, no overlap, nothing left out. Jobs are sorted by output name, not by
path, so workers that mount the data at different paths still agree. An output is written to a
temp file and renamed into place (``client.output.NpyOutput``), so an output that exists is
complete: a restarted worker skips it.

Only this module's light imports load before a bulk run starts (no grpc, no numpy).
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from client.errors import InputFileError

INPUT_SUFFIXES = (".npy", ".npz")
GLOB_CHARS = frozenset("*?[")
SHARD_ENV = "THRESHOLD_SHARD"  # "K/N"
SHARD_COUNT_ENV = "THRESHOLD_SHARD_COUNT"  # N, with Kubernetes' JOB_COMPLETION_INDEX as K
JOB_INDEX_ENV = "JOB_COMPLETION_INDEX"


class InputListError(ValueError):
    """The inputs or shard given cannot make a bulk run (a usage error: exit 2)."""


@dataclass(frozen=True)
class InputJob:
    """One input file and the output its mask goes to."""

    source: Path
    output: Path

    @property
    def name(self) -> str:
        return self.output.name


@dataclass(frozen=True)
class Shard:
    """Worker ``index`` (0-based) of ``count``."""

    index: int
    count: int

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    def select(self, jobs: list[InputJob]) -> list[InputJob]:
        """This worker's jobs: every count-th one from index on."""
        return jobs[self.index :: self.count]


def parse_shard(text: str) -> Shard:
    """'K/N' -> Shard(K, N), with 0 <= K < N (K counts from 0, like JOB_COMPLETION_INDEX)."""
    index_text, slash, count_text = text.strip().partition("/")
    try:
        index, count = int(index_text), int(count_text)
    except ValueError:
        raise InputListError(f"a shard is K/N with whole numbers, e.g. 0/4; got {text!r}") from None
    if not slash or count < 1 or not 0 <= index < count:
        raise InputListError(f"a shard K/N needs N >= 1 and 0 <= K < N (K counts from 0); got {text!r}")
    return Shard(index, count)


def shard_from_env(environ: Mapping[str, str] = os.environ) -> Shard | None:
    """THRESHOLD_SHARD=K/N, else JOB_COMPLETION_INDEX with THRESHOLD_SHARD_COUNT=N; None if neither."""
    if environ.get(SHARD_ENV):
        return parse_shard(environ[SHARD_ENV])
    count = environ.get(SHARD_COUNT_ENV)
    index = environ.get(JOB_INDEX_ENV)
    if count and index is not None:
        return parse_shard(f"{index}/{count}")
    if count:
        raise InputListError(
            f"{SHARD_COUNT_ENV} is set but not {JOB_INDEX_ENV} (set by an indexed Job); "
            "pass --shard K/N instead"
        )
    return None


def _is_glob(spec: str) -> bool:
    return bool(GLOB_CHARS & set(spec)) and not Path(spec).exists()


def is_bulk(specs: Iterable[str]) -> bool:
    """Whether the inputs make a bulk run: several, or a directory, or a glob pattern."""
    specs = list(specs)
    return len(specs) > 1 or any(Path(spec).is_dir() or _is_glob(spec) for spec in specs)


def _directory_members(directory: Path) -> list[Path]:
    # Top level only; hidden files are skipped (a partial output is '.<name>.partial-<pid>').
    members = sorted(
        path
        for path in directory.iterdir()
        if path.suffix in INPUT_SUFFIXES and not path.name.startswith(".") and path.is_file()
    )
    if not members:
        raise InputFileError(f"input directory {directory} holds no .npy or .npz files")
    return members


def expand_inputs(specs: Iterable[str], output_dir: str | os.PathLike) -> list[InputJob]:
    """Jobs for every input named by specs (files, directories, glob patterns), sorted by output name.

    A file that does not exist stays in the list: its run fails with the missing-file error,
    like any other bad input. A directory or pattern that names no input file is an
    InputFileError; two inputs writing one output, or an output on top of an input, is an
    InputListError.
    """
    output_dir = Path(output_dir)
    sources: dict[Path, Path] = {}  # resolved -> as given, each input once
    for spec in specs:
        path = Path(spec)
        if path.is_dir():
            found = _directory_members(path)
        elif _is_glob(spec):
            found = sorted(Path(match) for match in glob.glob(spec) if Path(match).suffix in INPUT_SUFFIXES)
            if not found:
                raise InputFileError(f"no .npy or .npz files match {spec}")
        else:
            found = [path]
        for source in found:
            sources.setdefault(source.resolve(), source)
    jobs: dict[str, InputJob] = {}
    for resolved, source in sources.items():
        output = output_dir / f"{source.stem}.npy"
        if output.name in jobs:
            raise InputListError(
                f"{jobs[output.name].source} and {source} would both write {output}; "
                "rename one, or run them with different -o directories"
            )
        if output.resolve() == resolved:
            raise InputListError(
                f"-o {output_dir} would overwrite the input {source}; choose another output directory"
            )
        jobs[output.name] = InputJob(source, output)
    return [jobs[name] for name in sorted(jobs)]
