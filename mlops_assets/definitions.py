"""The code location: one Definitions object with every dataset's assets, jobs and automation.

Resources are chosen per deployment profile (`MLOPS_PROFILE`, default `local`). Heavy libraries
(mlflow, evidently, bentoml) are imported inside the assets that use them, so loading stays fast.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

import dagster as dg

from mlops_assets.automation import (
    daily_ingest_schedules,
    features_follow_cleaned_sensor,
    hourly_monitoring_schedule,
    landing_sensors,
    reconcile_dead_runs_sensor,
    retrain_on_drift_sensor,
    weekly_retrain_schedule,
)
from mlops_assets.datasets.factory import DatasetDefinitions, build_dataset
from mlops_assets.datasets.spec import DatasetSpec, load_specs
from mlops_assets.home import MlopsHome, current_profile
from mlops_assets.resources import (
    BentoStore,
    CloudWarehouse,
    HomeResource,
    LocalStorage,
    LocalWarehouse,
    MlflowTracking,
    S3MlflowTracking,
    S3Storage,
)

MLFLOW_UI_URL_ENV = "MLOPS_MLFLOW_UI_URL"


def local_resources(home: MlopsHome) -> dict[str, dg.ConfigurableResource]:
    """Everything on this machine under MLOPS_HOME: a DuckLake with a SQLite catalog and Parquet files in a
    folder, files on disk, MLflow on SQLite, the local BentoML store."""
    return {
        "home": HomeResource(root=str(home.root)),
        "storage": LocalStorage(root=str(home.root)),
        "warehouse": LocalWarehouse(catalog_path=str(home.lake_catalog), data_path=str(home.lake_data),
                                    temp_directory=str(home.scratch / "duckdb")),
        "tracking": MlflowTracking(
            tracking_uri=home.tracking_uri,
            artifact_root=str(home.artifact_root),
            ui_url=os.environ.get(MLFLOW_UI_URL_ENV, "http://127.0.0.1:5000"),
        ),
        "bento_store": BentoStore(home=str(home.bentoml_home)),
    }


def aws_resources(home: MlopsHome) -> dict[str, dg.ConfigurableResource]:
    """The same assets on AWS: landing zone, archive and reports in S3, a DuckLake with its catalog in
    PostgreSQL and its data in S3, MLflow tracking in PostgreSQL with artifacts in S3. Every setting comes
    from the environment (names in the README); MLOPS_HOME is only local scratch space and the BentoML store.
    AWS_ENDPOINT_URL (optional) points S3 at another endpoint, e.g. a local S3 for tests."""
    from dagster_aws.s3 import S3Resource

    endpoint = {"endpoint_url": dg.EnvVar("AWS_ENDPOINT_URL")} if os.environ.get("AWS_ENDPOINT_URL") else {}
    s3 = S3Resource(region_name=dg.EnvVar("AWS_REGION"), **endpoint)
    bucket, prefix = dg.EnvVar("MLOPS_S3_BUCKET"), dg.EnvVar("MLOPS_S3_PREFIX")
    return {
        "home": HomeResource(root=str(home.root)),
        "storage": S3Storage(s3=s3, bucket=bucket, prefix=prefix, scratch_dir=str(home.scratch / "s3")),
        "warehouse": CloudWarehouse(
            pg_host=dg.EnvVar("MLOPS_PG_HOST"),
            pg_port=dg.EnvVar.int("MLOPS_PG_PORT"),
            pg_db=dg.EnvVar("MLOPS_PG_DB"),
            pg_user=dg.EnvVar("MLOPS_PG_USER"),
            pg_password=dg.EnvVar("MLOPS_PG_PASSWORD"),
            data_path=dg.EnvVar("MLOPS_LAKE_DATA_PATH"),
            s3=s3,
            temp_directory=str(home.scratch / "duckdb"),
        ),
        "tracking": S3MlflowTracking(
            tracking_uri=dg.EnvVar("MLFLOW_TRACKING_URI"),
            bucket=bucket,
            prefix=prefix,
            ui_url=os.environ.get(MLFLOW_UI_URL_ENV, "http://127.0.0.1:5000"),
        ),
        "bento_store": BentoStore(home=str(home.bentoml_home)),
    }


PROFILES = {"local": local_resources, "aws": aws_resources}


def resources_for(profile: str, home: MlopsHome) -> dict[str, dg.ConfigurableResource]:
    if profile not in PROFILES:
        raise ValueError(f"MLOPS_PROFILE={profile!r} is not one of {sorted(PROFILES)}")
    return PROFILES[profile](home)


@contextlib.contextmanager
def profile_resources(home: MlopsHome) -> Iterator[Any]:
    """The current profile's resources, initialized as a run would get them, for code outside a run (the CLI)."""
    with dg.build_resources(resources_for(current_profile(), home)) as resources:
        yield resources


def build_datasets(specs: dict[str, DatasetSpec] | None = None) -> list[DatasetDefinitions]:
    return [build_dataset(spec) for spec in (specs or load_specs()).values()]


def build_definitions(home: MlopsHome | None = None, specs: dict[str, DatasetSpec] | None = None) -> dg.Definitions:
    home = home or MlopsHome.from_env()
    datasets = build_datasets(specs)
    return dg.Definitions(
        assets=[a for d in datasets for a in d.assets],
        jobs=[j for d in datasets for j in d.jobs.values()],
        schedules=[
            *daily_ingest_schedules(datasets),
            hourly_monitoring_schedule(datasets),
            weekly_retrain_schedule(datasets),
        ],
        sensors=[
            retrain_on_drift_sensor(datasets),
            *landing_sensors(datasets),
            features_follow_cleaned_sensor(datasets),
            reconcile_dead_runs_sensor(),
        ],
        resources=resources_for(current_profile(), home),
    )


defs = build_definitions()
