"""Work out how a CSV file is written (its dialect) from a bounded sample, never trusting the file.

The sniffed `CsvDialect` is the file's ingestion contract: the loader reads with exactly these
options (DuckDB auto-detection never decides), and the contract is stored next to the data so a
person can see later how a file was read. Only the first `sample_bytes` bytes are read; a gzip file
(recognized by its magic bytes, whatever its name) is read through a decompressing stream, so the
sample is the first `sample_bytes` of its text and nothing is ever decompressed to disk.
"""

from __future__ import annotations

import codecs
import collections
import csv
import gzip
import io
import logging
import re
import unicodedata
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

log = logging.getLogger(__name__)

DELIMITERS: tuple[str, ...] = (",", ";", "\t", "|", ":", " ")
"""Candidate delimiters, in tie-break order (space last: headers often contain spaces)."""

NA_TOKENS = frozenset({"", "na", "n/a", "nan", "null", "none", "-", "?", "#n/a"})

_SCORING_CHARS = 64 * 1024  # delimiter scoring looks at this much text ...
_SCORING_RECORDS = 500  # ... and at most this many records per candidate
_TYPE_ROWS = 2000  # rows used for type / separator inference
_EXPLAIN_BYTES = 64 * 1024  # bytes read by explain_header_mismatch
_BINARY_CONTROL_SHARE = 0.05
_CP1252_UNDEFINED = frozenset({0x81, 0x8D, 0x8F, 0x90, 0x9D})
# C0/C1 control characters that never appear in CSV text (tab, LF, CR, FF are fine).
_CONTROL_CHARS = "".join(chr(c) for c in [*range(0x00, 0x09), 0x0B, *range(0x0E, 0x20), *range(0x7F, 0xA0)])
_DELETE_CONTROLS = str.maketrans("", "", _CONTROL_CHARS)


class UnreadableFile(Exception):
    """A file that cannot be ingested as CSV; the message is one line: file, likely cause, what to do."""

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = Path(path)
        self.reason = " ".join(str(reason).split())  # one line, whatever the caller passed
        # Callers sometimes pass a reason that already names the file; do not name it twice.
        named = self.reason.startswith((f"{self.path.name}:", f"{self.path}:"))
        message = self.reason if named else f"{self.path.name}: {self.reason}"
        super().__init__(message)


@dataclass(frozen=True)
class CsvDialect:
    """How one file is written; `to_metadata()` is the ingestion contract stored with the data."""

    delimiter: str
    quotechar: str | None
    escapechar: str | None
    encoding: str
    has_header: bool
    newline: str
    columns: tuple[str, ...]
    types: dict[str, str]
    decimal: str
    thousands: str | None
    sample_bytes: int
    sample_rows: int
    warnings: tuple[str, ...] = ()
    trailing_delimiter: bool = False
    """Every data line ends with a delimiter: the file has one more (empty) field than `columns`."""
    compression: str | None = None
    """`"gzip"` when the file is gzip-compressed (read as a stream by the sniffer and by DuckDB)."""
    empty_columns: tuple[str, ...] = ()
    """Columns without a single value in the sample (e.g. labels that have not arrived yet): their `types`
    entry says "string" for want of evidence, which is no evidence of a type change."""

    def to_metadata(self) -> dict:
        return {
            "delimiter": self.delimiter,
            "quotechar": self.quotechar,
            "escapechar": self.escapechar,
            "encoding": self.encoding,
            "has_header": self.has_header,
            "newline": self.newline,
            "columns": list(self.columns),
            "types": dict(self.types),
            "decimal": self.decimal,
            "thousands": self.thousands,
            "sample_bytes": self.sample_bytes,
            "sample_rows": self.sample_rows,
            "warnings": list(self.warnings),
            "trailing_delimiter": self.trailing_delimiter,
            "compression": self.compression,
            "empty_columns": list(self.empty_columns),
        }


# --------------------------------------------------------------------------- public helpers


def normalize_column_name(name: str) -> str:
    """Comparable form of a header: 'Résumé Total' -> 'resume_total', 'pH' -> 'ph'."""
    decomposed = unicodedata.normalize("NFKD", name)
    ascii_ish = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return re.sub(r"[^0-9a-z]+", "_", ascii_ish.strip().lower()).strip("_")


