"""`raw` -> `cleaned`: type every value, enforce the spec's checks, quarantine what fails.

The bulk work is one DuckDB pass (fast on files larger than memory); the pandera schema generated
from the same spec then validates every cleaned row in batches, so the table is pandera-validated,
not just "cleaned by SQL we hope agrees with the schema".
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass

import duckdb
import pandas as pd
import pandera.pandas as pa

from mlops_assets.datasets.spec import ColumnSpec, DatasetSpec
from mlops_assets.warehouse_tables import ensure_tables, q, sql_type, table

NA_TOKENS = ("", "na", "n/a", "nan", "null", "none", "-", "?")
TRUE_TOKENS = ("true", "t", "1", "yes", "y")
FALSE_TOKENS = ("false", "f", "0", "no", "n")
PANDAS_DTYPES = {
    "string": object,
    "category": object,
    "integer": "int64",
    "float": "float64",
    "boolean": "bool",
    "timestamp": "datetime64[us]",
    "date": "datetime64[us]",
}
VALIDATION_BATCH_ROWS = 500_000


def pandera_schema(spec: DatasetSpec) -> pa.DataFrameSchema:
    """The cleaned table's contract, generated from the spec (also shown in the Dagster UI)."""
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
            unique=column.unique,
            description=f"{column.type}, role {column.role}" + (f", from CSV header {column.source!r}" if column.source else ""),
        )
    return pa.DataFrameSchema(columns, name=f"{spec.name}_cleaned", strict="filter", coerce=False)


def _number_text(raw: str, dialect: dict) -> str:
    """SQL expression: the text of a number with the file's thousands/decimal separators normalized."""
    expr = raw
    thousands = dialect.get("thousands")
    if thousands:
        expr = f"replace({expr}, '{thousands}', '')"
    if dialect.get("decimal") == ",":
        expr = f"replace({expr}, ',', '.')"
    return expr


def _value_and_reason(column: ColumnSpec, dialect: dict) -> tuple[str, str]:
    """(typed value expression, failure reason expression) for one column."""
    raw = f"trim({q(column.name)})"
    na = ", ".join(f"'{t}'" for t in NA_TOKENS)
    is_missing = f"({q(column.name)} IS NULL OR lower({raw}) IN ({na}))"
    if column.type in ("integer", "float"):
        number = f"TRY_CAST({_number_text(raw, dialect)} AS DOUBLE)"
        if column.type == "integer":
            value = f"CASE WHEN {number} = floor({number}) AND abs({number}) < 9.2e18 THEN CAST({number} AS BIGINT) END"
        else:
            value = f"CASE WHEN isfinite({number}) THEN {number} END"
    elif column.type == "boolean":
        true, false = (", ".join(f"'{t}'" for t in tokens) for tokens in (TRUE_TOKENS, FALSE_TOKENS))
        value = f"CASE WHEN lower({raw}) IN ({true}) THEN true WHEN lower({raw}) IN ({false}) THEN false END"
    elif column.type in ("timestamp", "date"):
        value = f"TRY_CAST({raw} AS {sql_type(column)})"
    else:
        value = raw
    value = f"CASE WHEN {is_missing} THEN NULL ELSE {value} END"

    checks = [f"WHEN {is_missing} THEN " + ("'missing required value'" if column.required else "NULL")]
    checks.append(f"WHEN {value} IS NULL THEN 'not a valid {column.type}: ' || {raw}")
    if column.min is not None:
        checks.append(f"WHEN {value} < {column.min!r} THEN 'below minimum {column.min:g}: ' || {raw}")
    if column.max is not None:
        checks.append(f"WHEN {value} > {column.max!r} THEN 'above maximum {column.max:g}: ' || {raw}")
    if column.values:
        allowed = ", ".join("'" + v.replace("'", "''") + "'" for v in column.values)
        checks.append(f"WHEN {value} NOT IN ({allowed}) THEN 'not an allowed value: ' || {raw}")
    return value, "CASE " + " ".join(checks) + " END"


@dataclass
class CleanResult:
    partition: str
    rows_in: int
    rows_cleaned: int
    rows_quarantined: int
    quarantine_reasons: dict[str, int]


