"""Dialect sniffing over the awkward-CSV corpus and the shipped UCI wine files."""

from __future__ import annotations

import codecs
import dataclasses
import json
from pathlib import Path

import pytest

from mlops_assets.ingest.dialect import (
    CsvDialect,
    UnreadableFile,
    explain_header_mismatch,
    normalize_column_name,
    sniff_csv,
)
from mlops_assets_tests.csv_corpus import CASES, Case

WINE_COLUMNS = (
    "fixed acidity", "volatile acidity", "citric acid", "residual sugar", "chlorides",
    "free sulfur dioxide", "total sulfur dioxide", "density", "pH", "sulphates", "alcohol", "quality",
)
WINE_ROWS = {"winequality-red.csv": 1599, "winequality-white.csv": 4898}

OK_CASES = [c for c in CASES if c.ok]
BAD_CASES = [c for c in CASES if not c.ok]


def _sniff(case: Case, path: Path, **kwargs) -> CsvDialect:
    if case.sample_bytes:
        kwargs["sample_bytes"] = case.sample_bytes
    return sniff_csv(path, **kwargs)


def test_corpus_is_big_enough():
    assert len(CASES) >= 25
    assert len({c.name for c in CASES}) == len(CASES)
    assert {c.delimiter for c in OK_CASES} >= {",", ";", "\t", "|", ":", " "}
    assert {c.encoding for c in OK_CASES} >= {"utf-8", "utf-8-sig", "utf-16", "cp1252", "latin-1"}


@pytest.mark.parametrize("case", OK_CASES, ids=lambda c: c.name)
def test_sniff_reports_the_expected_dialect(case: Case, corpus):
    dialect = _sniff(case, corpus[case.name])
    assert dialect.delimiter == case.delimiter
    assert dialect.quotechar == case.quotechar
    assert dialect.escapechar == case.escapechar
    assert dialect.encoding == case.encoding
    assert dialect.has_header is case.has_header
    assert dialect.newline == case.newline
    assert dialect.columns == case.columns
    assert dialect.decimal == case.decimal
    assert dialect.thousands == case.thousands
    assert set(dialect.types) == set(dialect.columns)
    for column, kind in case.types.items():
        assert dialect.types[column] == kind, column
    if case.sample_rows is not None:
        assert dialect.sample_rows == case.sample_rows
    if case.warning:
        assert any(case.warning in w for w in dialect.warnings), dialect.warnings
    else:
        assert not any("renamed" in w or "trailing" in w for w in dialect.warnings)
    size = corpus[case.name].stat().st_size
    assert dialect.sample_bytes == min(size, case.sample_bytes or 1 << 20)


@pytest.mark.parametrize("case", BAD_CASES, ids=lambda c: c.name)
def test_unreadable_files_fail_with_one_line_naming_the_file(case: Case, corpus):
    path = corpus[case.name]
    with pytest.raises(UnreadableFile) as caught:
        _sniff(case, path)
    message = str(caught.value)
    assert case.error in message
    assert message.startswith(f"{path.name}: ")
    assert "\n" not in message
    assert caught.value.path == path
    assert caught.value.reason in message


def test_huge_field_is_cut_from_the_sample_not_misread(corpus):
    dialect = sniff_csv(corpus["huge_field"])
    assert dialect.sample_bytes == 1 << 20  # bounded, although the file is bigger
    assert corpus["huge_field"].stat().st_size > 1 << 20
    assert dialect.sample_rows == 2 and dialect.columns == ("id", "blob", "n")


def test_multibyte_character_cut_by_the_sample_end_is_still_utf8(tmp_path):
    path = tmp_path / "cut.csv"
    path.write_bytes(("name,city\n" + "".join(f"row{i},Zürich\n" for i in range(200))).encode("utf-8"))
    raw = path.read_bytes()
    umlaut = "ü".encode()
    cuts = [i + 1 for i in range(len(raw)) if raw[i : i + 2] == umlaut and i > 64][:20]
    assert cuts and all(raw[n - 1] == umlaut[0] for n in cuts)  # each sample ends inside an 'ü'
    for n in cuts:
        dialect = sniff_csv(path, sample_bytes=n)
        assert dialect.encoding == "utf-8"  # not cp1252 / latin-1 because of half a character
        assert dialect.columns == ("name", "city")
        assert dialect.sample_bytes == n


def test_utf16_sample_cut_in_the_middle_of_a_code_unit(tmp_path):
    path = tmp_path / "u16.csv"
    path.write_bytes(codecs.BOM_UTF16_LE + ("a;b\r\n" + "é;1\r\n" * 100).encode("utf-16-le"))
    dialect = sniff_csv(path, sample_bytes=101)  # odd: half a code unit at the end
    assert (dialect.encoding, dialect.delimiter, dialect.columns) == ("utf-16", ";", ("a", "b"))


def test_first_line_longer_than_the_sample_is_unreadable(tmp_path):
    path = tmp_path / "one_long_line.csv"
    path.write_text("x" * 5000 + "\n1\n")
    with pytest.raises(UnreadableFile, match="longer than the 1000-byte sample"):
        sniff_csv(path, sample_bytes=1000)


def test_expected_columns_choose_between_two_consistent_delimiters(tmp_path):
    path = tmp_path / "ambiguous.csv"
    path.write_text("a,b;c,d\n1,2;3,4\n5,6;7,8\n")
    assert sniff_csv(path).delimiter == ","  # three consistent columns
    dialect = sniff_csv(path, expected_columns=["a,b", "c,d"])
    assert dialect.delimiter == ";"
    assert dialect.columns == ("a,b", "c,d")


