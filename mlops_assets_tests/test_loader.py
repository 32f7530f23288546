"""Streaming loads into real DuckDB: every corpus file, the wine files, rejects, lineage, memory."""

from __future__ import annotations

import codecs
import dataclasses
import tracemalloc
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from mlops_assets.ingest.dialect import normalize_column_name, sniff_csv
from mlops_assets.ingest.loader import MAX_LINE_BYTES, load_csv, transcode_to_utf8
from mlops_assets_tests.csv_corpus import CASES, Case

WINE_ROWS = {"winequality-red.csv": 1599, "winequality-white.csv": 4898}

OK_CASES = [c for c in CASES if c.ok]


@pytest.fixture
def con():
    connection = duckdb.connect()
    yield connection
    connection.close()


def _schema(con: duckdb.DuckDBPyConnection, table: str) -> list[tuple[str, str]]:
    return [(name, kind) for name, kind, *_ in con.execute(f"DESCRIBE {table}").fetchall()]


@pytest.mark.parametrize("case", OK_CASES, ids=lambda c: c.name)
def test_load_corpus_file(case: Case, corpus, con):
    path = corpus[case.name]
    dialect = sniff_csv(path, **({"sample_bytes": case.sample_bytes} if case.sample_bytes else {}))
    result = load_csv(con, path, dialect, "landed")

    assert result.rows_loaded == case.rows_loaded
    # Conservation, counted independently: rows stored in the table + rejects = the records the case holds.
    stored = con.execute("SELECT count(*) FROM landed").fetchone()[0]
    assert result.rows_read == stored + len(result.rejects) == case.rows_loaded + len(case.reject_lines)
    assert result.rows_read >= dialect.sample_rows
    assert [r.line for r in result.rejects] == list(case.reject_lines)
    if case.reject_columns is not None:
        assert [r.column for r in result.rejects] == list(case.reject_columns)
    for reject in result.rejects:
        assert case.reject_reason in reject.reason
        assert reject.raw
    assert result.table == "landed" and result.seconds > 0

    assert _schema(con, "landed") == [(c, "VARCHAR") for c in dialect.columns] + [
        ("_source_file", "VARCHAR"),
        ("_source_line", "BIGINT"),
    ]
    assert con.execute("SELECT count(*), count(DISTINCT _source_line) FROM landed").fetchall() == [
        (case.rows_loaded, case.rows_loaded)
    ]
    assert con.execute("SELECT DISTINCT _source_file FROM landed").fetchall() == [(path.name,)]
    for line, column, value in case.cells:
        got = con.execute(f'SELECT "{column}" FROM landed WHERE _source_line = ?', [line]).fetchall()
        assert got == [(value,)], (line, column)
    for line, column, length in case.cell_lengths:
        got = con.execute(f'SELECT length("{column}") FROM landed WHERE _source_line = ?', [line]).fetchall()
        assert got == [(length,)]
    rejected = set(case.reject_lines)
    loaded_lines = {line for (line,) in con.execute("SELECT _source_line FROM landed").fetchall()}
    assert not loaded_lines & rejected  # a line is either loaded or rejected, never both


def test_ragged_rows_are_rejected_with_line_column_reason_and_raw(corpus, con):
    path = corpus["ragged"]
    result = load_csv(con, path, sniff_csv(path), "ragged")
    few, many = result.rejects
    assert (few.line, few.column, few.raw) == (3, "c", "4,5")
    assert few.reason == "too few fields: expected 3, found 2"
    assert (many.line, many.column, many.raw) == (4, None, "6,7,8,9")
    assert many.reason == "too many fields: expected 3, found 4"
    assert con.execute("SELECT a, _source_line FROM ragged ORDER BY _source_line").fetchall() == [
        ("1", 2), ("10", 5), ("13", 6)
    ]


