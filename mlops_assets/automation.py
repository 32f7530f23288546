"""Schedules and sensors: daily ingest, hourly drift monitoring, weekly retrain, retrain on drift,
landing-zone file drops, and features that follow cleaned."""


import json

import dagster as dg

from mlops_assets.datasets.factory import DatasetDefinitions
from mlops_assets.home import MlopsHome
from mlops_assets.resources import FileStorage, HomeResource, MlflowTracking, Warehouse
from mlops_assets.stages import RETRAIN_STAGES, Stage, metadata_values

RETRAIN_FOR_TAG = "mlops/retrain_for"  # the newest labeled partition a requested retrain includes
RETRAIN_REASON_TAG = "mlops/retrain_reason"
# Run tag values are free text in Dagster's run storage but shown as short labels in the UI (its strict
# definition tags stop at 63 characters); the full reason stays in the tick's log.
MAX_TAG_CHARS = 255


def _tag_value(text: str) -> str:
    """`text` within MAX_TAG_CHARS, cut in the middle: a reason starts with the evidence and ends with the decision."""
    if len(text) <= MAX_TAG_CHARS:
        return text
    keep = (MAX_TAG_CHARS - 5) // 2
    return text[:keep] + " ... " + text[-keep:]


def daily_ingest_schedules(datasets: list[DatasetDefinitions]) -> list[dg.ScheduleDefinition]:
    """At 01:00 every day, ingest yesterday's partition of each daily dataset."""
    return [
        dg.build_schedule_from_partitioned_job(
            d.ingest_job, name=f"{d.spec.name}_daily_ingest", hour_of_day=1, minute_of_hour=0,
            default_status=dg.DefaultScheduleStatus.STOPPED,
        )
        for d in datasets
        if d.spec.is_daily
    ]


def hourly_monitoring_schedule(datasets: list[DatasetDefinitions]) -> dg.ScheduleDefinition:
    """Every hour, a drift report for each dataset that has something new to compare; on by default.

    New means served predictions in the last hour, a newer batch or another champion than the last report
    compared: the same report again would only add an identical HTML file (~4.5 MB) every hour. Datasets
    without a champion are skipped with that reason instead of failing a run every hour on a fresh home.
    """

    @dg.schedule(
        name="hourly_drift_monitoring",
        cron_schedule="0 * * * *",
        target=dg.AssetSelection.assets(*[d.key(s) for d in datasets for s in (Stage.PREDICTION_LOG, Stage.DRIFT_REPORT)]),
        description="Every hour: each dataset's last hour of served predictions (else its newest batch) against its "
        "champion, for the datasets with something new since their last report.",
        default_status=dg.DefaultScheduleStatus.RUNNING,
    )
    def hourly_drift_monitoring(context: dg.ScheduleEvaluationContext, tracking: MlflowTracking,
                                warehouse: Warehouse, home: HomeResource):
        due, reasons = [], []
        for dataset in datasets:
            why = _monitoring_due(context, dataset, tracking, warehouse, home)
            context.log.info(why[1])
            reasons.append(why[1])
            if why[0]:
                due.append(dataset)
        if not due:
            return dg.SkipReason(" | ".join(reasons) or "no datasets")
        return dg.RunRequest(
            asset_selection=[d.key(s) for d in due for s in (Stage.PREDICTION_LOG, Stage.DRIFT_REPORT)],
            tags={"mlops/trigger": "hourly_drift_monitoring", "mlops/reason": _tag_value(" | ".join(reasons))},
        )

    return hourly_drift_monitoring


def _monitoring_due(context: dg.ScheduleEvaluationContext, dataset: DatasetDefinitions, tracking: MlflowTracking,
                    warehouse: Warehouse, home: HomeResource) -> tuple[bool, str]:
    """(whether `dataset` needs a new drift report, and why)."""
    import datetime as dt

    from mlops_assets.monitoring.drift import newest_partition
    from mlops_assets.monitoring.prediction_log import log_files
    from mlops_assets.tables import table_exists
    from mlops_assets.training.registry import champion

    spec = dataset.spec
    version = champion(tracking, spec)
    if version is None:
        return False, f"{spec.name}: no champion yet, nothing to compare with"
    since = dt.datetime.now(dt.UTC) - dt.timedelta(hours=spec.drift.current_window_hours)
    if log_files(home.paths.predictions(spec.name), since):
        return True, f"{spec.name}: served predictions since {since.isoformat(timespec='minutes')}"
    newest = None
    if warehouse.exists():
        with warehouse.connect(read_only=True) as con:
            newest = newest_partition(con, spec) if table_exists(con, spec, "cleaned_partitions") else None
    if newest is None:
        return False, f"{spec.name}: no served predictions and no batch to compare"
    last = context.instance.fetch_materializations(dataset.key(Stage.DRIFT_REPORT), limit=1, ascending=False).records
    meta = _metadata(last[0]) if last else {}
    if meta.get("current_partition") == newest and meta.get("reference_model_version") == str(version.version):
        return False, f"{spec.name}: nothing new since the last report ({newest} against champion v{version.version})"
    return True, f"{spec.name}: {newest} against champion v{version.version} not reported yet"


