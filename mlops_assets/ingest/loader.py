"""Stream a sniffed CSV into a DuckDB table as text; rows the reader cannot split become rejects.

DuckDB's `read_csv` does the reading with every option taken from the sniffed dialect (its own
auto-detection is switched off), so the load streams at DuckDB speed and never materializes the
file in Python. Encodings DuckDB cannot read, and mixed line endings it cannot parse, are first
transcoded to a temporary UTF-8 file in fixed-size chunks. Gzip files are read by DuckDB directly
(and a transcoded copy of one is written gzip-compressed): nothing is decompressed to disk.

`_source_line` numbering: the 1-based record ordinal plus the header line, i.e. the physical line
number as long as no earlier record spans several lines (newline inside quotes) and no blank line
precedes it. It is the numbering DuckDB uses for reject lines, so rows and rejects interleave.
"""

from __future__ import annotations

import codecs
import gzip
import logging
import re
import tempfile
import time
import uuid
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from mlops_assets.ingest.dialect import CsvDialect, UnreadableFile, compression_of, open_bytes

log = logging.getLogger(__name__)

NATIVE_ENCODINGS = {"utf-8": "utf-8", "utf-8-sig": "utf-8", "latin-1": "latin-1"}
"""Dialect encodings DuckDB reads itself (it skips a UTF-8 BOM); all others are transcoded."""

MAX_LINE_BYTES = 16 << 20
"""Largest record DuckDB will read (its default is 2 MB); a bigger one becomes a reject."""
READ_BUFFER_BYTES = 32 << 20
"""DuckDB derives its read buffer from max_line_size (x16, capped at the file size); set it explicitly
so a large max_line_size cannot turn into a buffer the size of the file."""
TRANSCODE_CHUNK_BYTES = 1 << 20
RAW_REJECT_CHARS = 4096  # the raw text kept per reject
RESERVED_COLUMNS = ("_source_line", "_source_file")
_TRAILING = "_trailing_field"
_MARK_ERRORS = "mlops-ingest-mark-undecodable"


@dataclass(frozen=True)
class Reject:
    """One record that could not be loaded: where it is, which column, why, and its text."""

    line: int | None
    column: str | None
    reason: str
    raw: str | None


@dataclass
class LoadResult:
    rows_read: int
    rows_loaded: int
    rejects: list[Reject] = field(default_factory=list)
    table: str = ""
    seconds: float = 0.0