GZIP_MAGIC = b"\x1f\x8b"


def compression_of(path: str | Path) -> str | None:
    """`"gzip"` when the file starts with the gzip magic bytes (the name is not trusted), else None."""
    with Path(path).open("rb") as handle:
        return "gzip" if handle.read(2) == GZIP_MAGIC else None


def open_bytes(path: str | Path, compression: str | None = None) -> BinaryIO:
    """The file's bytes as a stream: decompressed on the fly for gzip (`compression` as sniffed, else detected)."""
    path = Path(path)
    if (compression or compression_of(path)) == "gzip":
        return gzip.open(path, "rb")  # type: ignore[return-value]
    return path.open("rb")


def read_head(path: str | Path, size: int, compression: str | None = None) -> bytes:
    """The first `size` bytes of the file's content; a broken gzip stream is an UnreadableFile."""
    try:
        with open_bytes(path, compression) as handle:
            return handle.read(size)
    except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
        raise UnreadableFile(
            path, f"is not a readable gzip file ({exc}); check that the upload finished, or re-compress it"
        ) from None


def explain_header_mismatch(path: str | Path, dialect: CsvDialect, expected_columns: Sequence[str]) -> str | None:
    """None when every expected column is in the file's header; else a one-line diagnosis.

    Extra columns and a different order are tolerated (columns are mapped by name). The
    diagnosis re-splits the first line with the other delimiters, because the most common cause
    is a wrong delimiter (a ';' file read with ',' has one column).
    """
    path = Path(path)
    expected = list(expected_columns)
    wanted = {normalize_column_name(c): c for c in expected}
    found = {normalize_column_name(c) for c in dialect.columns}
    missing = [orig for norm, orig in wanted.items() if norm not in found]
    if dialect.has_header and not missing:
        return None

    first_line = _first_record_text(path, dialect)
    for delimiter in DELIMITERS:
        if delimiter == dialect.delimiter or first_line is None:
            continue
        fields = _split_first_record(first_line, delimiter, dialect.quotechar, dialect.escapechar)
        if len(fields) > 1 and set(wanted) <= {normalize_column_name(f) for f in fields}:
            return (
                f"{path.name}: {_plural(len(dialect.columns), 'column')} found with {_show(dialect.delimiter)}; "
                f"with {_show(delimiter)} it has {_plural(len(fields), 'column')} matching the spec"
            )
    if not dialect.has_header:
        if first_line is not None:
            fields = _split_first_record(first_line, dialect.delimiter, dialect.quotechar, dialect.escapechar)
            if set(wanted) <= {normalize_column_name(f) for f in fields}:
                return (
                    f"{path.name}: the first row holds the expected column names but was sniffed as data; "
                    "sniff with expected_columns so it is read as the header"
                )
        return (
            f"{path.name}: no header row found (first row looks like data); expected columns {expected}; "
            "add a header row or map columns by position"
        )
    unexpected = [c for c in dialect.columns if normalize_column_name(c) not in wanted]
    message = f"{path.name}: missing columns {missing}"
    if unexpected:
        message += f"; unexpected columns {unexpected}"
    return message