def clean_partition(con: duckdb.DuckDBPyConnection, spec: DatasetSpec, partition: str) -> CleanResult:
    """Replace `partition` in `cleaned` with the typed, valid rows of `raw`; quarantine the rest."""
    ensure_tables(con, spec)
    contract_row = con.execute(
        f"SELECT contract FROM {table(spec, 'ingestion_contracts')} WHERE _partition = ?", [partition]
    ).fetchone()
    if contract_row is None:
        raise LookupError(f"{spec.name}: partition {partition!r} has no raw data; materialize {spec.name}/raw first")
    dialect = json.loads(contract_row[0])

    typed, reasons = [], []
    for column in spec.columns:
        value, reason = _value_and_reason(column, dialect)
        typed.append(f"{value} AS {q(column.name)}")
        reasons.append(f"CASE WHEN ({reason}) IS NOT NULL THEN '{column.name}: ' || ({reason}) END")
    first_bad = [f"CASE WHEN r{i} IS NOT NULL THEN '{c.name}' END" for i, c in enumerate(spec.columns)]
    first_bad.append(f"CASE WHEN r_dup IS NOT NULL THEN '{spec.key}' END")
    reason_cols = ", ".join(f"{r} AS r{i}" for i, r in enumerate(reasons))
    record = "to_json(struct_pack(" + ", ".join(f"{q(c.name)} := {q(c.name)}" for c in spec.columns) + "))"
    duplicate = "NULL"
    if spec.key:
        duplicate = (
            f"CASE WHEN row_number() OVER (PARTITION BY {q(spec.key)} ORDER BY _source_line) > 1 "
            f"THEN '{spec.key}: duplicate key' END"
        )
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    staged = f"{q(spec.name)}.{q('_staging_clean')}"
    con.execute(
        f"""
        CREATE OR REPLACE TABLE {staged} AS
        WITH src AS (SELECT * FROM {table(spec, 'raw')} WHERE _partition = $partition),
        checked AS (
            SELECT {', '.join(typed)}, {reason_cols}, {duplicate} AS r_dup,
                   _source_file, _source_line, _ingested_at, {record} AS _record
            FROM src
        )
        SELECT *, concat_ws('; ', {', '.join(f'r{i}' for i in range(len(spec.columns)))}, r_dup) AS _reason,
               coalesce({', '.join(first_bad)}) AS _bad_column
        FROM checked
        """,
        {"partition": partition},
    )
    cols = ", ".join(q(c.name) for c in spec.columns)
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute(f"DELETE FROM {table(spec, 'cleaned')} WHERE _partition = ?", [partition])
        con.execute(
            f"INSERT INTO {table(spec, 'cleaned')} SELECT {cols}, ? AS _partition, _source_file, _source_line, "
            f"_ingested_at FROM {staged} WHERE _reason = '' ORDER BY _source_line",
            [partition],
        )
        con.execute(f"DELETE FROM {table(spec, 'quarantine')} WHERE _partition = ? AND stage = 'clean'", [partition])
        con.execute(
            f"INSERT INTO {table(spec, 'quarantine')} SELECT ?, 'clean', _source_file, _source_line, _bad_column, "
            f"_reason, _record, ? FROM {staged} WHERE _reason <> ''",
            [partition, now],
        )
        con.execute(f"DROP TABLE {staged}")
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise
    return summarize_partition(con, spec, partition)


def summarize_partition(con: duckdb.DuckDBPyConnection, spec: DatasetSpec, partition: str) -> CleanResult:
    """Counts for one partition as stored: rows read from the file, cleaned, quarantined (by reason)."""
    rows_in = con.execute(
        f"SELECT coalesce(sum(rows_read), 0) FROM {table(spec, 'ingestion_contracts')} WHERE _partition = ?", [partition]
    ).fetchone()[0]
    rows_cleaned = con.execute(f"SELECT count(*) FROM {table(spec, 'cleaned')} WHERE _partition = ?", [partition]).fetchone()[0]
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


def validate_with_pandera(con: duckdb.DuckDBPyConnection, spec: DatasetSpec, partition: str) -> int:
    """Validate every cleaned row of the partition against the pandera schema, in bounded batches.

    Raises `pandera.errors.SchemaErrors` naming the failing column and check. Returns rows validated.
    """
    schema = pandera_schema(spec)
    cols = ", ".join(q(c.name) for c in spec.columns)
    reader = con.sql(
        f"SELECT {cols} FROM {table(spec, 'cleaned')} WHERE _partition = $partition", params={"partition": partition}
    ).to_arrow_reader(VALIDATION_BATCH_ROWS)
    validated = 0
    for batch in reader:
        frame: pd.DataFrame = batch.to_pandas()
        schema.validate(frame, lazy=True)
        validated += len(frame)
    return validated
