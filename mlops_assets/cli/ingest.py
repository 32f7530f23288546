"""`mlops-assets ingest <dataset> FILE [FILE ...]`: land files and take each through `features` now.

Each file is sniffed and matched to the spec before it is landed, so an unusable file is refused in
one line and never enters the landing zone; a usable one is copied there (file drops keep their
name, gzip included; daily files their date) and materialized through `<dataset>_ingest`, the job
the UI and the landing sensor run (raw -> cleaned -> features). Files are taken in the order given:
for file-drop datasets that order is their arrival order, which decides the training window.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from mlops_assets.cli.runner import Runner, check_results, failures, materialization_metadata
from mlops_assets.datasets.factory import job_name
from mlops_assets.datasets.spec import DatasetSpec
from mlops_assets.home import MlopsHome
from mlops_assets.ingest.dialect import UnreadableFile, sniff_csv
from mlops_assets.ingest.landing import SNIFF_SAMPLE_BYTES, file_digest, map_columns
from mlops_assets.stages import Stage, asset_key
from mlops_assets.stages.raw import CONTRACT_CHECK

_DATE = re.compile(r"(\d{4}-\d{2}-\d{2})")


class IngestRefused(Exception):
    """The file cannot be ingested; the message is one line naming the file and what to do."""


def check_partition_key(key: str, source: str) -> str:
    """`key` if it is safe as one path segment of the landing and archive folders; else IngestRefused.

    A partition key names a folder (`archive/<dataset>/<partition>/`) and a landed file: a separator or
    `..` would write outside the dataset's folders, a leading dot would hide the file from listings.
    """
    problems = [why for broken, why in (
        (not key.strip(), "is empty"),
        ("/" in key or "\\" in key, "contains a path separator (/ or \\)"),
        (".." in key, "contains '..'"),
        ("\0" in key, "contains a NUL character"),
        (key.startswith("."), "starts with '.'"),
    ) if broken]
    bad = problems[0] if problems else None
    if bad:
        raise IngestRefused(f"partition {key!r} ({source}) {bad}; a partition key is one plain name such as "
                            "week1.csv or 2026-01-31: rename the file or pass another --partition")
    return key


def partition_for(spec: DatasetSpec, path: Path, partition: str | None) -> str:
    if partition is not None:
        check_partition_key(partition, "from --partition")
        if spec.is_daily and not re.fullmatch(r"\d{4}-\d{2}-\d{2}", partition):
            raise IngestRefused(f"--partition {partition!r}: {spec.name} is partitioned by day; pass the file's "
                                "date as YYYY-MM-DD")
        return partition
    if not spec.is_daily:
        return check_partition_key(path.name, "the file name")
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


def land(home: MlopsHome, spec: DatasetSpec, path: Path, partition: str) -> str:
    """Put `path` in the profile's landing zone (a folder under MLOPS_HOME, or S3 in the `aws` profile) as
    `partition`'s file, keeping the version it replaces in the archive first; returns where it landed."""
    from mlops_assets.definitions import profile_resources

    key = MlopsHome.landing_key(spec.name, partition, daily=spec.is_daily)
    with profile_resources(home) as resources:
        storage = resources.storage
        target = storage.uri(key)
        if "://" not in target and Path(target).resolve() == path:
            return target  # dropped in the landing zone already
        if storage.exists(key):
            with storage.local_copy(target) as old:
                old_hash = file_digest(old)
                if old_hash != file_digest(path):
                    storage.archive(old, spec.name, partition, old_hash)  # about to be replaced by different bytes
        storage.put(path, key)
    return target


def ingest(runner: Runner, spec: DatasetSpec, path: Path, partition: str | None = None) -> dict[str, Any]:
    """Land one file and materialize raw -> cleaned -> features for it; returns the summary printed by the CLI."""
    path = Path(path).resolve()
    preflight(spec, path)
    key = partition_for(spec, path, partition)
    target = land(runner.home, spec, path, key)
    runner.register_partition(spec, key)
    result = runner.execute(job_name(spec.name, "ingest"), key, tags={"mlops/trigger": "cli-ingest"})
    raw = materialization_metadata(result, asset_key(spec.name, Stage.RAW))
    cleaned = materialization_metadata(result, asset_key(spec.name, Stage.CLEANED))
    features = materialization_metadata(result, asset_key(spec.name, Stage.FEATURES))
    contract = raw.get("ingestion_contract", {})
    checks = check_results(result)
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
            "compression": contract.get("compression"),
            "columns": contract.get("columns"),
        },
        "rows_read": cleaned.get("rows_read"),
        "rows_cleaned": cleaned.get("rows_cleaned"),
        "rows_quarantined": cleaned.get("rows_quarantined"),
        "quarantine_reasons": cleaned.get("quarantine_reason_counts"),
        "feature_rows": features.get("rows"),
        # The spec's feature columns (what a request carries); one-hot encoding makes more model inputs.
        "n_features": len(spec.feature_names) if features else None,
        "n_encoded_features": features.get("n_features"),
        "checks": checks,
        "problems": problems,
        "dagster_run_id": result.run_id,
    }


