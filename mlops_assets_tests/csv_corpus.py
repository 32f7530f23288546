"""A corpus of awkward CSV files, each written by code together with what ingestion must make of it.

Every case states the dialect the sniffer must report and the outcome of loading: either the
UnreadableFile message, or the rows loaded, the rejects and a few cells (by `_source_line`).
"""

from __future__ import annotations

import codecs
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

HUGE_CELL_CHARS = 1_500_000  # one cell bigger than the default 1 MiB sniffing sample


@dataclass(frozen=True)
class Case:
    name: str
    data: bytes | Callable[[], bytes]
    sample_bytes: int | None = None  # sniff with a small sample to put a surprise after it
    # expected dialect (None: not asserted)
    delimiter: str | None = None
    quotechar: str | None = '"'
    escapechar: str | None = None
    encoding: str | None = "utf-8"
    has_header: bool | None = True
    newline: str | None = "\n"
    columns: tuple[str, ...] | None = None
    types: dict[str, str] = field(default_factory=dict)
    decimal: str = "."
    thousands: str | None = None
    sample_rows: int | None = None
    warning: str | None = None  # substring of one of the dialect's warnings
    # expected outcome
    error: str | None = None  # substring of the UnreadableFile message
    rows_loaded: int | None = None
    reject_lines: tuple[int, ...] = ()
    reject_columns: tuple[str | None, ...] | None = None
    reject_reason: str | None = None  # substring of every reject's reason
    cells: tuple[tuple[int, str, str | None], ...] = ()  # (_source_line, column, value)
    cell_lengths: tuple[tuple[int, str, int], ...] = ()  # (_source_line, column, len(value))

    @property
    def filename(self) -> str:
        return f"{self.name}.csv"

    @property
    def ok(self) -> bool:
        return self.error is None

    def bytes(self) -> bytes:
        return self.data() if callable(self.data) else self.data


def _utf16(text: str, *, big_endian: bool) -> bytes:
    if big_endian:
        return codecs.BOM_UTF16_BE + text.encode("utf-16-be")
    return codecs.BOM_UTF16_LE + text.encode("utf-16-le")


def _huge_field() -> bytes:
    return (
        b"id,blob,n\n1,small,1\n2,small,2\n3,\"" + b"x" * HUGE_CELL_CHARS + b"\",3\n4,small,4\n5,small,5\n"
    )


def _binary(with_nul: bool) -> bytes:
    rng = random.Random(7)
    data = rng.randbytes(8192)
    if not with_nul:
        data = data.replace(b"\x00", b"\x01")
    return b"\x01\x02" + data  # never a byte-order mark by accident


def _many(line: bytes, n: int) -> bytes:
    return line * n


def _cp1252_undefined_byte_after_sample() -> bytes:
    head = "Résumé;prix_€\r\n".encode("cp1252")
    rows = b"".join(("Thé;%d\r\n" % i).encode("cp1252") for i in range(1, 21))
    return head + rows + b"bad\x81byte;21\r\n" + "Café;22\r\n".encode("cp1252")


def _utf16_lone_surrogate_after_sample() -> bytes:
    text = "id,word\n" + "".join(f"{i},été\n" for i in range(1, 21))
    broken = "21,".encode("utf-16-le") + b"\x00\xd8" + "x\n".encode("utf-16-le")  # unpaired high surrogate
    return codecs.BOM_UTF16_LE + text.encode("utf-16-le") + broken + "22,ok\n".encode("utf-16-le")


