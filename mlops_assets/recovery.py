"""Runs whose process died: found and marked failed, so no ghost stays STARTED or holds a run slot.

Dagster's run monitoring covers runs of launchers that can report their workers' health (ECS, k8s);
the local launcher and in-process runs (the CLI) cannot, so a run killed with -9 would stay STARTED
forever. Every run's RUN_START event records the pid of the process that executes it; on this machine
a run whose process is gone (or whose pid now belongs to a newer process) is dead.
"""

from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass

import dagster as dg

log = logging.getLogger(__name__)

ACTIVE_STATUSES = (dg.DagsterRunStatus.STARTED,)


@dataclass(frozen=True)
class DeadRun:
    run_id: str
    job_name: str
    pid: int | None


def process_alive(pid: int, started_before: float | None = None) -> bool:
    """Is `pid` a live process that was already running at `started_before` (a pid reused later is not it)?"""
    import psutil

    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return False
        return started_before is None or process.create_time() <= started_before + 1.0
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:
        return True


def _start_pids(instance: dg.DagsterInstance, records: list[dg.RunRecord]) -> dict[str, tuple[int | None, float]]:
    """run id -> (pid that emitted RUN_START, when), read from the run-status change records."""
    wanted = {r.dagster_run.run_id for r in records}
    after = min((r.start_time or r.create_timestamp.timestamp()) for r in records) - 1.0
    found: dict[str, tuple[int | None, float]] = {}
    cursor = None
    while wanted - set(found):
        result = instance.fetch_run_status_changes(
            dg.RunStatusChangeRecordsFilter(event_type=dg.DagsterEventType.RUN_START, after_timestamp=after),
            limit=500, cursor=cursor, ascending=True,
        )
        for record in result.records:
            entry = record.event_log_entry
            if entry.run_id in wanted and entry.dagster_event is not None:
                found[entry.run_id] = (entry.dagster_event.pid, entry.timestamp)
        if not result.has_more:
            break
        cursor = result.cursor
    return found


def find_dead_runs(instance: dg.DagsterInstance) -> list[DeadRun]:
    """STARTED runs of this machine whose executing process no longer exists."""
    records = list(instance.get_run_records(filters=dg.RunsFilter(statuses=list(ACTIVE_STATUSES))))
    if not records:
        return []
    pids = _start_pids(instance, records)
    dead = []
    for record in records:
        run = record.dagster_run
        pid, started = pids.get(run.run_id, (None, record.start_time or 0.0))
        if pid is None or pid == os.getpid():
            continue  # not started by a process we can see yet, or this very process
        if not process_alive(pid, started_before=started):
            dead.append(DeadRun(run.run_id, run.job_name, pid))
    return dead


def reconcile_dead_runs(instance: dg.DagsterInstance) -> list[DeadRun]:
    """Mark every dead STARTED run failed, with the reason; returns them."""
    dead = find_dead_runs(instance)
    for ghost in dead:
        run = instance.get_run_by_id(ghost.run_id)
        if run is None or run.status not in ACTIVE_STATUSES:
            continue
        message = (f"run process {ghost.pid} on {socket.gethostname()} is gone (killed or crashed); marked failed "
                   "by mlops_assets so it holds no run slot. Re-run it: partial work is rolled back.")
        # Dagster has no public API to fail a run from outside it; DagsterInstance.report_run_failed is what
        # its own run monitoring daemon calls for the same purpose.
        instance.report_run_failed(run, message)
        log.warning("%s (%s): %s", ghost.run_id, ghost.job_name, message)
    return dead


PID_TAG = "mlops.pid"
HOST_TAG = "mlops.host"


def process_tags() -> dict[str, str]:
    """Tags naming the process that writes an MLflow run, so a later run can tell when it died."""
    return {PID_TAG: str(os.getpid()), HOST_TAG: socket.gethostname()}


def end_dead_mlflow_runs(tracking, spec) -> list[str]:
    """MLflow runs of `spec` left RUNNING by a process of this machine that died: ended as FAILED.

    A model version registered by such a run, with no promotion decision, is tagged as abandoned, so
    the registry never shows a version nobody decided on. Returns the run ids ended.
    """
    from mlops_assets.training.registry import PROMOTION_TAG

    client = tracking.client()
    experiment = client.get_experiment_by_name(f"mlops_assets/{spec.name}")
    if experiment is None:
        return []
    ended = []
    for run in client.search_runs([experiment.experiment_id], filter_string="attributes.status = 'RUNNING'"):
        tags = run.data.tags
        if tags.get(HOST_TAG) != socket.gethostname() or not tags.get(PID_TAG, "").isdigit():
            continue
        if process_alive(int(tags[PID_TAG]), started_before=run.info.start_time / 1000):
            continue
        client.set_tag(run.info.run_id, "mlops.ended_by", f"process {tags[PID_TAG]} died; ended by the next model run")
        client.set_terminated(run.info.run_id, status="FAILED")
        ended.append(run.info.run_id)
    if ended:
        for version in client.search_model_versions(f"name = '{spec.registered_model_name}'"):
            if version.run_id in ended and PROMOTION_TAG not in (version.tags or {}):
                client.set_model_version_tag(spec.registered_model_name, version.version, PROMOTION_TAG,
                                             "abandoned: the training process died before deciding")
        log.warning("%s: ended %d MLflow run(s) left RUNNING by a dead process", spec.name, len(ended))
    return ended
