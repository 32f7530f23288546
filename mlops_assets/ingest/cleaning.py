"""`raw` -> `cleaned`: enforce the spec's checks on the parsed rows, quarantine what fails.

The bulk work is DuckDB scans (fast on files larger than memory); the pandera schema generated
from the same spec then validates every cleaned row in batches, so the table is pandera-validated,
not just "cleaned by SQL we hope agrees with the schema".
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd
import pandera.pandas as pa
import pyarrow as pa_types

from mlops_assets.datasets.spec import ColumnSpec, DatasetSpec
from mlops_assets.ingest.landing import registered_file
from mlops_assets.ingest.loader import LoadResult, load_csv
from mlops_assets.tables import (
    NULL_TOKENS,
    READ_TYPES,
    WarehouseBusy,
    commit_attempts,
    ensure_tables,
    q,
    table,
    transaction,
    typed_column,
)

PANDAS_DTYPES = {
    "string": "string[pyarrow]",
    "category": "string[pyarrow]",
    "integer": "int64",
    "float": "float64",
    "boolean": "bool",
    "timestamp": "datetime64[us]",
    "date": "datetime64[us]",
}
VALIDATION_BATCH_ROWS = 500_000
# Arrow -> pandas dtypes for validation batches: Arrow-backed strings (no per-value Python objects, ~4x
# faster) and nullable booleans/integers, so an optional column with gaps keeps its type instead of
# turning into `object` / `float64` (which the schema would refuse).
_PANDAS_FROM_ARROW = {
    pa_types.string(): pd.StringDtype("pyarrow"),
    pa_types.large_string(): pd.StringDtype("pyarrow"),
    pa_types.bool_(): pd.BooleanDtype(),
    pa_types.int64(): pd.Int64Dtype(),
}


def pandera_schema(spec: DatasetSpec, *, batch: bool = False) -> pa.DataFrameSchema:
    """The cleaned table's contract, generated from the spec (also shown in the Dagster UI).

    `batch=True` is the form used to validate a partition batch by batch: uniqueness is left out
    there because a batch cannot see it; the whole partition's keys are checked in SQL instead.
    """
    columns = {}
    for column in spec.columns:
        checks = []
        if column.min is not None:
            checks.append(pa.Check.ge(column.min))
        if column.max is not None:
            checks.append(pa.Check.le(column.max))
        if column.values:
            checks.append(pa.Check.isin(list(column.values)))
        dtype = PANDAS_DTYPES[column.type]
        if (batch or not column.required) and column.type in ("integer", "boolean"):
            # Batches arrive with nullable dtypes (see _PANDAS_FROM_ARROW); `nullable` still forbids gaps.
            dtype = {"integer": "Int64", "boolean": "boolean"}[column.type]
        columns[column.name] = pa.Column(
            dtype,
            checks=checks,
            nullable=not column.required,
            unique=column.unique and not batch,
            description=f"{column.type}, role {column.role}" + (f", from CSV header {column.source!r}" if column.source else ""),
        )
    return pa.DataFrameSchema(columns, name=f"{spec.name}_cleaned", strict=True, coerce=False)


def _checks(column: ColumnSpec) -> list[tuple[str, str]]:
    """(condition that fails, reason) pairs for one column of `raw` (already parsed by the reader)."""
    c = q(column.name)
    value = f"trim({c})" if column.type == "category" else c
    failing: list[tuple[str, str]] = []
    if column.required:
        failing.append((f"{c} IS NULL", "'missing required value'"))
    if column.type == "integer":
        failing.append((f"NOT ({c} = floor({c}) AND abs({c}) < 9.2e18)", f"'not an integer: ' || {c}"))
    if column.type == "float":
        failing.append((f"NOT isfinite({c})", f"'not a finite number: ' || {c}"))
    if column.min is not None:
        failing.append((f"{c} < {column.min!r}", f"'below minimum {column.min:g}: ' || {c}"))
    if column.max is not None:
        failing.append((f"{c} > {column.max!r}", f"'above maximum {column.max:g}: ' || {c}"))
    if column.values:
        allowed = ", ".join("'" + v.replace("'", "''") + "'" for v in column.values)
        failing.append((f"{value} NOT IN ({allowed})", f"'not an allowed value: ' || {value}"))
    return failing


class CleaningFailed(Exception):
    """Cleaning stopped; the message names the file, the column and what to do. Nothing was published."""


@dataclass
class CleanResult:
    """Counts for one partition: `rows_read` from the reader; the others counted from the stored tables."""

    partition: str
    rows_read: int
    rows_cleaned: int
    rows_quarantined: int
    quarantine_reasons: dict[str, int]
    rows_validated: int = 0


STAGE = "_clean_stage"
QUARANTINED = "_clean_quarantined"


def clean_partition(
    con: duckdb.DuckDBPyConnection, spec: DatasetSpec, partition: str, *,
    local_copy: Callable[[str], contextlib.AbstractContextManager[Path]] | None = None,
) -> CleanResult:
    """Read the partition's registered file once; keep the rows that pass every check; quarantine the rest.

    The reader parses values into the spec's types in its scan (a value that does not parse, a
    ragged row or undecodable bytes make the record a reject) straight into a connection-local
    staging table; failing rows move to a staged quarantine, pandera validates every kept row, and
    only then one transaction replaces the partition in the warehouse: the rows are written once, as
    in a bare load. Staging never touches the shared warehouse, so a commit that collides with
    another writer is simply redone, and a run that dies leaves nothing behind. Checks are plain
    comparisons on typed data; only failing rows (few) get their per-column reasons spelled out.
    Stored counts are then taken from the tables themselves, so `rows_read == rows_cleaned +
    rows_quarantined` is a real check on what was kept, not the loader's arithmetic.
    `local_copy` is how the registered file's location becomes a local path (see `registered_file`).
    """
    ensure_tables(con, spec)
    with registered_file(con, spec, partition, local_copy=local_copy) as source:
        read = load_csv(
            con, source.path, source.dialect, STAGE, columns=source.column_names,
            column_types={c.name: READ_TYPES[c.type] for c in spec.columns}, null_tokens=NULL_TOKENS,
            source_name=source.name, temporary=True,
            date_format=spec.read_format("date"), timestamp_format=spec.read_format("timestamp"),
        )
    try:
        validated = _check_and_publish(con, spec, partition, STAGE, read, source)
    except (CleaningFailed, WarehouseBusy):
        raise  # their messages already name the file, the column and what to do
    except Exception as error:
        error.add_note(f"while cleaning {source.name} ({spec.name} [{partition}])")
        raise
    finally:
        _drop_quietly(con, STAGE, QUARANTINED)
    stored = summarize_partition(con, spec, partition)
    stored.rows_read = read.rows_read
    stored.rows_validated = validated
    return stored


def _drop_quietly(con: duckdb.DuckDBPyConnection, *temps: str) -> None:
    """Drop connection-local tables; a failure here (e.g. the connection died with the error being raised)
    must never replace that error, and the tables die with the connection anyway."""
    for temp in temps:
        with contextlib.suppress(duckdb.Error):
            con.execute(f"DROP TABLE IF EXISTS temp.{temp}")


def _failing_rows(con: duckdb.DuckDBPyConnection, spec: DatasetSpec, stage: str) -> tuple[str, str]:
    """Temp tables of the staging rows that fail a check or repeat a key: (failing, duplicates)."""
    checks = {c.name: _checks(c) for c in spec.columns}
    any_failure = " OR ".join(f"coalesce({cond}, false)" for pairs in checks.values() for cond, _ in pairs) or "false"
    duplicates = "_clean_duplicates"
    con.execute(f"CREATE OR REPLACE TEMP TABLE {duplicates} (_source_line BIGINT, first_line BIGINT)")
    if spec.key:
        # Group 64-bit hashes, not strings (several times cheaper on millions of keys); the few
        # candidate hashes are then resolved on the exact key, so a collision never quarantines a row.
        key = q(spec.key)
        con.execute(
            f"""INSERT INTO {duplicates}
                SELECT _source_line, first_line FROM (
                    SELECT _source_line, min(_source_line) OVER (PARTITION BY {key}) AS first_line
                    FROM {stage}
                    WHERE hash({key}) IN (SELECT hash({key}) AS h FROM {stage} GROUP BY h HAVING count(*) > 1)
                ) WHERE _source_line <> first_line"""
        )
    failing = "_clean_failing"
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE {failing} AS
            SELECT _source_line FROM {stage} WHERE {any_failure}
            UNION SELECT _source_line FROM {duplicates}"""
    )
    return failing, duplicates


