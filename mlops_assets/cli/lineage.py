"""`mlops-assets lineage D [--version V] [--json]`: what trained the champion (or version V).

MLflow run, Dagster run, code version, spec hash, decision threshold, and every training partition
with its file name and content hash, read from the lineage the model run logged (the same record the
Bento and the drift monitor read).
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from mlops_assets.cli.errors import UsageError, dataset_spec, refuse
from mlops_assets.home import MlopsHome


def add_parser(sub) -> argparse.ArgumentParser:
    parser = sub.add_parser("lineage", help="the data, code and runs that trained a dataset's champion (or a version)")
    parser.add_argument("dataset")
    parser.add_argument("--version", help="a registered version (3, v3, models:/<model>/3); default: the champion")
    parser.add_argument("--json", action="store_true", help="one JSON object")
    return parser


def collect_lineage(spec, tracking, version_text: str | None) -> dict[str, Any]:
    """Registry facts about the version plus the lineage its training run logged."""
    from mlops_assets.cli.promote import resolve_version
    from mlops_assets.training.lineage import load_lineage, spec_hash
    from mlops_assets.training.registry import aliases, champion

    if version_text is None:
        version = champion(tracking, spec)
        if version is None:
            raise UsageError(f"{spec.name} has no champion yet; materialize {spec.name}/model "
                             "(or pass --version)")
    else:
        version = resolve_version(spec, version_text, tracking)
    client = tracking.client()
    run = client.get_run(version.run_id)
    lineage = load_lineage(tracking, version.run_id)
    threshold = lineage.get("decision_threshold", run.data.metrics.get("decision_threshold"))
    parent = run.data.tags.get("mlflow.parentRunId")
    current = spec_hash(spec)
    return {
        **lineage,
        "dataset": spec.name,
        "registered_model": spec.registered_model_name,
        "model_version": str(version.version),
        "aliases": sorted(a for a, v in aliases(tracking, spec).items() if v == str(version.version)),
        "mlflow_run_id": version.run_id,
        "mlflow_run_url": tracking.run_url(run.info.experiment_id, version.run_id),
        "mlflow_parent_run_id": lineage.get("mlflow_parent_run_id", parent),
        "dagster_run_id": lineage.get("dagster_run_id", run.data.tags.get("dagster_run_id")),
        "decision_threshold": threshold,
        "spec_matches_current": lineage.get("spec_hash") == current if lineage else None,
        "lineage_recorded": bool(lineage),
        "partitions": lineage.get("partitions", []),
    }


def format_lineage(info: dict[str, Any]) -> str:
    def field(label: str, value: Any) -> str:
        return f"  {label:<19} {value if value not in (None, '') else '-'}"

    aliases = f"  ({', '.join(info['aliases'])})" if info["aliases"] else ""
    lines = [f"{info['dataset']}  {info['registered_model']} v{info['model_version']}{aliases}"]
    if not info["lineage_recorded"]:
        lines.append("  no lineage was logged for this version (trained before lineage was recorded)")
    spec_note = "" if info["spec_matches_current"] in (None, True) else "  (differs from the current spec)"
    threshold = info["decision_threshold"]
    metrics = info.get("metrics") or {}
    metric = info.get("primary_metric")
    lines += [
        field("MLflow run", f"{info['mlflow_run_id']}  {info['mlflow_run_url']}"),
        field("MLflow parent run", info["mlflow_parent_run_id"]),
        field("Dagster run", info["dagster_run_id"]),
        field("code version", info.get("code_version")),
        field("spec hash", (info.get("spec_hash") or "-") + spec_note),
        field("trained at", info.get("trained_at")),
        field("winner", f"{info.get('winner')} ({metric} {metrics[metric]:.4f})" if metric in metrics
              else info.get("winner")),
        field("decision threshold", f"{threshold:.4f}" if isinstance(threshold, float) else threshold),
        f"  partitions ({len(info['partitions'])}):",
    ]
    for p in info["partitions"]:
        rows = f"{p['rows_read']:,} rows" if p.get("rows_read") is not None else "rows unknown"
        lines.append(f"    {p['partition']:<24} {p.get('file') or '-':<36} {p.get('content_hash') or '-'}  {rows}")
    return "\n".join(lines)


def run(args: argparse.Namespace, home: MlopsHome) -> int:
    from mlops_assets.cli.promote import profile_tracking

    try:
        spec = dataset_spec(args.dataset)
        with profile_tracking(home) as tracking:
            info = collect_lineage(spec, tracking, args.version)
    except UsageError as exc:
        refuse(str(exc), as_json=args.json, dataset=args.dataset)
    print(json.dumps(info, indent=2, default=str) if args.json else format_lineage(info))
    return 0 if info["lineage_recorded"] else 1