def sniff_csv(
    path: str | Path,
    *,
    sample_bytes: int = 1 << 20,
    expected_columns: Sequence[str] | None = None,
) -> CsvDialect:
    """Sniff encoding, delimiter, quoting, header, newline, separators and column types from a sample.

    Raises UnreadableFile for empty, binary and header-only files, so they fail loudly at ingest
    instead of producing an empty or garbled table.
    """
    path = Path(path)
    if sample_bytes < 64:
        raise ValueError(f"sample_bytes must be at least 64, got {sample_bytes}")
    try:
        compression = compression_of(path)
        raw = read_head(path, sample_bytes + 1, compression)
    except FileNotFoundError:
        raise UnreadableFile(path, f"{path}: file not found; check the landing path") from None
    truncated = len(raw) > sample_bytes
    raw = raw[:sample_bytes]

    encoding, text = _decode_sample(path, raw, truncated)
    text = _complete_lines(text, truncated)
    if text is None:
        raise UnreadableFile(
            path,
            f"the first line is longer than the {len(raw)}-byte sample; this is not line-oriented "
            "CSV text, or sniff it with a larger sample_bytes",
        )
    warnings: list[str] = []
    expected_norm = [normalize_column_name(c) for c in expected_columns] if expected_columns else None

    choice = _choose_dialect(text, expected_norm)
    delimiter, quotechar, escapechar = choice.delimiter, choice.quotechar, choice.escapechar
    records, parse_errors = _parse_all(text, delimiter, quotechar, escapechar)
    if parse_errors:
        warnings.append(
            f"{parse_errors} malformed record(s) in the sample (bad quoting); they will be rejected at load"
        )
    if not records:
        raise UnreadableFile(path, "no CSV records in the sample; check that this is a CSV export")

    newline, newline_warning = _detect_newline(text, delimiter, quotechar, escapechar)
    if newline_warning:
        warnings.append(newline_warning)

    width = _mode(len(r) for r in records)
    records, trailing = _drop_trailing_delimiter(records, width)
    if trailing:
        width -= 1
        warnings.append(
            f"every line ends with {_show(delimiter)}: dropped the empty unnamed last column"
        )

    data_for_separators = records[1:] if len(records) > 1 else records
    decimal, thousands = _detect_separators(data_for_separators[:_TYPE_ROWS])

    has_header = _detect_header(records, decimal, thousands, expected_norm)
    data = records[1:] if has_header else records
    if not data and not truncated:
        raise UnreadableFile(
            path, "has a header but no data rows; the export produced no records, check the upstream query or filter"
        )
    if not data:
        warnings.append("the sample ends inside the first data record; column types not inferred")

    if has_header:
        columns, name_warnings = _unique_names(records[0])
        warnings.extend(name_warnings)
        if len(columns) != width:
            warnings.append(
                f"header has {len(columns)} fields but most rows have {width}; rows that differ will be rejected"
            )
    else:
        columns = tuple(f"column_{i}" for i in range(1, width + 1))

    types = _infer_types(columns, data[:_TYPE_ROWS], decimal, thousands)
    integer, real = _value_patterns(decimal, thousands)
    kinds = _column_kinds(data[:_TYPE_ROWS], len(columns), integer, real) if data else []
    empty = tuple(name for name, seen in zip(columns, kinds) if not seen)
    dialect = CsvDialect(
        delimiter=delimiter,
        quotechar=quotechar,
        escapechar=escapechar,
        encoding=encoding,
        has_header=has_header,
        newline=newline,
        columns=columns,
        types=types,
        decimal=decimal,
        thousands=thousands,
        sample_bytes=len(raw),
        sample_rows=len(data),
        warnings=tuple(warnings),
        trailing_delimiter=trailing,
        compression=compression,
        empty_columns=empty,
    )
    log.info(
        "%s: delimiter=%r encoding=%s header=%s newline=%r columns=%d sample_rows=%d%s",
        path.name, delimiter, encoding, has_header, newline, len(columns), len(data),
        f" warnings={list(warnings)}" if warnings else "",
    )
    return dialect


# --------------------------------------------------------------------------- encoding


def _decode_sample(path: Path, raw: bytes, truncated: bool) -> tuple[str, str]:
    """(encoding, decoded sample). BOM first, then strict UTF-8, then cp1252 / latin-1."""
    if not raw.strip(b" \t\r\n\x0b\x0c"):
        raise UnreadableFile(path, "file is empty (0 bytes); check that the upstream export finished, then re-run"
                             if not raw else "file has no content (only whitespace); check the upstream export")
    if raw.startswith(codecs.BOM_UTF8):
        encoding = "utf-8-sig"
    elif raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        encoding = "utf-16"
    elif b"\x00" in raw:
        raise UnreadableFile(
            path,
            "looks binary, not CSV text (NUL bytes and no UTF-16 byte-order mark); check that the right "
            "file was delivered (not zip/xlsx/parquet), or re-export as UTF-8",
        )
    elif _decodes(raw, "utf-8", truncated):
        encoding = "utf-8"
    else:
        high_c1 = {b for b in raw if 0x80 <= b <= 0x9F}
        encoding = "cp1252" if high_c1 and not (high_c1 & _CP1252_UNDEFINED) else "latin-1"

    decoder = codecs.getincrementaldecoder(encoding)(errors="replace")
    text = decoder.decode(raw, final=not truncated)
    if not text.strip():
        raise UnreadableFile(
            path, "file has no content (only a byte-order mark or whitespace); check the upstream export"
        )
    controls = len(text) - len(text.translate(_DELETE_CONTROLS))
    if controls / len(text) > _BINARY_CONTROL_SHARE:
        raise UnreadableFile(
            path,
            f"looks binary, not CSV text ({controls / len(text):.0%} control characters); check that the "
            "right file was delivered (not zip/xlsx/parquet)",
        )
    return encoding, text


