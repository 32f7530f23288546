"""MLflow tracking + registry as a typed resource.

We use our own ConfigurableResource rather than dagster-mlflow's legacy `mlflow_tracking`: its
run_config overrides are ignored once configured and it can end the MLflow run early with parallel
branches. One MLflow run per model materialization, tagged with the Dagster run id, is simpler.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import dagster as dg

if TYPE_CHECKING:
    from mlflow import MlflowClient


class MlflowTracking(dg.ConfigurableResource):
    """Tracking URI (SQLite locally, Postgres in the cloud) and where experiment artifacts go."""

    tracking_uri: str
    artifact_root: str
    ui_url: str = "http://127.0.0.1:5000"

    def artifact_location(self) -> str:
        """Where new experiments keep their artifacts (models, references, lineage)."""
        return self.artifact_root

    def run_url(self, experiment_id: str, run_id: str) -> str:
        """Link to a run in the MLflow UI (shown on the asset's metadata)."""
        return f"{self.ui_url.rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}"

    def has_store(self) -> bool:
        """False while a local SQLite store does not exist yet: nothing has been tracked, so there is no
        champion, and a reader must not create the store (concurrent creations race in MLflow's migrations)."""
        prefix = "sqlite:///"
        return not self.tracking_uri.startswith(prefix) or Path(self.tracking_uri[len(prefix):]).exists()

    def setup(self) -> None:
        """Point the mlflow module at our store (it keeps the URI in process-global state)."""
        import mlflow

        mlflow.set_tracking_uri(self.tracking_uri)
        mlflow.set_registry_uri(self.tracking_uri)

    def client(self) -> MlflowClient:
        from mlflow import MlflowClient

        self.setup()
        return MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri)

    def experiment_id(self, dataset: str) -> str:
        """The dataset's experiment, created on first use with artifacts under our artifact root."""
        client = self.client()
        name = f"mlops_assets/{dataset}"
        experiment = client.get_experiment_by_name(name)
        if experiment is not None:
            return experiment.experiment_id
        location = self.artifact_location().rstrip("/") + f"/{dataset}"
        if "://" not in location:
            Path(location).mkdir(parents=True, exist_ok=True)
            location = Path(location).resolve().as_uri()
        return client.create_experiment(name, artifact_location=location)


class S3MlflowTracking(MlflowTracking):
    """Tracking in a database server (PostgreSQL), artifacts in `s3://<bucket>/<prefix>/mlflow` (boto3 finds the
    credentials, and AWS_ENDPOINT_URL for a local S3)."""

    artifact_root: str = ""
    bucket: str
    prefix: str = ""

    def artifact_location(self) -> str:
        return "s3://" + "/".join(p for p in (self.bucket, self.prefix.strip("/"), "mlflow") if p)
