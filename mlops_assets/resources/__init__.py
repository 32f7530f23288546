"""Typed Dagster resources: the warehouse (DuckDB), tracking (MLflow), the model store (BentoML), paths."""

from mlops_assets.resources.bento_store import BentoStore
from mlops_assets.resources.home import HomeResource
from mlops_assets.resources.tracking import MlflowTracking
from mlops_assets.resources.warehouse import Warehouse

__all__ = ["BentoStore", "HomeResource", "MlflowTracking", "Warehouse"]
