"""Landing zone -> `raw`: read a file as sniffed, parsed into the spec's types in the same scan.

Records the CSV reader cannot take (ragged rows, undecodable lines, a value that does not parse as
its column's type) go to quarantine here with line, column and reason, so nothing read is ever
dropped silently. Business checks (ranges, allowed values, keys) are cleaning's job.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from mlops_assets.datasets.spec import DatasetSpec
from mlops_assets.ingest.dialect import (
    CsvDialect,
    UnreadableFile,
    explain_header_mismatch,
    normalize_column_name,
    sniff_csv,
)
from mlops_assets.ingest.loader import load_csv
from mlops_assets.warehouse_tables import NULL_TOKENS, READ_TYPES, ensure_tables, q, table


@dataclass
class RawIngest:
    """What one file contributed to `raw`: the numbers a person checks after an ingest."""

    partition: str
    path: Path
    dialect: CsvDialect
    content_hash: str
    size_bytes: int
    rows_read: int
    rows_loaded: int
    rows_rejected: int
    seconds: float
    ignored_columns: list[str] = field(default_factory=list)
    version: int = 1
    previous_hash: str | None = None
    archived_copy: Path | None = None


def file_digest(path: Path) -> str:
    """sha256 of the file, streamed (files may be larger than memory)."""
    with path.open("rb") as handle:
        return "sha256:" + hashlib.file_digest(handle, "sha256").hexdigest()


def map_columns(spec: DatasetSpec, path: Path, dialect: CsvDialect) -> tuple[list[str], list[str]]:
    """Name each file column after its spec column; returns (names for the file's columns, ignored).

    Header files match on normalized names (case, spaces, accents); header-less files match by
    position when the column count equals the spec's.
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
        if spec_name is None:
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


def _record_version(
    con: duckdb.DuckDBPyConnection, spec: DatasetSpec, partition: str, path: Path, content_hash: str, size: int,
    archive_dir: Path | None, now: dt.datetime,
) -> tuple[int, Path | None]:
    """Remember this content under the partition (version n); keep a copy of file drops so no version is lost."""
    history = con.execute(
        f"SELECT content_hash, archived_copy FROM {table(spec, 'file_versions')} WHERE _partition = ? "
        "ORDER BY first_ingested_at",
        [partition],
    ).fetchall()
    for number, (known_hash, archived) in enumerate(history, start=1):
        if known_hash == content_hash:
            return number, Path(archived) if archived else None
    archived_copy = None
    if archive_dir is not None:
        archived_copy = archive_dir / partition / f"{content_hash.split(':')[-1][:16]}{path.suffix}"
        archived_copy.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, archived_copy)
    con.execute(
        f"INSERT INTO {table(spec, 'file_versions')} VALUES (?, ?, ?, ?, ?)",
        [partition, content_hash, size, now, str(archived_copy) if archived_copy else None],
    )
    return len(history) + 1, archived_copy


def ingest_file(
    con: duckdb.DuckDBPyConnection, spec: DatasetSpec, path: Path, partition: str, *, archive_dir: Path | None = None
) -> RawIngest:
    """Replace `partition` in `<dataset>.raw` with the rows of `path`; record its contract and rejects.

    With `archive_dir`, every distinct content of the partition is kept there (file drops: a changed
    file under the same name is a new version, the old one stays readable).
    """
    path = Path(path)
    if not path.exists():
        raise UnreadableFile(path, f"{path}: file not found")
    size = path.stat().st_size
    dialect = sniff_csv(path, expected_columns=[c.header for c in spec.columns])
    names, ignored = map_columns(spec, path, dialect)
    content_hash = file_digest(path)

    ensure_tables(con, spec)
    staging = f"{q(spec.name)}.{q('_staging_raw')}"
    read_types = {c.name: READ_TYPES[c.type] for c in spec.columns}
    result = load_csv(con, path, dialect, staging, columns=names, column_types=read_types, null_tokens=NULL_TOKENS)
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    select_cols = ", ".join(q(c.name) for c in spec.columns)
    previous = con.execute(
        f"SELECT content_hash FROM {table(spec, 'ingestion_contracts')} WHERE _partition = ?", [partition]
    ).fetchone()
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute(f"DELETE FROM {table(spec, 'raw')} WHERE _partition = ?", [partition])
        con.execute(
            f"INSERT INTO {table(spec, 'raw')} SELECT {select_cols}, ? AS _partition, _source_file, "
            f"_source_line, ? AS _ingested_at FROM {staging}",
            [partition, now],
        )
        con.execute(f"DELETE FROM {table(spec, 'quarantine')} WHERE _partition = ?", [partition])
        if result.rejects:
            con.executemany(
                f"INSERT INTO {table(spec, 'quarantine')} VALUES (?, 'raw', ?, ?, ?, ?, ?, ?)",
                [[partition, path.name, r.line, r.column, r.reason, r.raw, now] for r in result.rejects],
            )
        con.execute(f"DELETE FROM {table(spec, 'ingestion_contracts')} WHERE _partition = ?", [partition])
        con.execute(
            f"INSERT INTO {table(spec, 'ingestion_contracts')} VALUES (?, ?, ?, ?, ?, ?, ?)",
            [partition, path.name, content_hash, size, json.dumps(dialect.to_metadata()), result.rows_read, now],
        )
        version, archived = _record_version(con, spec, partition, path, content_hash, size, archive_dir, now)
        con.execute(f"DROP TABLE {staging}")
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise
    return RawIngest(
        partition=partition,
        path=path,
        dialect=dialect,
        content_hash=content_hash,
        size_bytes=size,
        rows_read=result.rows_read,
        rows_loaded=result.rows_loaded,
        rows_rejected=len(result.rejects),
        seconds=result.seconds,
        ignored_columns=ignored,
        version=version,
        previous_hash=previous[0] if previous and previous[0] != content_hash else None,
        archived_copy=archived,
    )
