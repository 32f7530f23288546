"""The MLflow registry side of a model: which version is champion, and what it carries."""

from __future__ import annotations

import tempfile

import pandas as pd

from mlops_assets.datasets.spec import DatasetSpec
from mlops_assets.resources.tracking import MlflowTracking

CHAMPION_ALIAS = "champion"
REFERENCE_ARTIFACT = "reference/reference.parquet"


def champion(tracking: MlflowTracking, spec: DatasetSpec):
    """The champion ModelVersion, or None when no version has been promoted yet."""
    from mlflow.exceptions import MlflowException

    try:
        return tracking.client().get_model_version_by_alias(spec.registered_model_name, CHAMPION_ALIAS)
    except MlflowException:
        return None


def load_reference(tracking: MlflowTracking, run_id: str) -> pd.DataFrame:
    """The champion's training reference sample, downloaded from its MLflow run."""
    import mlflow.artifacts

    tracking.setup()
    with tempfile.TemporaryDirectory() as tmp:
        local = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=REFERENCE_ARTIFACT, dst_path=tmp)
        return pd.read_parquet(local)


def load_champion_pipeline(tracking: MlflowTracking, spec: DatasetSpec, version):
    """The registered scikit-learn pipeline of `version` (a ModelVersion)."""
    import mlflow.sklearn

    tracking.setup()
    return mlflow.sklearn.load_model(f"models:/{spec.registered_model_name}/{version.version}")