@pytest.mark.parametrize("name", sorted(WINE_ROWS))
def test_wine_loads_every_row_as_text(name, wine_dir, con):
    path = wine_dir / name
    dialect = sniff_csv(path)
    result = load_csv(con, path, dialect, "wine")
    n = WINE_ROWS[name]
    assert (result.rows_read, result.rows_loaded, result.rejects) == (n, n, [])
    assert con.execute("SELECT min(_source_line), max(_source_line), count(*) FROM wine").fetchall() == [(2, n + 1, n)]
    # The text round-trips: the numbers DuckDB holds are the numbers pandas reads.
    expected = pd.read_csv(path, sep=";")
    got = con.execute('SELECT avg(CAST("quality" AS DOUBLE)), sum(CAST("alcohol" AS DOUBLE)) FROM wine').fetchall()[0]
    assert got[0] == pytest.approx(expected["quality"].mean())
    assert got[1] == pytest.approx(expected["alcohol"].sum())


def test_wine_with_spec_names_into_a_quoted_schema_table(wine_dir, tmp_path):
    """How the cleaned asset calls it: spec column names, a schema-qualified quoted table, a database file."""
    path = wine_dir / "winequality-red.csv"
    dialect = sniff_csv(path)
    names = [normalize_column_name(c) for c in dialect.columns]
    with duckdb.connect(str(tmp_path / "warehouse.duckdb")) as db:
        db.execute('CREATE SCHEMA "wine red"').fetchall()
        for _ in range(2):  # a re-run replaces, never appends
            result = load_csv(db, path, dialect, '"wine red"."_staging_raw"', columns=names)
        assert result.rows_loaded == 1599
        assert [c for c, _ in _schema(db, '"wine red"."_staging_raw"')][:12] == names
        assert db.execute('SELECT count(*) FROM "wine red"."_staging_raw"').fetchall() == [(1599,)]
        first = db.execute(
            'SELECT fixed_acidity, ph, quality FROM "wine red"."_staging_raw" WHERE _source_line = 2'
        ).fetchall()
        assert first == [("7.4", "3.51", "5")]
        leftovers = db.execute("SELECT table_name FROM duckdb_tables() WHERE table_name LIKE '_ingest_%'").fetchall()
        assert leftovers == []  # the rejects bookkeeping tables are dropped


def test_rejects_into_a_quoted_schema_table(corpus, con):
    con.execute('CREATE SCHEMA "odd schema"').fetchall()
    path = corpus["ragged"]
    result = load_csv(con, path, sniff_csv(path), '"odd schema"."raw ""x"""', columns=["A", "B", "C"])
    assert [r.line for r in result.rejects] == [3, 4] and [r.column for r in result.rejects] == ["C", None]
    rows = con.execute('SELECT "A", _source_line FROM "odd schema"."raw ""x""" ORDER BY 2').fetchall()
    assert rows == [("1", 2), ("10", 5), ("13", 6)]


def test_a_newline_that_does_not_fit_is_caught_not_loaded_as_nothing(corpus, con, caplog):
    """DuckDB returns zero rows, silently, when new_line does not match the file; the loader notices."""
    path = corpus["comma"]
    wrong = dataclasses.replace(sniff_csv(path), newline="\r\n")
    result = load_csv(con, path, wrong, "t")
    assert (result.rows_read, result.rows_loaded, result.rejects) == (3, 3, [])
    assert "retrying with line endings normalized" in caplog.text


def test_columns_must_fit_the_file(corpus, con):
    path = corpus["comma"]
    dialect = sniff_csv(path)
    with pytest.raises(ValueError, match="columns has 2 names but the file has 5 columns"):
        load_csv(con, path, dialect, "t", columns=["a", "b"])
    with pytest.raises(ValueError, match="unique"):
        load_csv(con, path, dialect, "t", columns=["a", "A", "b", "c", "d"])
    with pytest.raises(ValueError, match="reserved"):
        load_csv(con, path, dialect, "t", columns=["a", "b", "c", "d", "_source_line"])


