"""`features` -> a fitted scikit-learn pipeline, tracked and registered in MLflow.

The registered pipeline is [feature transformer, estimator]: it predicts from cleaned columns, needs
no project code to load, and carries its training reference sample (for drift) as a run artifact.
"""

from __future__ import annotations

import importlib.metadata
import logging
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline

from mlops_assets.datasets.spec import DatasetSpec
from mlops_assets.resources.tracking import MlflowTracking
from mlops_assets.tables import partitions_in_order, q, table
from mlops_assets.training.features import feature_names, fitted_feature_transformer
from mlops_assets.training.lineage import build_lineage, log_lineage
from mlops_assets.training.registry import CHAMPION_ALIAS, REFERENCE_ARTIFACT

log = logging.getLogger(__name__)

LOWER_IS_BETTER = {"rmse", "mae", "log_loss"}
_RUNTIME_PACKAGES = ("scikit-learn", "skops", "numpy", "pandas", "scipy")


def build_estimator(spec: DatasetSpec):
    from sklearn.ensemble import (
        HistGradientBoostingClassifier,
        HistGradientBoostingRegressor,
        RandomForestClassifier,
        RandomForestRegressor,
    )
    from sklearn.linear_model import LogisticRegression, Ridge

    classes = {
        ("hist_gradient_boosting", "classification"): HistGradientBoostingClassifier,
        ("hist_gradient_boosting", "regression"): HistGradientBoostingRegressor,
        ("random_forest", "classification"): RandomForestClassifier,
        ("random_forest", "regression"): RandomForestRegressor,
        ("linear", "classification"): LogisticRegression,
        ("linear", "regression"): Ridge,
    }
    return classes[(spec.training.estimator, spec.task)](**spec.training.params)


def training_partitions(con: duckdb.DuckDBPyConnection, spec: DatasetSpec, until: str | None = None) -> list[str]:
    """The training window: the newest N partitions (days by date, files by arrival), up to `until`."""
    partitions = partitions_in_order(con, spec, "features")
    if until is not None:
        if until not in partitions:
            raise LookupError(f"{spec.name}: train_until={until!r} is not an ingested partition; known: {partitions[-5:]}")
        partitions = partitions[: partitions.index(until) + 1]
    window = spec.training.window_partitions
    return partitions[-window:] if window else partitions


def evaluate(spec: DatasetSpec, model, X: pd.DataFrame, y: pd.Series) -> dict[str, float]:
    from sklearn import metrics

    if spec.task == "classification":
        proba = model.predict_proba(X)[:, 1]
        threshold = best_f1_threshold(y, proba)
        predicted = proba >= threshold
        return {
            "roc_auc": float(metrics.roc_auc_score(y, proba)) if y.nunique() > 1 else float("nan"),
            "average_precision": float(metrics.average_precision_score(y, proba)),
            "precision": float(metrics.precision_score(y, predicted, zero_division=0)),
            "recall": float(metrics.recall_score(y, predicted, zero_division=0)),
            "f1": float(metrics.f1_score(y, predicted, zero_division=0)),
            "positive_rate": float(np.mean(y)),
            "decision_threshold": threshold,
        }
    predicted = model.predict(X)
    return {
        "rmse": float(np.sqrt(metrics.mean_squared_error(y, predicted))),
        "mae": float(metrics.mean_absolute_error(y, predicted)),
        "r2": float(metrics.r2_score(y, predicted)),
    }


def best_f1_threshold(y: pd.Series, proba: np.ndarray) -> float:
    """The probability cut-off with the best F1 on validation data: at a 1-2% positive rate, 0.5 flags nothing."""
    from sklearn.metrics import precision_recall_curve

    precision, recall, thresholds = precision_recall_curve(y, proba)
    if len(thresholds) == 0:
        return 0.5
    f1 = 2 * precision[:-1] * recall[:-1] / np.clip(precision[:-1] + recall[:-1], 1e-12, None)
    return float(thresholds[int(np.argmax(f1))])


def quality_failures(spec: DatasetSpec, metrics: dict[str, float]) -> list[str]:
    """Bars from `training.min_metrics` the model misses (for lower-is-better metrics, a maximum)."""
    failures = []
    for name, bar in spec.training.min_metrics.items():
        value = metrics.get(name)
        if value is None or np.isnan(value):
            failures.append(f"{name} was not computed")
        elif name in LOWER_IS_BETTER and value > bar:
            failures.append(f"{name} {value:.4f} > maximum {bar}")
        elif name not in LOWER_IS_BETTER and value < bar:
            failures.append(f"{name} {value:.4f} < minimum {bar}")
    return failures


@dataclass
class TrainedModel:
    run_id: str
    experiment_id: str
    version: str
    model_uri: str
    metrics: dict[str, float]
    promoted: bool
    quality_failures: list[str]
    partitions: list[str]
    rows_train: int
    rows_validation: int
    feature_names: list[str]
    seconds: float
    params: dict[str, object] = field(default_factory=dict)


