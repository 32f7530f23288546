"""`<dataset>/model`: a scikit-learn pipeline trained on the newest window, tracked and registered in MLflow."""


import dagster as dg
from pydantic import Field

from mlops_assets.datasets.spec import DatasetSpec
from mlops_assets.resources import MlflowTracking, Warehouse
from mlops_assets.stages import Stage, asset_key

QUALITY_CHECK = "meets_quality_bar"


class TrainingConfig(dg.Config):
    """Run-time training options; the dataset spec holds everything else."""

    train_until: str | None = Field(
        default=None,
        description="Newest partition to train on (a day, or a file name); default: the newest ingested.",
    )


def build_model_asset(spec: DatasetSpec) -> dg.AssetsDefinition:
    key = asset_key(spec.name, Stage.MODEL)

    @dg.asset(
        key=key,
        deps=[asset_key(spec.name, Stage.FEATURES)],
        group_name=spec.name,
        kinds={"scikitlearn", "mlflow"},
        description=f"{spec.task.title()} pipeline for {spec.name} (features + {spec.training.estimator}), "
        f"registered in MLflow as {spec.registered_model_name}; alias `champion` when it meets the bar.",
        check_specs=[
            dg.AssetCheckSpec(QUALITY_CHECK, asset=key, blocking=True,
                              description=f"validation metrics meet {dict(spec.training.min_metrics)}"),
        ],
    )
    def model(
        context: dg.AssetExecutionContext, config: TrainingConfig, warehouse: Warehouse, tracking: MlflowTracking
    ) -> dg.MaterializeResult:
        from mlops_assets.training.train import train_and_register

        with warehouse.connect(read_only=True) as con:
            try:
                trained = train_and_register(
                    con, spec, tracking, until=config.train_until, tags={"dagster_run_id": context.run.run_id}
                )
            except LookupError as exc:
                raise dg.Failure(description=str(exc), allow_retries=False) from None
        return dg.MaterializeResult(
            metadata={
                "registered_model": spec.registered_model_name,
                "version": trained.version,
                "champion": trained.promoted,
                "model_uri": trained.model_uri,
                "mlflow_run_id": trained.run_id,
                "mlflow_run": dg.MetadataValue.url(tracking.run_url(trained.experiment_id, trained.run_id)),
                "metrics": dg.MetadataValue.json(trained.metrics),
                **{f"metric_{k}": v for k, v in trained.metrics.items()},
                "training_partitions": dg.MetadataValue.json(trained.partitions),
                "training_window": f"{trained.partitions[0]} .. {trained.partitions[-1]} ({len(trained.partitions)} partitions)",
                "training_rows_per_partition": dg.MetadataValue.json(trained.partition_rows),
                "rows_train": trained.rows_train,
                "rows_validation": trained.rows_validation,
                "n_features": len(trained.feature_names),
                "seconds": round(trained.seconds, 2),
            },
            check_results=[
                dg.AssetCheckResult(
                    check_name=QUALITY_CHECK,
                    passed=trained.promoted,
                    metadata=dict(trained.metrics),
                    description="; ".join(trained.quality_failures) or None,
                )
            ],
        )

    return model