def load_csv(
    con: duckdb.DuckDBPyConnection,
    path: str | Path,
    dialect: CsvDialect,
    table: str,
    *,
    columns: Sequence[str] | None = None,
    tmp_dir: str | Path | None = None,
    column_types: Mapping[str, str] | None = None,
    null_tokens: Sequence[str] = (),
    temporary: bool = False,
    source_name: str | None = None,
    date_format: str | None = None,
    timestamp_format: str | None = None,
) -> LoadResult:
    """(Re)create `table` with the file's data columns plus `_source_line`, `_source_file`.

    Columns are VARCHAR unless `column_types` names a DuckDB type for them (by final column name):
    DuckDB's reader then parses them in the scan, and a value it cannot parse makes the record a
    reject naming the column and the value. `null_tokens` are read as NULL. `temporary` makes a
    connection-local TEMP table (kept in memory, spilled to disk past DuckDB's memory limit).
    `source_name` is the `_source_file` recorded (default: the file's name), e.g. the name a
    user dropped when `path` is an archived copy.
    `date_format` / `timestamp_format` (strptime) parse DATE / TIMESTAMP columns written in another form than ISO.
    `table` is used as a SQL table reference: a plain or dotted name, or already-quoted identifiers.
    `columns` renames the file's columns by position. Conservation holds by construction:
    rows_read == rows_loaded + len(rejects), where rows_read counts data records.
    """
    started = time.perf_counter()
    path = Path(path)
    names = _column_names(dialect, columns)
    target = _table_ref(table)
    normalize = dialect.newline == "mixed"

    with tempfile.TemporaryDirectory(prefix="mlops_ingest_", dir=tmp_dir) as scratch:
        gzipped = dialect.compression == "gzip"
        if gzipped:
            check_gzip_complete(path)
        scratch_file = Path(scratch) / ("transcoded.utf8.csv" + (".gz" if gzipped else ""))

        def attempt(normalize_newlines: bool) -> tuple[int, list[Reject]]:
            source, encoding, newline = path, NATIVE_ENCODINGS.get(dialect.encoding), dialect.newline
            if encoding is None or normalize_newlines:
                source = transcode_to_utf8(path, dialect.encoding, scratch_file, normalize_newlines=normalize_newlines,
                                           compress=gzipped)
                encoding = "utf-8"
                if normalize_newlines:
                    newline = "\n"
            try:
                return _read_into_table(
                    con, source, source_name or path.name, dialect, names, target, encoding, newline, column_types or {},
                    null_tokens, temporary, {"dateformat": date_format, "timestampformat": timestamp_format},
                )
            except duckdb.IOException as exc:  # e.g. a gzip stream that ends early: an incomplete upload
                raise UnreadableFile(path, f"DuckDB could not read it ({_first_line(exc)}); if the file was still "
                                           "being uploaded or copied, deliver it again") from None

        outcome: tuple[int, list[Reject]] | None = None
        if not normalize:
            try:
                outcome = attempt(False)
            except duckdb.InvalidInputException as exc:
                # Line endings that change after the sample put DuckDB's parser in an invalid state.
                log.warning("%s: DuckDB could not parse with newline %r (%s); retrying with line endings "
                            "normalized", path.name, dialect.newline, _first_line(exc))
            else:
                if _records(outcome) < dialect.sample_rows:
                    # DuckDB can return nothing, silently, when the newline option does not fit the file.
                    log.warning("%s: read %d records but the sample alone has %d; retrying with line endings "
                                "normalized", path.name, _records(outcome), dialect.sample_rows)
                    outcome = None
        if outcome is None:
            normalize = True
            try:
                outcome = attempt(True)
            except duckdb.InvalidInputException as exc:
                raise _unreadable(path, exc) from exc
        loaded, rejects = outcome
        if loaded + len(rejects) == 0:
            raise UnreadableFile(
                path,
                f"DuckDB read no records although the sample has {dialect.sample_rows}; the file does not "
                f"match its sniffed dialect (delimiter {dialect.delimiter!r}, newline {dialect.newline!r}); "
                "check the file and re-sniff",
            )
        if loaded + len(rejects) < dialect.sample_rows:
            log.warning("%s: read %d records, fewer than the %d in the sniffed sample; check the rejects",
                        path.name, loaded + len(rejects), dialect.sample_rows)

    result = LoadResult(
        rows_read=loaded + len(rejects),
        rows_loaded=loaded,
        rejects=rejects,
        table=table,
        seconds=time.perf_counter() - started,
    )
    log.info("%s -> %s: %d read, %d loaded, %d rejected in %.2fs%s", path.name, table, result.rows_read,
             result.rows_loaded, len(rejects), result.seconds, " (line endings normalized)" if normalize else "")
    return result


def _records(outcome: tuple[int, list[Reject]]) -> int:
    loaded, rejects = outcome
    return loaded + len(rejects)


def transcode_to_utf8(
    source: str | Path,
    encoding: str,
    target: str | Path,
    *,
    normalize_newlines: bool = False,
    chunk_bytes: int = TRANSCODE_CHUNK_BYTES,
    compress: bool = False,
) -> Path:
    """Re-encode `source` as UTF-8 in fixed-size chunks (memory stays at a few chunks, whatever the size).

    Undecodable bytes are written as an invalid UTF-8 byte so DuckDB rejects exactly those lines
    instead of the data being silently replaced. A BOM is dropped. With `normalize_newlines`,
    CRLF and CR become LF (also inside quoted fields), keeping the line count unchanged. A gzip
    `source` is decompressed as a stream; `compress` writes the copy gzip-compressed (fast level).
    """
    codecs.register_error(_MARK_ERRORS, _mark_undecodable)
    decoder = codecs.getincrementaldecoder(encoding)(errors=_MARK_ERRORS)
    target = Path(target)
    try:
        with open_bytes(source) as src, (gzip.open(target, "wb", compresslevel=1) if compress else target.open("wb")) as dst:
            _transcode(src, decoder, dst, normalize_newlines, chunk_bytes)
    except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
        raise UnreadableFile(source, f"is not a readable gzip file ({exc}); if the file was still being uploaded "
                                     "or copied, deliver it again") from None
    return target