def weekly_retrain_schedule(datasets: list[DatasetDefinitions]) -> dg.ScheduleDefinition:
    return dg.ScheduleDefinition(
        name="weekly_retrain",
        cron_schedule="0 3 * * 1",
        target=dg.AssetSelection.assets(*[d.key(s) for d in datasets for s in RETRAIN_STAGES]),
        description="Mondays 03:00: retrain every model on its newest window, re-check drift, repackage.",
        default_status=dg.DefaultScheduleStatus.STOPPED,
    )


def retrain_on_drift_sensor(datasets: list[DatasetDefinitions]) -> dg.SensorDefinition:
    """Request `D/model` and everything downstream on new evidence: a severe drift report or a performance drop.

    The decision (see `monitoring/retrain.py`) settles: once the champion has been trained on the newest
    labeled partition, further reports on the same data are skipped with that reason, even if drift
    remains; a cooldown and a daily cap per dataset prevent storms. The cursor keeps, per dataset, the
    last drift/performance events judged and the retrains requested, so restarts replay nothing.
    """

    @dg.sensor(
        name="retrain_on_drift",
        target=dg.AssetSelection.assets(*[d.key(s) for d in datasets for s in RETRAIN_STAGES]),
        minimum_interval_seconds=60,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Retrain on new evidence (severe drift, performance drop) the champion has not been trained on.",
    )
    def retrain_on_drift(
        context: dg.SensorEvaluationContext, tracking: MlflowTracking, warehouse: Warehouse
    ) -> dg.SensorResult:
        from mlops_assets.monitoring.retrain import run_key

        cursor: dict = json.loads(context.cursor) if context.cursor else {}
        requests, reasons = [], []
        for dataset in datasets:
            name = dataset.spec.name
            seen = cursor.setdefault(name, {})
            evidence, marks = _new_evidence(context.instance, dataset, seen)
            decision, champion_version, evidence = _decide(context.instance, dataset, evidence, seen, tracking,
                                                           warehouse)
            # Every dataset's decision goes to the tick's log, the skipped ones too when another one fires.
            context.log.info(("retrain requested: " if decision.fire else "skipped: ") + decision.reason)
            reasons.append(decision.reason)
            if decision.consumed:
                seen.update(marks)
            if decision.fire:
                requests.append(dg.RunRequest(
                    run_key=run_key(name, decision.partition, decision.attempt),
                    asset_selection=[dataset.key(s) for s in RETRAIN_STAGES],
                    tags={"mlops/trigger": "retrain_on_drift", "mlops/dataset": name,
                          "mlops/evidence": ",".join(sorted({e.kind for e in evidence})),
                          "mlops/champion_version": str(champion_version),
                          RETRAIN_FOR_TAG: decision.partition,
                          "mlops/retrain_attempt": str(decision.attempt),
                          RETRAIN_REASON_TAG: _tag_value(decision.reason)},
                ))
        return dg.SensorResult(
            run_requests=requests,
            cursor=json.dumps(cursor),
            skip_reason=None if requests else dg.SkipReason(" | ".join(reasons) or "no datasets"),
        )

    return retrain_on_drift


def _metadata(record: dg.EventLogRecord) -> dict:
    return metadata_values(record.asset_materialization)


