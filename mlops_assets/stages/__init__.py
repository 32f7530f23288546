"""The stages of every dataset's asset chain, one module each; names and asset keys are defined here only.

    raw -> cleaned -> features -> model -> drift_report <- prediction_log <- (the served Bento)
                                      \\-> performance (per partition), bento
"""

from enum import StrEnum

import dagster as dg


class Stage(StrEnum):
    RAW = "raw"
    CLEANED = "cleaned"
    FEATURES = "features"
    MODEL = "model"
    DRIFT_REPORT = "drift_report"
    PERFORMANCE = "performance"
    BENTO = "bento"
    PREDICTION_LOG = "prediction_log"


INGEST_STAGES = (Stage.RAW, Stage.CLEANED, Stage.FEATURES, Stage.PERFORMANCE)
RETRAIN_STAGES = (Stage.MODEL, Stage.DRIFT_REPORT, Stage.BENTO)


def metadata_values(materialization: dg.AssetMaterialization | None) -> dict:
    """A materialization's metadata as plain values (what a sensor, the CLI or a benchmark reads back)."""
    return {k: v.value for k, v in materialization.metadata.items()} if materialization else {}


def asset_key(dataset: str, stage: Stage | str) -> dg.AssetKey:
    """`<dataset>/<stage>`: every asset key of the platform is made here."""
    return dg.AssetKey([dataset, str(Stage(stage))])
