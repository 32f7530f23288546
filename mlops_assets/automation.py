"""Schedules and sensors: daily ingest, hourly drift monitoring, weekly retrain, retrain on drift."""


import json

import dagster as dg

from mlops_assets.datasets.factory import DatasetDefinitions
from mlops_assets.home import MlopsHome
from mlops_assets.resources import FileStorage
from mlops_assets.stages import RETRAIN_STAGES, Stage


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
    return dg.ScheduleDefinition(
        name="hourly_drift_monitoring",
        cron_schedule="0 * * * *",
        target=dg.AssetSelection.assets(*[d.key(Stage.DRIFT_REPORT) for d in datasets]),
        description="Every hour: drift report of each dataset's newest batch against its champion.",
        default_status=dg.DefaultScheduleStatus.STOPPED,
    )


def weekly_retrain_schedule(datasets: list[DatasetDefinitions]) -> dg.ScheduleDefinition:
    return dg.ScheduleDefinition(
        name="weekly_retrain",
        cron_schedule="0 3 * * 1",
        target=dg.AssetSelection.assets(*[d.key(s) for d in datasets for s in RETRAIN_STAGES]),
        description="Mondays 03:00: retrain every model on its newest window, re-check drift, repackage.",
        default_status=dg.DefaultScheduleStatus.STOPPED,
    )


def retrain_on_drift_sensor(datasets: list[DatasetDefinitions]) -> dg.SensorDefinition:
    """Request `D/model` and everything downstream when a new drift report of D is severe.

    The cursor remembers, per dataset, the last drift report event it judged, so each report
    triggers at most one retrain and restarts of the daemon do not replay old reports.
    """
    by_key = {d.key(Stage.DRIFT_REPORT): d for d in datasets}

    @dg.sensor(
        name="retrain_on_drift",
        target=dg.AssetSelection.assets(*[d.key(s) for d in datasets for s in RETRAIN_STAGES]),
        minimum_interval_seconds=60,
        default_status=dg.DefaultSensorStatus.STOPPED,
        description="Retrain when a drift report's drift share reaches the dataset's threshold.",
    )
    def retrain_on_drift(context: dg.SensorEvaluationContext) -> dg.SensorResult | dg.SkipReason:
        from mlops_assets.monitoring.drift import is_severe

        cursor: dict[str, int] = json.loads(context.cursor) if context.cursor else {}
        requests, notes = [], []
        for key, dataset in by_key.items():
            records = context.instance.fetch_materializations(key, limit=1, ascending=False).records
            if not records:
                continue
            record = records[0]
            if record.storage_id <= cursor.get(dataset.spec.name, -1):
                continue
            cursor[dataset.spec.name] = record.storage_id
            materialization = record.asset_materialization
            metadata = materialization.metadata if materialization else {}
            share_value = metadata.get("drift_share")
            share = float(share_value.value) if share_value is not None else 0.0
            if is_severe(dataset.spec, share):
                requests.append(
                    dg.RunRequest(
                        run_key=f"{dataset.spec.name}:drift:{record.storage_id}",
                        asset_selection=[dataset.key(s) for s in RETRAIN_STAGES],
                        tags={"mlops/trigger": "drift", "mlops/dataset": dataset.spec.name, "mlops/drift_share": f"{share:.3f}"},
                    )
                )
            else:
                notes.append(f"{dataset.spec.name}: drift share {share:.2f} < {dataset.spec.drift.threshold}")
        if not requests:
            return dg.SensorResult(skip_reason=dg.SkipReason("; ".join(notes) or "no new drift reports"), cursor=json.dumps(cursor))
        return dg.SensorResult(run_requests=requests, cursor=json.dumps(cursor))

    return retrain_on_drift


SETTLE_SECONDS = 2.0


def landing_sensor(dataset: DatasetDefinitions) -> dg.SensorDefinition:
    """Every CSV dropped in `$MLOPS_HOME/landing/<dataset>/` becomes a partition and is ingested.

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
            if not stored.name.lower().endswith(".csv"):
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
