"""Names and DDL of the warehouse tables, in one place so every stage and the CLI agree.

Per dataset schema `<dataset>` (the raw layer is the registered landing files themselves):
  cleaned               typed, validated rows: a view over one table per partition (cleaned__<partition>)
  cleaned_partitions    which partitions `cleaned` holds, and when each was published
  features              model-ready rows (the feature transformer's output + target + key)
  quarantine            rows that could not be kept: file, line, column, reason, the raw record
  ingestion_contracts   per partition: its raw file (path, content hash), dialect, columns, rows read
  file_versions         every distinct content ever ingested under a partition (file name), with its archived copy
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import duckdb

from mlops_assets.datasets.spec import ColumnSpec, DatasetSpec

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


def q(identifier: str) -> str:
    """Quote an identifier for DuckDB."""
    return '"' + identifier.replace('"', '""') + '"'


def table(spec: DatasetSpec, name: str) -> str:
    return f"{q(spec.name)}.{q(name)}"


def sql_type(column: ColumnSpec) -> str:
    return SQL_TYPES[column.type]


def ensure_tables(con: duckdb.DuckDBPyConnection, spec: DatasetSpec) -> None:
    """Create the dataset's schema and bookkeeping tables if missing (idempotent)."""
    con.execute(f"CREATE SCHEMA IF NOT EXISTS {q(spec.name)}")
    con.execute(
        f"CREATE TABLE IF NOT EXISTS {table(spec, 'cleaned_partitions')} (_partition VARCHAR, cleaned_at TIMESTAMP)"
    )
    con.execute(
        f"CREATE TABLE IF NOT EXISTS {table(spec, 'quarantine')} (_partition VARCHAR, stage VARCHAR, "
        "source_file VARCHAR, line BIGINT, column_name VARCHAR, reason VARCHAR, record VARCHAR, "
        "quarantined_at TIMESTAMP)"
    )
    con.execute(
        f"CREATE TABLE IF NOT EXISTS {table(spec, 'ingestion_contracts')} (_partition VARCHAR, "
        "source_file VARCHAR, source_path VARCHAR, content_hash VARCHAR, size_bytes BIGINT, contract JSON, "
        "column_names JSON, rows_read BIGINT, ingested_at TIMESTAMP)"
    )
    con.execute(
        f"CREATE TABLE IF NOT EXISTS {table(spec, 'file_versions')} (_partition VARCHAR, content_hash VARCHAR, "
        "size_bytes BIGINT, first_ingested_at TIMESTAMP, archived_copy VARCHAR)"
    )
    ensure_cleaned_view(con, spec)


def ensure_cleaned_view(con: duckdb.DuckDBPyConnection, spec: DatasetSpec) -> None:
    """Create the (empty) `cleaned` view on first use, so readers never meet a missing table."""
    if not table_exists(con, spec, "cleaned"):
        refresh_cleaned_view(con, spec)


def typed_column(column: ColumnSpec) -> str:
    """Stored column -> `cleaned` column: integers are stored as checked-integral DOUBLEs (as read) and
    exposed as BIGINT, which costs nothing per read and saves rewriting the column at load."""
    c = q(column.name)
    if column.type == "integer":
        return f"CAST({c} AS BIGINT) AS {c}"
    return c


def partition_table(spec: DatasetSpec, partition: str) -> str:
    """The physical table holding one partition of `cleaned` (the `cleaned` view unions them)."""
    return f"{q(spec.name)}.{q('cleaned__' + partition)}"


def refresh_cleaned_view(con: duckdb.DuckDBPyConnection, spec: DatasetSpec) -> None:
    """`<dataset>.cleaned`: every cleaned partition, typed, with its partition key and load time."""
    parts = con.execute(
        f"SELECT _partition, cleaned_at FROM {table(spec, 'cleaned_partitions')} ORDER BY _partition"
    ).fetchall()
    columns = ", ".join(typed_column(c) for c in spec.columns)
    selects = [
        f"SELECT {columns}, {literal(partition)} AS _partition, _source_file, _source_line, "
        f"TIMESTAMP '{cleaned_at.isoformat(sep=' ')}' AS _ingested_at FROM {partition_table(spec, partition)}"
        for partition, cleaned_at in parts
    ]
    if not selects:
        typed = ", ".join(f"CAST(NULL AS {sql_type(c)}) AS {q(c.name)}" for c in spec.columns)
        selects = [f"SELECT {typed}, NULL::VARCHAR AS _partition, NULL::VARCHAR AS _source_file, "
                   "NULL::BIGINT AS _source_line, NULL::TIMESTAMP AS _ingested_at WHERE false"]
    con.execute(f"CREATE OR REPLACE VIEW {table(spec, 'cleaned')} AS " + "\nUNION ALL ".join(selects))


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
    row = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = ?",
        [spec.name, name],
    ).fetchone()
    return bool(row and row[0])
