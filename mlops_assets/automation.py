"""Schedules and sensors: daily ingest, hourly drift monitoring, weekly retrain, retrain on drift."""


import json

import dagster as dg

from mlops_assets.datasets.factory import DatasetDefinitions

RETRAIN_STAGES = ("model", "drift_report", "bento")


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
        target=dg.AssetSelection.assets(*[d.key("drift_report") for d in datasets]),
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
    by_key = {d.key("drift_report"): d for d in datasets}

    @dg.sensor(
        name="retrain_on_drift",
        target=dg.AssetSelection.assets(*[d.key(s) for d in datasets for s in RETRAIN_STAGES]),
        minimum_interval_seconds=60,
        default_status=dg.DefaultSensorStatus.STOPPED,
        description="Retrain when a drift report's drift share reaches the dataset's threshold.",
    )
    def retrain_on_drift(context: dg.SensorEvaluationContext) -> dg.SensorResult | dg.SkipReason:
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
            threshold = dataset.spec.drift.threshold
            if share >= threshold:
                requests.append(
                    dg.RunRequest(
                        run_key=f"{dataset.spec.name}:drift:{record.storage_id}",
                        asset_selection=[dataset.key(s) for s in RETRAIN_STAGES],
                        tags={"mlops/trigger": "drift", "mlops/dataset": dataset.spec.name, "mlops/drift_share": f"{share:.3f}"},
                    )
                )
            else:
                notes.append(f"{dataset.spec.name}: drift share {share:.2f} < {threshold}")
        if not requests:
            return dg.SensorResult(skip_reason=dg.SkipReason("; ".join(notes) or "no new drift reports"), cursor=json.dumps(cursor))
        return dg.SensorResult(run_requests=requests, cursor=json.dumps(cursor))

    return retrain_on_drift
