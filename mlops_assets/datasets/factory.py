"""Turn a DatasetSpec into its asset chain: raw -> cleaned -> features -> model -> drift_report -> bento.

Every key is prefixed by the dataset name (`transactions/raw`, ...). Ingest assets are partitioned
(daily, or one partition per dropped file); the model and what follows it look across partitions.
"""


import datetime as dt
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg
from pydantic import Field
from dagster._core.definitions.unresolved_asset_job_definition import UnresolvedAssetJobDefinition

from mlops_assets.cleaning import clean_partition, pandera_schema
from mlops_assets.datasets.spec import SHIPPED_DATA_DIR, DatasetSpec
from mlops_assets.features import build_features_partition
from mlops_assets.ingest.dialect import UnreadableFile
from mlops_assets.ingest.contract import contract_differences, established_contract
from mlops_assets.ingest.landing import first_contract, register_file
from mlops_assets.resources import BentoStore, HomeResource, MlflowTracking, Warehouse
from mlops_assets.warehouse_tables import table

MLFLOW_UI_URL_ENV = "MLOPS_MLFLOW_UI_URL"


@dataclass
class DatasetDefinitions:
    """Everything one dataset contributes to the code location."""

    spec: DatasetSpec
    assets: list[dg.AssetsDefinition]
    partitions_def: dg.PartitionsDefinition
    ingest_job: UnresolvedAssetJobDefinition
    train_job: UnresolvedAssetJobDefinition
    monitor_job: UnresolvedAssetJobDefinition
    schedules: list[dg.ScheduleDefinition] = field(default_factory=list)
    sensors: list[dg.SensorDefinition] = field(default_factory=list)

    def key(self, stage: str) -> dg.AssetKey:
        return dg.AssetKey([self.spec.name, stage])


class TrainingConfig(dg.Config):
    """Run-time training options; the dataset spec holds everything else."""

    train_until: str | None = Field(
        default=None,
        description="Newest partition to train on (a day, or a file name); default: the newest ingested.",
    )


def partitions_for(spec: DatasetSpec) -> dg.PartitionsDefinition:
    if spec.is_daily:
        return dg.DailyPartitionsDefinition(start_date=spec.partitioning.start_date, end_offset=1)
    return dg.DynamicPartitionsDefinition(name=f"{spec.name}_files")


def landing_path(spec: DatasetSpec, home: HomeResource, partition: str) -> Path:
    """Daily data lands as `<dataset>_<YYYY-MM-DD>.csv`; dropped files are their own partition key."""
    if spec.is_daily:
        return home.landing(spec.name) / f"{spec.name}_{partition}.csv"
    return home.landing(spec.name) / partition


def shipped_file(spec: DatasetSpec, name: str) -> Path:
    return SHIPPED_DATA_DIR / spec.name / name


def mlflow_run_url(experiment_id: str, run_id: str) -> str:
    base = os.environ.get(MLFLOW_UI_URL_ENV, "http://127.0.0.1:5000").rstrip("/")
    return f"{base}/#/experiments/{experiment_id}/runs/{run_id}"


