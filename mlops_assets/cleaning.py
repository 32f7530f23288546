"""`raw` -> `cleaned`: enforce the spec's checks on the parsed rows, quarantine what fails.

The bulk work is DuckDB scans (fast on files larger than memory); the pandera schema generated
from the same spec then validates every cleaned row in batches, so the table is pandera-validated,
not just "cleaned by SQL we hope agrees with the schema".
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import duckdb
import pandas as pd
import pandera.pandas as pa
import pyarrow as pa_types

from mlops_assets.datasets.spec import ColumnSpec, DatasetSpec
from mlops_assets.ingest.landing import registered_file
from mlops_assets.ingest.loader import LoadResult, load_csv
from mlops_assets.warehouse_tables import NULL_TOKENS, READ_TYPES, ensure_tables, q, sql_type, table

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
_ARROW_STRINGS = {pa_types.string(): pd.StringDtype("pyarrow"), pa_types.large_string(): pd.StringDtype("pyarrow")}


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
        if not column.required and column.type in ("integer", "boolean"):
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


def _typed(column: ColumnSpec) -> str:
    """Stored column -> `cleaned` column: integers are stored as checked-integral DOUBLEs (as read) and
    exposed as BIGINT, which costs nothing per read and saves rewriting the column at load."""
    c = q(column.name)
    if column.type == "integer":
        return f"CAST({c} AS BIGINT) AS {c}"
    return c


@dataclass
class CleanResult:
    partition: str
    rows_in: int
    rows_cleaned: int
    rows_quarantined: int
    quarantine_reasons: dict[str, int]
    rows_validated: int = 0


def partition_table(spec: DatasetSpec, partition: str) -> str:
    """The physical table holding one partition of `cleaned` (the `cleaned` view unions them)."""
    return f"{q(spec.name)}.{q('cleaned__' + partition)}"


def refresh_cleaned_view(con: duckdb.DuckDBPyConnection, spec: DatasetSpec) -> None:
    """`<dataset>.cleaned`: every cleaned partition, typed, with its partition key and load time."""
    parts = con.execute(
        f"SELECT _partition, cleaned_at FROM {table(spec, 'cleaned_partitions')} ORDER BY _partition"
    ).fetchall()
    columns = ", ".join(_typed(c) for c in spec.columns)
    selects = [
        f"SELECT {columns}, {_literal(partition)} AS _partition, _source_file, _source_line, "
        f"TIMESTAMP '{cleaned_at.isoformat(sep=' ')}' AS _ingested_at FROM {partition_table(spec, partition)}"
        for partition, cleaned_at in parts
    ]
    if not selects:
        typed = ", ".join(f"CAST(NULL AS {sql_type(c)}) AS {q(c.name)}" for c in spec.columns)
        selects = [f"SELECT {typed}, NULL::VARCHAR AS _partition, NULL::VARCHAR AS _source_file, "
                   "NULL::BIGINT AS _source_line, NULL::TIMESTAMP AS _ingested_at WHERE false"]
    con.execute(f"CREATE OR REPLACE VIEW {table(spec, 'cleaned')} AS " + "\nUNION ALL ".join(selects))


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def clean_partition(con: duckdb.DuckDBPyConnection, spec: DatasetSpec, partition: str) -> CleanResult:
    """Read the partition's registered file once; keep the rows that pass every check; quarantine the rest.

    The reader parses values into the spec's types in its scan (a value that does not parse, a
    ragged row or undecodable bytes make the record a reject) straight into a staging table, which
    becomes the partition's table once failing rows are moved to quarantine: the data is written
    once, as in a bare load. Checks are plain comparisons on typed data; only failing rows (few)
    get their per-column reasons spelled out. Pandera validates every kept row before it is published.
    """
    ensure_tables(con, spec)
    source = registered_file(con, spec, partition)
    stage = f"{q(spec.name)}.{q('_stage__' + partition)}"
    read = load_csv(
        con, source.path, source.dialect, stage, columns=source.column_names,
        column_types={c.name: READ_TYPES[c.type] for c in spec.columns}, null_tokens=NULL_TOKENS,
        source_name=source.name,
    )
    try:
        return _check_and_publish(con, spec, partition, stage, read, source)
    finally:
        con.execute(f"DROP TABLE IF EXISTS {stage}")


def _check_and_publish(
    con: duckdb.DuckDBPyConnection, spec: DatasetSpec, partition: str, stage: str, read: LoadResult, source
) -> CleanResult:
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
    n_failing = con.execute(f"SELECT count(*) FROM {failing}").fetchone()[0]
    reasons = [
        f"CASE WHEN coalesce({cond}, false) THEN '{name}: ' || {reason} END"
        for name, pairs in checks.items() for cond, reason in pairs
    ]
    first_bad = [
        f"CASE WHEN coalesce({cond}, false) THEN '{name}' END" for name, pairs in checks.items() for cond, _ in pairs
    ]
    first_bad.append(f"CASE WHEN d.first_line IS NOT NULL THEN '{spec.key}' END")
    dup_reason = f"CASE WHEN d.first_line IS NOT NULL THEN '{spec.key}: duplicate key (first at line ' || d.first_line || ')' END"
    record = "to_json(struct_pack(" + ", ".join(f"{q(c.name)} := r.{q(c.name)}" for c in spec.columns) + "))"
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    target = partition_table(spec, partition)
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute(f"DELETE FROM {table(spec, 'quarantine')} WHERE _partition = ?", [partition])
        if read.rejects:
            con.executemany(
                f"INSERT INTO {table(spec, 'quarantine')} VALUES (?, 'read', ?, ?, ?, ?, ?, ?)",
                [[partition, source.name, r.line, r.column, r.reason, r.raw, now] for r in read.rejects],
            )
        if n_failing:  # a clean file skips both scans
            con.execute(
                f"""INSERT INTO {table(spec, 'quarantine')}
                    SELECT $partition, 'clean', r._source_file, r._source_line, coalesce({', '.join(first_bad)}),
                           concat_ws('; ', {', '.join(reasons + [dup_reason])}), {record}, $now
                    FROM {stage} AS r SEMI JOIN {failing} AS f USING (_source_line)
                    LEFT JOIN {duplicates} AS d USING (_source_line)""",
                {"partition": partition, "now": now},
            )
            con.execute(f"DELETE FROM {stage} WHERE _source_line IN (SELECT _source_line FROM {failing})")
        _finish_types(con, spec, stage)
        validated = _validate_with_pandera(con, spec, stage)
        con.execute(f"DROP TABLE IF EXISTS {target}")
        con.execute(f"ALTER TABLE {stage} RENAME TO {q('cleaned__' + partition)}")
        con.execute(f"DELETE FROM {table(spec, 'cleaned_partitions')} WHERE _partition = ?", [partition])
        con.execute(f"INSERT INTO {table(spec, 'cleaned_partitions')} VALUES (?, ?)", [partition, now])
        refresh_cleaned_view(con, spec)
        con.execute(
            f"UPDATE {table(spec, 'ingestion_contracts')} SET rows_read = ? WHERE _partition = ?", [read.rows_read, partition]
        )
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise
    finally:
        con.execute(f"DROP TABLE IF EXISTS {duplicates}")
        con.execute(f"DROP TABLE IF EXISTS {failing}")
    result = summarize_partition(con, spec, partition)
    result.rows_validated = validated
    return result


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
    """Counts for one partition as stored: rows read from the file, cleaned, quarantined (by reason)."""
    rows_in = con.execute(
        f"SELECT coalesce(sum(rows_read), 0) FROM {table(spec, 'ingestion_contracts')} WHERE _partition = ?", [partition]
    ).fetchone()[0]
    published = con.execute(
        f"SELECT count(*) FROM {table(spec, 'cleaned_partitions')} WHERE _partition = ?", [partition]
    ).fetchone()[0]
    rows_cleaned = con.execute(f"SELECT count(*) FROM {partition_table(spec, partition)}").fetchone()[0] if published else 0
    reasons = dict(
        con.execute(
            f"""SELECT CASE WHEN stage = 'clean' THEN regexp_extract(reason, '^([^:;]+: [^:;]+)', 1)
                       ELSE coalesce(column_name, '(row)') || ': ' || regexp_extract(reason, '^([^:;]{{1,80}})', 1)
                       END AS why, count(*)
                FROM {table(spec, 'quarantine')} WHERE _partition = ? GROUP BY why ORDER BY count(*) DESC""",
            [partition],
        ).fetchall()
    )
    return CleanResult(partition, int(rows_in), int(rows_cleaned), int(sum(reasons.values())), reasons)


def _validate_with_pandera(con: duckdb.DuckDBPyConnection, spec: DatasetSpec, source: str) -> int:
    """Validate every row of `source` against the pandera schema, in bounded batches.

    Raises `pandera.errors.SchemaErrors` naming the failing column and check. Returns rows validated.
    """
    schema = pandera_schema(spec, batch=True)
    cols = ", ".join(_typed(c) for c in spec.columns)
    reader = con.sql(f"SELECT {cols} FROM {source}").to_arrow_reader(VALIDATION_BATCH_ROWS)
    validated = 0
    for batch in reader:
        # Arrow-backed strings: no per-value Python objects, so a batch converts ~4x faster.
        frame: pd.DataFrame = batch.to_pandas(types_mapper=_ARROW_STRINGS.get)
        schema.validate(frame, lazy=True, inplace=True)
        validated += len(frame)
    return validated