def move_to_quarantine(
    con: duckdb.DuckDBPyConnection, spec: DatasetSpec, partition: str, stage: str, failing: str, duplicates: str,
    now: dt.datetime,
) -> None:
    """Copy the failing staging rows to the staged quarantine with every reason spelled out, then delete them
    from staging."""
    checks = {c.name: _checks(c) for c in spec.columns}
    reasons = [
        f"CASE WHEN coalesce({cond}, false) THEN '{name}: ' || {reason} END"
        for name, pairs in checks.items() for cond, reason in pairs
    ]
    first_bad = [
        f"CASE WHEN coalesce({cond}, false) THEN '{name}' END" for name, pairs in checks.items() for cond, _ in pairs
    ]
    first_bad.append(f"CASE WHEN d.first_line IS NOT NULL THEN '{spec.key}' END")
    dup_reason = (f"CASE WHEN d.first_line IS NOT NULL THEN '{spec.key}: duplicate key (first at line ' "
                  "|| d.first_line || ')' END")
    record = "to_json(struct_pack(" + ", ".join(f"{q(c.name)} := r.{q(c.name)}" for c in spec.columns) + "))"
    con.execute(
        f"""INSERT INTO temp.{QUARANTINED}
            SELECT $partition, 'clean', r._source_file, r._source_line, coalesce({', '.join(first_bad)}),
                   concat_ws('; ', {', '.join(reasons + [dup_reason])}), {record}, $now
            FROM {stage} AS r SEMI JOIN {failing} AS f USING (_source_line)
            LEFT JOIN {duplicates} AS d USING (_source_line)""",
        {"partition": partition, "now": now},
    )
    con.execute(f"DELETE FROM {stage} WHERE _source_line IN (SELECT _source_line FROM {failing})")


