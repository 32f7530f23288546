"""`mlops-assets monitor D`: the drift report of D's newest batch against its champion, via `<D>_monitor`.

Exit 1 when the drift is severe (share above the spec's `drift.severe_share`: the report is kept, and it
is the same rule the `retrain_on_drift` sensor applies), so a scheduler or CI job can act on it.
"""

from __future__ import annotations

import argparse
from typing import Any

from mlops_assets.cli.runner import Runner, failures, materialization_metadata
from mlops_assets.datasets.factory import job_name
from mlops_assets.datasets.spec import DatasetSpec
from mlops_assets.home import MlopsHome
from mlops_assets.stages import Stage, asset_key


class NothingToMonitor(Exception):
    """No champion or no ingested batch yet; the message says what to run first."""


def preflight(home: MlopsHome, spec: DatasetSpec) -> None:
    from mlops_assets.definitions import profile_resources
    from mlops_assets.tables import table, table_exists
    from mlops_assets.training.registry import champion

    with profile_resources(home) as resources:
        if champion(resources.tracking, spec) is None:
            raise NothingToMonitor(f"{spec.name} has no champion model to compare with; "
                                   f"run `mlops-assets train {spec.name}` first")
        if resources.warehouse.exists():
            with resources.warehouse.connect(read_only=True) as con:
                if table_exists(con, spec, "cleaned_partitions") and con.execute(
                    f"SELECT count(*) FROM {table(spec, 'cleaned_partitions')}"
                ).fetchone()[0]:
                    return
    raise NothingToMonitor(f"{spec.name} has no ingested batch to check; run `mlops-assets ingest {spec.name} FILE` first")


def monitor(runner: Runner, spec: DatasetSpec) -> dict[str, Any]:
    """Run `<D>_monitor`; returns the summary the CLI prints."""
    preflight(runner.home, spec)
    result = runner.execute(job_name(spec.name, "monitor"), tags={"mlops/trigger": "cli-monitor"})
    report = materialization_metadata(result, asset_key(spec.name, Stage.DRIFT_REPORT))
    problems = failures(result, runner.gates)
    return {
        "ok": not problems and not report.get("severe"),
        "dataset": spec.name,
        "current_partition": report.get("current_partition"),
        "current_rows": report.get("current_rows"),
        "current_sample_rows": report.get("current_sample_rows"),
        "reference_model_version": report.get("reference_model_version"),
        "reference_rows": report.get("reference_rows"),
        "reference_partitions": report.get("reference_partitions"),
        "reference_sample_rows": report.get("reference_sample_rows"),
        "drift_share": report.get("drift_share"),
        "drift_level": report.get("drift_level"),
        "warn_share": spec.drift.warn_share,
        "severe_share": spec.drift.severe_share,
        "severe": report.get("severe"),
        "drifted_columns": report.get("drifted_columns"),
        "report": report.get("report"),
        "problems": problems,
        "dagster_run_id": result.run_id,
    }


def format_summary(summary: dict[str, Any]) -> str:
    name = summary["dataset"]
    lines = [f"{name}: drift of [{summary['current_partition']}] against champion v{summary['reference_model_version']}"]
    if summary["drift_share"] is not None:
        level = summary["drift_level"] or ("severe" if summary["severe"] else "ok")
        lines.append(f"  drift share {summary['drift_share']:.2f}: {level.upper()} (warn above {summary['warn_share']:g}, "
                     f"severe above {summary['severe_share']:g})")
        drifted = summary["drifted_columns"] or []
        lines.append(f"  drifted     {', '.join(drifted) if drifted else 'no column'}")
        reference = summary["reference_rows"] if summary["reference_rows"] is not None else "unknown"
        lines.append(f"  rows        {summary['current_rows']} in the batch (sample {summary['current_sample_rows']}), "
                     f"{reference} in the champion's {summary['reference_partitions']} training partition(s) "
                     f"(sample {summary['reference_sample_rows']})")
        lines.append(f"  report      {summary['report']}")
    for problem in summary["problems"]:
        lines.append(f"  problem     {problem}")
    if summary["severe"]:
        lines.append(f"next: mlops-assets train {name}   (retrain on the newest window; the retrain_on_drift sensor "
                     "does this by itself when running)")
    return "\n".join(lines)


def add_parser(sub) -> argparse.ArgumentParser:
    parser = sub.add_parser(
        "monitor", help="drift report of the newest batch against the champion (the <dataset>_monitor job)",
        description="Compare the newest ingested batch with the champion's training reference (Evidently) and "
        "write the HTML report. Exit 0 unless the drift is severe (share above the spec's drift.severe_share): "
        "then 1 (or when the run failed; the report is kept); 2 when there is no champion or no batch yet.",
    )
    parser.add_argument("dataset")
    parser.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    return parser


def run(args: argparse.Namespace, home: MlopsHome) -> int:
    from mlops_assets.cli.errors import run_job_verb

    return run_job_verb(args, home, monitor, NothingToMonitor, format_summary)
