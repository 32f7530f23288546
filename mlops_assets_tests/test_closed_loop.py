"""The closed loop on a real Dagster instance: evidence -> one retrain -> a settled sensor.

Each test has its own MLOPS_HOME and instance; jobs run in-process through the same definitions the
UI uses, and the sensor is evaluated exactly as the daemon would (same resources, cursor carried).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from pathlib import Path

import dagster as dg
import pytest

from mlops_assets.automation import retrain_on_drift_sensor
from mlops_assets.datasets.generator import generate_range

pytestmark = pytest.mark.slow

START = dt.date(2026, 1, 1)
ROWS = 4000


@contextlib.contextmanager
def _loop(home, specs):
    from mlops_assets.cli.runner import Runner
    from mlops_assets.definitions import build_datasets, build_definitions

    with dg.instance_for_test() as instance:
        runner = Runner(build_definitions(home, specs), instance, home, log_level="CRITICAL")
        sensor = retrain_on_drift_sensor(build_datasets(specs))
        resources = {"tracking": runner.defs.resources["tracking"], "warehouse": runner.defs.resources["warehouse"]}

        def evaluate(cursor=None):
            return sensor(dg.build_sensor_context(instance=instance, resources=resources, cursor=cursor))

        yield runner, evaluate


@pytest.fixture()
def loop(fresh_home, specs):
    with _loop(fresh_home, specs) as pair:
        yield pair


def _meta(instance, *path) -> dict:
    event = instance.get_latest_materialization_event(dg.AssetKey(list(path)))
    return {k: v.value for k, v in event.asset_materialization.metadata.items()}


def _days(first: int, last: int) -> list[str]:
    return [(START + dt.timedelta(days=i - 1)).isoformat() for i in range(first, last + 1)]


def _champion_version(runner, spec) -> str:
    client = runner.defs.resources["tracking"].client()
    return str(client.get_model_version_by_alias(spec.registered_model_name, "champion").version)


def _check(result: dg.ExecuteInProcessResult, name: str):
    return next(c for c in result.get_asset_check_evaluations() if c.check_name == name)


def _aged(cursor: str, dataset: str, minutes: float) -> str:
    """The sensor's cursor as it would read `minutes` later: its requests moved back in time."""
    data = json.loads(cursor)
    state = data[dataset]["state"]
    state["fired_at"] = [t - minutes * 60 for t in state["fired_at"]]
    return json.dumps(data)


def _fail_like(runner, request: dg.RunRequest) -> str:
    """A run carrying `request`'s tags that fails before any model comes out (as a crashed retrain would)."""

    @dg.op
    def train_step():
        raise dg.Failure(description="retrain died: out of memory")

    @dg.job(name="retrain_that_dies")
    def retrain_that_dies():
        train_step()

    result = retrain_that_dies.execute_in_process(instance=runner.instance, tags=dict(request.tags),
                                                  raise_on_error=False)
    assert not result.success
    return result.run_id


