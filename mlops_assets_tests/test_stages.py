"""Single stages materialized alone with `dg.materialize`, each against its own temporary MLOPS_HOME."""

from __future__ import annotations

import dagster as dg
import pytest

from mlops_assets.datasets.factory import build_dataset
from mlops_assets.datasets.spec import load_spec
from mlops_assets.home import MlopsHome
from mlops_assets.stages import Stage, asset_key

WINE_HEADER = ("fixed acidity;volatile acidity;citric acid;residual sugar;chlorides;free sulfur dioxide;"
               "total sulfur dioxide;density;pH;sulphates;alcohol;quality")
GOOD = "7.4;0.7;0;1.9;0.076;11;34;0.9978;3.51;0.56;9.4;5"


def _ingest(dataset, resources, home: MlopsHome, name: str, content: bytes, stages=(Stage.RAW, Stage.CLEANED)):
    """Drop `content` as landing file `name` and materialize the given stages for that partition."""
    landing = home.landing(dataset.spec.name, create=True) / name
    landing.write_bytes(content)
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(dataset.partitions_def.name, [name])
    selected = [a for a in dataset.assets if any(k.path[-1] in stages for k in a.keys)]
    return dg.materialize(selected, resources=resources, partition_key=name, instance=instance,
                          raise_on_error=False)


def _check(result: dg.ExecuteInProcessResult, name: str):
    return next(c for c in result.get_asset_check_evaluations() if c.check_name == name)


def _rows(lines: list[str]) -> bytes:
    return ("\r\n".join(lines) + "\r\n").encode()


def test_raw_and_cleaned_materialize_alone_and_conserve_rows(specs, fresh_home, fresh_resources):
    wine = build_dataset(specs["wine_quality"])
    rows = [WINE_HEADER] + [GOOD] * 30 + [GOOD.replace(";3.51;", ";20;")]
    result = _ingest(wine, fresh_resources, fresh_home, "batch.csv", _rows(rows))
    assert result.success
    assert _check(result, "rows_conserved").passed
    with fresh_resources["warehouse"].connect(read_only=True) as con:
        kept = con.execute("SELECT count(*) FROM wine_quality.cleaned").fetchone()[0]
        held = con.execute("SELECT count(*) FROM wine_quality.quarantine").fetchone()[0]
    assert (kept, held) == (30, 1)


def test_rows_conserved_catches_rows_lost_between_staging_and_quarantine(specs, fresh_home, fresh_resources,
                                                                         monkeypatch):
    """A fault that drops failing rows instead of quarantining them must fail the check, not pass silently."""
    from mlops_assets.ingest import cleaning

    def lose_failing_rows(con, spec, partition, stage, failing, duplicates, now):
        con.execute(f"DELETE FROM {stage} WHERE _source_line IN (SELECT _source_line FROM {failing})")

    monkeypatch.setattr(cleaning, "move_to_quarantine", lose_failing_rows)
    wine = build_dataset(specs["wine_quality"])
    rows = [WINE_HEADER] + [GOOD] * 20 + [GOOD.replace(";3.51;", ";20;"), GOOD.replace(";9.4;", ";-1;")]
    result = _ingest(wine, fresh_resources, fresh_home, "lossy.csv", _rows(rows))
    check = _check(result, "rows_conserved")
    assert not check.passed
    assert "produced 22 rows but 20 are stored" in check.description


OPTIONAL_BOOLEAN_SPEC = """
name: loans
source: {kind: file_drop}
partitioning: {kind: files}
task: classification
target: defaulted
columns:
  - {name: income, type: float, required: true, min: 0}
  - {name: has_mortgage, source: "Has Mortgage", type: boolean}
  - {name: children, type: integer, min: 0}
  - {name: defaulted, type: boolean, role: target, required: true}
training: {primary_metric: roc_auc}
"""


def test_an_optional_boolean_column_with_blanks_ingests(tmp_path, fresh_home, fresh_resources):
    spec_path = tmp_path / "loans.yaml"
    spec_path.write_text(OPTIONAL_BOOLEAN_SPEC)
    loans = build_dataset(load_spec(spec_path))
    rows = ["income;Has Mortgage;children;defaulted"] + [
        f"{1000 + i};{['yes', 'no', ''][i % 3]};{'' if i % 4 == 0 else i % 3};{'yes' if i % 5 == 0 else 'no'}"
        for i in range(60)
    ]
    result = _ingest(loans, fresh_resources, fresh_home, "loans-1.csv", _rows(rows))
    assert result.success, [str(e.step_failure_data.error) for e in result.get_step_failure_events()]
    with fresh_resources["warehouse"].connect(read_only=True) as con:
        counts = con.execute("SELECT count(*), count(has_mortgage), count(children), sum(has_mortgage::INT) "
                             "FROM loans.cleaned").fetchone()
    assert counts == (60, 40, 45, 20)