CASES: tuple[Case, ...] = (
    # ---- each delimiter
    Case(
        "comma",
        b"id,name,score,active,joined\n1,alice,3.5,true,2024-01-05\n2,bob,4.25,false,2024-02-11\n"
        b"3,carol,5,true,2024-03-02\n",
        delimiter=",",
        columns=("id", "name", "score", "active", "joined"),
        types={"id": "integer", "name": "string", "score": "float", "active": "boolean", "joined": "date"},
        sample_rows=3,
        rows_loaded=3,
        cells=((2, "name", "alice"), (4, "joined", "2024-03-02")),
    ),
    Case(
        "semicolon_timestamps",  # timestamps hold ' ' and ':' - neither may win
        b"city;temp;measured_at\r\nOslo;-3;2024-01-05 08:00:00\r\nRome;14;2024-01-05 08:30:00\r\n"
        b"Lima;22;2024-01-05 09:00:00\r\n",
        delimiter=";",
        newline="\r\n",
        columns=("city", "temp", "measured_at"),
        types={"city": "string", "temp": "integer", "measured_at": "timestamp"},
        rows_loaded=3,
        cells=((3, "measured_at", "2024-01-05 08:30:00"),),
    ),
    Case(
        "tab",
        b"a\tb\tplace\n1\t2\tnew york, ny\n4\t5\tparis; fr\n7\t8\tlima\n",
        delimiter="\t",
        columns=("a", "b", "place"),
        types={"a": "integer", "b": "integer", "place": "string"},
        rows_loaded=3,
        cells=((2, "place", "new york, ny"),),
    ),
    Case(
        "pipe",
        b"sku|desc|qty\nA1|bolt, steel|10\nB2|nut; brass|20\nC3|washer: zinc|30\n",
        delimiter="|",
        columns=("sku", "desc", "qty"),
        rows_loaded=3,
        cells=((3, "desc", "nut; brass"),),
    ),
    Case(
        "colon",
        b"x:y:label\n1:2:a\n3:4:b\n5:6:c\n",
        delimiter=":",
        columns=("x", "y", "label"),
        types={"x": "integer", "y": "integer", "label": "string"},
        rows_loaded=3,
    ),
    Case(
        "space",
        b"x y z\n1 2 3\n4 5 6\n7 8 9\n",
        delimiter=" ",
        columns=("x", "y", "z"),
        types={"x": "integer", "y": "integer", "z": "integer"},
        rows_loaded=3,
        cells=((4, "z", "9"),),
    ),
    # ---- encodings
    Case(
        "utf8_bom",
        codecs.BOM_UTF8 + "Résumé,prix\nCafé crème,3.5\nThé,2\n".encode(),
        delimiter=",",
        encoding="utf-8-sig",
        columns=("Résumé", "prix"),
        types={"Résumé": "string", "prix": "float"},
        rows_loaded=2,
        cells=((2, "Résumé", "Café crème"),),
    ),
    Case(
        "utf16_le_bom",
        _utf16("nom;prix\r\nCrème brûlée;4,5\r\nÉclair;3\r\nFlan;2,25\r\n", big_endian=False),
        delimiter=";",
        encoding="utf-16",
        newline="\r\n",
        columns=("nom", "prix"),
        types={"nom": "string", "prix": "float"},
        decimal=",",
        rows_loaded=3,
        cells=((2, "nom", "Crème brûlée"), (2, "prix", "4,5")),
    ),
    Case(
        "utf16_be_bom",
        _utf16("Résumé,n\nÉté,1\nHiver,2\n", big_endian=True),
        delimiter=",",
        encoding="utf-16",
        columns=("Résumé", "n"),
        rows_loaded=2,
        cells=((2, "Résumé", "Été"),),
    ),
    Case(
        "cp1252",
        "Résumé;prix_€;note\r\nCafé;3,50;“bon”\r\nThé;2,10;ok\r\nPâté;12,00;€ cher\r\n".encode("cp1252"),
        delimiter=";",
        encoding="cp1252",
        newline="\r\n",
        columns=("Résumé", "prix_€", "note"),
        types={"Résumé": "string", "prix_€": "float", "note": "string"},
        decimal=",",
        rows_loaded=3,
        cells=((2, "note", "“bon”"), (4, "Résumé", "Pâté"), (4, "note", "€ cher")),
    ),
    Case(
        "latin1",
        "Résumé,Ville,n\nÉté,Besançon,1\nHiver,Orléans,2\n".encode("latin-1"),
        delimiter=",",
        encoding="latin-1",
        columns=("Résumé", "Ville", "n"),
        rows_loaded=2,
        cells=((2, "Ville", "Besançon"),),
    ),
    # ---- quoting
    Case(
        "quoted_delimiters",
        b'name,address,n\n"Smith, John","12 Main St, Springfield",1\n"Doe, Jane","1 Elm, Apt 2",2\n',
        delimiter=",",
        columns=("name", "address", "n"),
        rows_loaded=2,
        cells=((2, "name", "Smith, John"), (3, "address", "1 Elm, Apt 2")),
    ),
    Case(
        "doubled_quotes",
        b'id;quote\n1;"He said ""hi""; twice"\n2;"plain"\n3;"a ""b"""\n',
        delimiter=";",
        columns=("id", "quote"),
        rows_loaded=3,
        cells=((2, "quote", 'He said "hi"; twice'), (4, "quote", 'a "b"')),
    ),
    Case(
        "backslash_quotes",
        b'id,quote\n1,"He said \\"hi\\", twice"\n2,"plain"\n3,"x \\"y\\""\n',
        delimiter=",",
        escapechar="\\",
        columns=("id", "quote"),
        rows_loaded=3,
        cells=((2, "quote", 'He said "hi", twice'), (4, "quote", 'x "y"')),
    ),
    Case(
        "quoted_newlines",
        b'id,note,n\r\n1,"line one\r\nline two",10\r\n2,"a ""quoted"", word",20\r\n3,plain,30\r\n',
        delimiter=",",
        newline="\r\n",
        columns=("id", "note", "n"),
        rows_loaded=3,
        # _source_line is the record ordinal + header: record 3 starts on physical line 5.
        cells=((2, "note", "line one\r\nline two"), (3, "note", 'a "quoted", word'), (4, "n", "30")),
    ),
    Case(
        "single_quotes",
        b"id,name\n1,'Smith, J'\n2,'Doe, A'\n3,'Roe, B'\n",
        delimiter=",",
        quotechar="'",
        columns=("id", "name"),
        rows_loaded=3,
        cells=((2, "name", "Smith, J"),),
    ),
    Case(
        "one_malformed_quoted_row",  # one bad row must not switch quoting off for all the others
        b'id,name\n1,"alice"\n2,"bob"\n3,"carol" x\n4,"dave"\n5,"erin"\n',
        delimiter=",",
        columns=("id", "name"),
        warning="malformed record",
        rows_loaded=4,
        reject_lines=(4,),
        reject_columns=("name",),
        reject_reason="bad quoting",
        cells=((2, "name", "alice"), (6, "name", "erin")),
    ),
    Case(
        "single_quotes_no_delimiters_inside",
        b"id;name\n1;'alice'\n2;'bob'\n3;'o''hara'\n",
        delimiter=";",
        quotechar="'",
        columns=("id", "name"),
        rows_loaded=3,
        cells=((2, "name", "alice"), (4, "name", "o'hara")),
    ),
    Case(
        "unterminated_quote",
        b'a,b\n1,2\n3,"oops\n4,5\n',
        delimiter=",",
        columns=("a", "b"),
        rows_loaded=1,
        reject_lines=(3,),
        reject_columns=("b",),
        reject_reason="bad quoting",
    ),
    # ---- ragged rows
    Case(
        "ragged",
        b"a,b,c\n1,2,3\n4,5\n6,7,8,9\n10,11,12\n13,14,15\n",
        delimiter=",",
        columns=("a", "b", "c"),
        rows_loaded=3,
        reject_lines=(3, 4),
        reject_columns=("c", None),
        reject_reason="fields",
        cells=((2, "a", "1"), (5, "a", "10"), (6, "c", "15")),
    ),
    # ---- unreadable
    Case("empty", b"", error="is empty"),
    Case("whitespace_and_bom", codecs.BOM_UTF8 + b"  \r\n\r\n", error="no content"),
    Case("header_only", b"id,name,score\n", error="has a header but no data rows"),
    Case("binary_with_nul", lambda: _binary(with_nul=True), error="looks binary"),
    Case("binary_control_chars", lambda: _binary(with_nul=False), error="looks binary"),
    # ---- size and structure
    Case(
        "huge_field",
        _huge_field,
        delimiter=",",
        columns=("id", "blob", "n"),
        sample_rows=2,  # the sample ends inside the huge cell; that record is not sniffed
        rows_loaded=5,
        cells=((2, "blob", "small"), (6, "n", "5")),
        cell_lengths=((4, "blob", HUGE_CELL_CHARS),),
    ),
    Case(
        "duplicate_headers",
        b"id,value,value,Value\n1,a,b,c\n2,d,e,f\n",
        delimiter=",",
        columns=("id", "value", "value_2", "Value_3"),
        warning="duplicate header names renamed",
        rows_loaded=2,
        cells=((2, "value_2", "b"), (3, "Value_3", "f")),
    ),
    Case(
        "trailing_delimiter",
        b"a;b;c;\r\n1;2;3;\r\n4;5;6;\r\n",
        delimiter=";",
        newline="\r\n",
        columns=("a", "b", "c"),
        warning="dropped the empty unnamed last column",
        rows_loaded=2,
        cells=((3, "c", "6"),),
    ),
    Case(
        "trailing_delimiter_value_after_sample",
        b"a,b,\n" + _many(b"1,2,\n", 30) + b"3,4,surprise\n5,6,\n",
        sample_bytes=64,
        delimiter=",",
        columns=("a", "b"),
        warning="dropped the empty unnamed last column",
        rows_loaded=31,
        reject_lines=(32,),
        reject_columns=(None,),
        reject_reason="after the trailing delimiter",
        cells=((33, "a", "5"),),
    ),
    Case(
        "empty_header_name",  # pandas' to_csv with its index
        b",a,b\n0,x,1\n1,y,2\n",
        delimiter=",",
        columns=("column_1", "a", "b"),
        warning="empty header names replaced",
        rows_loaded=2,
    ),
    # ---- numbers
    Case(
        "thousands_separators",
        b'item,amount,qty\nA,"1,234.50",1\nB,"12,000.00",2\nC,999.99,3\n',
        delimiter=",",
        columns=("item", "amount", "qty"),
        types={"item": "string", "amount": "float", "qty": "integer"},
        thousands=",",
        rows_loaded=3,
        cells=((2, "amount", "1,234.50"),),
    ),
    Case(
        "decimal_comma",
        b"produit;prix;poids\nA;1,5;10\nB;2,25;11\nC;0,75;12\n",
        delimiter=";",
        columns=("produit", "prix", "poids"),
        types={"produit": "string", "prix": "float", "poids": "integer"},
        decimal=",",
        rows_loaded=3,
        cells=((3, "prix", "2,25"),),
    ),
    # ---- line endings
    Case(
        "mixed_newlines",
        b"a,b\r\n1,2\n3,4\r\n5,6\n",
        delimiter=",",
        newline="mixed",
        columns=("a", "b"),
        warning="mixed line endings",
        rows_loaded=3,
        cells=((2, "b", "2"), (4, "a", "5")),
    ),
    Case(
        "mixed_newlines_after_sample",
        b"a,b\n" + _many(b"1,2\n", 40) + b"3,4\r\n5,6\r\n",
        sample_bytes=64,
        delimiter=",",
        columns=("a", "b"),
        rows_loaded=42,
        cells=((42, "a", "3"), (43, "b", "6")),
    ),
    Case(
        "cr_only",
        b"a,b\r1,2\r3,4\r",
        delimiter=",",
        newline="\r",
        columns=("a", "b"),
        rows_loaded=2,
        cells=((3, "b", "4"),),
    ),
    # ---- header detection
    Case(
        "no_header_numeric",
        b"1,2.5,3\n4,5.5,6\n7,8.5,9\n",
        delimiter=",",
        has_header=False,
        columns=("column_1", "column_2", "column_3"),
        types={"column_1": "integer", "column_2": "float", "column_3": "integer"},
        rows_loaded=3,
        cells=((1, "column_1", "1"), (3, "column_3", "9")),
    ),
    Case(
        "single_column",  # no delimiter anywhere: one column, read with ','
        b"value\n1\n2\n3\n",
        delimiter=",",
        columns=("value",),
        types={"value": "integer"},
        rows_loaded=3,
        cells=((4, "value", "3"),),
    ),
    Case(
        "all_text_with_header",
        b"fruit,colour\napple,red\nbanana,yellow\ncherry,dark red\n",
        delimiter=",",
        columns=("fruit", "colour"),
        rows_loaded=3,
    ),
    Case(
        "all_text_no_header",
        b"apple,red\nbanana,yellow\ncherry,red\n",
        delimiter=",",
        has_header=False,
        columns=("column_1", "column_2"),
        rows_loaded=3,
        cells=((1, "column_1", "apple"),),
    ),
    # ---- bytes DuckDB cannot decode, after a clean sample
    Case(
        "bad_utf8_after_sample",
        b"id,word\n" + b"".join(b"%d,plain\n" % i for i in range(1, 31)) + b"31,caf\xe9\n32,ok\n",
        sample_bytes=64,
        delimiter=",",
        columns=("id", "word"),
        rows_loaded=31,
        reject_lines=(32,),
        reject_reason="undecodable",
        cells=((33, "word", "ok"),),
    ),
    Case(
        "cp1252_undefined_byte_after_sample",  # transcoded: the bad byte must reject its line, not vanish
        _cp1252_undefined_byte_after_sample,
        sample_bytes=64,
        delimiter=";",
        encoding="cp1252",
        newline="\r\n",
        columns=("Résumé", "prix_€"),
        rows_loaded=21,
        reject_lines=(22,),
        reject_reason="undecodable",
        cells=((2, "Résumé", "Thé"), (23, "Résumé", "Café")),
    ),
    Case(
        "utf16_lone_surrogate_after_sample",
        _utf16_lone_surrogate_after_sample,
        sample_bytes=128,
        delimiter=",",
        encoding="utf-16",
        columns=("id", "word"),
        rows_loaded=21,
        reject_lines=(22,),
        reject_reason="undecodable",
        cells=((21, "word", "été"), (23, "word", "ok")),
    ),
)


def build_corpus(directory: Path) -> dict[str, Path]:
    """Write every case's file into `directory`; returns name -> path."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = {}
    for case in CASES:
        path = directory / case.filename
        path.write_bytes(case.bytes())
        paths[case.name] = path
    return paths
