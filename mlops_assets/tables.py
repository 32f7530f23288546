"""Names and DDL of the warehouse tables, in one place so every stage and the CLI agree; and how to commit.

The warehouse is a DuckLake that many runs write at once: a partition is replaced by a delete and an
insert in one transaction, and a commit that collides with another writer's is retried
(`commit_attempts`). The same SQL runs on a SQLite or a PostgreSQL catalog.

Per dataset schema `<dataset>` (the raw layer is the registered landing files themselves):
  cleaned               typed, validated rows of every partition (stored partitioned by `_partition`)
  cleaned_partitions    which partitions `cleaned` holds, and when each was published
  features              model-ready rows (the feature transformer's output + target + key)
  quarantine            rows that could not be kept: file, line, column, reason, the raw record
  ingestion_contracts   per partition: its raw file (path, content hash), dialect, columns, rows read
  file_versions         every distinct content ever ingested under a partition (file name), with its archived copy
"""

from __future__ import annotations

import contextlib
import logging
import random
import time
from collections.abc import Iterator

import duckdb

from mlops_assets.datasets.spec import ColumnSpec, DatasetSpec

log = logging.getLogger(__name__)

SQL_TYPES = {
    "string": "VARCHAR",
    "category": "VARCHAR",
    "integer": "BIGINT",
    "float": "DOUBLE",
    "boolean": "BOOLEAN",
    "timestamp": "TIMESTAMP",
    "date": "DATE",
}


# How `raw` stores each spec type: parsed by DuckDB's CSV reader in the scan. Integers are read as
# DOUBLE on purpose: the reader rounds "3.5" into a BIGINT silently; cleaning checks integrality.
READ_TYPES = {
    "string": "VARCHAR",
    "category": "VARCHAR",
    "integer": "DOUBLE",
    "float": "DOUBLE",
    "boolean": "BOOLEAN",
    "timestamp": "TIMESTAMP",
    "date": "DATE",
}
# Cells read as NULL (missing): DuckDB matches them exactly, so common spellings are listed.
NULL_TOKENS = ("", "NA", "N/A", "n/a", "NaN", "nan", "null", "NULL", "None", "none")


class WarehouseBusy(RuntimeError):
    """Commits kept colliding with other writers for longer than we were willing to retry."""


@contextlib.contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """All-or-nothing: commit when the block ends, roll back on any error, and let that error be what the
    user sees (a failing rollback is only noted on it, never raised in its place)."""
    con.execute("BEGIN TRANSACTION")
    try:
        yield
    except BaseException as error:
        try:
            con.execute("ROLLBACK")
        except duckdb.Error as rollback_error:
            error.add_note(f"(rolling back also failed: {rollback_error})")
        raise
    con.execute("COMMIT")


# Errors that mean "another writer committed first": the work is sound and is simply done again on
# the new snapshot. SQLite catalogs refuse a second concurrent writer ("database is locked"); DuckLake
# refuses a commit whose changes conflict with one made since the transaction began.
RETRYABLE_COMMIT_ERRORS = ("database is locked", "database table is locked", "Transaction conflict",
                           "could not serialize access", "deadlock detected")
COMMIT_RETRY_SECONDS = 300.0


def is_retryable(error: BaseException) -> bool:
    return isinstance(error, duckdb.Error) and any(m in str(error) for m in RETRYABLE_COMMIT_ERRORS)


class CommitAttempt:
    """One try of a transaction; swallows a collision with another writer so the caller's loop tries again."""

    def __init__(self, owner: _CommitAttempts) -> None:
        self._owner = owner

    def __enter__(self) -> CommitAttempt:
        return self

    def __exit__(self, kind, error, traceback) -> bool:
        if error is None:
            self._owner.done = True
            return False
        return self._owner.should_retry(error)