def test_source_line_is_file_order_across_a_parallel_scan_with_rejects(tmp_path, con):
    """200k rows, a ragged row every 9973 lines: every loaded row's _source_line is its own line."""
    path = tmp_path / "lines.csv"
    bad = set(range(50, 200_001, 9973))
    with path.open("w") as out:
        out.write("line,payload\n")
        for line in range(2, 200_002):
            out.write(f"{line},x,extra\n" if line in bad else f"{line},p{line % 97}\n")
    con.execute("SET threads = 2").fetchall()
    result = load_csv(con, path, sniff_csv(path), "lines")
    assert [r.line for r in result.rejects] == sorted(bad)
    assert result.rows_loaded == 200_000 - len(bad)
    mismatched = con.execute("SELECT count(*) FROM lines WHERE _source_line <> CAST(line AS BIGINT)").fetchall()
    assert mismatched == [(0,)]


def test_a_record_over_the_size_limit_is_rejected_not_fatal(tmp_path, con):
    path = tmp_path / "monster.csv"
    path.write_bytes(b"id,blob\n1,a\n2,\"" + b"x" * (MAX_LINE_BYTES + 1024) + b"\"\n3,c\n")
    result = load_csv(con, path, sniff_csv(path), "monster")
    assert result.rows_loaded == 2
    (reject,) = result.rejects
    assert reject.line == 3 and "larger than the 16 MiB limit" in reject.reason
    assert len(reject.raw) < 5000  # the kept raw text is truncated
    assert con.execute("SELECT id, _source_line FROM monster ORDER BY 2").fetchall() == [("1", 2), ("3", 4)]


def _write_big_utf16(path: Path, rows: int) -> None:
    with path.open("wb") as out:
        out.write(codecs.BOM_UTF16_LE + "id;ville;montant\r\n".encode("utf-16-le"))
        block = "".join(f"{i};Besançon;{i % 1000},5\r\n" for i in range(1000)).encode("utf-16-le")
        for _ in range(rows // 1000):
            out.write(block)


def test_transcoding_streams_in_bounded_memory(tmp_path):
    source = tmp_path / "big_utf16.csv"
    _write_big_utf16(source, 400_000)
    size = source.stat().st_size
    assert size > 15_000_000
    tracemalloc.start()
    try:
        target = transcode_to_utf8(source, "utf-16", tmp_path / "out.csv")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 6_000_000, f"peak {peak} bytes for a {size}-byte file"
    with target.open(encoding="utf-8") as text:
        assert text.readline() == "id;ville;montant\n"
        assert text.readline() == "0;Besançon;0,5\n"


def test_large_utf16_file_loads_without_a_python_copy(tmp_path, con):
    source = tmp_path / "big_utf16.csv"
    _write_big_utf16(source, 200_000)
    dialect = sniff_csv(source)
    assert (dialect.encoding, dialect.delimiter, dialect.decimal) == ("utf-16", ";", ",")
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    tracemalloc.start()
    try:
        result = load_csv(con, source, dialect, "big", tmp_dir=scratch)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.rows_loaded == 200_000 and result.rejects == []
    assert peak < 6_000_000  # Python holds chunks, never the file (DuckDB streams the rest)
    assert list(scratch.iterdir()) == []  # the transcoded copy is cleaned up
    assert con.execute("SELECT ville, montant FROM big WHERE _source_line = 3").fetchall() == [("Besançon", "1,5")]


def test_transcoding_normalizes_mixed_newlines_across_chunk_edges(tmp_path):
    source = tmp_path / "mixed.csv"
    source.write_bytes(b"a,b\r\n" + b"1,2\r\n" * 7 + b"3,4\n5,6\r7,8\r\n")
    for chunk in (1, 2, 3, 5, 64):  # CR and LF of one CRLF land in different chunks
        target = transcode_to_utf8(
            source, "utf-8", tmp_path / f"out{chunk}.csv", normalize_newlines=True, chunk_bytes=chunk
        )
        assert target.read_bytes() == b"a,b\n" + b"1,2\n" * 7 + b"3,4\n5,6\n7,8\n"