def _decodes(raw: bytes, encoding: str, truncated: bool) -> bool:
    """Strict decode; a multibyte character cut by the sample end is not an error."""
    try:
        codecs.getincrementaldecoder(encoding)(errors="strict").decode(raw, final=not truncated)
    except UnicodeDecodeError:
        return False
    return True


def _complete_lines(text: str, truncated: bool) -> str | None:
    """Drop the partial last line of a truncated sample; None when not even one line is complete."""
    if not truncated:
        return text
    # Prefer LF so a CRLF pair split by the sample end does not look like a lone CR.
    end = text.rfind("\n")
    if end < 0:
        end = text.rfind("\r")
    if end < 0:
        return None
    return text[: end + 1]


# --------------------------------------------------------------------------- parsing


def _reader(text: str, delimiter: str, quotechar: str | None, escapechar: str | None):
    if csv.field_size_limit() < len(text) + 1:
        # Process-wide setting of the csv module; raising it only ever allows larger fields.
        csv.field_size_limit(len(text) + 1)
    if quotechar is None:
        return csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, quoting=csv.QUOTE_NONE, strict=True)
    return csv.reader(
        io.StringIO(text, newline=""),
        delimiter=delimiter,
        quotechar=quotechar,
        escapechar=escapechar,
        doublequote=escapechar is None,
        strict=True,
    )


def _parse_all(
    text: str, delimiter: str, quotechar: str | None, escapechar: str | None, limit: int | None = None
) -> tuple[list[list[str]], int]:
    """Complete records (blank lines skipped) and the number of malformed ones."""
    rows: list[list[str]] = []
    try:  # fast path: a well-formed sample parses in one C-driven loop
        for row in _reader(text, delimiter, quotechar, escapechar):
            if row:
                rows.append(row)
                if limit is not None and len(rows) >= limit:
                    break
        return rows, 0
    except csv.Error:
        rows = []  # malformed somewhere: start again, record by record
    reader = _reader(text, delimiter, quotechar, escapechar)
    errors = 0
    while limit is None or len(rows) < limit:
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            if "unexpected end of data" in str(exc):
                break  # record cut by the sample end (or a quote never closed): not complete
            errors += 1
            continue
        if row:
            rows.append(row)
    return rows, errors


@dataclass(frozen=True)
class _Choice:
    delimiter: str
    quotechar: str | None
    escapechar: str | None


def _quote_options(text: str) -> list[tuple[str | None, str | None]]:
    options: list[tuple[str | None, str | None]] = [('"', None)]
    if '"' in text and "\\" in text:
        options.append(('"', "\\"))
    if "'" in text:
        options.append(("'", None))
        if "\\" in text:
            options.append(("'", "\\"))
    if '"' in text or "'" in text:
        options.append((None, None))
    return options


