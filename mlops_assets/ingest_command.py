"""`mlops-assets ingest <dataset> <path>`: land one file and take it through `cleaned` now.

The file is sniffed and matched to the spec before it is landed, so an unusable file is refused in
one line and never enters the landing zone; a usable one is copied there (file drops keep their
name, daily files their date) and materialized through the same job the UI runs.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import dagster as dg

from mlops_assets.datasets.factory import landing_path
from mlops_assets.datasets.spec import DatasetSpec
from mlops_assets.ingest.dialect import UnreadableFile, sniff_csv
from mlops_assets.ingest.landing import SNIFF_SAMPLE_BYTES, archive_file, file_digest, map_columns
from mlops_assets.resources import HomeResource
from mlops_assets.runner import Runner, failures

_DATE = re.compile(r"(\d{4}-\d{2}-\d{2})")


class IngestRefused(Exception):
    """The file cannot be ingested; the message is one line naming the file and what to do."""


def partition_for(spec: DatasetSpec, path: Path, partition: str | None) -> str:
    if partition:
        return partition
    if not spec.is_daily:
        return path.name
    match = _DATE.search(path.name)
    if not match:
        raise IngestRefused(f"{path.name}: {spec.name} is partitioned by day; name the file with its date "
                            f"(e.g. {spec.name}_2026-01-31.csv) or pass --partition YYYY-MM-DD")
    return match.group(1)


def preflight(spec: DatasetSpec, path: Path) -> None:
    """Refuse files that cannot be read as this dataset, before they touch the landing zone."""
    if not path.is_file():
        raise IngestRefused(f"{path}: no such file")
    try:
        dialect = sniff_csv(path, sample_bytes=SNIFF_SAMPLE_BYTES, expected_columns=[c.header for c in spec.columns])
        map_columns(spec, path, dialect)
    except UnreadableFile as exc:
        raise IngestRefused(str(exc)) from None


def _metadata(result: dg.ExecuteInProcessResult, key: dg.AssetKey) -> dict[str, Any]:
    for event in result.get_asset_materialization_events():
        materialization = event.step_materialization_data.materialization
        if materialization.asset_key == key:
            return {k: v.value for k, v in materialization.metadata.items()}
    return {}


def ingest(runner: Runner, spec: DatasetSpec, path: Path, partition: str | None = None) -> dict[str, Any]:
    """Land and materialize `raw` + `cleaned` for one file; returns the summary printed by the CLI."""
    path = Path(path).resolve()
    preflight(spec, path)
    key = partition_for(spec, path, partition)
    target = landing_path(spec, HomeResource(root=str(runner.home.root)), key)
    if target.resolve() != path:
        old_hash = file_digest(target) if target.exists() else None
        if old_hash and old_hash != file_digest(path):
            # The landing file is about to be replaced by different bytes: keep the old version first.
            archive_file(target, runner.home.root / "archive" / spec.name, key, old_hash)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.part")
        shutil.copyfile(path, tmp)
        tmp.replace(target)
    runner.register_partition(spec, key)
    result = runner.execute(
        f"{spec.name}_ingest", key,
        asset_selection=[dg.AssetKey([spec.name, "raw"]), dg.AssetKey([spec.name, "cleaned"])],
        tags={"mlops/trigger": "cli-ingest"},
    )
    raw = _metadata(result, dg.AssetKey([spec.name, "raw"]))
    cleaned = _metadata(result, dg.AssetKey([spec.name, "cleaned"]))
    contract = raw.get("ingestion_contract", {})
    checks = {
        e.asset_check_evaluation_data.asset_check_key.name: {
            "passed": e.asset_check_evaluation_data.passed,
            "description": e.asset_check_evaluation_data.description,
        }
        for e in result.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION"
    }
    problems = failures(result)
    return {
        "ok": not problems,
        "dataset": spec.name,
        "file": str(path),
        "landed_as": str(target),
        "partition": key,
        "content_hash": raw.get("content_hash"),
        "file_version": raw.get("file_version"),
        "dialect": {
            "delimiter": contract.get("delimiter"),
            "quotechar": contract.get("quotechar"),
            "escapechar": contract.get("escapechar"),
            "encoding": contract.get("encoding"),
            "header": contract.get("has_header"),
            "newline": contract.get("newline"),
            "decimal": contract.get("decimal"),
            "thousands": contract.get("thousands"),
            "columns": contract.get("columns"),
        },
        "rows_read": cleaned.get("rows_in"),
        "rows_cleaned": cleaned.get("rows_cleaned"),
        "rows_quarantined": cleaned.get("rows_quarantined"),
        "quarantine_reasons": cleaned.get("quarantine_reasons"),
        "checks": checks,
        "problems": problems,
        "dagster_run_id": result.run_id,
    }


def format_summary(summary: dict[str, Any]) -> str:
    d = summary["dialect"]
    lines = [
        f"{summary['file']} -> {summary['dataset']} [{summary['partition']}] (version {summary['file_version']})",
        f"  dialect     delimiter={d['delimiter']!r} quote={d['quotechar']!r} encoding={d['encoding']} "
        f"header={d['header']} newline={d['newline']!r} decimal={d['decimal']!r}",
        f"  rows        read {summary['rows_read']}, cleaned {summary['rows_cleaned']}, "
        f"quarantined {summary['rows_quarantined']}",
    ]
    for name, check in summary["checks"].items():
        lines.append(f"  check       {name}: {'passed' if check['passed'] else 'FAILED'}"
                     + (f" ({check['description']})" if check["description"] and not check["passed"] else ""))
    for problem in summary["problems"]:
        lines.append(f"  problem     {problem}")
    return "\n".join(lines)