def test_drift_fires_one_retrain_that_trains_on_the_drifted_days_then_settles(loop, specs):
    runner, evaluate = loop
    tx = specs["transactions"]
    generate_range(runner.home, "transactions", START, 14, ROWS, seed=tx.source.seed,
                   drift_from=START + dt.timedelta(days=9))
    for day in _days(1, 9):
        runner.ingest(tx, day)
    runner.run("transactions_train", ops_config={"transactions__model": {"config": {"train_until": _days(9, 9)[0]}}})
    before = _meta(runner.instance, "transactions", "model")
    for day in _days(10, 14):
        runner.ingest(tx, day)
    runner.run("transactions_monitor")
    drift = _meta(runner.instance, "transactions", "drift_report")
    assert drift["drift_level"] == "severe"
    assert (drift["current_partition"], drift["current_rows"]) == (_days(14, 14)[0], ROWS)
    assert drift["reference_rows"] == 9 * ROWS and drift["reference_partitions"] == 9  # days 1-9 trained on

    first = evaluate()
    assert len(first.run_requests) == 1, first.skip_reason
    request = first.run_requests[0]
    assert set(request.asset_selection) == {dg.AssetKey(["transactions", s]) for s in ("model", "drift_report", "bento")}
    assert request.tags["mlops/dataset"] == "transactions"

    tagged = request.tags["mlops/retrain_reason"]  # the evidence first, the decision last, within a tag's length
    assert tagged.startswith("transactions: severe drift (share") and len(tagged) <= 255
    assert tagged.endswith("has not seen 2026-01-14: retrain")
    champion_before = _champion_version(runner, tx)

    result = runner.run_request(request, check=False)  # a challenger that is not better is a valid outcome
    after = _meta(runner.instance, "transactions", "model")
    assert after["training_partitions"][-1] == _days(14, 14)[0]  # the retrain saw the drifted days
    assert int(after["version"]) > int(before["version"])
    promotion = _check(result, "not_worse_than_champion")
    assert {"challenger_score", "champion_score"} <= set(promotion.metadata)
    bento_run = runner.instance.get_latest_materialization_event(dg.AssetKey(["transactions", "bento"])).run_id
    settled = evaluate(first.cursor)
    assert not settled.run_requests
    reason = settled.skip_reason.skip_message
    if after["champion"]:  # promoted: the Bento was rebuilt in the retrain run, with the new champion
        assert _champion_version(runner, tx) == str(after["version"])
        assert bento_run == result.run_id
        assert _meta(runner.instance, "transactions", "bento")["mlflow_version"] == str(after["version"])
        if _meta(runner.instance, "transactions", "drift_report")["drift_level"] == "severe":
            assert "already trained on the newest labeled partition 2026-01-14" in reason, reason
        else:
            assert "no new evidence since the retrain requested for 2026-01-14" in reason, reason
    else:  # kept: same champion, both scores on the check, the Bento not rebuilt for a model that does not serve
        assert _champion_version(runner, tx) == champion_before
        assert promotion.metadata["champion_score"].value is not None
        assert bento_run != result.run_id
        assert "no new evidence since the retrain requested for 2026-01-14" in reason, reason
        assert "the challenger was not better" in reason, reason
    assert not evaluate(settled.cursor).run_requests


def test_no_drift_no_retrain(loop, specs):
    runner, evaluate = loop
    tx = specs["transactions"]
    generate_range(runner.home, "transactions", START, 10, ROWS, seed=tx.source.seed)
    for day in _days(1, 8):
        runner.ingest(tx, day)
    runner.run("transactions_train", ops_config={"transactions__model": {"config": {"train_until": _days(8, 8)[0]}}})
    for day in _days(9, 10):
        runner.ingest(tx, day)
    runner.run("transactions_monitor")
    assert _meta(runner.instance, "transactions", "drift_report")["drift_level"] != "severe"
    for day in _days(9, 10):
        performance = runner.instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=dg.AssetKey(["transactions", "performance"]), asset_partitions=[day]),
            limit=1).records[0].asset_materialization.metadata
        assert performance["retrain_evidence"].value is False, day
    result = evaluate()
    assert not result.run_requests
    assert "transactions: no new evidence" in result.skip_reason.skip_message