def _check_and_publish(
    con: duckdb.DuckDBPyConnection, spec: DatasetSpec, partition: str, stage: str, read: LoadResult, source
) -> int:
    """Quarantine failing rows and validate the rest with pandera (in staging), then publish the partition in
    one transaction, retried if it collides with another writer. Returns the rows pandera validated.

    Any error leaves the warehouse as it was and surfaces as itself (never as a secondary error from the
    rollback).
    """
    failing, duplicates = _failing_rows(con, spec, stage)
    n_failing = con.execute(f"SELECT count(*) FROM {failing}").fetchone()[0]
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    try:
        con.execute(f"CREATE OR REPLACE TEMP TABLE {QUARANTINED} AS SELECT * FROM {table(spec, 'quarantine')} LIMIT 0")
        if read.rejects:
            con.executemany(
                f"INSERT INTO temp.{QUARANTINED} VALUES (?, 'read', ?, ?, ?, ?, ?, ?)",
                [[partition, source.name, r.line, r.column, r.reason, r.raw, now] for r in read.rejects],
            )
        if n_failing:  # a clean file skips both scans
            move_to_quarantine(con, spec, partition, stage, failing, duplicates, now)
        _finish_types(con, spec, stage)
        validated = _validate_with_pandera(con, spec, stage, source.name)
    finally:
        _drop_quietly(con, duplicates, failing)
    columns = ", ".join(typed_column(c) for c in spec.columns)
    for attempt in commit_attempts(con, f"{spec.name}.cleaned [{partition}]"):
        with attempt, transaction(con):
            con.execute(f"DELETE FROM {table(spec, 'quarantine')} WHERE _partition = ?", [partition])
            con.execute(f"INSERT INTO {table(spec, 'quarantine')} SELECT * FROM temp.{QUARANTINED}")
            con.execute(f"DELETE FROM {table(spec, 'cleaned')} WHERE _partition = ?", [partition])
            con.execute(
                f"INSERT INTO {table(spec, 'cleaned')} SELECT {columns}, $partition, _source_file, _source_line, $now "
                f"FROM {stage}",
                {"partition": partition, "now": now},
            )
            con.execute(f"DELETE FROM {table(spec, 'cleaned_partitions')} WHERE _partition = ?", [partition])
            con.execute(f"INSERT INTO {table(spec, 'cleaned_partitions')} VALUES (?, ?)", [partition, now])
            con.execute(
                f"UPDATE {table(spec, 'ingestion_contracts')} SET rows_read = ? WHERE _partition = ?",
                [read.rows_read, partition],
            )
    return validated