def _new_evidence(instance: dg.DagsterInstance, dataset: DatasetDefinitions, seen: dict) -> tuple[list, dict]:
    """Severe drift reports and performance drops materialized since the cursor; and the cursor marks past them."""
    from mlops_assets.monitoring.retrain import Evidence

    evidence, marks = [], {}
    drift = instance.fetch_materializations(dataset.key(Stage.DRIFT_REPORT), limit=1, ascending=False).records
    if drift and drift[0].storage_id > seen.get("drift", -1):
        marks["drift"] = drift[0].storage_id
        meta = _metadata(drift[0])
        if meta.get("drift_level", "severe" if meta.get("severe") else "ok") == "severe":
            evidence.append(Evidence("drift", meta.get("current_partition"),
                                     f"severe drift (share {float(meta.get('drift_share', 0)):.2f}) "
                                     f"on {meta.get('current_partition')}"))
    performance = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dataset.key(Stage.PERFORMANCE), after_storage_id=seen.get("performance")),
        limit=100, ascending=True,
    ).records
    for record in performance:
        marks["performance"] = record.storage_id
        meta = _metadata(record)
        if meta.get("retrain_evidence"):
            evidence.append(Evidence("performance", record.partition_key,
                                     f"performance drop {float(meta.get('relative_drop') or 0):.0%} on "
                                     f"{record.partition_key}"))
    return evidence, marks


def _decide(instance: dg.DagsterInstance, dataset: DatasetDefinitions, evidence: list, seen: dict,
            tracking: MlflowTracking, warehouse: Warehouse):
    """Read the champion's training window, the newest labeled partition and what became of the last retrain,
    then apply the one decision rule. Returns the decision, the champion's version and the evidence weighed."""
    import datetime as dt

    from mlops_assets.monitoring.retrain import RetrainState, decide

    spec = dataset.spec
    state = RetrainState.from_json(seen.get("state"))
    now = dt.datetime.now(dt.UTC)
    last = state.acted_on[-1] if state.acted_on else None
    run = _retrain_run(instance, dataset, last) if last else None
    evidence = evidence or state.pending_evidence(run)  # a failed retrain's evidence still stands
    if not evidence:
        decision = decide(spec, [], None, None, set(), state, now, run)
        state.record(decision, evidence, run, now)
        seen["state"] = state.to_json()
        return decision, None, evidence
    from mlops_assets.monitoring.performance import newest_labeled_partition
    from mlops_assets.training.lineage import load_lineage
    from mlops_assets.training.registry import champion

    version = champion(tracking, spec)
    trained_on = {p["partition"] for p in load_lineage(tracking, version.run_id).get("partitions", [])} if version else set()
    with warehouse.connect(read_only=True) as con:
        newest = newest_labeled_partition(con, spec)
    if newest != last:
        run = _retrain_run(instance, dataset, newest) if state.attempts(newest) else None
    decision = decide(spec, evidence, newest, str(version.version) if version else None, trained_on, state, now, run)
    state.record(decision, evidence, run, now)
    seen["state"] = state.to_json()
    return decision, version.version if version else None, evidence


_IN_FLIGHT = {dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING,
              dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING}


def _retrain_run(instance: dg.DagsterInstance, dataset: DatasetDefinitions, partition: str):
    """The newest retrain run requested for `partition` (by its tags) and what came of it: still running, failed
    before a model came out, or a model that was (not) promoted."""
    from mlops_assets.monitoring.retrain import FAILED, FINISHED, NOT_PROMOTED, PROMOTED, RUNNING, RetrainRun

    runs = instance.get_runs(
        filters=dg.RunsFilter(tags={"mlops/dataset": dataset.spec.name, RETRAIN_FOR_TAG: partition}), limit=1)
    if not runs:
        return None
    run = runs[0]
    if run.status in _IN_FLIGHT:
        return RetrainRun(run.run_id, RUNNING)
    models = instance.fetch_materializations(dataset.key(Stage.MODEL), limit=20, ascending=False).records
    model = next((_metadata(r) for r in models if r.run_id == run.run_id), None)
    if model is not None:  # a challenger that lost fails the run by its blocking check, yet it is no failure
        if model.get("champion"):
            return RetrainRun(run.run_id, PROMOTED, f"champion v{model.get('version')}")
        return RetrainRun(run.run_id, NOT_PROMOTED, f"challenger v{model.get('version')}, champion "
                          f"v{model.get('champion_version')} kept")
    return RetrainRun(run.run_id, FINISHED if run.status == dg.DagsterRunStatus.SUCCESS else FAILED)


SETTLE_SECONDS = 2.0
LANDING_SUFFIXES = (".csv", ".csv.gz")  # gzip exports are ingested as they are, never unpacked to disk


