"""Gzip deliveries: sniffed, contract-checked, hashed and ingested like the plain file, never unpacked to disk."""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import os
import time
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from mlops_assets.home import MlopsHome
from mlops_assets.ingest.dialect import UnreadableFile, sniff_csv
from mlops_assets.ingest.loader import load_csv, transcode_to_utf8
from mlops_assets_tests.csv_corpus import CASES, Case

OK_CASES = [c for c in CASES if c.ok]


def _gzip(source: Path, target: Path) -> Path:
    target.write_bytes(gzip.compress(source.read_bytes(), mtime=0))
    return target


def _sniff(case: Case, path: Path):
    return sniff_csv(path, **({"sample_bytes": case.sample_bytes} if case.sample_bytes else {}))


@pytest.mark.parametrize("case", OK_CASES, ids=lambda c: c.name)
def test_a_gzipped_corpus_file_reads_exactly_like_the_plain_one(case: Case, corpus, tmp_path):
    plain = corpus[case.name]
    packed = _gzip(plain, tmp_path / f"{case.name}.csv.gz")
    expected, dialect = _sniff(case, plain), _sniff(case, packed)
    assert dialect.compression == "gzip" and expected.compression is None
    assert dataclasses.replace(dialect, compression=None) == expected

    with duckdb.connect() as con:
        a = load_csv(con, plain, expected, "plain")
        b = load_csv(con, packed, dialect, "packed", source_name=plain.name)
        assert (b.rows_read, b.rows_loaded, b.rejects) == (a.rows_read, a.rows_loaded, a.rejects)
        differences = con.execute("SELECT count(*) FROM (SELECT * FROM plain EXCEPT ALL SELECT * FROM packed)").fetchone()
    assert differences == (0,)


def test_gzip_is_recognized_by_its_bytes_not_its_name(wine_dir, tmp_path):
    disguised = _gzip(wine_dir / "winequality-red.csv", tmp_path / "export.csv")
    dialect = sniff_csv(disguised)
    assert dialect.compression == "gzip" and dialect.delimiter == ";" and "pH" in dialect.columns
    with duckdb.connect() as con:
        assert load_csv(con, disguised, dialect, "t").rows_loaded == 1599


def test_transcoding_a_gzip_file_writes_a_gzip_copy(tmp_path):
    """cp1252 text must be transcoded for DuckDB: the copy is compressed too, so no plain text hits the disk."""
    text = "name;price\r\n" + "".join(f"café {i};{i},5\r\n" for i in range(2000))
    packed = tmp_path / "prices.csv.gz"
    packed.write_bytes(gzip.compress(text.encode("cp1252")))
    copy = transcode_to_utf8(packed, "cp1252", tmp_path / "copy.csv.gz", compress=True)
    assert copy.read_bytes()[:2] == b"\x1f\x8b"
    assert gzip.decompress(copy.read_bytes()).decode("utf-8") == text
    dialect = sniff_csv(packed)
    assert dialect.encoding in ("cp1252", "latin-1") and dialect.decimal == ","
    with duckdb.connect() as con:
        load_csv(con, packed, dialect, "t", column_types={"price": "DOUBLE"})
        assert con.execute("SELECT count(*), sum(price), min(name) FROM t").fetchone() == (2000, sum(range(2000)) + 2000 * 0.5, "café 0")


def test_a_gzip_stream_cut_short_is_refused_in_one_line(tmp_path):
    lines = "".join(f"{i};{i * 0.5};label {i % 7}\n" for i in range(400_000)).encode()
    data = gzip.compress(b"a;b;c\n" + lines)
    cut_early = tmp_path / "early.csv.gz"
    cut_early.write_bytes(data[:40])
    with pytest.raises(UnreadableFile, match=r"^early\.csv\.gz: is not a readable gzip file") as early:
        sniff_csv(cut_early)
    cut_late = tmp_path / "late.csv.gz"
    cut_late.write_bytes(data[: len(data) // 2])
    dialect = sniff_csv(cut_late, sample_bytes=64 * 1024)  # the sample is intact; the end of the stream is not
    with duckdb.connect() as con, pytest.raises(UnreadableFile, match=r"^late\.csv\.gz: .*deliver it again") as late:
        load_csv(con, cut_late, dialect, "t")
    assert "\n" not in str(early.value) + str(late.value)


@pytest.fixture()
def runner(tmp_path, specs):
    from mlops_assets.cli.runner import Runner
    from mlops_assets.definitions import build_definitions

    home = MlopsHome(tmp_path / "home").ensure()
    with dg.instance_for_test() as instance:
        yield Runner(build_definitions(home, specs), instance, home, log_level="CRITICAL")


@pytest.mark.slow  # runs the ingest job on a real instance
def test_a_gzip_delivery_is_ingested_hashed_and_archived_as_delivered(runner, specs, wine_dir, tmp_path):
    from mlops_assets.cli.ingest import ingest
    from mlops_assets.definitions import local_resources

    spec = specs["wine_quality"]
    assert ingest(runner, spec, wine_dir / "winequality-red.csv")["ok"]
    packed = _gzip(wine_dir / "winequality-white.csv", tmp_path / "winequality-white.csv.gz")
    summary = ingest(runner, spec, packed)
    assert summary["ok"], summary["problems"]
    assert summary["checks"]["matches_established_contract"]["passed"]  # same contract as the plain red file
    assert (summary["rows_read"], summary["rows_cleaned"]) == (4898, 4898)
    assert summary["content_hash"] == "sha256:" + hashlib.sha256(packed.read_bytes()).hexdigest()
    assert summary["partition"] == "winequality-white.csv.gz"
    with local_resources(runner.home)["warehouse"].connect(read_only=True) as con:
        contract = con.execute("SELECT contract->>'compression' FROM wine_quality.ingestion_contracts "
                               "WHERE _partition = 'winequality-white.csv.gz'").fetchone()
    assert contract == ("gzip",)
    landed = runner.home.landing(spec.name) / "winequality-white.csv.gz"
    assert landed.read_bytes() == packed.read_bytes()
    archived = list((runner.home.archive(spec.name) / "winequality-white.csv.gz").iterdir())
    assert [p.name.endswith(".csv.gz") for p in archived] == [True]
    # Nothing under MLOPS_HOME holds the white wines as plain text.
    plain_size = (wine_dir / "winequality-white.csv").stat().st_size
    assert not [p for p in runner.home.root.rglob("*") if p.is_file() and p.stat().st_size == plain_size]


@pytest.mark.slow  # runs the ingest job on a real instance
def test_the_landing_sensor_picks_up_gzip_files(specs, wine_dir, tmp_path):
    from mlops_assets.automation import landing_sensor
    from mlops_assets.definitions import build_datasets
    from mlops_assets.resources import LocalStorage

    wine = next(d for d in build_datasets(specs) if d.spec.name == "wine_quality")
    storage = LocalStorage(root=str(tmp_path))
    dropped = _gzip(wine_dir / "winequality-red.csv", MlopsHome(tmp_path).landing("wine_quality", create=True) / "red.csv.gz")
    (dropped.parent / "notes.txt.gz").write_bytes(gzip.compress(b"not a csv"))
    then = time.time() - 10
    for path in dropped.parent.iterdir():
        os.utime(path, (then, then))
    with dg.instance_for_test() as instance:
        result = landing_sensor(wine)(dg.build_sensor_context(instance=instance, resources={"storage": storage}))
    assert [r.partition_key for r in result.run_requests] == ["red.csv.gz"]
