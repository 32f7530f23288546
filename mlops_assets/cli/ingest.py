"""`mlops-assets ingest <dataset> <path>`: land one file and take it through `cleaned` now.

The file is sniffed and matched to the spec before it is landed, so an unusable file is refused in
one line and never enters the landing zone; a usable one is copied there (file drops keep their
name, daily files their date) and materialized through the same job the UI runs.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from mlops_assets.cli.runner import Runner, failures, materialization_metadata
from mlops_assets.datasets.factory import job_name
from mlops_assets.datasets.spec import DatasetSpec
from mlops_assets.files import atomic_copy
from mlops_assets.ingest.dialect import UnreadableFile, sniff_csv
from mlops_assets.ingest.landing import SNIFF_SAMPLE_BYTES, archive_file, file_digest, map_columns
from mlops_assets.stages import Stage, asset_key

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


def ingest(runner: Runner, spec: DatasetSpec, path: Path, partition: str | None = None) -> dict[str, Any]:
    """Land and materialize `raw` + `cleaned` for one file; returns the summary printed by the CLI."""
    path = Path(path).resolve()
    preflight(spec, path)
    key = partition_for(spec, path, partition)
    target = runner.home.landing_file(spec.name, key, daily=spec.is_daily)
    if target.resolve() != path:
        old_hash = file_digest(target) if target.exists() else None
        if old_hash and old_hash != file_digest(path):
            # The landing file is about to be replaced by different bytes: keep the old version first.
            archive_file(target, runner.home.archive(spec.name), key, old_hash)
        atomic_copy(path, target)
    runner.register_partition(spec, key)
    result = runner.execute(
        job_name(spec.name, "ingest"), key,
        asset_selection=[asset_key(spec.name, Stage.RAW), asset_key(spec.name, Stage.CLEANED)],
        tags={"mlops/trigger": "cli-ingest"},
    )
    raw = materialization_metadata(result, asset_key(spec.name, Stage.RAW))
    cleaned = materialization_metadata(result, asset_key(spec.name, Stage.CLEANED))
    contract = raw.get("ingestion_contract", {})
    checks = {
        check.asset_check_key.name: {"passed": check.passed, "description": check.description}
        for check in result.get_asset_check_evaluations()
    }
    problems = failures(result, runner.gates)
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
        "rows_read": cleaned.get("rows_read"),
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


def add_parser(sub):
    parser = sub.add_parser("ingest", help="land one CSV file and materialize it through cleaned now")
    parser.add_argument("dataset")
    parser.add_argument("path")
    parser.add_argument("--partition", default=None, help="partition key (default: the file name, or its date)")
    parser.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    return parser


def run(args, home) -> int:
    import json

    from mlops_assets.cli.errors import UsageError, dagster_instance, dataset_spec
    from mlops_assets.datasets.spec import load_specs
    from mlops_assets.definitions import build_definitions

    spec = dataset_spec(args.dataset)
    runner = Runner(build_definitions(home, load_specs()), dagster_instance(), home, log_level="CRITICAL")
    try:
        summary = ingest(runner, spec, Path(args.path), args.partition)
    except IngestRefused as exc:
        if args.json:
            print(json.dumps({"ok": False, "dataset": spec.name, "file": args.path, "error": str(exc)}))
        raise UsageError(str(exc)) from None
    print(json.dumps(summary, indent=2, default=str) if args.json else format_summary(summary))
    return 0 if summary["ok"] else 1