def check_gzip_complete(path: Path, chunk_bytes: int = 1 << 20) -> None:
    """Refuse a gzip file whose stream is cut short or corrupt (an upload still in progress, a broken copy).

    DuckDB 1.4's reader stops quietly at a truncated stream's end: cut on a line boundary, the file would
    load with rows missing and nothing said. One streaming pass checks every member to its CRC, holding
    at most `chunk_bytes` of output at a time.
    """
    decompressor, open_member = zlib.decompressobj(wbits=31), False
    try:
        with open(path, "rb") as source:
            while chunk := source.read(chunk_bytes):
                while chunk:
                    if not open_member:
                        chunk = chunk.lstrip(b"\0")  # zero padding between or after members, as gzip(1) allows
                        if not chunk:
                            break
                    open_member = True
                    decompressor.decompress(chunk, chunk_bytes)
                    while decompressor.unconsumed_tail and not decompressor.eof:
                        decompressor.decompress(decompressor.unconsumed_tail, chunk_bytes)
                    if decompressor.eof:  # a member ended at its checksum; what follows is the next one
                        chunk, open_member = decompressor.unused_data, False
                        decompressor = zlib.decompressobj(wbits=31)
                    else:
                        chunk = b""
    except zlib.error as exc:
        raise UnreadableFile(path, f"is not a readable gzip file ({exc}); if the file was still being uploaded "
                                   "or copied, deliver it again") from None
    if open_member:
        raise UnreadableFile(path, "is a gzip stream that ends early (DuckDB could not read it to the end); if the "
                                   "file was still being uploaded or copied, deliver it again")


def _transcode(src, decoder, dst, normalize_newlines: bool, chunk_bytes: int) -> None:
    held_cr = ""
    while True:
        chunk = src.read(chunk_bytes)
        text = held_cr + decoder.decode(chunk, final=not chunk)
        held_cr = ""
        if normalize_newlines:
            if chunk and text.endswith("\r"):
                text, held_cr = text[:-1], "\r"  # its LF may start the next chunk
            text = text.replace("\r\n", "\n").replace("\r", "\n")
        dst.write(text.encode("utf-8", errors="surrogateescape"))
        if not chunk:
            break


def _mark_undecodable(exc: UnicodeError) -> tuple[str, int]:
    # U+DCFF encodes (surrogateescape) to the byte 0xFF, which is never valid UTF-8.
    return "\udcff", exc.end  # type: ignore[attr-defined]


# --------------------------------------------------------------------------- DuckDB


