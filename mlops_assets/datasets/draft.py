"""Draft a dataset spec from a CSV file: what a person would otherwise write by hand, explained line by line.

Built on what ingestion already does, not on a second parser: the project's sniffer decides the
dialect, DuckDB reads the whole file with exactly those options (the loader ingestion uses, types
parsed in the scan; a column whose values do not all parse falls back to text), and `SUMMARIZE`
plus a few exact aggregates give ranges, blanks, distinct values. The draft is then proven
ingest-ready by cleaning the file with it (the real cleaning code, pandera validation included) in
a throwaway in-memory warehouse. Every guess is explained in a YAML comment, so reviewing the draft
is reading it. Runs without Dagster.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import duckdb
import yaml

from mlops_assets.datasets.spec import DatasetSpec, load_spec
from mlops_assets.ingest.dialect import CsvDialect, normalize_column_name, sniff_csv
from mlops_assets.ingest.landing import SNIFF_SAMPLE_BYTES
from mlops_assets.ingest.loader import load_csv
from mlops_assets.tables import NULL_TOKENS, q

Task = Literal["classification", "regression"]

MAX_CATEGORY_VALUES = 50
"""More distinct labels than this and a text column is treated as free text (role id), not a category."""
RANGE_MARGIN = 1.0
"""Allowed ranges are the observed ones widened by this share of the span on each side: wide enough for a
real shift over time (drift monitoring watches that), narrow enough to catch wrong units and garbage."""
TYPE_REJECT_TOLERANCE = 0.005
"""A column keeps its type when at most this share of its values fail to parse (those rows are quarantined)."""
BOOLEAN_WORDS = ("true/false", "t/f", "yes/no", "y/n", "1/0")
"""What DuckDB (hence cleaning) reads as booleans, in any letter case."""
_ID_HINT = re.compile(r"(^|_)(id|ids|key|uuid|guid|identifier|index|idx|code|number|no|nr)$")
_TIME_HINT = re.compile(r"(^|_)(date|time|timestamp|datetime|day|ts|at|on)$")
_SNIFFED_TO_SQL = {"integer": "DOUBLE", "float": "DOUBLE", "boolean": "BOOLEAN", "date": "DATE",
                   "timestamp": "TIMESTAMP", "string": "VARCHAR"}
_TABLE = "draft_rows"
DRAFT_SEVERE_SHARE = 0.3
"""Severe drift share written into drafts: above DriftSpec's default, since file drops are often small batches."""


class DraftError(ValueError):
    """The file cannot be drafted into a spec as asked; the message is one line saying what to do."""


@dataclass
class ColumnDraft:
    """One column's guess and the reasons for it (they become the YAML comment above the column)."""

    header: str
    name: str
    type: str
    role: str = "feature"
    required: bool = False
    unique: bool = False
    min: float | None = None
    max: float | None = None
    values: list[str] | None = None
    format: str | None = None
    notes: list[str] = field(default_factory=list)

    def entry(self) -> dict[str, Any]:
        """The column as it goes into the spec (defaults left out, as a person would write it)."""
        item: dict[str, Any] = {"name": self.name}
        if self.header != self.name:
            item["source"] = self.header
        item["type"] = self.type
        if self.role != "feature":
            item["role"] = self.role
        if self.required:
            item["required"] = True
        if self.unique:
            item["unique"] = True
        for key in ("min", "max"):
            value = getattr(self, key)
            if value is not None:
                item[key] = int(value) if self.type == "integer" or float(value).is_integer() else value
        if self.values is not None:
            item["values"] = self.values
        if self.format is not None:
            item["format"] = self.format
        return item


@dataclass
class Draft:
    """A drafted spec: its YAML text (with comments), the validated spec, and what the dry-run cleaning found."""

    text: str
    spec: DatasetSpec
    columns: list[ColumnDraft]
    dialect: CsvDialect
    rows: int
    rows_cleaned: int
    rows_quarantined: int
    quarantine_reasons: dict[str, int]
    seconds: float


# --------------------------------------------------------------------------- entry point


