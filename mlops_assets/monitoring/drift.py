"""Data drift of the newest batch against the champion's training reference, with Evidently.

Both sides are bounded, seeded samples (size recorded), because drift tests on millions of rows
cost minutes and say nothing a 20k-row sample does not.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pandas as pd

from mlops_assets.datasets.spec import DatasetSpec
from mlops_assets.files import atomic_path
from mlops_assets.tables import partitions_in_order, q, table

SAMPLE_SEED = 17


@dataclass
class DriftSummary:
    drift_share: float
    drifted_columns: list[str]
    dataset_drift: bool
    column_scores: dict[str, dict[str, float | str | bool]] = field(default_factory=dict)


def is_severe(spec: DatasetSpec, drift_share: float) -> bool:
    """The one rule for "this drift warrants a retrain": the share of drifted columns reaches the spec's threshold."""
    return drift_share >= spec.drift.threshold


def newest_partition(con: duckdb.DuckDBPyConnection, spec: DatasetSpec) -> str | None:
    """Daily data: the latest day; file drops: the file that arrived last."""
    partitions = partitions_in_order(con, spec, "cleaned_partitions")
    return partitions[-1] if partitions else None


def drift_columns(spec: DatasetSpec) -> tuple[list[str], list[str]]:
    """(numerical, categorical) input columns compared for drift, typed from the spec, not guessed."""
    numerical = [c.name for c in spec.feature_columns if c.type in ("integer", "float")]
    categorical = [c.name for c in spec.feature_columns if c.type in ("category", "boolean", "string")]
    return numerical, categorical


def sample_partition(con: duckdb.DuckDBPyConnection, spec: DatasetSpec, partition: str, rows: int) -> tuple[pd.DataFrame, int]:
    """A seeded sample of one cleaned partition's feature columns, and the partition's row count."""
    cols = ", ".join(q(c.name) for c in spec.feature_columns)
    total = con.execute(f"SELECT count(*) FROM {table(spec, 'cleaned')} WHERE _partition = ?", [partition]).fetchone()[0]
    # Filter, then sample: `USING SAMPLE` on a filtered table samples the whole table first.
    frame = con.execute(
        f"SELECT * FROM (SELECT {cols} FROM {table(spec, 'cleaned')} WHERE _partition = ?) "
        f"USING SAMPLE reservoir({int(rows)} ROWS) REPEATABLE ({SAMPLE_SEED})",
        [partition],
    ).df()
    return frame, int(total)


def _prepare(frame: pd.DataFrame, spec: DatasetSpec) -> pd.DataFrame:
    frame = frame.copy()
    for column in spec.feature_columns:
        if column.type == "boolean":
            frame[column.name] = frame[column.name].astype(str)
    return frame


def run_drift_report(spec: DatasetSpec, current: pd.DataFrame, reference: pd.DataFrame, html_path: Path) -> DriftSummary:
    """Run Evidently's DataDriftPreset (current first), save the HTML, and summarize per column."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    numerical, categorical = drift_columns(spec)
    definition = DataDefinition(numerical_columns=numerical, categorical_columns=categorical)
    snapshot = Report([DataDriftPreset()], include_tests=True).run(
        Dataset.from_pandas(_prepare(current, spec), data_definition=definition),
        Dataset.from_pandas(_prepare(reference, spec), data_definition=definition),
    )
    with atomic_path(html_path) as temporary:
        snapshot.save_html(str(temporary))

    result = snapshot.dict()
    share, threshold = 0.0, 0.5
    scores: dict[str, dict[str, float | str | bool]] = {}
    for metric in result["metrics"]:
        config = metric["config"]
        if config["type"].endswith("DriftedColumnsCount"):
            share = float(metric["value"]["share"])
            threshold = float(config.get("drift_share", threshold))
        elif config["type"].endswith("ValueDrift"):
            scores[config["column"]] = {
                "method": config["method"],
                "score": float(metric["value"]),
                "threshold": float(config["threshold"]),
                "drifted": False,
            }
    for test in result.get("tests", []):
        params = test.get("metric_config", {}).get("params", {})
        column = params.get("column")
        if params.get("type", "").endswith("ValueDrift") and column in scores:
            scores[column]["drifted"] = test.get("status") == "FAIL"
    drifted = sorted(c for c, s in scores.items() if s["drifted"])
    return DriftSummary(drift_share=share, drifted_columns=drifted, dataset_drift=share >= threshold, column_scores=scores)
