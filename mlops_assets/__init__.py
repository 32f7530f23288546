"""mlops_assets: an MLOps platform built on Dagster software-defined assets."""