def _choose_dialect(text: str, expected_norm: list[str] | None) -> _Choice:
    """Pick delimiter/quote/escape by quote-aware field-count consistency, csv.Sniffer breaking ties.

    For each delimiter the quoting that explains the sample best is kept (fewest malformed records,
    ragged records and fields still wrapped in quotes); delimiters then compete on consistency.
    """
    scoring = text
    if len(text) > _SCORING_CHARS:
        end = max(text.rfind("\n", 0, _SCORING_CHARS), text.rfind("\r", 0, _SCORING_CHARS))
        scoring = text[: end + 1] if end > 0 else text
    quote_options = _quote_options(scoring)
    sniffed = _csv_sniffer_delimiter(scoring)

    best_key = None
    best: _Choice | None = None
    for d_rank, delimiter in enumerate(DELIMITERS):
        fits = [
            (_quoting_fit(scoring, delimiter, quotechar, escapechar), q_rank, quotechar, escapechar)
            for q_rank, (quotechar, escapechar) in enumerate(quote_options)
        ]
        fits = [f for f in fits if f[0] is not None]
        if not fits:
            continue
        fit, _, quotechar, escapechar = min(fits, key=lambda f: (f[0].bad, f[1]))
        header_matches = bool(expected_norm and set(expected_norm) <= fit.first_row_names)
        key = (
            header_matches,
            fit.width > 1,
            fit.first_row_agrees,
            round(fit.share, 2),
            delimiter == sniffed,
            -d_rank,
        )
        if best_key is None or key > best_key:
            best_key, best = key, _Choice(delimiter, quotechar, escapechar)
    if best is None or best_key is None:
        return _Choice(",", '"', None)
    if sniffed is not None and sniffed != best.delimiter:
        log.debug("csv.Sniffer suggested %r, consistency chose %r", sniffed, best.delimiter)
    if not best_key[1]:
        return _Choice(",", best.quotechar, best.escapechar)  # one column: no delimiter to speak of
    return best


@dataclass(frozen=True)
class _Fit:
    width: int  # the most common field count
    share: float  # records with that count, malformed records counting against it
    bad: int  # malformed + ragged records + fields still wrapped in quote characters
    first_row_agrees: bool
    first_row_names: frozenset[str]


def _quoting_fit(text: str, delimiter: str, quotechar: str | None, escapechar: str | None) -> _Fit | None:
    rows, errors = _parse_all(text, delimiter, quotechar, escapechar, limit=_SCORING_RECORDS)
    if not rows:
        return None
    counts = [len(r) for r in rows]
    width = _mode(counts)
    consistent = counts.count(width)
    still_quoted = sum(
        1
        for row in rows
        for f in row
        if len(f) >= 2 and f[0] == f[-1] and f[0] in "\"'" and f[0] != quotechar
    )
    return _Fit(
        width=width,
        share=consistent / (len(rows) + errors),
        bad=errors + (len(rows) - consistent) + still_quoted,
        # a header may lack the trailing delimiter every data line has
        first_row_agrees=counts[0] in (width, width - 1),
        first_row_names=frozenset(normalize_column_name(f) for f in rows[0]),
    )


def _csv_sniffer_delimiter(text: str) -> str | None:
    """csv.Sniffer's guess on a small prefix (it is slow and erratic on large samples)."""
    head = text[: 16 * 1024]
    try:
        return csv.Sniffer().sniff(head, delimiters="".join(DELIMITERS)).delimiter
    except csv.Error:
        return None


def _split_first_record(text: str, delimiter: str, quotechar: str | None, escapechar: str | None) -> list[str]:
    rows, _ = _parse_all(text, delimiter, quotechar, escapechar, limit=1)
    fields = rows[0] if rows else []
    if len(fields) > 1 and fields[-1] == "":
        fields = fields[:-1]
    return fields


def _first_record_text(path: Path, dialect: CsvDialect) -> str | None:
    try:
        raw = read_head(path, _EXPLAIN_BYTES, dialect.compression)
    except (OSError, UnreadableFile):
        return None
    codec = "utf-16" if dialect.encoding.startswith("utf-16") else dialect.encoding
    return codecs.getincrementaldecoder(codec)(errors="replace").decode(raw, final=False)


# --------------------------------------------------------------------------- structure


def _mode(values) -> int:
    counter = collections.Counter(values)
    return counter.most_common(1)[0][0] if counter else 0


