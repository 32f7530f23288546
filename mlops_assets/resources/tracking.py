"""MLflow tracking + registry as a typed resource.

We use our own ConfigurableResource rather than dagster-mlflow's legacy `mlflow_tracking`: its
run_config overrides are ignored once configured and it can end the MLflow run early with parallel
branches. One MLflow run per model materialization, tagged with the Dagster run id, is simpler.
"""

from __future__ import annotations

import os
import random
import time
from pathlib import Path
from typing import TYPE_CHECKING

import dagster as dg

if TYPE_CHECKING:
    from mlflow import MlflowClient

# (process, tracking URI) pairs whose store answered once: its tables exist from then on.
_STORES_READY: set[tuple[int, str]] = set()
# What MLflow's first contact with a fresh store raises when another process creates the tables at the
# same moment (its migrations are not safe to run concurrently).
_CREATION_RACE = ("already exists", "duplicate key", "UniqueViolation", "database is locked", "alembic_version")


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
        key = (os.getpid(), self.tracking_uri)
        if key in _STORES_READY:
            return MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri)
        # First contact in this process: MLflow creates a fresh store's tables (client construction opens the
        # tracking store, the first registry call the registry store), and two processes doing that at once
        # collide (many runs starting together on a new deployment). Retry until the winner has finished.
        attempts = 8
        for attempt in range(attempts):
            try:
                client = MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri)
                client.search_registered_models(max_results=1)
                break
            except Exception as exc:
                if attempt == attempts - 1 or not any(m in str(exc) for m in _CREATION_RACE):
                    raise
                time.sleep(0.3 * (attempt + 1) + random.random() * 0.3)
        _STORES_READY.add(key)
        return client

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