def test_wine_white_against_red_retrains_once_then_settles(loop, specs):
    from mlops_assets.cli.runner import land_shipped_file

    runner, evaluate = loop
    wine = specs["wine_quality"]
    runner.ingest(wine, land_shipped_file(wine, runner.home, "winequality-red.csv"))
    runner.run("wine_quality_train")
    red_champion = _champion_version(runner, wine)
    runner.ingest(wine, land_shipped_file(wine, runner.home, "winequality-white.csv"))
    runner.run("wine_quality_monitor")
    drift = _meta(runner.instance, "wine_quality", "drift_report")
    assert drift["drift_level"] == "severe" and drift["champion_trained_on_current"] is False
    assert drift["reference_rows"] == 1599  # the red file's data rows (UCI: 1599 red, 4898 white)
    assert drift["current_rows"] == 4898

    first = evaluate()
    assert [r.tags["mlops/dataset"] for r in first.run_requests] == ["wine_quality"]
    request = first.run_requests[0]
    assert request.tags["mlops/retrain_for"] == "winequality-white.csv"
    assert "severe drift" in request.tags["mlops/retrain_reason"]

    # The retrain dies before a model comes out: its evidence still stands, retried once after the cooldown.
    died = _fail_like(runner, request)
    cooling = evaluate(first.cursor)
    assert not cooling.run_requests
    assert f"the retrain for winequality-white.csv failed (run {died[:8]}); in cooldown until" \
        in cooling.skip_reason.skip_message
    retry = evaluate(_aged(cooling.cursor, "wine_quality", wine.drift.cooldown_minutes + 1))
    assert len(retry.run_requests) == 1, retry.skip_reason
    again = retry.run_requests[0]
    assert again.run_key.endswith(":attempt2") and again.run_key != request.run_key
    assert again.tags["mlops/retrain_attempt"] == "2"
    assert "failed" in again.tags["mlops/retrain_reason"] and "retry the retrain" in again.tags["mlops/retrain_reason"]

    result = runner.run_request(again, check=False)
    model = _meta(runner.instance, "wine_quality", "model")
    assert "winequality-white.csv" in model["training_partitions"]
    assert model["champion"] is True  # a red-only champion cannot beat one that has seen white wines on them
    assert _champion_version(runner, wine) == str(model["version"]) != red_champion
    bento = runner.instance.get_latest_materialization_event(dg.AssetKey(["wine_quality", "bento"]))
    assert bento.run_id == result.run_id  # the Bento was rebuilt by the retrain, serving the new champion
    assert _meta(runner.instance, "wine_quality", "bento")["mlflow_version"] == str(model["version"])

    # Drift against the new champion's reference (red + white) remains: expected, so a warning, not an alarm.
    settled_drift = _meta(runner.instance, "wine_quality", "drift_report")
    assert settled_drift["champion_trained_on_current"] is True
    check = _check(result, "drift_within_limits")
    if settled_drift["drift_level"] != "ok":
        assert check.severity == dg.AssetCheckSeverity.WARN
        assert "already trained on winequality-white.csv" in check.description

    second = evaluate(retry.cursor)
    assert not second.run_requests
    reason = second.skip_reason.skip_message
    if settled_drift["drift_level"] == "severe":
        assert "already trained on the newest labeled partition winequality-white.csv" in reason, reason
    else:
        assert "no new evidence since the retrain requested for winequality-white.csv" in reason, reason
    assert not evaluate(second.cursor).run_requests


def test_an_unlabeled_partition_ingests_is_not_scored_and_is_not_the_newest_labeled_one(fresh_home, specs, tmp_path):
    """Served data arrives before its labels: with an optional target, such a day ingests, is not scored, and a
    retrain is not requested for it (the champion has seen the newest day that has labels)."""
    import pandas as pd

    from mlops_assets.datasets.spec import load_spec

    shipped = Path(specs["transactions"].spec_path).read_text(encoding="utf-8")
    optional = shipped.replace("{name: is_fraud, type: boolean, role: target, required: true}",
                               "{name: is_fraud, type: boolean, role: target}")
    assert optional != shipped
    (tmp_path / "specs").mkdir()
    (tmp_path / "specs" / "transactions.yaml").write_text(optional, encoding="utf-8")
    tx = load_spec(tmp_path / "specs" / "transactions.yaml")

    with _loop(fresh_home, {"transactions": tx}) as (runner, evaluate):
        files = generate_range(runner.home, "transactions", START, 4, ROWS, seed=tx.source.seed,
                               drift_from=START + dt.timedelta(days=3))
        unlabeled = pd.read_csv(files[3], dtype=str, keep_default_na=False)
        unlabeled["is_fraud"] = ""
        unlabeled.to_csv(files[3], index=False, lineterminator="\n")
        for day in _days(1, 3):
            runner.ingest(tx, day)
        runner.run("transactions_train")
        runner.ingest(tx, _days(4, 4)[0])  # raises if any step or gate failed

        with runner.defs.resources["warehouse"].connect(read_only=True) as con:
            rows, labeled = con.execute("SELECT count(*), count(is_fraud) FROM transactions.cleaned "
                                        "WHERE _partition = ?", [_days(4, 4)[0]]).fetchone()
        assert (rows, labeled) == (ROWS, 0)
        record = runner.instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=dg.AssetKey(["transactions", "performance"]),
                                  asset_partitions=[_days(4, 4)[0]]), limit=1).records[0]
        performance = {k: v.value for k, v in record.asset_materialization.metadata.items()}
        assert performance["scored"] is False and performance["retrain_evidence"] is False
        assert performance["reason"].startswith("no labels")

        runner.run("transactions_monitor")
        drift = _meta(runner.instance, "transactions", "drift_report")
        assert drift["current_partition"] == _days(4, 4)[0] and drift["drift_level"] == "severe"
        result = evaluate()
        assert not result.run_requests
        assert "already trained on the newest labeled partition 2026-01-03" in result.skip_reason.skip_message