def _finish_types(con: duckdb.DuckDBPyConnection, spec: DatasetSpec, stage: str) -> None:
    """Give the checked staging table its final shape: tidy labels, no extra columns."""
    existing = [r[0] for r in con.execute(f"DESCRIBE {stage}").fetchall()]
    for column in existing:
        if column.startswith("_extra_"):
            con.execute(f"ALTER TABLE {stage} DROP COLUMN {q(column)}")
    for column in spec.columns:
        if column.type == "category":
            c = q(column.name)
            con.execute(f"UPDATE {stage} SET {c} = trim({c}) WHERE {c} <> trim({c})")


def summarize_partition(con: duckdb.DuckDBPyConnection, spec: DatasetSpec, partition: str) -> CleanResult:
    """Counts for one partition as stored: rows read from the file, rows in the published partition table,
    rows in quarantine (by reason), each counted from its own table."""
    rows_read = con.execute(
        f"SELECT coalesce(sum(rows_read), 0) FROM {table(spec, 'ingestion_contracts')} WHERE _partition = ?",
        [partition],
    ).fetchone()[0]
    published = con.execute(
        f"SELECT count(*) FROM {table(spec, 'cleaned_partitions')} WHERE _partition = ?", [partition]
    ).fetchone()[0]
    rows_cleaned = con.execute(
        f"SELECT count(*) FROM {table(spec, 'cleaned')} WHERE _partition = ?", [partition]
    ).fetchone()[0] if published else 0
    reasons = dict(
        con.execute(
            f"""SELECT CASE WHEN stage = 'clean' THEN regexp_extract(reason, '^([^:;]+: [^:;]+)', 1)
                       ELSE coalesce(column_name, '(row)') || ': ' || regexp_extract(reason, '^([^:;]{{1,80}})', 1)
                       END AS why, count(*)
                FROM {table(spec, 'quarantine')} WHERE _partition = ? GROUP BY why ORDER BY count(*) DESC""",
            [partition],
        ).fetchall()
    )
    return CleanResult(partition, int(rows_read), int(rows_cleaned), int(sum(reasons.values())), reasons)


def preview_partition(con: duckdb.DuckDBPyConnection, spec: DatasetSpec, partition: str, rows: int = 5) -> pd.DataFrame:
    """The first rows of a cleaned partition, for the asset's metadata."""
    return con.execute(
        f"SELECT * EXCLUDE (_ingested_at) FROM {table(spec, 'cleaned')} WHERE _partition = ? LIMIT {int(rows)}",
        [partition],
    ).df()


def _validate_with_pandera(con: duckdb.DuckDBPyConnection, spec: DatasetSpec, source: str, file_name: str) -> int:
    """Validate every row of `source` against the pandera schema, in bounded batches; returns rows validated.

    Raises CleaningFailed naming the file, the column and the failed check. Each batch is fetched
    whole before it is validated, so no open result holds the transaction when validation fails.
    """
    from pandera.errors import SchemaErrors

    schema = pandera_schema(spec, batch=True)
    # Dates are compared as timestamps (Arrow dates become Python objects in pandas).
    cols = ", ".join(
        f"CAST({q(c.name)} AS TIMESTAMP) AS {q(c.name)}" if c.type == "date" else typed_column(c) for c in spec.columns
    )
    validated = 0
    reader = con.execute(f"SELECT {cols} FROM {source}").fetch_record_batch(VALIDATION_BATCH_ROWS)
    try:
        for batch in reader:
            frame: pd.DataFrame = batch.to_pandas(types_mapper=_PANDAS_FROM_ARROW.get)
            try:
                schema.validate(frame, lazy=True, inplace=True)
            except SchemaErrors as exc:
                cases = exc.failure_cases
                shown = "; ".join(
                    f"column {row.column!r}: {row.check} (e.g. {row.failure_case!r})"
                    for row in cases.drop_duplicates(["column", "check"]).head(5).itertuples()
                )
                raise CleaningFailed(
                    f"{file_name}: {len(cases)} value(s) fail the {spec.name} schema after cleaning: {shown}. "
                    f"Fix the column's type or checks in {spec.spec_path or 'the dataset spec'}, or the file"
                ) from None
            validated += len(frame)
    finally:
        reader.close()
    return validated
