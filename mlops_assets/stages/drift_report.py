"""`<dataset>/drift_report`: Evidently data drift of the current window against the champion's training reference.

The check `drift_within_limits` warns above the spec's warn share and errors above its severe share,
so the UI shows the level (only a warning, saying why, once the champion was trained on the current
window: drift that remains then is expected, not an alarm); the HTML report is logged to MLflow (one
click from the metadata).
"""

import datetime as dt

import dagster as dg

from mlops_assets.datasets.spec import DatasetSpec
from mlops_assets.home import MlopsHome
from mlops_assets.resources import FileStorage, HomeResource, MlflowTracking, Warehouse
from mlops_assets.stages import Stage, asset_key
from mlops_assets.stages.failures import user_failures

DRIFT_CHECK = "drift_within_limits"
# `current_partition` of a report whose current window is the last hour of served predictions.
SERVED_WINDOW = "served_last_hour"


def build_drift_report_asset(spec: DatasetSpec) -> dg.AssetsDefinition:
    name = spec.name
    key = asset_key(name, Stage.DRIFT_REPORT)

    @dg.asset(
        key=key,
        deps=[asset_key(name, Stage.CLEANED), asset_key(name, Stage.MODEL), asset_key(name, Stage.PREDICTION_LOG)],
        group_name=name,
        kinds={"evidently", "html"},
        description=f"Evidently data drift of the newest {name} batch against the champion's training reference.",
        check_specs=[
            dg.AssetCheckSpec(
                DRIFT_CHECK, asset=key,
                description=f"drifted-column share: WARN above {spec.drift.warn_share:g}, ERROR (retrain evidence) "
                f"above {spec.drift.severe_share:g} unless the champion was already trained on the current window",
            )
        ],
    )
    def drift_report(
        context: dg.AssetExecutionContext, warehouse: Warehouse, tracking: MlflowTracking, storage: FileStorage,
        home: HomeResource,
    ) -> dg.MaterializeResult:
        from mlops_assets.monitoring.drift import (
            drift_level,
            drifted_columns_markdown,
            log_report_to_mlflow,
            newest_partition,
            run_drift_report,
            sample_partition,
        )
        from mlops_assets.monitoring.prediction_log import served_inputs
        from mlops_assets.training.lineage import load_lineage
        from mlops_assets.training.registry import champion, load_reference

        version = champion(tracking, spec)
        if version is None:
            raise dg.Failure(description=f"{name}: no champion model yet; materialize {name}/model first",
                             allow_retries=False)
        hours = spec.drift.current_window_hours
        served = served_inputs(home.paths.predictions(name), spec, hours=hours, sample_rows=spec.drift.sample_rows)
        window: dict = {"current_window": "newest_partition"}
        if served.rows:
            partition, current, current_total = SERVED_WINDOW, served.frame, served.rows
            window = {"current_window": "prediction_log", "current_window_hours": hours,
                      "current_window_start": served.start.isoformat(timespec="seconds"),
                      "current_window_end": served.end.isoformat(timespec="seconds"),
                      "served_model_versions": dg.MetadataValue.json(served.model_versions)}
        else:
            with user_failures(f"{name}/drift_report"), warehouse.connect(read_only=True) as con:
                partition = newest_partition(con, spec)
                if partition is None:
                    raise dg.Failure(description=f"{name}: no cleaned data and no served predictions in the last "
                                     f"{hours:g} hour(s) to compare; materialize {name}/cleaned first",
                                     allow_retries=False)
                current, current_total = sample_partition(con, spec, partition, spec.drift.sample_rows)
        # The warehouse is released: the reference download and the report take seconds to minutes.
        reference = load_reference(tracking, version.run_id)
        lineage_partitions = load_lineage(tracking, version.run_id).get("partitions", [])
        trained_on = [p["partition"] for p in lineage_partitions]
        # The population the reference sample was drawn from: the rows the lineage recorded per training
        # partition (None for models whose lineage predates row counts).
        read = [p.get("rows_read") for p in lineage_partitions]
        reference_total = sum(read) if read and None not in read else None
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")
        key = MlopsHome.report_key(name, f"drift_{partition.replace('/', '_')}_{stamp}.html")
        with user_failures(f"{name}/drift_report"):
            storage.sweep_temporaries(MlopsHome.reports_prefix(name))
            with storage.writing(key) as html:
                summary = run_drift_report(spec, current, reference, html)
            with storage.local_copy(storage.uri(key)) as html:
                level = drift_level(spec, summary.drift_share)
                report_url = log_report_to_mlflow(
                    tracking, spec, html, summary,
                    tags={"dagster_run_id": context.run.run_id, "champion_version": str(version.version),
                          "current_partition": partition, "drift_level": level},
                )
        context.log.info(f"{name}: drift share {summary.drift_share:.2f} ({level}), drifted {summary.drifted_columns}")
        # drift_level stays the one rule; only the check's severity knows what the champion has seen. Once it was
        # trained on these rows, drift against its (now mixed) reference is expected and retraining cannot help:
        # a warning to read, not an alarm to resolve.
        settled = partition in trained_on
        severity = dg.AssetCheckSeverity.ERROR if level == "severe" and not settled else dg.AssetCheckSeverity.WARN
        description = None
        if level != "ok":
            description = (f"{len(summary.drifted_columns)} of {len(summary.column_scores)} columns drifted "
                           f"(share {summary.drift_share:.2f} > {level} level "
                           f"{spec.drift.severe_share if level == 'severe' else spec.drift.warn_share:g}): "
                           f"{', '.join(summary.drifted_columns)}")
            if settled:
                description += (f". Champion v{version.version} was already trained on {partition}: drift against "
                                "its training reference, which mixes older data, is expected; new labeled data, not "
                                "another retrain, is what can change it")
        return dg.MaterializeResult(
            metadata={
                "drift_share": summary.drift_share,
                "drift_level": level,
                "severe": level == "severe",
                "warn_share": spec.drift.warn_share,
                "severe_share": spec.drift.severe_share,
                "drifted_columns": dg.MetadataValue.json(summary.drifted_columns),
                "n_drifted_columns": len(summary.drifted_columns),
                "columns": dg.MetadataValue.md(drifted_columns_markdown(summary)),
                **window,
                "current_partition": partition,
                "current_rows": current_total,
                "current_sample_rows": len(current),
                "reference_rows": reference_total,
                "reference_partitions": len(trained_on),
                "reference_sample_rows": len(reference),
                "reference_model_version": str(version.version),
                "champion_trained_on_current": settled,
                "report_url": dg.MetadataValue.url(report_url),
                "report": dg.MetadataValue.path(storage.uri(key)),
                "column_scores": dg.MetadataValue.json(summary.column_scores),
            },
            check_results=[
                dg.AssetCheckResult(
                    check_name=DRIFT_CHECK,
                    passed=level == "ok",
                    severity=severity,
                    metadata={"drift_share": summary.drift_share, "drift_level": level,
                              "champion_trained_on_current": settled,
                              "drifted_columns": dg.MetadataValue.json(summary.drifted_columns)},
                    description=description,
                )
            ],
        )

    return drift_report
