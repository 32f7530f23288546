"""Schedules and sensors exist, target the right assets, and the drift sensor fires exactly when it should."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from mlops_assets.automation import retrain_on_drift_sensor
from mlops_assets.definitions import build_datasets

REPO = Path(__file__).resolve().parents[1]


NOW = dt.datetime(2026, 3, 10, 12, 0, tzinfo=dt.UTC)


def _decide(specs, evidence, newest="2026-01-14", champion="3", trained_on=("2026-01-01", "2026-01-09"), state=None,
            last_run=None):
    from mlops_assets.monitoring.retrain import RetrainState, decide

    return decide(specs["transactions"], evidence, newest, champion, set(trained_on), state or RetrainState(), NOW,
                  last_run)


def _requested(*hours_ago: float, partition="2026-01-14"):
    """The sensor's memory after retrains requested for `partition` that many hours before NOW."""
    from mlops_assets.monitoring.retrain import RetrainState

    return RetrainState(acted_on=[partition] * len(hours_ago),
                        fired_at=[(NOW - dt.timedelta(hours=h)).timestamp() for h in hours_ago],
                        pending=[{"kind": "drift", "partition": partition,
                                  "detail": f"severe drift (share 0.80) on {partition}"}])


def _severe(partition="2026-01-14"):
    from mlops_assets.monitoring.retrain import Evidence

    return [Evidence("drift", partition, f"severe drift (share 0.80) on {partition}")]


def test_new_evidence_on_data_the_champion_has_not_seen_fires(specs):
    decision = _decide(specs, _severe())
    assert decision.fire and decision.partition == "2026-01-14"
    assert "champion v3 has not seen 2026-01-14" in decision.reason


def test_evidence_on_data_the_champion_was_trained_on_is_skipped_with_that_reason(specs):
    decision = _decide(specs, _severe(), trained_on=("2026-01-13", "2026-01-14"))
    assert not decision.fire and decision.consumed
    assert "already trained on the newest labeled partition 2026-01-14" in decision.reason


def test_one_retrain_per_newest_partition_even_when_the_challenger_lost(specs):
    from mlops_assets.monitoring.retrain import NOT_PROMOTED, RetrainRun

    lost = RetrainRun("0f1e2d3c4b5a", NOT_PROMOTED, "challenger v4, champion v3 kept")
    decision = _decide(specs, _severe(), state=_requested(24), last_run=lost)
    assert not decision.fire and decision.consumed
    assert "already requested: the retrain for 2026-01-14 finished (run 0f1e2d3c): the challenger was not better " \
        "(challenger v4, champion v3 kept)" in decision.reason


def test_evidence_waits_while_its_retrain_is_running(specs):
    from mlops_assets.monitoring.retrain import RUNNING, RetrainRun

    decision = _decide(specs, _severe(), state=_requested(2), last_run=RetrainRun("abcdef123456", RUNNING))
    assert not decision.fire and not decision.consumed  # looked at again once the run is done
    assert "a retrain for 2026-01-14 is running (run abcdef12)" in decision.reason
    assert "not better" not in decision.reason


def test_a_failed_retrain_is_retried_once_after_the_cooldown(specs):
    from mlops_assets.monitoring.retrain import FAILED, RetrainRun, RetrainState

    died = RetrainRun("deadbeef0000", FAILED)
    cooling = _decide(specs, _severe(), state=_requested(0.25), last_run=died)
    assert not cooling.fire and not cooling.consumed
    assert "the retrain for 2026-01-14 failed (run deadbeef); in cooldown until 2026-03-10T12:45" in cooling.reason
    retry = _decide(specs, _severe(), state=_requested(2), last_run=died)
    assert retry.fire and retry.attempt == 2 and "retry the retrain" in retry.reason
    exhausted = _decide(specs, _severe(), state=_requested(5, 2), last_run=died)
    assert not exhausted.fire and exhausted.consumed and "not retried again (2 attempts)" in exhausted.reason
    # With no new evidence, the failed request's evidence stands until it was retried once, then is dropped.
    assert [e.partition for e in _requested(2).pending_evidence(died)] == ["2026-01-14"]
    assert _requested(5, 2).pending_evidence(died) == []
    state = RetrainState.from_json(_requested(5, 2).to_json())
    state.record(exhausted, [], died, NOW)
    assert state.pending == []


def test_cooldown_and_daily_cap_hold_evidence_for_later(specs):
    from mlops_assets.monitoring.retrain import RetrainState

    recent = RetrainState(acted_on=["2026-01-12"], fired_at=[(NOW - dt.timedelta(minutes=5)).timestamp()])
    cooling = _decide(specs, _severe(), state=recent)
    assert not cooling.fire and not cooling.consumed and "cooldown until 2026-03-10T12:55" in cooling.reason
    busy = RetrainState(acted_on=["a", "b", "c"],
                        fired_at=[(NOW - dt.timedelta(hours=h)).timestamp() for h in (2, 4, 6)])
    capped = _decide(specs, _severe(), state=busy)
    assert not capped.fire and not capped.consumed and "daily cap of 3" in capped.reason


def test_no_evidence_or_no_champion_never_fires(specs):
    assert not _decide(specs, []).fire
    no_champion = _decide(specs, _severe(), champion=None)
    assert not no_champion.fire and "no champion yet" in no_champion.reason


def test_sensor_skips_mild_drift_with_its_reason_and_consumes_it(specs, fresh_resources):
    sensor = retrain_on_drift_sensor(build_datasets(specs))
    resources = {"tracking": fresh_resources["tracking"], "warehouse": fresh_resources["warehouse"]}
    with dg.instance_for_test() as instance:
        instance.report_runless_asset_event(dg.AssetMaterialization(
            asset_key=["transactions", "drift_report"],
            metadata={"drift_share": 0.1, "drift_level": "ok", "current_partition": "2026-01-05"}))
        result = sensor(dg.build_sensor_context(instance=instance, resources=resources))
        assert not result.run_requests
        assert "transactions: no new evidence" in result.skip_reason.skip_message
        again = sensor(dg.build_sensor_context(instance=instance, resources=resources, cursor=result.cursor))
        assert not again.run_requests


def test_hourly_monitoring_runs_by_default_and_skips_datasets_without_a_champion(specs, fresh_resources, instance):
    from mlops_assets.automation import hourly_monitoring_schedule

    schedule = hourly_monitoring_schedule(build_datasets(specs))
    assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING
    resources = {k: fresh_resources[k] for k in ("tracking", "warehouse", "home")}
    # The session's instance: a schedule evaluated on a test instance that is closed afterwards leaves Dagster's
    # definitions loading pointing at it for the tests that follow.
    result = schedule(dg.build_schedule_context(instance=instance, resources=resources))
    assert isinstance(result, dg.SkipReason)  # a fresh home: no failed run every hour, a reason instead
    assert "transactions: no champion yet" in result.skip_message
    assert "wine_quality: no champion yet" in result.skip_message


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
        dg.AssetKey(["transactions", s]) for s in ("raw", "cleaned", "features", "performance")
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
        assert parents[key("performance")] == {key("cleaned"), key("model")}
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
