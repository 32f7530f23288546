"""Landing zone -> `raw`: register a file as the dataset's raw data for a partition.

The raw layer is the landing files themselves, immutable once registered: `raw` sniffs the file
(dialect, encoding, header, columns), matches its header to the spec, hashes it, keeps a copy of
every version of a dropped file, and records all of that as the file's ingestion contract. It does
not copy rows: `cleaned` reads the registered file once, parsing and checking in the same scan,
which is what keeps raw-to-cleaned close to a bare DuckDB load.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from mlops_assets.datasets.spec import DatasetSpec
from mlops_assets.home import MlopsHome
from mlops_assets.ingest.dialect import (
    CsvDialect,
    UnreadableFile,
    explain_header_mismatch,
    normalize_column_name,
    sniff_csv,
)
from mlops_assets.tables import MissingInput, commit_attempts, ensure_tables, table, transaction

# Thousands of records for any realistic row width: enough for the dialect and for type inference
# (2000 rows), and cheap enough (~0.05-0.1 s) to stay a few percent of ingesting a 1M-row file.
SNIFF_SAMPLE_BYTES = 256 * 1024


Archiver = Callable[[Path, str], str]
"""(local file, content hash) -> the location of its archived copy, made once per content."""


@dataclass
class RawFile:
    """One registered file: what a person checks after a file lands."""

    partition: str
    path: Path
    dialect: CsvDialect
    content_hash: str
    size_bytes: int
    column_names: list[str]
    ignored_columns: list[str] = field(default_factory=list)
    version: int = 1
    previous_hash: str | None = None
    archived_copy: str | None = None
    location: str = ""  # where the landing file is stored (a path, or s3://...)


@dataclass
class RegisteredFile:
    """What `cleaned` needs to read a partition exactly as `raw` registered it."""

    partition: str
    path: Path  # a local path holding the registered bytes
    name: str  # the file's name as it landed (`path` may be an archived copy)
    content_hash: str
    dialect: CsvDialect
    column_names: list[str]


def file_digest(path: Path) -> str:
    """sha256 of the file, streamed (files may be larger than memory)."""
    with path.open("rb") as handle:
        return "sha256:" + hashlib.file_digest(handle, "sha256").hexdigest()


def dialect_from_metadata(data: dict[str, Any]) -> CsvDialect:
    fields = {k: v for k, v in data.items() if k in CsvDialect.__dataclass_fields__}
    fields["columns"] = tuple(fields["columns"])
    fields["warnings"] = tuple(fields.get("warnings", ()))
    fields["empty_columns"] = tuple(fields.get("empty_columns", ()))
    return CsvDialect(**fields)


def map_columns(spec: DatasetSpec, path: Path, dialect: CsvDialect) -> tuple[list[str], list[str]]:
    """Name each file column after its spec column; returns (names for the file's columns, ignored).

    Header files match on normalized names (case, spaces, accents); header-less files match by
    position when the column count equals the spec's. Extra columns are carried as `_extra_<i>`
    and ignored (the contract check reports them).
    """
    expected = [c.header for c in spec.columns]
    if not dialect.has_header:
        if len(dialect.columns) != len(spec.columns):
            raise UnreadableFile(
                path,
                f"{path.name}: no header row and {len(dialect.columns)} columns; dataset {spec.name} "
                f"expects {len(spec.columns)} ({', '.join(expected)}). Add a header row.",
            )
        return [c.name for c in spec.columns], []
    problem = explain_header_mismatch(path, dialect, expected)
    if problem:
        raise UnreadableFile(path, problem)
    by_header = {normalize_column_name(c.header): c.name for c in spec.columns}
    names, ignored = [], []
    for position, column in enumerate(dialect.columns):
        spec_name = by_header.get(normalize_column_name(column))
        if spec_name is None or spec_name in names:
            ignored.append(column)
            spec_name = f"_extra_{position}"
        names.append(spec_name)
    return names, ignored


def first_contract(con: duckdb.DuckDBPyConnection, spec: DatasetSpec, exclude_partition: str) -> tuple[str, dict] | None:
    """(file, contract) of the earliest file the dataset accepted, other than `exclude_partition`."""
    row = con.execute(
        f"""SELECT c.source_file, c.contract FROM {table(spec, 'ingestion_contracts')} c
            JOIN (SELECT _partition, min(first_ingested_at) AS first_seen FROM {table(spec, 'file_versions')}
                  GROUP BY _partition) v USING (_partition)
            WHERE c._partition <> ? ORDER BY v.first_seen, c._partition LIMIT 1""",
        [exclude_partition],
    ).fetchone()
    return (row[0], json.loads(row[1])) if row else None


def is_archived_copy(location: Path | str) -> bool:
    """Is `location` a copy made by archiving (`.../archive/<dataset>/<partition>/<hash>.csv`)?"""
    return MlopsHome.is_archive_key(str(location))


def _record_version(
    con: duckdb.DuckDBPyConnection, spec: DatasetSpec, partition: str, path: Path, content_hash: str, size: int,
    archive: Archiver | None, now: dt.datetime,
) -> tuple[int, str | None]:
    """Remember this content under the partition (version n); keep a copy of file drops so no version is lost."""
    history = con.execute(
        f"SELECT content_hash, archived_copy FROM {table(spec, 'file_versions')} WHERE _partition = ? "
        "ORDER BY first_ingested_at",
        [partition],
    ).fetchall()
    for number, (known_hash, archived) in enumerate(history, start=1):
        if known_hash == content_hash:
            return number, archived or None
    archived_copy = archive(path, content_hash) if archive is not None else None
    con.execute(
        f"INSERT INTO {table(spec, 'file_versions')} VALUES (?, ?, ?, ?, ?)",
        [partition, content_hash, size, now, archived_copy],
    )
    return len(history) + 1, archived_copy


def register_file(
    con: duckdb.DuckDBPyConnection, spec: DatasetSpec, path: Path, partition: str, *,
    archive: Archiver | None = None, location: str | None = None,
) -> RawFile:
    """Make `path` the raw data of `partition`: sniff, match the header, hash, version, record the contract.

    With `archive` (the profile's storage, see `stages/raw.py`), every distinct content of the partition is kept (file
    drops: a changed file under the same name is a new version, the old one stays readable).
    `location` is where the landing file is stored when `path` is a local copy of it (S3). Raises
    UnreadableFile with a one-line reason for files that cannot be this dataset.
    """
    path = Path(path)
    if not path.exists():
        raise UnreadableFile(path, f"{path}: file not found")
    size = path.stat().st_size
    dialect = sniff_csv(path, sample_bytes=SNIFF_SAMPLE_BYTES, expected_columns=[c.header for c in spec.columns])
    names, ignored = map_columns(spec, path, dialect)
    content_hash = file_digest(path)
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    location = location or str(path)

    ensure_tables(con, spec)
    previous = con.execute(
        f"SELECT content_hash FROM {table(spec, 'ingestion_contracts')} WHERE _partition = ?", [partition]
    ).fetchone()
    for attempt in commit_attempts(con, f"{spec.name}.ingestion_contracts [{partition}]"):
        with attempt, transaction(con):
            version, archived = _record_version(con, spec, partition, path, content_hash, size, archive, now)
            con.execute(f"DELETE FROM {table(spec, 'ingestion_contracts')} WHERE _partition = ?", [partition])
            con.execute(
                f"INSERT INTO {table(spec, 'ingestion_contracts')} VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [partition, Path(location).name, archived or location, content_hash, size,
                 json.dumps(dialect.to_metadata()), json.dumps(names), None, now],
            )
    return RawFile(
        partition=partition,
        path=path,
        dialect=dialect,
        content_hash=content_hash,
        size_bytes=size,
        column_names=names,
        ignored_columns=ignored,
        version=version,
        previous_hash=previous[0] if previous and previous[0] != content_hash else None,
        archived_copy=archived,
        location=location,
    )


@contextlib.contextmanager
def registered_file(
    con: duckdb.DuckDBPyConnection, spec: DatasetSpec, partition: str, *,
    local_copy: Callable[[str], contextlib.AbstractContextManager[Path]] | None = None,
) -> Iterator[RegisteredFile]:
    """The file `raw` registered for `partition`, checked to still hold the registered bytes.

    `local_copy` turns the recorded location into a local path for the block (a storage resource's
    `local_copy`: a download from S3); by default the location is a local path.
    """
    row = con.execute(
        f"SELECT source_path, content_hash, contract, column_names, source_file FROM {table(spec, 'ingestion_contracts')} "
        "WHERE _partition = ?",
        [partition],
    ).fetchone()
    if row is None:
        raise MissingInput(f"{spec.name}: partition {partition!r} has no raw file; materialize {spec.name}/raw first")
    location = row[0]
    gone = f"{location}: the registered raw file is gone; restore it or re-materialize {spec.name}/raw"
    if local_copy is None:
        if not Path(location).exists():
            raise UnreadableFile(Path(location), gone)
        local_copy = lambda where: contextlib.nullcontext(Path(where))  # noqa: E731
    with contextlib.ExitStack() as stack:
        try:
            path = stack.enter_context(local_copy(location))
        except FileNotFoundError:
            raise UnreadableFile(Path(location), gone) from None
        # Archived copies are immutable (written once, atomically, named by their hash); a landing file may
        # have been overwritten since `raw` registered it, so only that one is re-hashed.
        if not is_archived_copy(location) and file_digest(path) != row[1]:
            raise UnreadableFile(
                path, f"{row[4]}: changed since {spec.name}/raw registered it; re-materialize {spec.name}/raw first"
            )
        yield RegisteredFile(partition, path, row[4], row[1], dialect_from_metadata(json.loads(row[2])),
                             json.loads(row[3]))