def test_expected_columns_make_an_all_text_first_row_a_header(corpus):
    assert sniff_csv(corpus["all_text_no_header"]).has_header is False
    dialect = sniff_csv(corpus["all_text_no_header"], expected_columns=["Apple", "red"])
    assert dialect.has_header is True
    assert dialect.columns == ("apple", "red")


def test_contract_is_json_and_complete(corpus):
    dialect = sniff_csv(corpus["cp1252"])
    contract = json.loads(json.dumps(dialect.to_metadata()))
    assert contract["columns"] == ["Résumé", "prix_€", "note"]
    assert contract["encoding"] == "cp1252" and contract["decimal"] == ","
    assert contract["types"]["prix_€"] == "float"
    assert set(contract) >= {f.name for f in dataclasses.fields(CsvDialect)}


def test_a_column_without_values_is_no_type_change(tmp_path):
    """A batch whose labels have not arrived yet keeps its contract; a column that turned to text does not."""
    from mlops_assets.ingest.contract import contract_differences

    labeled, unlabeled, texted = tmp_path / "labeled.csv", tmp_path / "unlabeled.csv", tmp_path / "texted.csv"
    labeled.write_text("amount,is_fraud\n" + "".join(f"{i}.5,{'true' if i % 7 == 0 else 'false'}\n" for i in range(50)))
    unlabeled.write_text("amount,is_fraud\n" + "".join(f"{i}.5,\n" for i in range(50)))
    texted.write_text("amount,is_fraud\n" + "".join(f"{i}.5,maybe\n" for i in range(50)))
    established = sniff_csv(labeled).to_metadata()
    quiet = sniff_csv(unlabeled)
    assert quiet.empty_columns == ("is_fraud",) and sniff_csv(labeled).empty_columns == ()
    assert contract_differences(quiet.to_metadata(), established) == []
    assert contract_differences(sniff_csv(texted).to_metadata(), established) == [
        "column 'is_fraud' type boolean -> string"]


@pytest.mark.parametrize(
    ("name", "normalized"),
    [
        ("fixed acidity", "fixed_acidity"),
        ("Résumé Total", "resume_total"),
        ("pH", "ph"),
        ("  Total Sulfur-Dioxide (mg/l) ", "total_sulfur_dioxide_mg_l"),
        ("prix_€", "prix"),
        ("ÉTÉ", "ete"),
    ],
)
def test_normalize_column_name(name, normalized):
    assert normalize_column_name(name) == normalized


def test_explain_missing_and_unexpected_columns(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("id,amt\n1,2\n")
    dialect = sniff_csv(path)
    assert explain_header_mismatch(path, dialect, ["id", "amount"]) == (
        "x.csv: missing columns ['amount']; unexpected columns ['amt']"
    )
    assert explain_header_mismatch(path, dialect, ["ID", "Amt"]) is None  # normalized comparison
    assert explain_header_mismatch(path, dialect, ["amt"]) is None  # extra columns are tolerated


def test_explain_headerless_file(corpus):
    dialect = sniff_csv(corpus["no_header_numeric"])
    message = explain_header_mismatch(corpus["no_header_numeric"], dialect, ["a", "b", "c"])
    assert message.startswith("no_header_numeric.csv: no header row found")

    path = corpus["all_text_no_header"]  # its first row is 'apple,red': names, if the spec says so
    message = explain_header_mismatch(path, sniff_csv(path), ["apple", "red"])
    assert message.startswith("all_text_no_header.csv: the first row holds the expected column names")


# --------------------------------------------------------------------------- the wine files


@pytest.mark.parametrize("name", sorted(WINE_ROWS))
def test_wine_as_shipped(name, wine_dir):
    dialect = sniff_csv(wine_dir / name)
    assert dialect.delimiter == ";"  # not ' ', although every header name has spaces
    assert dialect.newline == "\r\n"
    assert dialect.encoding == "utf-8"
    assert dialect.has_header is True
    assert dialect.columns == WINE_COLUMNS
    assert dialect.types == {c: ("integer" if c == "quality" else "float") for c in WINE_COLUMNS}
    assert (dialect.decimal, dialect.thousands, dialect.quotechar) == (".", None, '"')
    assert dialect.sample_rows == WINE_ROWS[name]  # both files fit in the default sample
    assert dialect.warnings == ()
    assert sniff_csv(wine_dir / name, expected_columns=WINE_COLUMNS) == dialect


def test_wine_sample_is_bounded(wine_dir):
    dialect = sniff_csv(wine_dir / "winequality-white.csv", sample_bytes=4096)
    assert dialect.sample_bytes == 4096
    assert 0 < dialect.sample_rows < 100
    assert dialect.columns == WINE_COLUMNS and dialect.delimiter == ";"


def test_wine_read_with_a_wrong_delimiter_gets_a_hint(wine_dir):
    path = wine_dir / "winequality-red.csv"
    dialect = sniff_csv(path)
    assert explain_header_mismatch(path, dialect, WINE_COLUMNS) is None
    snake_case = [normalize_column_name(c) for c in WINE_COLUMNS]
    assert explain_header_mismatch(path, dialect, snake_case) is None

    assumed_comma = dataclasses.replace(dialect, delimiter=",", columns=(";".join(WINE_COLUMNS),))
    assert explain_header_mismatch(path, assumed_comma, WINE_COLUMNS) == (
        "winequality-red.csv: 1 column found with ','; with ';' it has 12 columns matching the spec"
    )
