"""Training without Dagster: the feature transformer, fitting and evaluation, the MLflow registry."""
