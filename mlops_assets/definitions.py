"""The code location: one Definitions object with every dataset's assets, jobs and automation.

Resources are chosen per deployment profile (`MLOPS_PROFILE`, default `local`). Heavy libraries
(mlflow, evidently, bentoml) are imported inside the assets that use them, so loading stays fast.
"""

from __future__ import annotations

import os

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
from mlops_assets.home import MlopsHome
from mlops_assets.resources import BentoStore, HomeResource, MlflowTracking, Warehouse

MLFLOW_UI_URL_ENV = "MLOPS_MLFLOW_UI_URL"


def local_resources(home: MlopsHome) -> dict[str, dg.ConfigurableResource]:
    """Everything on this machine under MLOPS_HOME: DuckDB file, MLflow on SQLite, local BentoML store."""
    return {
        "home": HomeResource(root=str(home.root)),
        "warehouse": Warehouse(path=str(home.warehouse)),
        "tracking": MlflowTracking(
            tracking_uri=home.tracking_uri,
            artifact_root=str(home.artifact_root),
            ui_url=os.environ.get(MLFLOW_UI_URL_ENV, "http://127.0.0.1:5000"),
        ),
        "bento_store": BentoStore(home=str(home.bentoml_home)),
    }


PROFILES = {"local": local_resources}


def resources_for(profile: str, home: MlopsHome) -> dict[str, dg.ConfigurableResource]:
    if profile not in PROFILES:
        raise ValueError(f"MLOPS_PROFILE={profile!r} is not one of {sorted(PROFILES)}")
    return PROFILES[profile](home)


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
        resources=resources_for(os.environ.get("MLOPS_PROFILE", "local"), home),
    )


defs = build_definitions()
