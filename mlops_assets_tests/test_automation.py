"""Schedules and sensors exist, target the right assets, and the drift sensor fires exactly when it should."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from mlops_assets.automation import retrain_on_drift_sensor
from mlops_assets.definitions import build_datasets

REPO = Path(__file__).resolve().parents[1]


def _report_drift(instance, dataset: str, share: float) -> None:
    instance.report_runless_asset_event(
        dg.AssetMaterialization(asset_key=[dataset, "drift_report"], metadata={"drift_share": share})
    )


@pytest.fixture()
def sensor_setup(specs):
    datasets = build_datasets(specs)
    return retrain_on_drift_sensor(datasets), datasets


def test_severe_drift_requests_model_and_downstream_once(sensor_setup):
    sensor, _ = sensor_setup
    with dg.instance_for_test() as instance:
        _report_drift(instance, "transactions", 0.71)
        _report_drift(instance, "wine_quality", 0.05)
        result = sensor(dg.build_sensor_context(instance=instance))
        assert len(result.run_requests) == 1
        request = result.run_requests[0]
        assert set(request.asset_selection) == {
            dg.AssetKey(["transactions", s]) for s in ("model", "drift_report", "bento")
        }
        assert request.tags["mlops/trigger"] == "drift"
        # Same reports again: nothing new to judge, so nothing is requested twice.
        again = sensor(dg.build_sensor_context(instance=instance, cursor=result.cursor))
        assert not again.run_requests
        # A new severe report for wine triggers wine only.
        _report_drift(instance, "wine_quality", 0.9)
        third = sensor(dg.build_sensor_context(instance=instance, cursor=result.cursor))
        assert [r.tags["mlops/dataset"] for r in third.run_requests] == ["wine_quality"]


def test_mild_drift_is_skipped_with_a_reason(sensor_setup):
    sensor, _ = sensor_setup
    with dg.instance_for_test() as instance:
        _report_drift(instance, "transactions", 0.1)
        result = sensor(dg.build_sensor_context(instance=instance))
        assert not result.run_requests
        assert "transactions: drift share 0.10 < 0.3" in result.skip_reason.skip_message


def test_schedules_target_ingest_monitoring_and_retrain(defs):
    graph = defs.resolve_asset_graph()

    def targets(name: str) -> set[dg.AssetKey]:
        job_name = defs.resolve_schedule_def(name).job_name
        job = next((j for j in defs.jobs if j.name == job_name), None)  # a named job, e.g. transactions_ingest
        if job is None:  # a schedule that targets an asset selection directly
            job = defs.get_unresolved_schedule_def(name).job
        return set(job.selection.resolve(graph))

    assert defs.resolve_schedule_def("transactions_daily_ingest").cron_schedule == "0 1 * * *"
    assert targets("transactions_daily_ingest") == {
        dg.AssetKey(["transactions", s]) for s in ("raw", "cleaned", "features")
    }
    assert defs.resolve_schedule_def("hourly_drift_monitoring").cron_schedule == "0 * * * *"
    assert defs.resolve_schedule_def("weekly_retrain").cron_schedule == "0 3 * * 1"
    assert targets("hourly_drift_monitoring") == {
        dg.AssetKey([d, s]) for d in ("transactions", "wine_quality") for s in ("prediction_log", "drift_report")
    }
    assert targets("weekly_retrain") == {
        dg.AssetKey([d, s]) for d in ("transactions", "wine_quality") for s in ("model", "drift_report", "bento")
    }


def test_asset_graph_has_lineage_for_both_datasets(defs):
    parents = {s.key: {d.asset_key for d in s.deps} for s in defs.resolve_all_asset_specs()}
    for dataset in ("transactions", "wine_quality"):
        def key(stage: str, dataset: str = dataset) -> dg.AssetKey:
            return dg.AssetKey([dataset, stage])

        assert parents[key("raw")] == set()
        assert parents[key("cleaned")] == {key("raw")}
        assert parents[key("features")] == {key("cleaned")}
        assert parents[key("model")] == {key("features")}
        assert parents[key("drift_report")] == {key("cleaned"), key("model"), key("prediction_log")}
        assert parents[key("bento")] == {key("model")}
        assert parents[key("prediction_log")] == {key("bento")}


@pytest.mark.slow  # starts a Python process with the whole stack
def test_dagster_definitions_validate_passes(home):
    env = {**os.environ}
    result = subprocess.run(
        [str(Path(sys.executable).parent / "dagster"), "definitions", "validate", "-w", "workspace.yaml"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Validation successful" in result.stdout + result.stderr