def draft_spec(path: str | Path, *, target: str, name: str | None = None, task: Task | None = None) -> Draft:
    """Draft the spec of dataset `name` (default: from the file name) from the CSV at `path`.

    Raises DraftError (unknown target, a target no task fits) or UnreadableFile (not a usable CSV),
    each with a one-line message.
    """
    started = time.perf_counter()
    path = Path(path)
    name = name or dataset_name_from_file(path)
    if not re.match(r"^[a-z][a-z0-9_]*$", name):
        raise DraftError(f"dataset name {name!r} must be snake_case (a-z, 0-9, _), starting with a letter; pass --name")
    dialect = sniff_csv(path, sample_bytes=SNIFF_SAMPLE_BYTES)
    headers = list(dialect.columns)
    names = column_names(headers)
    target_index = _find_target(target, headers, names, path)

    with _connect() as con:
        types, formats, rows, notes = _load_typed(con, path, dialect, names)
        stats = _profile(con, names, types, rows)
        columns = [
            _guess_column(header, column, types[column], stats[column], rows, is_target=(i == target_index),
                          sniffed=dialect.types[header], date_format=formats.get(column))
            for i, (header, column) in enumerate(zip(headers, names))
        ]
    for column in columns:
        column.notes[:0] = notes.get(column.name, [])
    target_column = columns[target_index]
    chosen_task = _choose_task(target_column, stats[target_column.name], task, path)
    key = next((c.name for c in columns if c.role == "id" and c.unique and c.required and _ID_HINT.search(c.name)), None)
    time_column = _choose_time_column(columns)
    if not any(c.role == "feature" for c in columns):
        raise DraftError(f"{path.name}: no column can be a model feature (all are ids, times or text); "
                         "check the target and the file")

    text = render(
        name=name, path=path, dialect=dialect, rows=rows, columns=columns, target=target_column.name,
        task=chosen_task, key=key, time_column=time_column,
    )
    spec = validate_text(text, name)
    cleaned, quarantined, reasons = dry_run(spec, path)
    verdict = (f"# Checked: all {rows} rows of {path.name} pass this spec (cleaned with it, pandera-validated)."
               if not quarantined else
               f"# Checked: {cleaned} of {rows} rows of {path.name} pass this spec; {quarantined} would be "
               f"quarantined: " + "; ".join(f"{why} ({n})" for why, n in reasons.items()))
    text = text.replace("# Checked: (pending)", verdict)
    return Draft(text, spec, columns, dialect, rows, cleaned, quarantined, reasons, time.perf_counter() - started)