class _CommitAttempts:
    def __init__(self, what: str, timeout: float) -> None:
        self.what, self.timeout, self.done = what, timeout, False
        self.started = time.monotonic()
        self.delay, self.collisions = 0.05, 0

    def should_retry(self, error: BaseException) -> bool:
        if not is_retryable(error):
            return False
        self.collisions += 1
        waited = time.monotonic() - self.started
        if waited + self.delay > self.timeout:
            raise WarehouseBusy(
                f"{self.what}: the commit collided with other writers {self.collisions} times in {waited:.0f}s "
                f"({' '.join(str(error).split())[:200]}); nothing was written. Re-run when fewer runs write at "
                "once, or raise Warehouse.commit_timeout_seconds"
            ) from error
        log.info("%s: commit collided with another writer (%s); retrying in %.2fs", self.what,
                 " ".join(str(error).split())[:120], self.delay)
        time.sleep(self.delay * (1 + random.random()))
        self.delay = min(self.delay * 2, 5.0)
        return True

    def __iter__(self) -> Iterator[CommitAttempt]:
        while not self.done:
            yield CommitAttempt(self)


COMMIT_TIMEOUT_VARIABLE = "mlops_commit_timeout_seconds"
"""Set on each connection by `Warehouse.connect()` from `Warehouse.commit_timeout_seconds`."""


def commit_attempts(con: duckdb.DuckDBPyConnection, what: str, timeout: float | None = None) -> Iterator[CommitAttempt]:
    """Retry a transaction that collides with other writers, with backoff, until `timeout` seconds (default:
    the warehouse's `commit_timeout_seconds`):

        for attempt in commit_attempts(con, "wine_quality.cleaned"):
            with attempt, transaction(con):
                ...

    The block must be safe to run again (it reads what it needs inside the transaction). After the
    deadline, WarehouseBusy names `what` and says what to do; any other error surfaces at once.
    """
    if timeout is None:
        try:
            configured = con.execute(f"SELECT getvariable('{COMMIT_TIMEOUT_VARIABLE}')").fetchone()[0]
        except duckdb.Error:
            configured = None
        timeout = float(configured) if configured is not None else COMMIT_RETRY_SECONDS
    return iter(_CommitAttempts(what, timeout))


def is_lake(con: duckdb.DuckDBPyConnection) -> bool:
    """Does this connection write to a DuckLake? (A plain DuckDB database, e.g. the in-memory one a spec
    draft dry-runs in, has no table partitioning and no snapshots.)"""
    row = con.execute("SELECT type FROM duckdb_databases() WHERE database_name = current_database()").fetchone()
    return bool(row) and row[0] == "ducklake"


def snapshot_id(con: duckdb.DuckDBPyConnection) -> int | None:
    """The lake snapshot this connection reads (its transaction's), or None where the database has none."""
    try:
        row = con.execute("SELECT id FROM current_snapshot()").fetchone()
    except duckdb.Error:
        return None
    return int(row[0]) if row else None


def q(identifier: str) -> str:
    """Quote an identifier for DuckDB."""
    return '"' + identifier.replace('"', '""') + '"'


def table(spec: DatasetSpec, name: str) -> str:
    return f"{q(spec.name)}.{q(name)}"


def sql_type(column: ColumnSpec) -> str:
    return SQL_TYPES[column.type]


CLEANED_META_COLUMNS = (("_partition", "VARCHAR"), ("_source_file", "VARCHAR"), ("_source_line", "BIGINT"),
                        ("_ingested_at", "TIMESTAMP"))
# Tables whose rows are replaced a partition at a time: DuckLake keeps each partition in its own files,
# so replacing one drops whole files instead of writing delete markers over shared ones.
PARTITIONED_TABLES = ("cleaned", "quarantine")


class MissingInput(LookupError):
    """A partition or table a step needs is not there yet; the message names it and the command that makes it."""


class TableMismatch(LookupError):
    """A stored table no longer has the columns the spec describes; the message says what to do."""