def _detect_newline(text: str, delimiter: str, quotechar: str | None, escapechar: str | None) -> tuple[str, str | None]:
    """Dominant record terminator, counted outside quoted fields; 'mixed' when kinds are mixed."""
    outside = text
    if quotechar is not None:
        q = re.escape(quotechar)
        inner = rf"(?:[^{q}\\]|\\.)*" if escapechar else rf"(?:[^{q}]|{q}{q})*"
        start = rf"(?<![^{re.escape(delimiter)}\r\n])"  # a quote only opens a field at its start
        outside = re.sub(start + q + inner + q, "", text, flags=re.DOTALL)
    crlf = outside.count("\r\n")
    lf = outside.count("\n") - crlf
    cr = outside.count("\r") - crlf
    kinds = {"\r\n": crlf, "\n": lf, "\r": cr}
    present = {k: v for k, v in kinds.items() if v}
    if not present:
        return "\n", None
    if len(present) == 1:
        return next(iter(present)), None
    detail = ", ".join(f"{v} {_NEWLINE_NAMES[k]}" for k, v in present.items())
    return "mixed", f"mixed line endings in the sample ({detail}); the loader normalizes them to LF"


_NEWLINE_NAMES = {"\r\n": "CRLF", "\n": "LF", "\r": "CR"}


def _drop_trailing_delimiter(records: list[list[str]], width: int) -> tuple[list[list[str]], bool]:
    """Detect a delimiter at the end of every line (an empty, unnamed last column)."""
    if width < 2:
        return records, False
    data = records[1:] if len(records) > 1 else records
    full = [r for r in data if len(r) == width]
    # Every sampled row: a mostly-empty last column of a header-less file must not be mistaken for it.
    if not full or any(r[-1] != "" for r in full) or len(full) < 0.9 * len(data):
        return records, False
    first = records[0]
    if len(records) > 1 and not (len(first) == width - 1 or (len(first) == width and first[-1] == "")):
        return records, False
    return [r[:-1] if len(r) == width and r[-1] == "" else r for r in records], True


def _unique_names(header: list[str]) -> tuple[tuple[str, ...], list[str]]:
    """Header names as decoded; empty ones named column_N, duplicates suffixed _2, _3 (case-insensitively,
    because DuckDB identifiers are case-insensitive)."""
    names: list[str] = []
    seen: set[str] = set()
    renamed: list[str] = []
    empties: list[str] = []
    for position, name in enumerate(header, start=1):
        candidate = name
        if not name.strip():
            candidate = f"column_{position}"
            empties.append(candidate)
        if candidate.lower() in seen:
            suffix = 2
            while f"{candidate}_{suffix}".lower() in seen:
                suffix += 1
            renamed.append(f"{candidate!r} -> {candidate}_{suffix}")
            candidate = f"{candidate}_{suffix}"
        seen.add(candidate.lower())
        names.append(candidate)
    warnings = []
    if renamed:
        warnings.append(f"duplicate header names renamed: {', '.join(renamed)}")
    if empties:
        warnings.append(f"empty header names replaced: {', '.join(empties)}")
    return tuple(names), warnings


# --------------------------------------------------------------------------- values and types

_THOUS_COMMA = re.compile(r"^[+-]?\d{1,3}(?:,\d{3})+(?:\.\d+)?$")
_THOUS_DOT = re.compile(r"^[+-]?\d{1,3}(?:\.\d{3})+(?:,\d+)?$")
_DEC_COMMA = re.compile(r"^[+-]?\d*,\d+$")
_DEC_DOT = re.compile(r"^[+-]?\d*\.\d+(?:[eE][+-]?\d+)?$")
_DATE = re.compile(r"^(?:\d{4}-\d{2}-\d{2}|\d{4}/\d{2}/\d{2}|\d{1,2}[/.]\d{1,2}[/.]\d{4})$")
_TIMESTAMP = re.compile(
    r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?$"
)
_BOOLEANS = frozenset({"true", "false", "t", "f", "yes", "no", "y", "n"})


def _detect_separators(rows: list[list[str]]) -> tuple[str, str | None]:
    """(decimal, thousands) from unambiguous numbers: '1,5' means decimal comma, '1,234.50' thousands ','."""
    comma_decimal = dot_decimal = 0
    any_thous_comma = any_thous_dot = False
    for row in rows:
        for value in row:
            v = value.strip()
            if not v or not (v[0].isdigit() or v[0] in "+-,."):
                continue
            thous_comma = bool(_THOUS_COMMA.match(v))
            thous_dot = bool(_THOUS_DOT.match(v))
            any_thous_comma |= thous_comma
            any_thous_dot |= thous_dot
            if _DEC_COMMA.match(v) and not thous_comma:
                comma_decimal += 1  # '1,5', '0,25': a comma that cannot be a thousands separator
            elif thous_dot and ("," in v or v.count(".") > 1):
                comma_decimal += 1  # '1.234,50', '1.234.567'
            elif _DEC_DOT.match(v) and not thous_dot or thous_comma and ("." in v or v.count(",") > 1):
                dot_decimal += 1
    if comma_decimal > dot_decimal:
        return ",", ("." if any_thous_dot else None)
    return ".", ("," if any_thous_comma else None)


