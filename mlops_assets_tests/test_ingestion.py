"""Ingestion through the real assets: quarantine with reasons, conservation, contracts, versions, file drops.

Each test gets its own MLOPS_HOME and Dagster instance, so the shared platform fixture is untouched.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from mlops_assets.home import MlopsHome
from mlops_assets.resources import LocalStorage

WINE_HEADER = ("fixed acidity;volatile acidity;citric acid;residual sugar;chlorides;free sulfur dioxide;"
               "total sulfur dioxide;density;pH;sulphates;alcohol;quality")
GOOD = "7.4;0.7;0;1.9;0.076;11;34;0.9978;3.51;0.56;9.4;5"


@pytest.fixture()
def runner(tmp_path, specs):
    from mlops_assets.cli.runner import Runner
    from mlops_assets.definitions import build_definitions

    home = MlopsHome(tmp_path / "home").ensure()
    with dg.instance_for_test() as instance:
        yield Runner(build_definitions(home, specs), instance, home, log_level="CRITICAL")


def write(path: Path, lines: list[str], newline: str = "\r\n") -> Path:
    path.write_bytes(newline.join(lines).encode() + newline.encode())
    return path


def quarantine(runner, partition: str) -> list[tuple]:
    with runner.defs.resources["warehouse"].connect(read_only=True) as con:
        return con.execute(
            "SELECT source_file, line, column_name, reason FROM wine_quality.quarantine WHERE _partition = ? ORDER BY line",
            [partition],
        ).fetchall()


@pytest.mark.slow  # runs the ingest job (raw -> cleaned -> features) on a real instance
def test_bad_rows_go_to_quarantine_with_file_line_column_and_reason(runner, specs, tmp_path):
    from mlops_assets.cli.ingest import ingest

    rows = [WINE_HEADER] + [GOOD] * 40 + [
        GOOD.replace(";9.4;", ";abc;"),            # line 42: unparsable float
        GOOD.replace(";3.51;", ";20;"),            # line 43: pH outside 0..14
        GOOD.rsplit(";", 1)[0] + ";",              # line 44: quality missing
        GOOD + ";99",                              # line 45: ragged (13 fields)
    ]
    summary = ingest(runner, specs["wine_quality"], write(tmp_path / "batch.csv", rows))
    assert summary["rows_read"] == 44
    assert summary["rows_cleaned"] == 40 and summary["rows_quarantined"] == 4
    assert summary["rows_read"] == summary["rows_cleaned"] + summary["rows_quarantined"]
    assert summary["checks"]["rows_conserved"]["passed"]
    held = quarantine(runner, "batch.csv")
    assert [(f, line) for f, line, _, _ in held] == [("batch.csv", n) for n in (42, 43, 44, 45)]
    by_line = {line: (column, reason) for _, line, column, reason in held}
    assert by_line[42][0] == "alcohol" and "not a valid number: abc" in by_line[42][1]
    assert by_line[43][0] == "ph" and "above maximum 14" in by_line[43][1]
    assert by_line[44][0] == "quality" and "missing required value" in by_line[44][1]
    assert by_line[45][1]  # the reader's own reason for the ragged row


@pytest.mark.slow  # runs the ingest job (raw -> cleaned -> features) on a real instance
def test_too_much_quarantine_fails_the_blocking_check_but_keeps_every_row(runner, specs, tmp_path):
    from mlops_assets.cli.ingest import format_summary, ingest

    rows = [WINE_HEADER] + [GOOD] * 10 + [GOOD.replace(";9.4;", ";n/a?;")] * 10
    summary = ingest(runner, specs["wine_quality"], write(tmp_path / "noisy.csv", rows))
    assert not summary["ok"]
    assert summary["checks"]["quarantine_share_within_limit"]["passed"] is False
    assert "10 of 20 rows quarantined" in summary["checks"]["quarantine_share_within_limit"]["description"]
    assert summary["rows_cleaned"] + summary["rows_quarantined"] == 20
    assert len(quarantine(runner, "noisy.csv")) == 10
    assert summary["quarantine_reasons"] == {"alcohol: not a valid number": 10}
    assert "quarantine  10 row(s): alcohol: not a valid number" in format_summary(summary)


@pytest.mark.slow  # runs the ingest job (raw -> cleaned -> features) on a real instance
def test_duplicate_keys_are_quarantined(runner, specs, tmp_path):
    import datetime as dt

    from mlops_assets.cli.ingest import ingest
    from mlops_assets.datasets.generator import generate_day

    frame = generate_day(dt.date(2026, 1, 5), 300, seed=3)
    frame = pd.concat([frame, frame.iloc[[10, 20]]], ignore_index=True)
    path = tmp_path / "transactions_2026-01-05.csv"
    frame.to_csv(path, index=False)
    summary = ingest(runner, specs["transactions"], path)
    assert summary["ok"], summary["problems"]
    assert (summary["rows_read"], summary["rows_cleaned"], summary["rows_quarantined"]) == (302, 300, 2)
    reasons = summary["quarantine_reasons"]  # {reason: rows}, also in --json
    assert sum(n for why, n in reasons.items() if "transaction_id: duplicate key" in why) == 2
    spec = specs["transactions"]  # features: the spec's columns; one-hot categories make more model inputs
    categories = [c for c in spec.feature_columns if c.type == "category"]
    assert summary["n_features"] == len(spec.feature_columns)
    assert summary["n_encoded_features"] == len(spec.feature_columns) - len(categories) + sum(
        len(c.values) for c in categories)


@pytest.mark.slow  # runs the ingest job (raw -> cleaned -> features) on a real instance
def test_contract_drift_is_stopped_before_cleaned(runner, specs, tmp_path):
    from mlops_assets.cli.ingest import format_summary, ingest

    spec = specs["wine_quality"]
    assert ingest(runner, spec, MlopsHome.shipped_file(spec.name, "winequality-red.csv"))["ok"]
    comma = tmp_path / "white-comma.csv"
    comma.write_bytes(MlopsHome.shipped_file(spec.name, "winequality-white.csv").read_bytes().replace(b";", b","))
    summary = ingest(runner, spec, comma)
    check = summary["checks"]["matches_established_contract"]
    assert check["passed"] is False
    assert "white-comma.csv" in check["description"] and "delimiter ';' -> ','" in check["description"]
    assert summary["rows_cleaned"] is None  # cleaned never ran
    text = format_summary(summary)
    assert "cleaning did not run: the file does not match the dataset's contract" in text and "None" not in text
    with runner.defs.resources["warehouse"].connect(read_only=True) as con:
        assert con.execute("SELECT count(*) FROM wine_quality.cleaned WHERE _partition = 'white-comma.csv'").fetchone()[0] == 0
        registered = con.execute("SELECT content_hash, rows_read FROM wine_quality.ingestion_contracts "
                                 "WHERE _partition = 'white-comma.csv'").fetchone()
    assert registered[0] == summary["content_hash"] and registered[1] is None  # kept, hashed, never read
    assert (runner.home.landing("wine_quality") / "white-comma.csv").exists()
    assert (runner.home.archive("wine_quality") / "white-comma.csv").is_dir()


@pytest.mark.slow  # runs the ingest job (raw -> cleaned -> features) on a real instance
def test_a_column_that_turns_to_text_is_a_contract_difference(runner, specs, tmp_path):
    from mlops_assets.cli.ingest import ingest

    spec = specs["wine_quality"]
    ingest(runner, spec, MlopsHome.shipped_file(spec.name, "winequality-red.csv"))
    rows = [WINE_HEADER] + [GOOD.replace(";9.4;", ";high;")] * 30
    summary = ingest(runner, spec, write(tmp_path / "texty.csv", rows))
    assert "column 'alcohol' type float -> string" in summary["checks"]["matches_established_contract"]["description"]


@pytest.mark.slow  # runs the ingest job (raw -> cleaned -> features) on a real instance
def test_changed_file_under_the_same_name_is_a_new_version_and_the_old_one_is_kept(runner, specs, tmp_path):
    from mlops_assets.cli.ingest import ingest

    spec = specs["wine_quality"]
    path = write(tmp_path / "batch.csv", [WINE_HEADER] + [GOOD] * 5)
    first = ingest(runner, spec, path)
    again = ingest(runner, spec, path)
    assert (first["file_version"], again["file_version"]) == (1, 1)
    write(path, [WINE_HEADER] + [GOOD] * 7)
    changed = ingest(runner, spec, path)
    assert changed["file_version"] == 2 and changed["content_hash"] != first["content_hash"]
    with runner.defs.resources["warehouse"].connect(read_only=True) as con:
        versions = con.execute("SELECT content_hash, archived_copy FROM wine_quality.file_versions "
                               "WHERE _partition = 'batch.csv' ORDER BY first_ingested_at").fetchall()
        assert con.execute("SELECT count(*) FROM wine_quality.cleaned WHERE _partition = 'batch.csv'").fetchone()[0] == 7
    assert [h for h, _ in versions] == [first["content_hash"], changed["content_hash"]]
    archived = [Path(p).read_bytes().count(b"\r\n") - 1 for _, p in versions]
    assert archived == [5, 7]


def test_cleaned_asset_shows_the_pandera_schema(defs):
    specs = {s.key: s for s in defs.resolve_all_asset_specs()}
    schema = specs[dg.AssetKey(["wine_quality", "cleaned"])].metadata["dagster/column_schema"]
    columns = {c.name: c for c in schema.columns}
    assert set(columns) >= {"fixed_acidity", "ph", "quality"}
    assert columns["ph"].type == "float64"
    assert columns["quality"].type == "int64" and columns["fixed_acidity"].constraints.other


def _age(path: Path, seconds: float = 10) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


@pytest.mark.slow  # runs the ingest job (raw -> cleaned -> features) on a real instance
def test_landing_sensor_registers_new_files_ignores_identical_ones_and_versions_changed_ones(specs, tmp_path):
    from mlops_assets.automation import landing_sensor
    from mlops_assets.definitions import build_datasets

    wine = next(d for d in build_datasets(specs) if d.spec.name == "wine_quality")
    sensor = landing_sensor(wine)
    storage = LocalStorage(root=str(tmp_path))
    landing = MlopsHome(tmp_path).landing("wine_quality", create=True)
    dropped = landing / "winequality-red.csv"
    dropped.write_bytes(MlopsHome.shipped_file(wine.spec.name, "winequality-red.csv").read_bytes())
    (landing / "notes.txt").write_text("not a csv")
    _age(dropped)
    with dg.instance_for_test() as instance:
        first = sensor(dg.build_sensor_context(instance=instance, resources={"storage": storage}))
        assert [r.partition_key for r in first.run_requests] == ["winequality-red.csv"]
        assert first.dynamic_partitions_requests[0].partition_keys == ["winequality-red.csv"]
        instance.add_dynamic_partitions("wine_quality_files", ["winequality-red.csv"])

        # The same bytes dropped again (new mtime): no run.
        dropped.write_bytes(dropped.read_bytes())
        _age(dropped, 5)
        second = sensor(dg.build_sensor_context(instance=instance, resources={"storage": storage}, cursor=first.cursor))
        assert not second.run_requests

        # Changed content under the same name: a new run, keyed by the new hash, no new partition.
        dropped.write_bytes(dropped.read_bytes() + GOOD.encode() + b"\r\n")
        _age(dropped, 3)
        third = sensor(dg.build_sensor_context(instance=instance, resources={"storage": storage}, cursor=second.cursor))
        assert len(third.run_requests) == 1 and third.run_requests[0].tags["mlops/change"] == "changed"
        assert third.run_requests[0].run_key != first.run_requests[0].run_key
        assert not third.dynamic_partitions_requests


@pytest.mark.slow  # runs the ingest job (raw -> cleaned -> features) on a real instance
def test_landing_sensor_skips_a_file_already_ingested_by_the_cli(runner, specs):
    """A fresh sensor cursor (e.g. a new `dagster dev`) does not re-ingest what is already in."""
    from mlops_assets.automation import landing_sensor
    from mlops_assets.cli.ingest import ingest
    from mlops_assets.definitions import build_datasets

    spec = specs["wine_quality"]
    assert ingest(runner, spec, MlopsHome.shipped_file(spec.name, "winequality-red.csv"))["ok"]
    landed = runner.home.landing("wine_quality") / "winequality-red.csv"
    _age(landed)
    sensor = landing_sensor(next(d for d in build_datasets(specs) if d.spec.name == "wine_quality"))
    storage = LocalStorage(root=str(runner.home.root))
    result = sensor(dg.build_sensor_context(instance=runner.instance, resources={"storage": storage}))
    assert not result.run_requests
    # Changed bytes under the same name still are a new version.
    landed.write_bytes(landed.read_bytes() + GOOD.encode() + b"\r\n")
    _age(landed)
    changed = sensor(dg.build_sensor_context(instance=runner.instance, resources={"storage": storage}, cursor=result.cursor))
    assert [r.tags["mlops/change"] for r in changed.run_requests] == ["changed"]


def _cli(args: list[str], home: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mlops_assets.cli", *args],
        env={**os.environ, "MLOPS_HOME": str(home), "DAGSTER_HOME": str(home / "dagster")},
        capture_output=True, text=True, timeout=300,
    )


@pytest.mark.slow  # starts a Python process with the whole stack
def test_cli_ingest_prints_counts_dialect_and_checks_as_json(tmp_path):
    red = MlopsHome.shipped_file("wine_quality", "winequality-red.csv")
    result = _cli(["ingest", "wine_quality", str(red), "--json"], tmp_path / "home")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert (summary["rows_read"], summary["rows_cleaned"], summary["rows_quarantined"]) == (1599, 1599, 0)
    assert summary["dialect"]["delimiter"] == ";" and summary["dialect"]["encoding"] == "utf-8"
    assert summary["dialect"]["header"] is True
    assert all(c["passed"] for c in summary["checks"].values())
    # every gate of the ingest job is reported, including the performance check that has no champion yet
    assert {"matches_established_contract", "rows_conserved", "performance_within_tolerance"} <= set(summary["checks"])


@pytest.mark.slow  # starts a Python process with the whole stack
@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"", "empty"),
        (bytes(range(256)) * 40, "binary"),
        (b"colour;price\r\nred;3\r\n", "missing columns"),
        ((WINE_HEADER + "\r\n").encode(), "no data rows"),
    ],
    ids=["empty", "binary", "wrong-columns", "header-only"],
)
def test_cli_ingest_refuses_unusable_files_in_one_line(tmp_path, content, expected):
    bad = tmp_path / "bad.csv"
    bad.write_bytes(content)
    result = _cli(["ingest", "wine_quality", str(bad)], tmp_path / "home")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr + result.stdout
    message = result.stderr.strip()
    assert "\n" not in message and "bad.csv" in message and expected in message.lower()
    assert not (tmp_path / "home" / "landing" / "wine_quality" / "bad.csv").exists()


@pytest.mark.slow  # runs the ingest job (raw -> cleaned -> features) on a real instance
def test_cli_ingest_over_a_changed_daily_file_keeps_the_old_version(runner, specs, tmp_path):
    import datetime as dt

    from mlops_assets.cli.ingest import ingest
    from mlops_assets.datasets.generator import generate_day

    spec = specs["transactions"]
    path = tmp_path / "transactions_2026-02-01.csv"
    generate_day(dt.date(2026, 2, 1), 200, seed=1).to_csv(path, index=False)
    first = ingest(runner, spec, path)
    generate_day(dt.date(2026, 2, 1), 150, seed=2).to_csv(path, index=False)
    second = ingest(runner, spec, path)
    assert (first["rows_cleaned"], second["rows_cleaned"]) == (200, 150)
    kept = runner.home.archive("transactions") / "2026-02-01"
    copies = sorted(kept.glob("*.csv"))
    assert len(copies) == 1 and copies[0].name.startswith(first["content_hash"].split(":")[1][:16])
    assert copies[0].read_bytes().count(b"\n") == 201
