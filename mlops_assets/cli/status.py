"""What the platform holds right now, per dataset: the answer to "where are we?" in one JSON object."""

from __future__ import annotations

import datetime as dt
import os
from typing import Any

import dagster as dg

from mlops_assets.datasets.spec import DatasetSpec
from mlops_assets.home import MlopsHome
from mlops_assets.resources import MlflowTracking, Warehouse
from mlops_assets.resources.warehouse import WarehouseBusy
from mlops_assets.stages import Stage, asset_key
from mlops_assets.tables import q, table, table_exists


def _plain(value: Any) -> Any:
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat(sep=" ") if isinstance(value, dt.datetime) else value.isoformat()
    if hasattr(value, "item"):
        return value.item()
    return value


def _latest(instance: dg.DagsterInstance, spec: DatasetSpec, stage: str) -> dict[str, Any] | None:
    event = instance.get_latest_materialization_event(asset_key(spec.name, stage))
    if event is None or event.asset_materialization is None:
        return None
    materialization = event.asset_materialization
    return {
        "materialized_at": dt.datetime.fromtimestamp(event.timestamp, dt.UTC).isoformat(timespec="seconds"),
        "run_id": event.run_id,
        "partition": materialization.partition,
        "metadata": {k: _plain(v.value) for k, v in materialization.metadata.items() if isinstance(v.value, (str, int, float, bool, type(None)))},
    }


def serve_example(warehouse: Warehouse, spec: DatasetSpec, rows: int = 2) -> dict[str, Any] | None:
    """A request body for `/predict` made of real cleaned rows (the target left out)."""
    try:
        with warehouse.connect(read_only=True) as con:
            if not table_exists(con, spec, "cleaned"):
                return None
            cols = ", ".join(q(c) for c in spec.input_columns)
            frame = con.execute(f"SELECT {cols} FROM {table(spec, 'cleaned')} LIMIT {int(rows)}").df()
    except FileNotFoundError:
        return None
    except WarehouseBusy:
        return {"busy": "the warehouse is being written by a run; ask again when it finishes"}
    records = [{k: _plain(v) for k, v in row.items()} for row in frame.to_dict(orient="records")]
    return {"records": records} if records else None


def champion_status(tracking: MlflowTracking, spec: DatasetSpec) -> dict[str, Any] | None:
    from mlops_assets.training.registry import CHAMPION_ALIAS, champion

    version = champion(tracking, spec)
    if version is None:
        return None
    run = tracking.client().get_run(version.run_id)
    return {
        "name": spec.registered_model_name,
        "version": str(version.version),
        "model_uri": f"models:/{spec.registered_model_name}@{CHAMPION_ALIAS}",
        "run_id": version.run_id,
        "metrics": dict(run.data.metrics),
    }


def partition_status(warehouse: Warehouse, spec: DatasetSpec) -> dict[str, Any]:
    """Ingested partitions (cleaned, with rows) and those whose features are missing or stale."""
    from mlops_assets.training.train import ingested_partitions, stale_feature_partitions

    try:
        with warehouse.connect(read_only=True) as con:
            partitions = ingested_partitions(con, spec)
            stale = stale_feature_partitions(con, spec, partitions)
    except FileNotFoundError:
        partitions, stale = [], []
    return {"ingested_partitions": partitions, "features_missing": stale}


def collect_status(home: MlopsHome, specs: dict[str, DatasetSpec], instance: dg.DagsterInstance) -> dict[str, Any]:
    from mlops_assets.definitions import resources_for
    from mlops_assets.home import current_profile

    # The profile's own resources (settings from the environment resolved by Dagster); the warehouse answers
    # while runs write, each read being one snapshot.
    with dg.build_resources(resources_for(current_profile(), home)) as resources:
        return _collect(home, specs, instance, resources.tracking, resources.warehouse)


def _collect(home: MlopsHome, specs: dict[str, DatasetSpec], instance: dg.DagsterInstance, tracking: MlflowTracking,
             warehouse: Warehouse) -> dict[str, Any]:
    import re

    datasets: dict[str, Any] = {}
    for spec in specs.values():
        assets = {str(stage): _latest(instance, spec, stage) for stage in Stage}
        drift = (assets["drift_report"] or {}).get("metadata", {})
        bento = (assets["bento"] or {}).get("metadata", {})
        datasets[spec.name] = {
            **partition_status(warehouse, spec),
            "assets": assets,
            "champion": champion_status(tracking, spec),
            "drift_share": drift.get("drift_share"),
            "drift_report": drift.get("report"),
            "drift_severe": drift.get("severe"),
            "bento": bento.get("bento"),
            "serve_example": serve_example(warehouse, spec),
        }
    return {
        "mlops_home": str(home.root),
        "tracking_uri": re.sub(r"://([^:/@]+):[^@]*@", r"://\1:***@", tracking.tracking_uri),
        "dagster_home": os.environ.get("DAGSTER_HOME", str(home.dagster_home)),
        "warehouse": warehouse.describe(),
        "datasets": datasets,
    }


def format_status(status: dict[str, Any]) -> str:
    lines = [f"MLOPS_HOME {status['mlops_home']}", f"DAGSTER_HOME {status['dagster_home']}"]
    for name, data in status["datasets"].items():
        lines.append(f"\n{name}")
        ingested = data["ingested_partitions"]
        lines.append(f"  ingested      {len(ingested)} partition(s)" + (f", newest {ingested[-1]}" if ingested else ""))
        if data["features_missing"]:
            lines.append(f"  features      missing or stale for {data['features_missing']}: `mlops-assets train {name}` "
                         "builds them first")
        for stage, info in data["assets"].items():
            when = f"{info['materialized_at']}" + (f" [{info['partition']}]" if info and info["partition"] else "") if info else "never"
            lines.append(f"  {stage:<13} {when}")
        champ = data["champion"]
        if champ:
            shown = ", ".join(f"{k}={v:.3f}" for k, v in sorted(champ["metrics"].items()))
            lines.append(f"  champion      {champ['name']} v{champ['version']} ({shown})")
        else:
            lines.append("  champion      none yet")
        if data["drift_share"] is not None:
            lines.append(f"  drift share   {data['drift_share']:.2f}{'  (severe)' if data['drift_severe'] else ''}")
            lines.append(f"  drift report  {data['drift_report']}")
        lines.append(f"  bento         {data['bento'] or 'not built'}")
    return "\n".join(lines)


def add_parser(sub):
    parser = sub.add_parser("status", help="latest materializations, champion, drift, Bento, example request")
    parser.add_argument("dataset", nargs="?", default=None, help="one dataset (default: all)")
    parser.add_argument("--json", action="store_true")
    return parser


def run(args, home: MlopsHome) -> int:
    import json

    from mlops_assets.cli.errors import dagster_instance, dataset_spec
    from mlops_assets.datasets.spec import load_specs

    specs = {args.dataset: dataset_spec(args.dataset)} if args.dataset else load_specs()
    status = collect_status(home, specs, dagster_instance())
    print(json.dumps(status, indent=2, default=str) if args.json else format_status(status))
    return 0
