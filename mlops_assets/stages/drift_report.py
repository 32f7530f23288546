"""`<dataset>/drift_report`: Evidently data drift of what is being scored against the champion's training reference.

The current window is the last hour of served inputs (the prediction log) when the service answered
any; otherwise the newest ingested batch.
"""


import datetime as dt

import dagster as dg

from mlops_assets.datasets.spec import DatasetSpec
from mlops_assets.resources import HomeResource, MlflowTracking, Warehouse
from mlops_assets.stages import Stage, asset_key

# `current_partition` of a report whose current window is the last hour of served predictions.
SERVED_WINDOW = "served_last_hour"


def build_drift_report_asset(spec: DatasetSpec) -> dg.AssetsDefinition:
    name = spec.name

    @dg.asset(
        key=asset_key(name, Stage.DRIFT_REPORT),
        deps=[asset_key(name, Stage.CLEANED), asset_key(name, Stage.MODEL), asset_key(name, Stage.PREDICTION_LOG)],
        group_name=name,
        kinds={"evidently", "html"},
        description=f"Evidently data drift of the last hour of served {name} inputs (else the newest batch) "
        "against the champion's training reference.",
    )
    def drift_report(
        context: dg.AssetExecutionContext, warehouse: Warehouse, tracking: MlflowTracking, home: HomeResource
    ) -> dg.MaterializeResult:
        from mlops_assets.monitoring.drift import is_severe, newest_partition, run_drift_report, sample_partition
        from mlops_assets.monitoring.prediction_log import served_inputs
        from mlops_assets.training.registry import champion, load_reference

        version = champion(tracking, spec)
        if version is None:
            raise dg.Failure(description=f"{name}: no champion model yet; materialize {name}/model first",
                             allow_retries=False)
        served = served_inputs(home.paths.predictions(name), spec, hours=1, sample_rows=spec.drift.sample_rows)
        window: dict = {}
        if served.rows:
            partition, current, current_total = SERVED_WINDOW, served.frame, served.rows
            window = {"current_window_start": served.start.isoformat(timespec="seconds"),
                      "current_window_end": served.end.isoformat(timespec="seconds"),
                      "served_model_versions": dg.MetadataValue.json(served.model_versions)}
        else:
            with warehouse.connect(read_only=True) as con:
                partition = newest_partition(con, spec)
                if partition is None:
                    raise dg.Failure(description=f"{name}: no cleaned data and no served predictions in the last "
                                     f"hour to compare; materialize {name}/cleaned first", allow_retries=False)
                current, current_total = sample_partition(con, spec, partition, spec.drift.sample_rows)
        reference = load_reference(tracking, version.run_id)
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")
        html = home.paths.reports(name, create=True) / f"drift_{partition.replace('/', '_')}_{stamp}.html"
        summary = run_drift_report(spec, current, reference, html)
        severe = is_severe(spec, summary.drift_share)
        context.log.info(f"{name}: drift share {summary.drift_share:.2f} ({'severe' if severe else 'ok'}), "
                         f"drifted {summary.drifted_columns}")
        return dg.MaterializeResult(
            metadata={
                "drift_share": summary.drift_share,
                "drifted_columns": dg.MetadataValue.json(summary.drifted_columns),
                "n_drifted_columns": len(summary.drifted_columns),
                "dataset_drift": summary.dataset_drift,
                "severe": severe,
                "threshold": spec.drift.threshold,
                "current_window": "prediction_log" if served.rows else "newest_partition",
                "current_partition": partition,
                **window,
                "current_rows": current_total,
                "current_sample_rows": len(current),
                "reference_sample_rows": len(reference),
                "reference_model_version": str(version.version),
                "report": dg.MetadataValue.path(str(html)),
                "column_scores": dg.MetadataValue.json(summary.column_scores),
            }
        )

    return drift_report