def test_a_schema_failure_in_cleaning_names_the_file_and_column_not_a_rollback_error(
    specs, fresh_home, fresh_resources, monkeypatch
):
    """Whatever fails inside cleaning reaches the user as itself, with the file and the column."""
    import pandera.pandas as pa

    from mlops_assets.ingest import cleaning

    real_schema = cleaning.pandera_schema

    def stricter(spec, *, batch=False):
        schema = real_schema(spec, batch=batch)
        return schema.update_column("alcohol", checks=[pa.Check.le(5)])

    monkeypatch.setattr(cleaning, "pandera_schema", stricter)
    wine = build_dataset(specs["wine_quality"])
    result = _ingest(wine, fresh_resources, fresh_home, "strict.csv", _rows([WINE_HEADER] + [GOOD] * 5))
    assert not result.success
    failure = result.get_step_failure_events()[0].step_failure_data
    message = failure.user_failure_data.description if failure.user_failure_data else str(failure.error)
    assert "strict.csv" in message and "alcohol" in message
    assert "ResourceInUse" not in message and "rollback" not in message.lower()
    with fresh_resources["warehouse"].connect(read_only=True) as con:
        assert con.execute("SELECT count(*) FROM wine_quality.cleaned").fetchone()[0] == 0  # nothing published


def test_an_unexpected_error_in_cleaning_names_the_file_and_survives_a_failing_cleanup(
    specs, fresh_home, fresh_resources, monkeypatch
):
    """An error nobody planned for (here a DuckDB conversion error) reaches the user as itself, with the file
    it happened on, even when dropping the staging tables afterwards fails too; nothing is published."""
    import duckdb

    from mlops_assets.ingest import cleaning

    def broken_finish(con, spec, stage):
        raise duckdb.ConversionException("Could not convert string 'abc' to DOUBLE in column \"alcohol\"")

    monkeypatch.setattr(cleaning, "_finish_types", broken_finish)
    real_drop = cleaning._drop_quietly
    monkeypatch.setattr(cleaning, "_drop_quietly", lambda con, *temps: real_drop(_Closed(), *temps))
    wine = build_dataset(specs["wine_quality"])
    result = _ingest(wine, fresh_resources, fresh_home, "odd.csv", _rows([WINE_HEADER] + [GOOD] * 5))
    assert not result.success
    error = result.get_step_failure_events()[0].step_failure_data.error
    while error.cause is not None:
        error = error.cause
    assert "ConversionException" in error.cls_name and "alcohol" in error.message
    assert "odd.csv" in error.message  # the note added on the way out names the file
    assert "Connection already closed" not in error.to_string()
    with fresh_resources["warehouse"].connect(read_only=True) as con:
        assert con.execute("SELECT count(*) FROM wine_quality.cleaned").fetchone()[0] == 0


class _Closed:
    """A connection whose every statement fails, as one does once DuckDB has closed it."""

    def execute(self, *_args, **_kwargs):
        import duckdb

        raise duckdb.ConnectionException("Connection already closed!")


@pytest.mark.parametrize("stage", list(Stage))
def test_every_stage_has_one_builder_and_one_key(specs, stage):
    wine = build_dataset(specs["wine_quality"])
    keys = {k for a in wine.assets for k in a.keys}
    assert asset_key("wine_quality", stage) in keys
    assert len(keys) == len(Stage)


def test_temporaries_left_by_a_dead_writer_are_swept_by_the_next_raw_run(specs, fresh_home, fresh_resources):
    import os
    import time

    from mlops_assets.files import TEMP_MARK

    wine = build_dataset(specs["wine_quality"])
    landing = fresh_home.landing("wine_quality", create=True)
    stale = landing / f"{TEMP_MARK}0123456789ab-half.csv"
    stale.write_text("half a file")
    old = time.time() - 7200
    os.utime(stale, (old, old))
    fresh = landing / f"{TEMP_MARK}ba9876543210-being-written.csv"
    fresh.write_text("a live writer's file")
    result = _ingest(wine, fresh_resources, fresh_home, "batch.csv", _rows([WINE_HEADER] + [GOOD] * 3))
    assert result.success
    assert not stale.exists() and fresh.exists()  # only what no live writer can own any more