def landing_sensor(dataset: DatasetDefinitions) -> dg.SensorDefinition:
    """Every CSV (plain or `.csv.gz`) dropped in `$MLOPS_HOME/landing/<dataset>/` becomes a partition and is ingested.

    The cursor remembers each file's size, mtime and content hash: an identical file dropped again
    is a no-op, a changed file under the same name is ingested as a new version (run key = name +
    hash). Files still being written (modified in the last seconds) wait for the next tick.
    """
    spec = dataset.spec
    partitions = dataset.partitions_def

    @dg.sensor(
        name=f"{spec.name}_landing_sensor",
        job=dataset.ingest_job,
        minimum_interval_seconds=30,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=f"Register and ingest CSV files dropped in landing/{spec.name}/.",
    )
    def _sensor(context: dg.SensorEvaluationContext, storage: FileStorage) -> dg.SensorResult:
        import time

        from mlops_assets.ingest.landing import file_digest

        cursor: dict[str, dict] = json.loads(context.cursor) if context.cursor else {}
        prefix = MlopsHome.landing_prefix(spec.name)
        landing = storage.uri(prefix)
        now = time.time()
        new_keys, requests, waiting = [], [], []
        for stored in storage.list(prefix):
            if stored.name.startswith(".") or not stored.name.lower().endswith(LANDING_SUFFIXES):
                continue
            if now - stored.modified_ns / 1e9 < SETTLE_SECONDS:
                waiting.append(stored.name)
                continue
            seen = cursor.get(stored.name)
            if seen and seen["size"] == stored.size and seen["mtime_ns"] == stored.modified_ns:
                continue
            with storage.local_copy(storage.uri(stored.key)) as local:
                digest = file_digest(local)
            cursor[stored.name] = {"size": stored.size, "mtime_ns": stored.modified_ns, "hash": digest}
            known = seen["hash"] if seen else _last_ingested_hash(context.instance, dataset.key(Stage.RAW), stored.name)
            if known == digest:
                continue  # touched, re-dropped with identical content, or already ingested (CLI, demo)
            if not context.instance.has_dynamic_partition(partitions.name, stored.name) and stored.name not in new_keys:
                new_keys.append(stored.name)
            requests.append(
                dg.RunRequest(
                    partition_key=stored.name,
                    run_key=f"{stored.name}:{digest}",
                    tags={"mlops/content_hash": digest, "mlops/change": "changed" if known else "new"},
                )
            )
        return dg.SensorResult(
            run_requests=requests,
            dynamic_partitions_requests=[partitions.build_add_request(new_keys)] if new_keys else [],
            cursor=json.dumps(cursor),
            skip_reason=None if requests else dg.SkipReason(
                f"no new or changed files in {landing}" + (f" (still being written: {waiting})" if waiting else "")
            ),
        )

    return _sensor


def _last_ingested_hash(instance: dg.DagsterInstance, raw_key: dg.AssetKey, partition: str) -> str | None:
    """The content hash `raw` last registered for this partition, whoever ran it."""
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=raw_key, asset_partitions=[partition]), limit=1, ascending=False
    ).records
    if not records or records[0].asset_materialization is None:
        return None
    value = records[0].asset_materialization.metadata.get("content_hash")
    return value.value if value is not None else None


def features_follow_cleaned_sensor(datasets: list[DatasetDefinitions]) -> dg.AutomationConditionSensorDefinition:
    """Evaluates each `features` asset's automation condition (see stages/features.py); on by default."""
    return dg.AutomationConditionSensorDefinition(
        "features_follow_cleaned",
        target=dg.AssetSelection.assets(*[d.key(Stage.FEATURES) for d in datasets]),
        default_status=dg.DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=30,
        description="Build a partition's features as soon as its cleaned rows change (and pass their blocking checks).",
    )


def landing_sensors(datasets: list[DatasetDefinitions]) -> list[dg.SensorDefinition]:
    return [landing_sensor(d) for d in datasets if d.spec.source.kind == "file_drop"]


def reconcile_dead_runs_sensor() -> dg.SensorDefinition:
    """Every minute under the daemon: runs whose process died are marked failed, so none holds a run slot."""

    @dg.sensor(
        name="reconcile_dead_runs",
        minimum_interval_seconds=60,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Mark STARTED runs whose process is gone (killed, crashed) as failed, with the reason.",
    )
    def reconcile_dead_runs(context: dg.SensorEvaluationContext) -> dg.SkipReason:
        from mlops_assets.recovery import reconcile_dead_runs as reconcile

        dead = reconcile(context.instance)
        if dead:
            return dg.SkipReason(f"marked {len(dead)} dead run(s) failed: "
                                 + ", ".join(f"{d.run_id[:8]} ({d.job_name}, pid {d.pid})" for d in dead))
        return dg.SkipReason("no dead runs")

    return reconcile_dead_runs
