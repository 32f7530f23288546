"""The closed loop on a real Dagster instance: evidence -> one retrain -> a settled sensor.

Each test has its own MLOPS_HOME and instance; jobs run in-process through the same definitions the
UI uses, and the sensor is evaluated exactly as the daemon would (same resources, cursor carried).
"""

from __future__ import annotations

import datetime as dt

import dagster as dg
import pytest

from mlops_assets.automation import retrain_on_drift_sensor
from mlops_assets.datasets.generator import generate_range

pytestmark = pytest.mark.slow

START = dt.date(2026, 1, 1)
ROWS = 4000


@pytest.fixture()
def loop(fresh_home, specs):
    from mlops_assets.cli.runner import Runner
    from mlops_assets.definitions import build_datasets, build_definitions

    with dg.instance_for_test() as instance:
        runner = Runner(build_definitions(fresh_home, specs), instance, fresh_home, log_level="CRITICAL")
        sensor = retrain_on_drift_sensor(build_datasets(specs))
        resources = {"tracking": runner.defs.resources["tracking"], "warehouse": runner.defs.resources["warehouse"]}

        def evaluate(cursor=None):
            return sensor(dg.build_sensor_context(instance=instance, resources=resources, cursor=cursor))

        yield runner, evaluate


def _meta(instance, *path) -> dict:
    event = instance.get_latest_materialization_event(dg.AssetKey(list(path)))
    return {k: v.value for k, v in event.asset_materialization.metadata.items()}


def _days(first: int, last: int) -> list[str]:
    return [(START + dt.timedelta(days=i - 1)).isoformat() for i in range(first, last + 1)]


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
    assert _meta(runner.instance, "transactions", "drift_report")["drift_level"] == "severe"

    first = evaluate()
    assert len(first.run_requests) == 1, first.skip_reason
    request = first.run_requests[0]
    assert set(request.asset_selection) == {dg.AssetKey(["transactions", s]) for s in ("model", "drift_report", "bento")}
    assert request.tags["mlops/dataset"] == "transactions"

    runner.run_request(request, check=False)  # a challenger that is not better is a valid outcome
    after = _meta(runner.instance, "transactions", "model")
    assert after["training_partitions"][-1] == _days(14, 14)[0]  # the retrain saw the drifted days
    assert int(after["version"]) > int(before["version"])
    bento = _meta(runner.instance, "transactions", "bento")
    champion = runner.defs.resources["tracking"].client().get_model_version_by_alias(tx.registered_model_name, "champion")
    assert bento["mlflow_version"] == str(champion.version)  # the Bento ships the champion, old or new

    settled = evaluate(first.cursor)
    assert not settled.run_requests
    reason = settled.skip_reason.skip_message
    assert ("already trained on the newest labeled partition 2026-01-14" in reason
            or "since the retrain requested for 2026-01-14" in reason), reason
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
    runner.ingest(wine, land_shipped_file(wine, runner.home, "winequality-white.csv"))
    runner.run("wine_quality_monitor")
    drift = _meta(runner.instance, "wine_quality", "drift_report")
    assert drift["drift_level"] == "severe" and drift["champion_trained_on_current"] is False

    first = evaluate()
    assert [r.tags["mlops/dataset"] for r in first.run_requests] == ["wine_quality"]
    runner.run_request(first.run_requests[0], check=False)
    assert "winequality-white.csv" in _meta(runner.instance, "wine_quality", "model")["training_partitions"]
    second = evaluate(first.cursor)
    assert not second.run_requests
    reason = second.skip_reason.skip_message
    assert ("already trained on the newest labeled partition winequality-white.csv" in reason
            or "since the retrain requested for winequality-white.csv" in reason), reason
    assert not evaluate(second.cursor).run_requests