def _read_into_table(
    con: duckdb.DuckDBPyConnection,
    source: Path,
    file_name: str,
    dialect: CsvDialect,
    names: list[str],
    target: str,
    encoding: str,
    newline: str,
    column_types: Mapping[str, str],
    null_tokens: Sequence[str],
    temporary: bool = False,
    formats: Mapping[str, str | None] | None = None,
) -> tuple[int, list[Reject]]:
    internal = [f"c{i}" for i in range(1, len(names) + 1)]
    types = [column_types.get(n, "VARCHAR") for n in names] + (["VARCHAR"] if dialect.trailing_delimiter else [])
    if dialect.trailing_delimiter:
        internal.append(_TRAILING)
    suffix = uuid.uuid4().hex[:12]
    rejects_table, rejects_scan = f"_ingest_rejects_{suffix}", f"_ingest_reject_scans_{suffix}"
    header_lines = 1 if dialect.has_header else 0
    quote = dialect.quotechar or ""
    escape = (dialect.escapechar or quote) if dialect.quotechar else ""
    options = {
        "delim": _lit(dialect.delimiter),
        "quote": _lit(quote),
        "escape": _lit(escape),
        "header": "true" if dialect.has_header else "false",
        "new_line": _lit({"\r\n": "\\r\\n", "\n": "\\n", "\r": "\\r"}[newline]),
        "columns": "{" + ", ".join(f"{_lit(c)}: {_lit(t)}" for c, t in zip(internal, types)) + "}",
        "encoding": _lit(encoding),
        "auto_detect": "false",
        # Told, not guessed from the name: the sniffer recognized gzip by its magic bytes.
        "compression": _lit(compression_of(source) or "none"),
        # strict_mode is left at its default on purpose: DuckDB (seen on 2.0) with an explicit
        # strict_mode=true and new_line='\r\n' silently returns zero rows.
        "max_line_size": str(MAX_LINE_BYTES),
        "buffer_size": str(READ_BUFFER_BYTES),
        "store_rejects": "true",
        "rejects_table": _lit(rejects_table),
        "rejects_scan": _lit(rejects_scan),
    }
    if null_tokens:
        options["nullstr"] = "[" + ", ".join(_lit(t) for t in null_tokens) + "]"
    if dialect.decimal != ".":
        options["decimal_separator"] = _lit(dialect.decimal)
    if dialect.thousands:
        options["thousands"] = _lit(dialect.thousands)
    options.update({option: _lit(value) for option, value in (formats or {}).items() if value})
    select = [f"{c} AS {_ident(n)}" for c, n in zip(internal, names)]
    select.append(f"{_lit(file_name)} AS _source_file")
    if dialect.trailing_delimiter:
        select.append(_ident(_TRAILING))
    read = f"read_csv({_lit(str(source))}, " + ", ".join(f"{k}={v}" for k, v in options.items()) + ")"
    try:
        con.execute(f"CREATE OR REPLACE {'TEMP ' if temporary else ''}TABLE {target} AS SELECT {', '.join(select)} FROM {read}").fetchall()
        # Insertion order is preserved (DuckDB's default), so rowid is the loaded-record ordinal in file
        # order. Numbering afterwards costs a tenth of a row_number() window, which serializes the scan.
        con.execute(f"ALTER TABLE {target} ADD COLUMN _source_line BIGINT").fetchall()
        con.execute(f"UPDATE {target} SET _source_line = rowid + 1 + {header_lines}").fetchall()
        rows = con.execute(
            f"SELECT line, column_name, error_type, error_message, csv_line FROM {rejects_table} "
            "ORDER BY line, column_idx"
        ).fetchall()
    finally:
        con.execute(f"DROP TABLE IF EXISTS {rejects_table}").fetchall()
        con.execute(f"DROP TABLE IF EXISTS {rejects_scan}").fetchall()

    column_of = dict(zip(internal, names))
    rejects: list[Reject] = []
    seen_lines: set[int] = set()
    for line, column_name, error_type, message, csv_line in rows:
        if line is not None and line in seen_lines:
            continue  # one reject per record, the first error found
        if line is not None:
            seen_lines.add(int(line))
        rejects.append(
            Reject(
                line=int(line) if line is not None else None,
                column=column_of.get(column_name) if column_name else None,
                reason=_reason(error_type, message, dialect.encoding),
                raw=_raw(csv_line),
            )
        )
    if rejects:
        _shift_lines_past_rejects(con, target, sorted(seen_lines), header_lines)
    if dialect.trailing_delimiter:
        rejects.extend(_reject_values_after_trailing_delimiter(con, target, names, dialect.delimiter))
        rejects.sort(key=lambda r: (r.line is None, r.line or 0))
    ((loaded,),) = con.execute(f"SELECT count(*) FROM {target}").fetchall()
    return int(loaded), rejects


def _shift_lines_past_rejects(
    con: duckdb.DuckDBPyConnection, target: str, reject_lines: list[int], header_lines: int
) -> None:
    """Turn loaded-row ordinals into record ordinals: the k-th loaded record is record k + (rejects before it).

    With rejected record ordinals e_1 < e_2 < ..., the k-th surviving record is k + #{i : e_i - i < k};
    the thresholds e_i - i never decrease, so an ASOF join finds the count for every row in one pass.
    """
    count_below: dict[int, int] = {}
    for i, ordinal in enumerate((line - header_lines for line in reject_lines), start=1):
        count_below[ordinal - i] = i  # equal thresholds: keep the largest count
    name = f"_ingest_thresholds_{uuid.uuid4().hex[:12]}"
    con.execute(
        f"CREATE TEMP TABLE {name} AS SELECT unnest(?::BIGINT[]) AS t, unnest(?::BIGINT[]) AS n",
        [list(count_below), list(count_below.values())],
    ).fetchall()
    try:
        con.execute(
            f"UPDATE {target} SET _source_line = {target}._source_line + shift.n "
            f"FROM (SELECT loaded._source_line AS k, {name}.n FROM {target} AS loaded "
            f"ASOF JOIN {name} ON loaded._source_line - {header_lines} > {name}.t) AS shift "
            f"WHERE {target}._source_line = shift.k"
        ).fetchall()
    finally:
        con.execute(f"DROP TABLE IF EXISTS {name}").fetchall()


