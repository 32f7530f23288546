"""How the champion does on newly labeled data, against what it promised on its validation rows.

Scores use the champion's own decision threshold (not one re-tuned on the new data, which would
flatter it), and the primary metric's drop is relative to the champion's validation score. A day
of fraud data holds a few dozen positives, so its average precision swings by tens of percent on
its own: a drop counts only when even the optimistic end of a seeded bootstrap interval is worse
than the tolerance allows.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import numpy as np
import pandas as pd

from mlops_assets.datasets.spec import LOWER_IS_BETTER, DatasetSpec
from mlops_assets.tables import partitions_in_order, q, table

BOOTSTRAP_ROUNDS = 200
BOOTSTRAP_SEED = 23
INTERVAL = 0.90


@dataclass
class PerformanceReport:
    partition: str
    rows: int
    metrics: dict[str, float]
    validation: float | None
    current: float | None
    relative_drop: float | None
    dropped: bool
    interval: tuple[float, float] | None = None  # bootstrap interval of the primary metric


def labeled_rows(con: duckdb.DuckDBPyConnection, spec: DatasetSpec, partition: str) -> pd.DataFrame:
    """The partition's cleaned rows that carry a label: model inputs plus the target."""
    cols = ", ".join(q(c) for c in [*spec.feature_names, spec.target])
    return con.execute(
        f"SELECT {cols} FROM {table(spec, 'cleaned')} WHERE _partition = ? AND {q(spec.target)} IS NOT NULL",
        [partition],
    ).df()


def newest_labeled_partition(con: duckdb.DuckDBPyConnection, spec: DatasetSpec) -> str | None:
    """The newest cleaned partition holding at least one labeled row (what a retrain could learn from), else None."""
    for partition in reversed(partitions_in_order(con, spec, "cleaned_partitions")):  # usually the first one asked
        if con.execute(f"SELECT EXISTS (SELECT 1 FROM {table(spec, 'cleaned')} WHERE _partition = ? "
                       f"AND {q(spec.target)} IS NOT NULL)", [partition]).fetchone()[0]:
            return partition
    return None


def score(spec: DatasetSpec, pipeline, rows: pd.DataFrame, threshold: float | None) -> dict[str, float]:
    """The task's metrics of `pipeline` on `rows` (classification at the champion's `threshold`)."""
    from sklearn import metrics

    X, y = rows[spec.feature_names], rows[spec.target]
    if spec.task == "classification":
        y = y.astype(bool)
        proba = pipeline.predict_proba(X)[:, 1]
        predicted = proba >= (0.5 if threshold is None else threshold)
        both = y.nunique() > 1
        return {
            "roc_auc": float(metrics.roc_auc_score(y, proba)) if both else float("nan"),
            "average_precision": float(metrics.average_precision_score(y, proba)) if both else float("nan"),
            "precision": float(metrics.precision_score(y, predicted, zero_division=0)),
            "recall": float(metrics.recall_score(y, predicted, zero_division=0)),
            "f1": float(metrics.f1_score(y, predicted, zero_division=0)),
            "positive_rate": float(np.mean(y)),
        }
    predicted = pipeline.predict(X)
    return {
        "rmse": float(np.sqrt(metrics.mean_squared_error(y, predicted))),
        "mae": float(metrics.mean_absolute_error(y, predicted)),
        "r2": float(metrics.r2_score(y, predicted)) if len(y) > 1 else float("nan"),
    }


def relative_drop(metric: str, validation: float, current: float) -> float:
    """How much worse `current` is than `validation`, as a fraction (positive = worse)."""
    if not np.isfinite(validation) or not np.isfinite(current) or validation == 0:
        return float("nan")
    worse = current - validation if metric in LOWER_IS_BETTER else validation - current
    return float(worse / abs(validation))


def primary_interval(spec: DatasetSpec, y: pd.Series, scores: np.ndarray) -> tuple[float, float] | None:
    """Seeded bootstrap interval of the primary metric over the rows (None when it cannot be computed)."""
    from sklearn import metrics

    metric = spec.training.primary_metric
    functions = {
        "roc_auc": metrics.roc_auc_score, "average_precision": metrics.average_precision_score,
        "rmse": lambda t, s: float(np.sqrt(metrics.mean_squared_error(t, s))),
        "mae": metrics.mean_absolute_error, "r2": metrics.r2_score,
    }
    if metric not in functions or len(y) < 20:
        return None
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    truth = np.asarray(y)
    values = []
    for _ in range(BOOTSTRAP_ROUNDS):
        pick = rng.integers(0, len(truth), len(truth))
        if spec.task == "classification" and len(np.unique(truth[pick])) < 2:
            continue
        values.append(float(functions[metric](truth[pick], scores[pick])))
    if len(values) < BOOTSTRAP_ROUNDS // 2:
        return None
    tail = (1 - INTERVAL) / 2
    return float(np.quantile(values, tail)), float(np.quantile(values, 1 - tail))


def assess(spec: DatasetSpec, partition: str, pipeline, rows: pd.DataFrame, threshold: float | None,
           validation_metrics: dict[str, float]) -> PerformanceReport:
    metrics = score(spec, pipeline, rows, threshold)
    metric = spec.training.primary_metric
    validation, current = validation_metrics.get(metric), metrics.get(metric)
    drop = relative_drop(metric, validation, current) if validation is not None and current is not None else None
    X, y = rows[spec.feature_names], rows[spec.target]
    if spec.task == "classification":
        interval = primary_interval(spec, y.astype(bool), pipeline.predict_proba(X)[:, 1])
    else:
        interval = primary_interval(spec, y, pipeline.predict(X))
    dropped = False
    if drop is not None and np.isfinite(drop) and drop > spec.drift.performance_tolerance and validation is not None:
        # The most favourable end of the interval must still be worse than the tolerance allows.
        best = None if interval is None else (interval[0] if metric in LOWER_IS_BETTER else interval[1])
        dropped = best is None or relative_drop(metric, validation, best) > spec.drift.performance_tolerance
    return PerformanceReport(partition, len(rows), metrics, validation, current, drop, bool(dropped), interval)
