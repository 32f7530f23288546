"""`<dataset>/drift_report`: Evidently data drift of the newest batch against the champion's training reference."""


import datetime as dt

import dagster as dg

from mlops_assets.datasets.spec import DatasetSpec
from mlops_assets.home import MlopsHome
from mlops_assets.resources import FileStorage, MlflowTracking, Warehouse
from mlops_assets.stages import Stage, asset_key
from mlops_assets.stages.failures import user_failures


def build_drift_report_asset(spec: DatasetSpec) -> dg.AssetsDefinition:
    name = spec.name

    @dg.asset(
        key=asset_key(name, Stage.DRIFT_REPORT),
        deps=[asset_key(name, Stage.CLEANED), asset_key(name, Stage.MODEL)],
        group_name=name,
        kinds={"evidently", "html"},
        description=f"Evidently data drift of the newest {name} batch against the champion's training reference.",
    )
    def drift_report(
        context: dg.AssetExecutionContext, warehouse: Warehouse, tracking: MlflowTracking, storage: FileStorage
    ) -> dg.MaterializeResult:
        from mlops_assets.monitoring.drift import is_severe, newest_partition, run_drift_report, sample_partition
        from mlops_assets.training.registry import champion, load_reference

        version = champion(tracking, spec)
        if version is None:
            raise dg.Failure(description=f"{name}: no champion model yet; materialize {name}/model first",
                             allow_retries=False)
        with warehouse.connect(read_only=True) as con:
            partition = newest_partition(con, spec)
            if partition is None:
                raise dg.Failure(description=f"{name}: no cleaned data to compare; materialize {name}/cleaned first",
                                 allow_retries=False)
            current, current_total = sample_partition(con, spec, partition, spec.drift.sample_rows)
        reference = load_reference(tracking, version.run_id)
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")
        key = MlopsHome.report_key(name, f"drift_{partition.replace('/', '_')}_{stamp}.html")
        with user_failures(f"{name}/drift_report"):
            storage.sweep_temporaries(MlopsHome.reports_prefix(name))
            with storage.writing(key) as html:
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
                "current_partition": partition,
                "current_rows": current_total,
                "current_sample_rows": len(current),
                "reference_sample_rows": len(reference),
                "reference_model_version": str(version.version),
                "report": dg.MetadataValue.path(storage.uri(key)),
                "column_scores": dg.MetadataValue.json(summary.column_scores),
            }
        )

    return drift_report