def build_dataset(spec: DatasetSpec) -> DatasetDefinitions:
    name = spec.name
    partitions_def = partitions_for(spec)
    key = lambda stage: dg.AssetKey([name, stage])  # noqa: E731
    schema = pandera_schema(spec)
    from dagster_pandera import pandera_schema_to_dagster_type

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.BetaWarning)
        column_schema = pandera_schema_to_dagster_type(schema).metadata["schema"]

    @dg.asset(
        key=key("raw"),
        partitions_def=partitions_def,
        group_name=name,
        kinds={"csv", "duckdb"},
        description=f"The landing CSV of {name} registered as raw data: sniffed dialect, header matched to the spec, "
        "content hash, every version kept; its ingestion contract is checked against the dataset's.",
        check_specs=[
            dg.AssetCheckSpec(
                "matches_established_contract", asset=key("raw"), blocking=True,
                description="the file's delimiter, encoding, header, columns and column types match the dataset's "
                "established contract (pinned in the spec, else learned from its first file)",
            )
        ],
    )
    def raw(context: dg.AssetExecutionContext, home: HomeResource, warehouse: Warehouse) -> dg.MaterializeResult:
        partition = context.partition_key
        path = landing_path(spec, home, partition)
        if not path.exists() and spec.source.kind == "generator":
            from mlops_assets.generator import write_day

            write_day(path.parent, dt.date.fromisoformat(partition), spec.source.rows_per_day, seed=spec.source.seed)
            context.log.info(f"generated {path} ({spec.source.rows_per_day} rows)")
        if not path.exists():
            raise dg.Failure(
                description=f"{name}/raw: no landing file for partition {partition!r}: expected {path}. Drop the CSV there.",
                allow_retries=False,
            )
        archive = home.home.root / "archive" / name if spec.source.kind == "file_drop" else None
        try:
            with warehouse.connect() as con:
                raw_file = register_file(con, spec, path, partition, archive_dir=archive)
                first = first_contract(con, spec, exclude_partition=partition)
        except UnreadableFile as exc:
            raise dg.Failure(description=str(exc), metadata={"file": dg.MetadataValue.path(str(path))}, allow_retries=False) from None
        contract = raw_file.dialect.to_metadata()
        established = established_contract(first[1] if first else None, spec.contract)
        differences = contract_differences(contract, established) if established else []
        against = first[0] if first else "the spec's pinned contract"
        if raw_file.previous_hash:
            kept = f"every version is kept in {archive}" if archive else "the generator can rewrite earlier versions"
            context.log.warning(f"{path.name}: content changed since the last ingest; version {raw_file.version} "
                                f"replaces {raw_file.previous_hash[:19]} ({kept})")
        return dg.MaterializeResult(
            metadata={
                "file": dg.MetadataValue.path(str(path)),
                "content_hash": raw_file.content_hash,
                "size_bytes": raw_file.size_bytes,
                "delimiter": repr(raw_file.dialect.delimiter),
                "encoding": raw_file.dialect.encoding,
                "header": raw_file.dialect.has_header,
                "sample_rows": raw_file.dialect.sample_rows,
                "ingestion_contract": dg.MetadataValue.json(contract),
                "file_version": raw_file.version,
                "previous_hash": raw_file.previous_hash or "",
                **({"archived_copy": dg.MetadataValue.path(str(raw_file.archived_copy))} if raw_file.archived_copy else {}),
                **({"ignored_columns": dg.MetadataValue.json(raw_file.ignored_columns)} if raw_file.ignored_columns else {}),
            },
            data_version=dg.DataVersion(raw_file.content_hash),
            check_results=[
                dg.AssetCheckResult(
                    check_name="matches_established_contract",
                    passed=not differences,
                    metadata={"established_by": against, "differences": dg.MetadataValue.json(differences)},
                    description=f"{path.name} differs from the contract established by {against}: "
                    + "; ".join(differences) + ". Fix the file, or pin the new contract in the dataset spec "
                    "(`contract:`) and re-materialize"
                    if differences else None,
                )
            ],
        )

    @dg.asset(
        key=key("cleaned"),
        deps=[raw],
        partitions_def=partitions_def,
        group_name=name,
        kinds={"duckdb", "pandera"},
        description=f"Typed rows of {name} read from the raw file in one scan that pass the spec's checks "
        "(pandera-validated); every other row is quarantined with file, line, column and reason.",
        metadata={"dagster/column_schema": column_schema.value, "dagster/table_name": f"warehouse.{name}.cleaned"},
        check_specs=[
            dg.AssetCheckSpec("rows_conserved", asset=key("cleaned"), blocking=True,
                              description="rows read = rows cleaned + rows quarantined"),
            dg.AssetCheckSpec("quarantine_share_within_limit", asset=key("cleaned"), blocking=True,
                              description=f"quarantined share <= {spec.quality.max_quarantine_share:.0%}"),
        ],
    )
    def cleaned(context: dg.AssetExecutionContext, warehouse: Warehouse) -> dg.MaterializeResult:
        partition = context.partition_key
        with warehouse.connect() as con:
            try:
                result = clean_partition(con, spec, partition)
            except UnreadableFile as exc:
                raise dg.Failure(description=str(exc), allow_retries=False) from None
            preview = con.execute(
                f"SELECT * EXCLUDE (_ingested_at) FROM {table(spec, 'cleaned')} WHERE _partition = ? LIMIT 5", [partition]
            ).df()
        share = result.rows_quarantined / result.rows_in if result.rows_in else 0.0
        reasons = "\n".join(f"| {why} | {count} |" for why, count in result.quarantine_reasons.items())
        return dg.MaterializeResult(
            metadata={
                "rows_in": result.rows_in,
                "rows_cleaned": result.rows_cleaned,
                "rows_quarantined": result.rows_quarantined,
                "quarantine_share": share,
                "rows_validated_by_pandera": result.rows_validated,
                "quarantine_reasons": dg.MetadataValue.md("| column: reason | rows |\n|---|---|\n" + reasons) if reasons else "none",
                "preview": dg.MetadataValue.md(preview.to_markdown(index=False)),
                "dagster/row_count": result.rows_cleaned,
            },
            check_results=[
                dg.AssetCheckResult(
                    check_name="rows_conserved",
                    passed=result.rows_in == result.rows_cleaned + result.rows_quarantined,
                    metadata={"rows_in": result.rows_in, "rows_cleaned": result.rows_cleaned, "rows_quarantined": result.rows_quarantined},
                ),
                dg.AssetCheckResult(
                    check_name="quarantine_share_within_limit",
                    passed=share <= spec.quality.max_quarantine_share,
                    metadata={"quarantine_share": share, "limit": spec.quality.max_quarantine_share},
                    description=None if share <= spec.quality.max_quarantine_share else
                    f"{result.rows_quarantined} of {result.rows_in} rows quarantined; see table {name}.quarantine",
                ),
            ],
        )

    @dg.asset(
        key=key("features"),
        deps=[cleaned],
        partitions_def=partitions_def,
        group_name=name,
        kinds={"duckdb", "scikitlearn"},
        description=f"Model-ready rows of {name}: the output of the model pipeline's own feature transformer.",
        metadata={"dagster/table_name": f"warehouse.{name}.features"},
    )
    def features(context: dg.AssetExecutionContext, warehouse: Warehouse) -> dg.MaterializeResult:
        with warehouse.connect() as con:
            frame = build_features_partition(con, spec, context.partition_key)
        feature_names = [c for c in frame.columns if c not in {spec.key, spec.time_column, spec.target, "_partition", "_ingested_at"}]
        return dg.MaterializeResult(
            metadata={
                "rows": len(frame),
                "n_features": len(feature_names),
                "features": dg.MetadataValue.json(feature_names),
                "target_mean": float(frame[spec.target].astype(float).mean()),
                "dagster/row_count": len(frame),
            }
        )

    @dg.asset(
        key=key("model"),
        deps=[features],
        group_name=name,
        kinds={"scikitlearn", "mlflow"},
        description=f"{spec.task.title()} pipeline for {name} (features + {spec.training.estimator}), "
        f"registered in MLflow as {spec.registered_model_name}; alias `champion` when it meets the bar.",
        check_specs=[
            dg.AssetCheckSpec("meets_quality_bar", asset=key("model"), blocking=True,
                              description=f"validation metrics meet {dict(spec.training.min_metrics)}"),
        ],
    )
    def model(
        context: dg.AssetExecutionContext, config: TrainingConfig, warehouse: Warehouse, tracking: MlflowTracking
    ) -> dg.MaterializeResult:
        from mlops_assets.training import train_and_register

        with warehouse.connect(read_only=True) as con:
            try:
                trained = train_and_register(
                    con, spec, tracking, until=config.train_until, tags={"dagster_run_id": context.run_id}
                )
            except LookupError as exc:
                raise dg.Failure(description=str(exc), allow_retries=False) from None
        url = mlflow_run_url(trained.experiment_id, trained.run_id)
        return dg.MaterializeResult(
            metadata={
                "registered_model": spec.registered_model_name,
                "version": trained.version,
                "champion": trained.promoted,
                "model_uri": trained.model_uri,
                "mlflow_run_id": trained.run_id,
                "mlflow_run": dg.MetadataValue.url(url),
                "metrics": dg.MetadataValue.json(trained.metrics),
                **{f"metric_{k}": v for k, v in trained.metrics.items()},
                "training_partitions": dg.MetadataValue.json(trained.partitions),
                "rows_train": trained.rows_train,
                "rows_validation": trained.rows_validation,
                "n_features": len(trained.feature_names),
                "seconds": round(trained.seconds, 2),
            },
            check_results=[
                dg.AssetCheckResult(
                    check_name="meets_quality_bar",
                    passed=trained.promoted,
                    metadata={k: v for k, v in trained.metrics.items()},
                    description="; ".join(trained.quality_failures) or None,
                )
            ],
        )

    @dg.asset(
        key=key("drift_report"),
        deps=[cleaned, model],
        group_name=name,
        kinds={"evidently", "html"},
        description=f"Evidently data drift of the newest {name} batch against the champion's training reference.",
    )
    def drift_report(context: dg.AssetExecutionContext, warehouse: Warehouse, tracking: MlflowTracking, home: HomeResource) -> dg.MaterializeResult:
        from mlops_assets.drift import newest_partition, run_drift_report, sample_partition
        from mlops_assets.training import champion, load_reference

        version = champion(tracking, spec)
        if version is None:
            raise dg.Failure(description=f"{name}: no champion model yet; materialize {name}/model first", allow_retries=False)
        with warehouse.connect(read_only=True) as con:
            partition = newest_partition(con, spec)
            if partition is None:
                raise dg.Failure(description=f"{name}: no cleaned data to compare; materialize {name}/cleaned first")
            current, current_total = sample_partition(con, spec, partition, spec.drift.sample_rows)
        reference = load_reference(tracking, version.run_id)
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")
        html = home.reports(name) / f"drift_{partition.replace('/', '_')}_{stamp}.html"
        summary = run_drift_report(spec, current, reference, html)
        severe = summary.drift_share >= spec.drift.threshold
        context.log.info(f"{name}: drift share {summary.drift_share:.2f} ({'severe' if severe else 'ok'}), drifted {summary.drifted_columns}")
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
                "report": dg.MetadataValue.path(str(html)),
                "column_scores": dg.MetadataValue.json(summary.column_scores),
            }
        )

    @dg.asset(
        key=key("bento"),
        deps=[model],
        group_name=name,
        kinds={"bentoml"},
        description=f"The {name} champion in the BentoML model store, and the Bento built from bento/.",
    )
    def bento(context: dg.AssetExecutionContext, tracking: MlflowTracking, bento_store: BentoStore) -> dg.MaterializeResult:
        from mlops_assets.packaging import build_bento, import_champion
        from mlops_assets.training import champion

        version = champion(tracking, spec)
        if version is None:
            raise dg.Failure(description=f"{name}: no champion model to package; materialize {name}/model first", allow_retries=False)
        bentoml = bento_store.bentoml()

        def load_pipeline():
            import mlflow.sklearn

            tracking.setup()
            return mlflow.sklearn.load_model(f"models:/{spec.registered_model_name}/{version.version}")

        threshold = tracking.client().get_run(version.run_id).data.metrics.get("decision_threshold")
        model_tag, reused = import_champion(bentoml, spec, version, load_pipeline, threshold)
        bento_tag, bento_path = build_bento(bentoml, spec)
        context.log.info(f"{name}: bento {bento_tag} serves {model_tag} (MLflow version {version.version})")
        return dg.MaterializeResult(
            metadata={
                "bento_model": model_tag,
                "bento": bento_tag,
                "bento_path": dg.MetadataValue.path(bento_path),
                "mlflow_version": str(version.version),
                "reused_model": reused,
                "serve": f"cd bento && MLOPS_DATASET={name} bentoml serve",
            }
        )

    assets = [raw, cleaned, features, model, drift_report, bento]
    ingest_job = dg.define_asset_job(
        f"{name}_ingest", selection=dg.AssetSelection.assets(raw, cleaned, features), partitions_def=partitions_def,
        description=f"Land, clean and featurize one {name} partition.",
    )
    train_job = dg.define_asset_job(
        f"{name}_train", selection=dg.AssetSelection.assets(model, bento),
        description=f"Train, register and package the {name} model.",
    )
    monitor_job = dg.define_asset_job(
        f"{name}_monitor", selection=dg.AssetSelection.assets(drift_report),
        description=f"Compare the newest {name} batch with the champion's training data.",
    )
    return DatasetDefinitions(spec, assets, partitions_def, ingest_job, train_job, monitor_job)