def _value_patterns(decimal: str, thousands: str | None) -> tuple[re.Pattern, re.Pattern]:
    d = re.escape(decimal)
    whole = rf"(?:\d{{1,3}}(?:{re.escape(thousands)}\d{{3}})+|\d+)" if thousands else r"\d+"
    integer = re.compile(rf"^[+-]?{whole}$")
    real = re.compile(rf"^[+-]?(?:{whole}(?:{d}\d*)?|{d}\d+)(?:[eE][+-]?\d+)?$")
    return integer, real


def _classify(value: str, integer: re.Pattern, real: re.Pattern) -> str | None:
    v = value.strip()
    if v.lower() in NA_TOKENS:
        return None
    if integer.match(v):
        return "integer"
    if real.match(v):
        return "float"
    if v.lower() in _BOOLEANS:
        return "boolean"
    if _TIMESTAMP.match(v):
        return "timestamp"
    if _DATE.match(v):
        return "date"
    return "string"


def _column_type(kinds: set[str]) -> str:
    if not kinds:
        return "string"
    if len(kinds) == 1:
        return next(iter(kinds))
    if kinds == {"integer", "float"}:
        return "float"
    if kinds == {"date", "timestamp"}:
        return "timestamp"
    return "string"


def _column_kinds(rows: list[list[str]], width: int, integer: re.Pattern, real: re.Pattern) -> list[set[str]]:
    kinds: list[set[str]] = [set() for _ in range(width)]
    open_columns = list(range(width))
    for row in rows:
        if len(row) != width:
            continue
        for i in open_columns:
            kind = _classify(row[i], integer, real)
            if kind:
                kinds[i].add(kind)
        # A column seen with text stays text whatever follows: stop classifying it.
        if any("string" in kinds[i] for i in open_columns):
            open_columns = [i for i in open_columns if "string" not in kinds[i]]
    return kinds


def _infer_types(
    columns: tuple[str, ...], rows: list[list[str]], decimal: str, thousands: str | None
) -> dict[str, str]:
    integer, real = _value_patterns(decimal, thousands)
    kinds = _column_kinds(rows, len(columns), integer, real)
    return {name: _column_type(k) for name, k in zip(columns, kinds)}


def _detect_header(
    records: list[list[str]],
    decimal: str,
    thousands: str | None,
    expected_norm: list[str] | None,
) -> bool:
    """Is the first record a header? Expected names decide; else typed evidence; else recurrence."""
    first = records[0]
    if expected_norm and set(expected_norm) <= {normalize_column_name(f) for f in first}:
        return True
    integer, real = _value_patterns(decimal, thousands)
    first_kinds = [_classify(v, integer, real) for v in first]
    if any(k in ("integer", "float", "date", "timestamp") for k in first_kinds):
        return False  # a number or date in the first row: data, not names ('y', 't' may well be names)
    rest = records[1 : 1 + _TYPE_ROWS]
    if not rest:
        return True  # a single all-text row: names without data
    data_kinds = _column_kinds(rest, len(first), integer, real)
    if any(_column_type(k) != "string" for k in data_kinds if k):
        return True  # text above typed columns
    # Every column is text. csv.Sniffer.has_header cannot decide here: it answers False both for
    # "looks like data" and for "no evidence" (it drops columns whose lengths vary), and it says
    # True for plain data whose value lengths happen to line up. Names, though, do not recur as
    # values of their own column, and most exports carry a header.
    for i, name in enumerate(first):
        if name and any(len(r) > i and r[i] == name for r in rest):
            return False
    return True


# --------------------------------------------------------------------------- messages


def _show(delimiter: str) -> str:
    return {"\t": "'\\t' (tab)", " ": "' ' (space)"}.get(delimiter, f"'{delimiter}'")


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"
