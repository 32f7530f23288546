"""`mlops-assets train D`: fit, register and package D's model through `<D>_train`, the job the UI runs.

The model never trains on an older window than the user ingested: cleaned partitions of the window
whose features are missing or out of date are built first (through `<D>_ingest`, features only, so
those runs show in the UI too), or with `--no-build-features` training stops and names them.
"""

from __future__ import annotations

import argparse
from typing import Any

from mlops_assets.cli.runner import Runner, check_results, failures, materialization_metadata
from mlops_assets.datasets.factory import job_name
from mlops_assets.datasets.spec import DatasetSpec
from mlops_assets.home import MlopsHome
from mlops_assets.stages import Stage, asset_key
from mlops_assets.stages.model import PROMOTION_CHECK, QUALITY_CHECK, training_run_config
from mlops_assets.tables import MissingInput

TAGS = {"mlops/trigger": "cli-train"}


class NothingToTrain(Exception):
    """No usable input for training; the message says what to run first."""


def training_plan(home: MlopsHome, spec: DatasetSpec, until: str | None):
    """(the training window, those of its partitions whose features are missing or stale), read and closed.

    The window leaves out partitions that failed a blocking ingestion gate (`window.excluded`): their
    features are never built here, and the model asset leaves them out the same way.
    """
    from mlops_assets.definitions import profile_resources
    from mlops_assets.training.train import stale_feature_partitions, training_window

    nothing = f"{spec.name} has no ingested rows to train on; run `mlops-assets ingest {spec.name} FILE` first"
    # Read what is needed and close (one snapshot): the runs below write while nothing here is held.
    with profile_resources(home) as resources:
        if not resources.warehouse.exists():
            raise NothingToTrain(nothing)
        with resources.warehouse.connect(read_only=True) as con:
            try:
                window = training_window(con, spec, until)
            except MissingInput as exc:
                raise NothingToTrain(str(exc)) from None
            if not window.partitions:
                if window.excluded:
                    nothing = (f"{spec.name}: every ingested partition failed an ingestion gate, so nothing is left to "
                               "train on: " + "; ".join(f"{p}: {why}" for p, why in window.excluded.items())
                               + f"; ingest a cleaner file with `mlops-assets ingest {spec.name} FILE`")
                raise NothingToTrain(nothing)
            return window, stale_feature_partitions(con, spec, window.partitions)


def train(runner: Runner, spec: DatasetSpec, *, until: str | None = None, build_features: bool = True) -> dict[str, Any]:
    """Bring the window's features up to date (or not), run `<D>_train`; returns the summary the CLI prints."""
    window, stale = training_plan(runner.home, spec, until)
    built: list[str] = []
    if build_features:
        for partition in stale:
            result = runner.execute(job_name(spec.name, "ingest"), partition,
                                    asset_selection=[asset_key(spec.name, Stage.FEATURES)], tags=TAGS)
            problems = failures(result)
            if problems:
                return _summary(spec, window, built, None, [f"building features for {partition!r}: {p}" for p in problems])
            built.append(partition)
    ops_config = training_run_config(spec, train_until=until) if until else None
    result = runner.execute(job_name(spec.name, "train"), tags=TAGS, ops_config=ops_config)
    return _summary(spec, window, built, result, failures(result))


def _summary(spec: DatasetSpec, window, built: list[str], result, problems: list[str]) -> dict[str, Any]:
    model = materialization_metadata(result, asset_key(spec.name, Stage.MODEL)) if result else {}
    bento = materialization_metadata(result, asset_key(spec.name, Stage.BENTO)) if result else {}
    return {
        "ok": not problems,
        "dataset": spec.name,
        "features_built": built,
        "training_partitions": model.get("training_partitions", window.partitions),
        "excluded_partitions": model.get("excluded_partitions", window.excluded),
        "training_rows_per_partition": model.get("training_rows_per_partition"),
        "registered_model": spec.registered_model_name,
        "version": model.get("version"),
        "champion": model.get("champion"),
        "primary_metric": spec.training.primary_metric,
        "metrics": model.get("metrics"),
        "rows_train": model.get("rows_train"),
        "rows_validation": model.get("rows_validation"),
        "mlflow_run": model.get("mlflow_run"),
        "bento": bento.get("bento"),
        "checks": check_results(result) if result else {},
        "problems": problems,
        "dagster_run_id": result.run_id if result else None,
    }


