"""`<dataset>/features`: model-ready rows, made by the registered pipeline's own feature transformer."""


import dagster as dg

from mlops_assets.datasets.spec import DatasetSpec
from mlops_assets.resources import Warehouse
from mlops_assets.stages import Stage, asset_key
from mlops_assets.stages.failures import user_failures

# Features follow cleaned, partition by partition, whoever materialized cleaned (ingest job, UI, backfill):
# a training window never holds cleaned partitions whose features were not rebuilt. Not after a failed
# blocking check of cleaned, nor while cleaned is still running.
FOLLOWS_CLEANED = (
    dg.AutomationCondition.any_deps_updated().since_last_handled()
    & ~dg.AutomationCondition.any_deps_missing()
    & ~dg.AutomationCondition.any_deps_in_progress()
    & ~dg.AutomationCondition.in_progress()
    & dg.AutomationCondition.all_deps_blocking_checks_passed()
).with_label("follows cleaned")


def build_features_asset(spec: DatasetSpec, partitions_def: dg.PartitionsDefinition) -> dg.AssetsDefinition:
    @dg.asset(
        key=asset_key(spec.name, Stage.FEATURES),
        deps=[asset_key(spec.name, Stage.CLEANED)],
        partitions_def=partitions_def,
        group_name=spec.name,
        kinds={"duckdb", "scikitlearn"},
        description=f"Model-ready rows of {spec.name}: the output of the model pipeline's own feature transformer.",
        metadata={"dagster/table_name": f"warehouse.{spec.name}.features"},
        automation_condition=FOLLOWS_CLEANED,
    )
    def features(context: dg.AssetExecutionContext, warehouse: Warehouse) -> dg.MaterializeResult:
        from mlops_assets.training.features import build_features_partition, feature_names

        with user_failures(f"{spec.name}/features"), warehouse.connect() as con:
            frame = build_features_partition(con, spec, context.partition_key)
        names = feature_names(spec, frame.columns)
        return dg.MaterializeResult(
            metadata={
                "rows": len(frame),
                "n_features": len(names),
                "features": dg.MetadataValue.json(names),
                "target_mean": float(frame[spec.target].astype(float).mean()),
                "dagster/row_count": len(frame),
            }
        )

    return features
