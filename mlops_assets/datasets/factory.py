"""A DatasetSpec -> its asset chain and jobs, composed from one builder per stage (see `stages/`).

Every key is prefixed by the dataset name (`transactions/raw`, ...). Ingest assets are partitioned
(daily, or one partition per dropped file); the model and what follows it look across partitions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import dagster as dg

from mlops_assets.datasets.spec import DatasetSpec
from mlops_assets.stages import INGEST_STAGES, Stage, asset_key
from mlops_assets.stages.bento import build_bento_asset
from mlops_assets.stages.cleaned import build_cleaned_asset
from mlops_assets.stages.drift_report import build_drift_report_asset
from mlops_assets.stages.features import build_features_asset
from mlops_assets.stages.model import build_model_asset
from mlops_assets.stages.performance import build_performance_asset
from mlops_assets.stages.prediction_log import build_prediction_log_asset
from mlops_assets.stages.raw import build_raw_asset

# What `dg.define_asset_job` returns; Dagster does not export that class publicly.
AssetJob = Any


@dataclass(frozen=True)
class DatasetDefinitions:
    """Everything one dataset contributes to the code location (automation is built from these)."""

    spec: DatasetSpec
    assets: list[dg.AssetsDefinition]
    partitions_def: dg.PartitionsDefinition
    jobs: dict[str, AssetJob]

    def key(self, stage: Stage | str) -> dg.AssetKey:
        return asset_key(self.spec.name, stage)

    @property
    def ingest_job(self) -> AssetJob:
        return self.jobs["ingest"]


def job_name(dataset: str, verb: str) -> str:
    """`<dataset>_ingest`, `<dataset>_train`, `<dataset>_monitor`."""
    return f"{dataset}_{verb}"


def partitions_for(spec: DatasetSpec) -> dg.PartitionsDefinition:
    if spec.is_daily:
        return dg.DailyPartitionsDefinition(start_date=spec.partitioning.start_date, end_offset=1)
    return dg.DynamicPartitionsDefinition(name=f"{spec.name}_files")


def build_dataset(spec: DatasetSpec) -> DatasetDefinitions:
    partitions_def = partitions_for(spec)
    assets = [
        build_raw_asset(spec, partitions_def),
        build_cleaned_asset(spec, partitions_def),
        build_features_asset(spec, partitions_def),
        build_model_asset(spec),
        build_drift_report_asset(spec),
        build_performance_asset(spec, partitions_def),
        build_bento_asset(spec),
        build_prediction_log_asset(spec),
    ]
    keys = lambda *stages: [asset_key(spec.name, s) for s in stages]  # noqa: E731
    jobs = {
        "ingest": dg.define_asset_job(
            job_name(spec.name, "ingest"), selection=keys(*INGEST_STAGES),
            description=f"Land, clean and featurize one {spec.name} partition.",
        ),
        "train": dg.define_asset_job(
            job_name(spec.name, "train"), selection=keys(Stage.MODEL, Stage.BENTO),
            description=f"Train, register and package the {spec.name} model.",
        ),
        "monitor": dg.define_asset_job(
            job_name(spec.name, "monitor"), selection=keys(Stage.PREDICTION_LOG, Stage.DRIFT_REPORT),
            description=f"Read what the {spec.name} service served, and compare its last hour (else the newest "
            "batch) with the champion's training data.",
        ),
    }
    return DatasetDefinitions(spec, assets, partitions_def, jobs)