def champion_line(summary: dict[str, Any]) -> str:
    """Whether the new version became champion, and if not, which check said no (from the run's checks)."""
    if summary["champion"]:
        return "yes (alias `champion` moved to this version)"
    checks = summary.get("checks") or {}
    quality, promotion = checks.get(QUALITY_CHECK), checks.get(PROMOTION_CHECK)
    if quality and not quality["passed"]:
        return (f"no: it misses the quality bar (training.min_metrics: {quality['description'] or 'see the run'}); "
                "the champion is unchanged")
    if promotion and not promotion["passed"]:
        return (f"no: it meets the quality bar but does not beat the champion ({promotion['description'] or 'see the run'}); "
                "the champion is unchanged")
    return "no: the champion alias was not moved; the run's problems below say why"


def _partitions(summary: dict[str, Any]) -> str:
    partitions = summary["training_partitions"] or []
    rows = summary["training_rows_per_partition"] or {}
    shown = ", ".join(f"{p} ({rows[p]} rows)" if p in rows else p for p in partitions[-6:])
    return f"{len(partitions)} partition(s): {'..., ' if len(partitions) > 6 else ''}{shown}"


def format_summary(summary: dict[str, Any]) -> str:
    name = summary["dataset"]
    trained = bool(summary["version"])
    problems = list(summary["problems"])
    lines = [f"{name}: " + (f"model {summary['registered_model']} v{summary['version']}" if trained
                            else "no model trained")]
    if summary["features_built"]:
        lines.append(f"  features    built first for {', '.join(summary['features_built'])}")
    if trained:
        lines.append(f"  trained on  {_partitions(summary)}")
    else:
        lines.append(f"  window      would have trained on {_partitions(summary)}")
        lines.append(f"  stopped     {problems.pop(0) if problems else 'no model was registered; see the Dagster UI'}")
    for partition, why in (summary.get("excluded_partitions") or {}).items():
        lines.append(f"  left out    {partition}: {why}")
    if summary["metrics"]:
        primary = summary["primary_metric"]
        metrics = sorted(summary["metrics"].items(), key=lambda kv: (kv[0] != primary, kv[0]))
        lines.append("  metrics     " + ", ".join(f"{k}={v:.4f}" for k, v in metrics))
        lines.append(f"  rows        train {summary['rows_train']}, validation {summary['rows_validation']}")
    if trained:
        lines.append("  champion    " + champion_line(summary))
    if summary["mlflow_run"]:
        lines.append(f"  mlflow      {summary['mlflow_run']}")
    if summary["bento"]:
        lines.append(f"  bento       {summary['bento']}")
    for problem in problems:
        lines.append(f"  problem     {problem}")
    if summary["ok"]:
        lines.append(f"next: mlops-assets serve {name}   |   mlops-assets monitor {name} after the next ingest")
    return "\n".join(lines)


def add_parser(sub) -> argparse.ArgumentParser:
    parser = sub.add_parser(
        "train", help="train, register and package a dataset's model (the <dataset>_train job)",
        description="Train on the newest window of ingested partitions, register the model in MLflow, move the "
        "`champion` alias when it meets the spec's quality bar, and build its Bento. Exit 0 on success, 1 when "
        "a step or check failed (e.g. the quality bar: the model is registered but not promoted), 2 when there "
        "is nothing to train on.",
    )
    parser.add_argument("dataset")
    parser.add_argument("--until", default=None, metavar="PARTITION",
                        help="newest partition to train on (a day, or a file name); default: the newest ingested")
    parser.add_argument("--no-build-features", dest="build_features", action="store_false",
                        help="do not build missing or stale features first: fail, naming the partitions")
    parser.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    return parser


def run(args: argparse.Namespace, home: MlopsHome) -> int:
    from mlops_assets.cli.errors import run_job_verb

    def act(runner: Runner, spec: DatasetSpec) -> dict[str, Any]:
        return train(runner, spec, until=args.until, build_features=args.build_features)

    return run_job_verb(args, home, act, NothingToTrain, format_summary)
