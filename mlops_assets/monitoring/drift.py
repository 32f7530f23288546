"""Data drift of a current window against the champion's training reference, with Evidently.

Both sides are bounded, seeded samples (size recorded), because drift tests on millions of rows
cost minutes and say nothing a 20k-row sample does not. Columns are compared with distances
(normed Wasserstein, Jensen-Shannon) rather than p-values: at tens of thousands of rows a p-value
flags differences no model notices, which is how a training partition could score "severe" against
its own reference.
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
    column_scores: dict[str, dict[str, float | str | bool]] = field(default_factory=dict)


def drift_level(spec: DatasetSpec, drift_share: float) -> str:
    """The one rule: `severe` above the spec's severe share (retrain evidence), `warn` above its warn share."""
    if drift_share > spec.drift.severe_share:
        return "severe"
    if drift_share > spec.drift.warn_share:
        return "warn"
    return "ok"


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
    """A seeded sample of one cleaned partition's feature columns (all of it within the budget), and its row count.

    The partition is selected first and sampled second: `USING SAMPLE` on the filtered query would
    sample the whole table before the filter and keep only that partition's share of the budget.
    """
    cols = ", ".join(q(c.name) for c in spec.feature_columns)
    total = con.execute(f"SELECT count(*) FROM {table(spec, 'cleaned')} WHERE _partition = ?", [partition]).fetchone()[0]
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
    preset = DataDriftPreset(num_method=spec.drift.num_method, cat_method=spec.drift.cat_method,
                             threshold=spec.drift.column_threshold)
    snapshot = Report([preset], include_tests=True).run(
        Dataset.from_pandas(_prepare(current, spec), data_definition=definition),
        Dataset.from_pandas(_prepare(reference, spec), data_definition=definition),
    )
    with atomic_path(html_path) as temporary:
        snapshot.save_html(str(temporary))

    result = snapshot.dict()
    share = 0.0
    scores: dict[str, dict[str, float | str | bool]] = {}
    for metric in result["metrics"]:
        config = metric["config"]
        if config["type"].endswith("DriftedColumnsCount"):
            share = float(metric["value"]["share"])
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
    return DriftSummary(drift_share=share, drifted_columns=drifted, column_scores=scores)


def drifted_columns_markdown(summary: DriftSummary) -> str:
    """Every compared column with its method, score and threshold, drifted ones first (for the Dagster UI)."""
    rows = sorted(summary.column_scores.items(), key=lambda item: (not item[1]["drifted"], item[0]))
    lines = ["| column | drifted | method | score | threshold |", "|---|---|---|---|---|"]
    lines += [f"| {name} | {'yes' if s['drifted'] else 'no'} | {s['method']} | {float(s['score']):.4f} | "
              f"{float(s['threshold']):g} |" for name, s in rows]
    return "\n".join(lines)


def log_report_to_mlflow(tracking, spec: DatasetSpec, html: Path, summary: DriftSummary, tags: dict[str, str]) -> str:
    """Log the HTML report (and the share) as a monitoring run of the dataset's experiment; returns its UI link."""
    import mlflow

    tracking.setup()
    experiment_id = tracking.experiment_id(spec.name)
    with mlflow.start_run(experiment_id=experiment_id, run_name=f"{spec.name}-drift",
                          tags={"dataset": spec.name, "mlops.kind": "drift_report", **tags}) as run:
        mlflow.log_metrics({"drift_share": summary.drift_share, "drifted_columns": len(summary.drifted_columns)})
        mlflow.log_artifact(str(html), artifact_path="drift")
    return tracking.run_url(experiment_id, run.info.run_id) + f"/artifacts/drift/{html.name}"