def table_columns(spec: DatasetSpec) -> dict[str, str]:
    """Column definitions of every bookkeeping table and of `cleaned`, by table name."""
    cleaned = [(c.name, sql_type(c)) for c in spec.columns] + list(CLEANED_META_COLUMNS)
    return {
        "cleaned": ", ".join(f"{q(n)} {t}" for n, t in cleaned),
        "cleaned_partitions": "_partition VARCHAR, cleaned_at TIMESTAMP",
        "quarantine": "_partition VARCHAR, stage VARCHAR, source_file VARCHAR, line BIGINT, column_name VARCHAR, "
        "reason VARCHAR, record VARCHAR, quarantined_at TIMESTAMP",
        "ingestion_contracts": "_partition VARCHAR, source_file VARCHAR, source_path VARCHAR, content_hash VARCHAR, "
        "size_bytes BIGINT, contract JSON, column_names JSON, rows_read BIGINT, ingested_at TIMESTAMP",
        "file_versions": "_partition VARCHAR, content_hash VARCHAR, size_bytes BIGINT, first_ingested_at TIMESTAMP, "
        "archived_copy VARCHAR",
    }


def ensure_tables(con: duckdb.DuckDBPyConnection, spec: DatasetSpec) -> None:
    """Create the dataset's schema and tables if missing (idempotent; safe when many runs start at once)."""
    wanted = table_columns(spec)
    missing = [name for name in wanted if name not in existing_tables(con, spec)]
    lake = is_lake(con)
    if missing:
        for attempt in commit_attempts(con, f"creating the tables of {spec.name}"):
            with attempt, transaction(con):
                con.execute(f"CREATE SCHEMA IF NOT EXISTS {q(spec.name)}")
                present = existing_tables(con, spec)
                for name in missing:
                    if name not in present:
                        con.execute(f"CREATE TABLE {table(spec, name)} ({wanted[name]})")
                        if lake and name in PARTITIONED_TABLES:
                            con.execute(f"ALTER TABLE {table(spec, name)} SET PARTITIONED BY (_partition)")
    expected = [(c.name, sql_type(c)) for c in spec.columns] + list(CLEANED_META_COLUMNS)
    stored = [(r[0], r[1]) for r in con.execute(f"DESCRIBE {table(spec, 'cleaned')}").fetchall()]
    if stored != expected:
        raise TableMismatch(
            f"table {spec.name}.cleaned holds columns {[n for n, _ in stored]} ({len(stored)}) but "
            f"{spec.spec_path or 'the ' + spec.name + ' spec'} now makes {[n for n, _ in expected]}: restore the spec, "
            f"or drop {spec.name}.cleaned (and cleaned_partitions) and re-materialize every {spec.name} partition"
        )


def existing_tables(con: duckdb.DuckDBPyConnection, spec: DatasetSpec) -> set[str]:
    """Tables (and views) of the dataset's schema in the warehouse this connection writes to."""
    rows = con.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_catalog = current_database() "
        "AND table_schema = ?",
        [spec.name],
    ).fetchall()
    return {r[0] for r in rows}


def typed_column(column: ColumnSpec) -> str:
    """Staged column -> stored `cleaned` column: integers are read as DOUBLE (so the reader cannot round
    "3.5"), checked integral, and stored as BIGINT by the cast in the one write that publishes them."""
    c = q(column.name)
    if column.type == "integer":
        return f"CAST({c} AS BIGINT) AS {c}"
    return c


def literal(text: str) -> str:
    """A SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def partitions_in_order(con: duckdb.DuckDBPyConnection, spec: DatasetSpec, source: str) -> list[str]:
    """Partitions present in table `source`, oldest first: days by date, files by when they first landed.

    A file re-ingested later keeps its place: arrival, not the last re-run, decides what is "newest".
    """
    if spec.is_daily:
        rows = con.execute(f"SELECT DISTINCT _partition FROM {table(spec, source)} ORDER BY _partition").fetchall()
    else:
        rows = con.execute(
            f"""SELECT p._partition FROM (SELECT DISTINCT _partition FROM {table(spec, source)}) p
                LEFT JOIN (SELECT _partition, min(first_ingested_at) AS first_seen FROM {table(spec, 'file_versions')}
                           GROUP BY _partition) v USING (_partition)
                ORDER BY v.first_seen NULLS LAST, p._partition"""
        ).fetchall()
    return [r[0] for r in rows]


def table_exists(con: duckdb.DuckDBPyConnection, spec: DatasetSpec, name: str) -> bool:
    return name in existing_tables(con, spec)