def _reject_values_after_trailing_delimiter(
    con: duckdb.DuckDBPyConnection, target: str, names: list[str], delimiter: str
) -> list[Reject]:
    """A value after the 'trailing' delimiter means the row has an extra field: reject, do not drop it."""
    fields = ", ".join(_ident(n) for n in [*names, _TRAILING])
    bad = con.execute(
        f"SELECT _source_line, concat_ws({_lit(delimiter)}, {fields}) FROM {target} "
        f"WHERE {_ident(_TRAILING)} IS NOT NULL ORDER BY _source_line"
    ).fetchall()
    if bad:
        con.execute(f"DELETE FROM {target} WHERE {_ident(_TRAILING)} IS NOT NULL").fetchall()
    con.execute(f"ALTER TABLE {target} DROP COLUMN {_ident(_TRAILING)}").fetchall()
    return [
        Reject(line=int(line), column=None,
               reason="too many fields: a value after the trailing delimiter every other line ends with",
               raw=_raw(raw))
        for line, raw in bad
    ]


# --------------------------------------------------------------------------- helpers


def _column_names(dialect: CsvDialect, columns: Sequence[str] | None) -> list[str]:
    names = list(columns) if columns is not None else list(dialect.columns)
    if len(names) != len(dialect.columns):
        raise ValueError(
            f"columns has {len(names)} names but the file has {len(dialect.columns)} columns: {list(dialect.columns)}"
        )
    lowered = [n.lower() for n in names]
    duplicates = sorted({n for n in names if lowered.count(n.lower()) > 1})
    if duplicates:
        raise ValueError(f"column names must be unique (DuckDB ignores case): {duplicates}")
    clashes = [n for n in names if n.lower() in RESERVED_COLUMNS or n.lower() == _TRAILING]
    if clashes:
        raise ValueError(f"column names {clashes} are reserved for lineage columns; rename them")
    return names


_PLAIN_TABLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*){0,2}$")


def _table_ref(table: str) -> str:
    if '"' in table or _PLAIN_TABLE.match(table):
        return table
    return _ident(table)


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _lit(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


_COUNTS = re.compile(r"Expected Number of Columns: (\d+) Found: (\d+)")


_CAST_VALUE = re.compile(r'Could not convert string "(.*)" to \'(\w+)\'')
_TYPE_WORDS = {"DOUBLE": "number", "BIGINT": "integer", "BOOLEAN": "boolean", "TIMESTAMP": "timestamp", "DATE": "date"}


def _reason(error_type: str | None, message: str | None, encoding: str) -> str:
    message = " ".join((message or "").split())
    counts = _COUNTS.search(message)
    if error_type == "MISSING COLUMNS" and counts:
        return f"too few fields: expected {counts[1]}, found {counts[2]}"
    if error_type == "TOO MANY COLUMNS" and counts:
        return f"too many fields: expected {counts[1]}, found {counts[2]}"
    if error_type == "CAST":
        value = _CAST_VALUE.search(message)
        if value:
            return f"not a valid {_TYPE_WORDS.get(value[2], value[2].lower())}: {value[1]}"
    if error_type == "INVALID ENCODING":
        return f"undecodable bytes: not valid {encoding} text"
    if error_type == "LINE SIZE OVER MAXIMUM":
        return f"record larger than the {MAX_LINE_BYTES >> 20} MiB limit: {message}"
    if error_type == "UNQUOTED VALUE":
        return f"bad quoting (a quote never closed, or text after a closing quote): {message}"
    return f"{(error_type or 'error').lower()}: {message}"


def _raw(csv_line: str | None) -> str | None:
    if csv_line is None:
        return None
    text = csv_line.lstrip("\r\n").rstrip("\r\n")
    if len(text) > RAW_REJECT_CHARS:
        text = text[:RAW_REJECT_CHARS] + f"... [{len(text) - RAW_REJECT_CHARS} more characters]"
    return text


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def _unreadable(path: Path, exc: BaseException) -> UnreadableFile:
    return UnreadableFile(path, f"DuckDB could not parse it with the sniffed dialect ({_first_line(exc)}); "
                                "inspect the file around the reported position and fix or re-export it")