def _split(spec: DatasetSpec, frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Time-ordered holdout when the data has a clock (no peeking at the future); seeded shuffle otherwise."""
    if spec.time_column:
        frame = frame.sort_values(spec.time_column, kind="stable")
    else:
        frame = frame.sample(frac=1.0, random_state=11)
    cut = int(len(frame) * (1 - spec.training.validation_fraction))
    return frame.iloc[:cut], frame.iloc[cut:]


def _trusted_types(pipeline: Pipeline) -> list[str]:
    """The types skops does not trust by default, limited to scikit-learn's and numpy's own."""
    import skops.io

    untrusted = skops.io.get_untrusted_types(data=skops.io.dumps(pipeline))
    foreign = [t for t in untrusted if not t.startswith(("sklearn.", "numpy."))]
    if foreign:
        raise TypeError(f"model pipeline holds types outside scikit-learn/numpy, refusing to trust: {foreign}")
    return list(untrusted)


def train_and_register(
    con: duckdb.DuckDBPyConnection,
    spec: DatasetSpec,
    tracking: MlflowTracking,
    *,
    until: str | None = None,
    tags: dict[str, str] | None = None,
) -> TrainedModel:
    import mlflow
    import mlflow.sklearn
    from mlflow.models import infer_signature

    started = time.perf_counter()
    partitions = training_partitions(con, spec, until)
    if not partitions:
        raise LookupError(f"{spec.name}: the features table is empty; materialize {spec.name}/features first")
    placeholders = ", ".join("?" for _ in partitions)
    features = con.execute(
        f"SELECT * FROM {table(spec, 'features')} WHERE _partition IN ({placeholders})", partitions
    ).df()
    feature_cols = feature_names(spec, features.columns)
    cleaned_cols = ", ".join(q(c) for c in spec.input_columns)
    # Filter, then sample: `USING SAMPLE` on a filtered table samples the whole table first.
    reference = con.execute(
        f"SELECT * FROM (SELECT {cleaned_cols} FROM {table(spec, 'cleaned')} WHERE _partition IN ({placeholders})) "
        f"USING SAMPLE reservoir({spec.drift.sample_rows} ROWS) REPEATABLE (17)",
        partitions,
    ).df()
    transformer = fitted_feature_transformer(spec, reference)
    expected = list(transformer.get_feature_names_out())
    if expected != feature_cols:
        raise ValueError(
            f"{spec.name}/features has columns {feature_cols} but the spec's transformer makes {expected}: "
            f"re-materialize {spec.name}/features for all partitions"
        )
    train, valid = _split(spec, features)
    if train[spec.target].nunique() < 2:
        raise ValueError(f"{spec.name}: the training window has a single target value; ingest more data")
    estimator = build_estimator(spec).fit(train[feature_cols], train[spec.target])
    metrics = evaluate(spec, estimator, valid[feature_cols], valid[spec.target])
    failures = quality_failures(spec, metrics)
    pipeline = Pipeline([("features", transformer), ("estimator", estimator)])

    model_input = reference[[c.name for c in spec.feature_columns]]
    example = model_input.head(5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # integer inputs are required by the spec: no NaNs
        signature = infer_signature(example, pipeline.predict(example))
    requirements = [f"{p}=={importlib.metadata.version(p)}" for p in _RUNTIME_PACKAGES]

    lineage = build_lineage(con, spec, partitions, dagster_run_id=(tags or {}).get("dagster_run_id"))
    tracking.setup()
    experiment_id = tracking.experiment_id(spec.name)
    params = {
        "estimator": spec.training.estimator,
        **{f"estimator.{k}": v for k, v in spec.training.params.items()},
        "partitions": f"{partitions[0]}..{partitions[-1]} ({len(partitions)})",
        "rows_train": len(train),
        "rows_validation": len(valid),
        "n_features": len(feature_cols),
        "split": "time" if spec.time_column else "random",
    }
    with mlflow.start_run(experiment_id=experiment_id, run_name=f"{spec.name}-train", tags={"dataset": spec.name, **(tags or {})}) as run:
        mlflow.log_params(params)
        mlflow.log_metrics({k: v for k, v in metrics.items() if not np.isnan(v)})
        info = mlflow.sklearn.log_model(
            pipeline,
            name="model",
            signature=signature,
            input_example=example,
            pip_requirements=requirements,
            registered_model_name=spec.registered_model_name,
            skops_trusted_types=_trusted_types(pipeline),
        )
        log_lineage(lineage)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / Path(REFERENCE_ARTIFACT).name
            reference.to_parquet(path, index=False)
            mlflow.log_artifact(str(path), artifact_path=str(Path(REFERENCE_ARTIFACT).parent))
    version = str(info.registered_model_version)
    client = tracking.client()
    if not failures:
        client.set_registered_model_alias(spec.registered_model_name, CHAMPION_ALIAS, version)
    else:
        log.warning("%s model version %s not promoted: %s", spec.name, version, "; ".join(failures))
    return TrainedModel(
        run_id=run.info.run_id,
        experiment_id=experiment_id,
        version=version,
        model_uri=f"models:/{spec.registered_model_name}/{version}",
        metrics=metrics,
        promoted=not failures,
        quality_failures=failures,
        partitions=partitions,
        rows_train=len(train),
        rows_validation=len(valid),
        feature_names=feature_cols,
        seconds=time.perf_counter() - started,
        params=params,
    )
