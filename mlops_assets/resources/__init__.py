"""Typed Dagster resources: the warehouse (DuckLake), files (disk or S3), tracking (MLflow), the model store
(BentoML), paths. Where a profile changes the implementation, an abstract base names what asset code may use."""

from mlops_assets.resources.bento_store import BentoStore
from mlops_assets.resources.home import HomeResource
from mlops_assets.resources.storage import FileStorage, LocalStorage, S3Storage
from mlops_assets.resources.tracking import MlflowTracking, S3MlflowTracking
from mlops_assets.resources.warehouse import CloudWarehouse, LocalWarehouse, Warehouse

__all__ = ["BentoStore", "CloudWarehouse", "FileStorage", "HomeResource", "LocalStorage", "LocalWarehouse",
           "MlflowTracking", "S3MlflowTracking", "S3Storage", "Warehouse"]