def _connect() -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB that keeps quiet: the CLI prints its own summary, no progress bars on stderr."""
    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    return con


# --------------------------------------------------------------------------- names


def dataset_name_from_file(path: Path) -> str:
    """`Bank-Full_2024-03.csv.gz` -> `bank_full`: the file name without extensions, dates and part numbers."""
    stem = path.name
    for suffix in (".gz", ".csv", ".tsv", ".txt"):
        stem = stem[: -len(suffix)] if stem.lower().endswith(suffix) else stem
    stem = re.sub(r"\d{4}[-_.]?\d{2}(?:[-_.]?\d{2})?", " ", stem)
    name = normalize_column_name(stem)
    name = re.sub(r"(?:_(?:part|batch|file|chunk|v))?_?\d+$", "", name).strip("_")
    return name if re.match(r"^[a-z]", name) else "dataset"


def column_names(headers: list[str]) -> list[str]:
    """snake_case names for the headers: 'Age (years)' -> age_years, '2nd' -> c_2nd, '' -> column_3; unique."""
    names: list[str] = []
    for position, header in enumerate(headers, start=1):
        # 'Patient #' -> patient_no: a number sign means "number", which the id hints then recognize.
        base = normalize_column_name(header.replace("#", " no ")) or f"column_{position}"
        if not base[0].isalpha():
            base = f"c_{base}"
        candidate, n = base, 2
        while candidate in names:
            candidate, n = f"{base}_{n}", n + 1
        names.append(candidate)
    return names


def _find_target(target: str, headers: list[str], names: list[str], path: Path) -> int:
    wanted = normalize_column_name(target)
    for i, (header, name) in enumerate(zip(headers, names)):
        if target in (header, name) or wanted == name:
            return i
    raise DraftError(f"{path.name}: no column {target!r} to predict; the columns are {headers}")


# --------------------------------------------------------------------------- reading and profiling


def _load_typed(
    con: duckdb.DuckDBPyConnection, path: Path, dialect: CsvDialect, names: list[str]
) -> tuple[dict[str, str], dict[str, str], int, dict[str, list[str]]]:
    """Load every row with the types the sniffer saw, parsed by DuckDB; widen to text what does not parse.

    Dates not written as ISO (31.01.2026, 01/31/2026) are read with the format their values show
    (`date_formats`). Returns (DuckDB type per column, date format per column, rows read, notes per column).
    """
    types = {n: _SNIFFED_TO_SQL[dialect.types[h]] for n, h in zip(names, dialect.columns)}
    notes: dict[str, list[str]] = {}
    formats = _date_formats(con, path, dialect, names, types, notes)
    shared = next(iter(formats.values()), None)
    for _ in range(len(names) + 1):
        result = load_csv(con, path, dialect, _TABLE, columns=names, column_types=types, null_tokens=NULL_TOKENS,
                          temporary=True, date_format=shared)
        by_column: dict[str, list] = {}
        for reject in result.rejects:
            if reject.column and types.get(reject.column) != "VARCHAR":
                by_column.setdefault(reject.column, []).append(reject)
        widen = {c: r for c, r in by_column.items() if len(r) > max(1, TYPE_REJECT_TOLERANCE * result.rows_read)}
        if not widen:
            for column, rejects in by_column.items():
                first = rejects[0]
                notes.setdefault(column, []).append(
                    f"{len(rejects)} value(s) do not parse as {_word(types[column])} (line {first.line}: "
                    f"{first.reason}); those rows will be quarantined"
                )
            ragged = [r for r in result.rejects if not r.column]
            if ragged:
                notes.setdefault(names[0], []).append(
                    f"{len(ragged)} row(s) of the file cannot be split into {len(names)} fields (first at line "
                    f"{ragged[0].line}); they will be quarantined")
            return types, {c: f for c, f in formats.items() if types[c] == "DATE"}, result.rows_read, notes
        for column, rejects in widen.items():
            notes.setdefault(column, []).append(
                f"read as text: {len(rejects)} value(s) are not {_word(types[column])}s "
                f"(line {rejects[0].line}: {rejects[0].reason})")
            types[column] = "VARCHAR"
    raise AssertionError("unreachable: every column can be read as text")


_DAY_MONTH_YEAR = re.compile(r"^(\d{1,2})([./-])(\d{1,2})\2(\d{4})$")
_YEAR_SLASH = re.compile(r"^\d{4}/\d{1,2}/\d{1,2}$")
_ISO_DATE = re.compile(r"^\d{4}-\d{1,2}-\d{1,2}$")


def date_format(values: list[str]) -> tuple[str | None, str]:
    """(strptime format, how it was decided) for date strings; format None means ISO (or not one format).

    Day-first or month-first is read from the values: a first number above 12 means day-first
    (31.01.2026), a second above 12 month-first (01/31/2026). When no value tells, the separator
    decides as it does by convention: dots day-first, slashes and dashes month-first.
    """
    values = [v.strip() for v in values if v and v.strip()]
    if not values or all(_ISO_DATE.match(v) for v in values):
        return None, "ISO dates"
    if all(_YEAR_SLASH.match(v) for v in values):
        return "%Y/%m/%d", "year first"
    parts = [_DAY_MONTH_YEAR.match(v) for v in values]
    separators = {m[2] for m in parts if m}
    if not all(parts) or len(separators) != 1:
        return None, "not one date format"
    sep = separators.pop()
    day_first = any(int(m[1]) > 12 for m in parts)
    month_first = any(int(m[3]) > 12 for m in parts)
    if day_first and month_first:
        return None, "not one date format"
    if not day_first and not month_first:
        day_first = sep == "."
        why = f"no day above 12 in this file: {'day' if day_first else 'month'} first, as usual with {sep!r}"
    else:
        why = "a first number above 12: day first" if day_first else "a second number above 12: month first"
    return (f"%d{sep}%m{sep}%Y" if day_first else f"%m{sep}%d{sep}%Y"), why


def _date_formats(con: duckdb.DuckDBPyConnection, path: Path, dialect: CsvDialect, names: list[str],
                  types: dict[str, str], notes: dict[str, list[str]]) -> dict[str, str]:
    """The non-ISO format of each column sniffed as dates, read from all its values; at most one format.

    DuckDB reads a file's dates with one format, so a column written differently from the first one found
    is read as text (and noted). The ISO-only case (the usual one) costs nothing: no extra read.
    """
    dates = [n for n in names if types[n] == "DATE"]
    if not dates:
        return {}
    load_csv(con, path, dialect, _TABLE, columns=names, null_tokens=NULL_TOKENS, temporary=True)  # all as text
    found: dict[str, str] = {}
    for column in dates:
        values = [r[0] for r in con.execute(f"SELECT DISTINCT {q(column)} FROM {_TABLE} WHERE {q(column)} IS NOT NULL "
                                            "LIMIT 100000").fetchall()]
        fmt, why = date_format(values)
        if fmt is None:
            continue
        if found and fmt != next(iter(found.values())):
            types[column] = "VARCHAR"
            notes.setdefault(column, []).append(f"read as text: dates written as {fmt}, unlike the other date "
                                                f"column(s) ({next(iter(found.values()))}); one format per file")
            continue
        found[column] = fmt
        notes.setdefault(column, []).append(f"dates written {fmt.replace('%', '')}-style ({why}): read with format {fmt}")
    iso = [c for c in dates if c not in found and types[c] == "DATE"]
    if found and iso:  # ISO dates beside formatted ones cannot share the reader's one format
        for column in iso:
            types[column] = "VARCHAR"
            notes.setdefault(column, []).append("read as text: ISO dates, unlike the other date column(s); "
                                                "one format per file")
    return found


def _word(sql_type: str) -> str:
    return {"DOUBLE": "number", "BOOLEAN": "boolean", "DATE": "date", "TIMESTAMP": "timestamp"}.get(sql_type, "text")


@dataclass
class _Stats:
    non_null: int
    distinct: int
    min: str | None
    max: str | None
    integral: bool = False
    values: dict[str, int] | None = None  # label -> rows, for low-cardinality columns


def _profile(con: duckdb.DuckDBPyConnection, names: list[str], types: dict[str, str], rows: int) -> dict[str, _Stats]:
    """Per column: non-null count, distinct count, min/max (DuckDB SUMMARIZE), integrality, labels with counts."""
    summary = {r[0]: r for r in con.execute(f"SUMMARIZE SELECT {', '.join(q(n) for n in names)} FROM {_TABLE}").fetchall()}
    exact = []
    for n in names:
        column = q(n) if types[n] != "VARCHAR" else f"trim({q(n)})"  # cleaning trims labels before comparing
        exact.append(f"count({q(n)})")
        exact.append(f"count(DISTINCT {column})")
        exact.append(f"bool_and({q(n)} = floor({q(n)}) AND abs({q(n)}) < 9e15)" if types[n] == "DOUBLE" else "NULL")
    values = con.execute(f"SELECT {', '.join(exact)} FROM {_TABLE}").fetchone() or ()
    stats: dict[str, _Stats] = {}
    for i, n in enumerate(names):
        non_null, distinct, integral = values[3 * i: 3 * i + 3]
        _, _, low, high, *_ = summary[n]
        item = _Stats(int(non_null), int(distinct), low, high, bool(integral))
        if distinct <= MAX_CATEGORY_VALUES and types[n] in ("VARCHAR", "BOOLEAN", "DOUBLE"):
            label = f"trim({q(n)})" if types[n] == "VARCHAR" else q(n)
            item.values = {str(v): int(c) for v, c in con.execute(
                f"SELECT {label} AS v, count(*) FROM {_TABLE} WHERE {q(n)} IS NOT NULL GROUP BY v ORDER BY count(*) DESC, v"
            ).fetchall()}
        stats[n] = item
    return stats


# --------------------------------------------------------------------------- guessing


def _guess_column(header: str, name: str, sql_type: str, stats: _Stats, rows: int, *, is_target: bool,
                  sniffed: str = "string", date_format: str | None = None) -> ColumnDraft:
    column = ColumnDraft(header=header, name=name, type="string")
    time_like = sniffed in ("date", "timestamp") or bool(_TIME_HINT.search(name))
    blanks = rows - stats.non_null
    column.required = blanks == 0 or is_target
    if is_target:
        column.role = "target"
    if stats.non_null == 0:
        column.role = "target" if is_target else "id"
        column.notes.append("empty in this file: kept as text (role id); give it a type once it has values")
    elif sql_type == "BOOLEAN":
        column.type = "boolean"
        column.notes.append(f"boolean: yes/no-style words ({_counts(stats)})")
    elif sql_type in ("DATE", "TIMESTAMP"):
        column.type = sql_type.lower()
        column.format = date_format
        column.role = "target" if is_target else "time"
        column.notes.append(f"{column.type} from {stats.min} to {stats.max}: a time column, not a model feature")
    elif sql_type == "VARCHAR" and time_like and not is_target:
        # Never a category feature: date labels of one file do not recur in the next, whose rows would all
        # be quarantined as "not an allowed value".
        column.role = "id"
        column.notes.append(
            f"looks like {'dates or times' if sniffed in ('date', 'timestamp') else 'a date or time (by its name)'}"
            f" but is kept as text (e.g. {stats.min!r}), role id: carried along, not a model feature; give it "
            "`type: date` with a `format` to use it as the time column")
    elif sql_type == "DOUBLE":
        _guess_number(column, stats, rows, is_target)
    else:
        _guess_text(column, stats, rows, is_target)
    if blanks and not is_target:
        column.notes.append(f"optional: {blanks} blank ({blanks / rows:.1%}); the model handles missing values")
    elif blanks:
        column.notes.append(f"{blanks} row(s) have no target value: they will be quarantined")
    elif column.role != "id":
        column.notes.append("required: no blanks in this file (a later blank is quarantined)")
    return column


def _guess_number(column: ColumnDraft, stats: _Stats, rows: int, is_target: bool) -> None:
    low, high = float(stats.min), float(stats.max)
    column.type = "integer" if stats.integral else "float"
    shown = f"{_fmt(low)}..{_fmt(high)}"
    if is_target and stats.integral and stats.values is not None and set(stats.values) <= {"0.0", "1.0"}:
        column.type = "boolean"
        column.notes.append(f"boolean: a 0/1 target ({_counts(stats)}), read as false/true")
        return
    if not is_target and stats.integral and stats.non_null == rows and stats.distinct == rows and rows > 1 and (
        _ID_HINT.search(column.name) or high - low + 1 == rows
    ):
        column.role, column.unique = "id", True
        column.notes.append(f"id: a different whole number in every row ({shown}); identifies rows, not a feature")
        return
    column.min, column.max = allowed_range(low, high, integer=stats.integral)
    if (column.min, column.max) == (0.0, 1.0) and not stats.integral:
        why = "a share"
    else:
        why = "the observed span added on each side, rounded out" + (
            "; not below 0, as it never was" if column.min == 0 and low - RANGE_MARGIN * (high - low) < 0 else "")
    column.notes.append(
        f"{column.type}: {'whole ' if stats.integral else ''}numbers {shown} in this file; allowed "
        f"{_fmt(column.min)}..{_fmt(column.max)} ({why}): values outside are quarantined and refused by the served model"
    )
    if stats.distinct == 1:
        column.notes.append("constant in this file: no use to the model until it varies")


def _guess_text(column: ColumnDraft, stats: _Stats, rows: int, is_target: bool) -> None:
    if stats.values is not None and (is_target or stats.distinct <= max(2, stats.non_null // 2)):
        column.type = "category"
        column.values = sorted(stats.values)
        column.notes.append(
            f"category: {stats.distinct} distinct labels ({_counts(stats, quote=True)}). `values` is the serving contract: "
            "a label not listed is quarantined at ingest and refused by the served model; add new labels here"
        )
        return
    column.type, column.role = "string", "id"
    if stats.distinct == stats.non_null and stats.non_null == rows:
        column.unique = True
        column.notes.append(f"id: a different text in every row (e.g. {stats.min!r}); identifies rows, not a feature")
    else:
        column.notes.append(
            f"text with {stats.distinct} distinct values (e.g. {stats.min!r}): too many for a category, so kept "
            "as role id (carried along, not a model feature); bin it into fewer labels upstream to use it"
        )


def allowed_range(low: float, high: float, *, integer: bool) -> tuple[float, float]:
    """The observed range widened by RANGE_MARGIN of its span on each side, rounded outward to round numbers.

    A column never below 0 is not allowed below 0; one within [0, 1] (a share) is allowed exactly [0, 1].
    """
    if low >= 0 and high <= 1 and not integer:
        return 0.0, 1.0
    span = high - low or max(abs(high), 1.0)
    lo, hi = low - RANGE_MARGIN * span, high + RANGE_MARGIN * span
    if low >= 0:
        lo = max(lo, 0.0)
    step = 10 ** (math.floor(math.log10(hi - lo)) - 1)
    if integer:
        step = max(step, 1)
    lo, hi = math.floor(lo / step) * step, math.ceil(hi / step) * step
    return round(lo, 10), round(hi, 10)


def _choose_task(target: ColumnDraft, stats: _Stats, task: Task | None, path: Path) -> Task:
    text = target.type in ("category", "string")
    labels = f"{stats.distinct} labels ({_counts(stats, quote=text)})" if stats.values else f"{stats.distinct} values"
    if target.type == "boolean":
        guess: Task = "classification"
        target.notes.append("target -> task classification (a yes/no outcome)")
    elif target.type in ("integer", "float"):
        guess = "regression"
        target.notes.append(f"target -> task regression (a {target.type} with {stats.distinct} distinct values)")
    else:
        raise DraftError(
            f"{path.name}: target {target.header!r} has {labels}; the platform trains binary classifiers on a "
            f"yes/no target ({', '.join(BOOLEAN_WORDS)}) and regressors on a numeric one: re-export the target "
            "as one of those"
        )
    if task and task != guess:
        raise DraftError(
            f"{path.name}: --task {task} does not fit target {target.header!r} ({target.type}, {labels}); "
            f"{guess} does" + ("; classification needs a yes/no target" if task == "classification" else "")
        )
    return guess


def _choose_time_column(columns: list[ColumnDraft]) -> str | None:
    times = [c for c in columns if c.role == "time" and c.required and c.type in ("date", "timestamp")]
    times.sort(key=lambda c: (not _TIME_HINT.search(c.name), c.type != "timestamp"))
    if times:
        times[0].notes.append("the dataset's time_column: validation holds out the newest rows by it")
        return times[0].name
    return None


def _counts(stats: _Stats, shown: int = 8, *, quote: bool = False) -> str:
    items = list((stats.values or {}).items())
    text = ", ".join(f"{repr(v) if quote else _label(v)} {n}" for v, n in items[:shown])
    return text + (f", ... {len(items) - shown} more" if len(items) > shown else "")


def _label(value: str) -> str:
    return {"0.0": "0", "1.0": "1", "True": "true", "False": "false"}.get(value, value)


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    return str(int(value)) if float(value).is_integer() else f"{value:.6g}"


# --------------------------------------------------------------------------- YAML


def _y(value: Any) -> str:
    """One YAML value in flow style (quoted where YAML needs it, e.g. 'yes', 'no', '1.5')."""
    return yaml.safe_dump(value, default_flow_style=True, allow_unicode=True, width=10**9).removesuffix("\n...\n").strip()


def _flow(item: dict[str, Any]) -> str:
    """A mapping on one line, dumped as a whole so quoting follows flow rules (`Had Affair?` needs quotes there)."""
    return yaml.safe_dump(item, default_flow_style=True, sort_keys=False, allow_unicode=True, width=10**9).strip()


def render(
    *, name: str, path: Path, dialect: CsvDialect, rows: int, columns: list[ColumnDraft], target: str, task: Task,
    key: str | None, time_column: str | None,
) -> str:
    """The spec as YAML, every guess explained in the comment above it."""
    today = dt.date.today().isoformat()
    delim = {"\t": "tab", " ": "space"}.get(dialect.delimiter, repr(dialect.delimiter))
    out = [
        f"# Dataset spec drafted by `mlops-assets spec draft {path.name} --target {target}` on {today}",
        f"# from {rows} rows: {len(columns)} columns, delimiter {delim}, quote {dialect.quotechar!r}, "
        f"encoding {dialect.encoding}, header {'yes' if dialect.has_header else 'no'}, decimal {dialect.decimal!r}"
        + (", gzip-compressed" if dialect.compression else "") + ".",
        "# Checked: (pending)",
        *(["# No header row: columns are matched by position, so rename them freely (keep their order)."]
          if not dialect.has_header else []),
        "# Every guess is explained above its line: review them, then `mlops-assets ingest "
        f"{name} FILE`. Reference: README, 'Spec reference'.",
        f"name: {name}",
        f"description: {_y(f'Drafted from {path.name} ({rows} rows) on {today}.')}",
        "source: {kind: file_drop}          # files you ingest (or drop in $MLOPS_HOME/landing/" + name + "/)",
        "partitioning: {kind: files}        # one partition per file, ordered by arrival",
        "contract:                          # pinned from this file: a later file that differs is held back",
        f"  delimiter: {json.dumps(dialect.delimiter)}",
        f"  header: {_y(dialect.has_header)}",
        f"  encoding: {_y(dialect.encoding)}",
        f"task: {task}",
        f"target: {target}",
    ]
    if key:
        out.append(f"{'key: ' + key:<34} # unique per file: a repeated key is quarantined")
    if time_column:
        out.append(f"{'time_column: ' + time_column:<34} # orders rows in time (validation takes the newest)")
    out.append("columns:")
    for column in columns:
        out.extend(f"  # {column.name + ':' if i == 0 else ' ' * len(column.name) + ' '} {note}"
                   for i, note in enumerate(column.notes))
        entry = column.entry()
        if column.values is not None:
            out.append(f"  - name: {entry.pop('name')}")
            out.extend(f"    {k}: {_y(v)}" for k, v in entry.items())
        else:
            out.append(f"  - {_flow(entry)}")
    primary, floor = ("roc_auc", {"roc_auc": 0.6}) if task == "classification" else ("rmse", {"r2": 0.0})
    out += [
        "training:",
        "  candidates:                         # compared on held-out rows (a dummy baseline is always scored too)",
        "    - {name: hist_gradient_boosting, params: {random_state: 7}}   # handles blanks and mixed scales; "
        "reproducible",
        "  validation_fraction: 0.2            # newest 20% by time_column when there is one, else a seeded shuffle",
        "  # window_partitions: 12             # uncomment to train on the newest 12 files only (default: all)",
        f"  primary_metric: {primary}",
        f"  min_metrics: {_flow(floor)}" + ("           # the champion bar: 0.5 is chance; raise it once you know "
                                            "what good looks like" if task == "classification" else
                                            "               # the champion bar: 0 is no better than predicting the "
                                            "mean; raise it once you know what good looks like"),
        "drift:",
        f"  severe_share: {DRAFT_SEVERE_SHARE}   # share of feature columns drifting at which monitor exits 1 and "
        "retrain_on_drift fires (default 0.2: higher here, as a file of a few hundred rows drifts by chance)",
        "quality:",
        "  max_quarantine_share: 0.05   # a file with more rows quarantined than this fails its check (data kept)",
    ]
    return "\n".join(out) + "\n"


def validate_text(text: str, name: str) -> DatasetSpec:
    """Load the drafted text exactly as `load_specs` will, so a draft is never written invalid."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"{name}.yaml"
        path.write_text(text, encoding="utf-8")
        return load_spec(path).model_copy(update={"spec_path": None})


def dry_run(spec: DatasetSpec, path: Path) -> tuple[int, int, dict[str, int]]:
    """Clean the file with the drafted spec in a throwaway in-memory warehouse: (cleaned, quarantined, reasons)."""
    from mlops_assets.ingest.cleaning import CleaningFailed, clean_partition
    from mlops_assets.ingest.landing import register_file

    with _connect() as con:
        register_file(con, spec, path, path.name)
        try:
            result = clean_partition(con, spec, path.name)
        except CleaningFailed as exc:  # a guess the real cleaning disagrees with is a drafting bug: say so plainly
            raise DraftError(f"{path.name}: the drafted spec does not clean the file it was drafted from ({exc}); "
                             "please report this with the file's header") from None
    return result.rows_cleaned, result.rows_quarantined, result.quarantine_reasons