TOP_REASONS = 5


def _rows_line(summary: dict[str, Any]) -> str:
    if summary["rows_read"] is not None:
        return (f"read {summary['rows_read']}, cleaned {summary['rows_cleaned']}, "
                f"quarantined {summary['rows_quarantined']}")
    contract = summary["checks"].get(CONTRACT_CHECK)
    if contract and not contract["passed"]:
        return ("cleaning did not run: the file does not match the dataset's contract (see the check below); fix "
                "the file, or pin the new contract under `contract:` in the spec, then ingest it again")
    return "cleaning did not run; the problems below say why"


def format_summary(summary: dict[str, Any]) -> str:
    d = summary["dialect"]
    lines = [
        f"{summary['file']} -> {summary['dataset']} [{summary['partition']}] (version {summary['file_version']})",
        f"  dialect     delimiter={d['delimiter']!r} quote={d['quotechar']!r} encoding={d['encoding']} "
        f"header={d['header']} newline={d['newline']!r} decimal={d['decimal']!r}"
        + (f" compression={d['compression']}" if d.get("compression") else ""),
        f"  rows        {_rows_line(summary)}",
    ]
    reasons = sorted((summary.get("quarantine_reasons") or {}).items(), key=lambda kv: (-kv[1], kv[0]))
    for why, count in reasons[:TOP_REASONS]:
        lines.append(f"  quarantine  {count} row(s): {why}")
    if len(reasons) > TOP_REASONS:
        lines.append(f"  quarantine  ... {len(reasons) - TOP_REASONS} more reason(s) in table "
                     f"{summary['dataset']}.quarantine")
    if summary["feature_rows"] is not None:
        encoded = summary.get("n_encoded_features")
        lines.append(f"  features    {summary['feature_rows']} rows x {summary['n_features']} features"
                     + (f" ({encoded} model inputs after encoding)" if encoded and encoded != summary["n_features"]
                        else ""))
    for name, check in summary["checks"].items():
        lines.append(f"  check       {name}: {'passed' if check['passed'] else 'FAILED'}"
                     + (f" ({check['description']})" if check["description"] and not check["passed"] else ""))
    for problem in summary["problems"]:
        lines.append(f"  problem     {problem}")
    return "\n".join(lines)


def add_parser(sub):
    parser = sub.add_parser(
        "ingest", help="land CSV files (plain or .csv.gz) and materialize each through features now",
        description="Land each file (in the order given) and run the dataset's ingest job on it: "
        "raw -> cleaned -> features. Exit 0 when every check passed, 1 when a check failed (the data is kept), "
        "2 when a file is unusable (it is not landed, and later files are not ingested).",
    )
    parser.add_argument("dataset")
    parser.add_argument("paths", nargs="+", metavar="FILE", help="CSV or gzip-compressed CSV files, oldest first")
    parser.add_argument("--partition", default=None,
                        help="partition key for a single file (default: the file name, or the date in it)")
    parser.add_argument("--json", action="store_true",
                        help="print the summary as JSON (one object; with several files, {'ok', 'files': [...]})")
    return parser


def run(args, home) -> int:
    import json

    from mlops_assets.cli.errors import dataset_spec, refuse
    from mlops_assets.cli.runner import cli_runner

    spec = dataset_spec(args.dataset)
    if args.partition and len(args.paths) > 1:
        refuse("--partition names one file's partition; pass one file with it", as_json=args.json, dataset=spec.name)
    runner = cli_runner(home)
    summaries = []
    for path in args.paths:
        try:
            summary = ingest(runner, spec, Path(path), args.partition)
        except IngestRefused as exc:
            if summaries and not args.json:
                print(f"(ingested before the refusal: {', '.join(s['partition'] for s in summaries)})")
            refuse(str(exc), as_json=args.json, dataset=spec.name, file=path,
                   ingested=[s["partition"] for s in summaries])
        summaries.append(summary)
        if not args.json:
            print(format_summary(summary), flush=True)
    ok = all(s["ok"] for s in summaries)
    if args.json:
        output = summaries[0] if len(summaries) == 1 else {"ok": ok, "dataset": spec.name, "files": summaries}
        print(json.dumps(output, indent=2, default=str))
    elif ok:
        print(f"next: mlops-assets train {spec.name}   (or mlops-assets monitor {spec.name} against the champion)")
    return 0 if ok else 1
