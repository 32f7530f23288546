"""The MLflow registry side of a model: which version is champion or challenger, and what it carries.

Aliases, not stages (deprecated in MLflow 3). Aliases are read from the registered model itself:
`search_model_versions()` returns versions with empty `aliases` in MLflow 3.17.
"""

from __future__ import annotations

import tempfile

import pandas as pd

from mlops_assets.datasets.spec import DatasetSpec
from mlops_assets.resources.tracking import MlflowTracking

CHAMPION_ALIAS = "champion"
CHALLENGER_ALIAS = "challenger"
PROMOTION_TAG = "mlops.promotion"  # on a model version: promoted | rejected | manual (or why none was made)
REFERENCE_ARTIFACT = "reference/reference.parquet"


def _missing(exc: Exception) -> bool:
    return getattr(exc, "error_code", None) == "RESOURCE_DOES_NOT_EXIST"


def aliases(tracking: MlflowTracking, spec: DatasetSpec) -> dict[str, str]:
    """{alias: version} of the dataset's registered model ({} before the first registration)."""
    from mlflow.exceptions import MlflowException

    try:
        registered = tracking.client().get_registered_model(spec.registered_model_name)
    except MlflowException as exc:
        if _missing(exc):
            return {}
        raise
    return {alias: str(version) for alias, version in registered.aliases.items()}


def aliased_version(tracking: MlflowTracking, spec: DatasetSpec, alias: str):
    """The ModelVersion `alias` points at, or None when the alias (or the model) does not exist yet.

    Only "does not exist" means None: any other registry error propagates, so an unreachable store is
    never mistaken for "no champion yet" (which would promote anything).
    """
    version = aliases(tracking, spec).get(alias)
    return None if version is None else tracking.client().get_model_version(spec.registered_model_name, version)


def champion(tracking: MlflowTracking, spec: DatasetSpec):
    """The champion ModelVersion, or None when no version has been promoted yet."""
    if not tracking.has_store():
        return None
    return aliased_version(tracking, spec, CHAMPION_ALIAS)


def model_version(tracking: MlflowTracking, spec: DatasetSpec, version: str):
    """ModelVersion `version` of the dataset's registered model, or None when there is no such version."""
    from mlflow.exceptions import MlflowException

    try:
        return tracking.client().get_model_version(spec.registered_model_name, str(version))
    except MlflowException as exc:
        if _missing(exc):
            return None
        raise


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
