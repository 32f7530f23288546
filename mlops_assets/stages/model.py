"""`<dataset>/model`: candidate pipelines compared, the best registered as `challenger`, promoted only if not worse.

Both checks are computed in the materialization (where the held-out rows are) and are blocking: a
challenger below the floor or worse than the champion stops `bento` from repackaging, and the run
says why with both scores. The champion alias moves only through `training.promotion` (compare-and-set).
"""

from urllib.parse import urlencode

import dagster as dg
from pydantic import Field

from mlops_assets.datasets.spec import METRICS_FOR_TASK, DatasetSpec
from mlops_assets.resources import MlflowTracking, Warehouse
from mlops_assets.stages import Stage, asset_key
from mlops_assets.tables import MissingInput

QUALITY_CHECK = "meets_quality_bar"
PROMOTION_CHECK = "not_worse_than_champion"


class TrainingConfig(dg.Config):
    """Run-time training options; the dataset spec holds everything else."""

    train_until: str | None = Field(
        default=None,
        description="Newest partition to train on (a day, or a file name); default: the newest ingested.",
    )
    candidates: list[str] | None = Field(
        default=None,
        description="Candidates to train, by name from the spec's training.candidates or an estimator kind "
        "(hist_gradient_boosting, random_forest, logistic_regression, ridge, dummy); default: the spec's list. "
        "The dummy baseline is always scored for reference.",
    )
    promotion_margin: float | None = Field(
        default=None, ge=0,
        description="How much better than the champion (primary metric) the challenger must be; default: the spec's.",
    )


def training_run_config(spec: DatasetSpec, **config) -> dict:
    """The `ops` run config giving `D/model` these `TrainingConfig` fields (e.g. `train_until=...`)."""
    return {asset_key(spec.name, Stage.MODEL).to_python_identifier(): {"config": TrainingConfig(**config).model_dump(exclude_none=True)}}


def _artifact_url(tracking: MlflowTracking, run_id: str, path: str) -> str:
    """Opens one artifact (e.g. a plot) straight from the MLflow UI server (`make mlflow-ui`)."""
    return f"{tracking.ui_url.rstrip('/')}/get-artifact?{urlencode({'path': path, 'run_uuid': run_id})}"


def _num(value) -> str:
    return "" if value is None or value != value else f"{value:.4f}"


def candidates_markdown(spec: DatasetSpec, trained) -> str:
    metric = spec.training.primary_metric
    columns = [metric, *[m for m in METRICS_FOR_TASK[spec.task] if m != metric]]
    lines = ["| candidate | estimator | " + " | ".join(columns) + " | fit s | |",
             "|---|---|" + "---|" * len(columns) + "---|---|"]
    for r in trained.candidates:
        role = "**winner**" if r.name == trained.winner else ("baseline" if r.candidate.baseline else "")
        name = f"**{r.name}**" if r.name == trained.winner else r.name
        lines.append(f"| {name} | {r.candidate.kind} | " + " | ".join(_num(r.metrics.get(c)) for c in columns)
                     + f" | {r.fit_seconds:.2f} | {role} |")
    return "\n".join(lines) + f"\n\n{trained.why}."


def promotion_markdown(decision, spec: DatasetSpec) -> str:
    head = ("**Promoted**" if decision.promoted else "**Already champion**"
            if decision.champion_after == decision.challenger_version else "**Rejected**")
    rows = [f"| challenger | v{decision.challenger_version} | {_num(decision.challenger_score)} |"]
    if decision.champion_version not in (None, decision.challenger_version):
        rows.append(f"| champion (before) | v{decision.champion_version} | {_num(decision.champion_score)} |")
    return (f"{head}: {decision.summary()}\n\n| | version | {decision.metric} |\n|---|---|---|\n" + "\n".join(rows)
            + f"\n\nChampion now: {'v' + decision.champion_after if decision.champion_after else 'none'}"
            + f" (`mlops-assets promote {spec.name} VERSION` moves it by hand).")


def build_model_asset(spec: DatasetSpec) -> dg.AssetsDefinition:
    key = asset_key(spec.name, Stage.MODEL)
    names = ", ".join(c.name for c in spec.training.candidates)

    @dg.asset(
        key=key,
        deps=[asset_key(spec.name, Stage.FEATURES)],
        group_name=spec.name,
        kinds={"scikitlearn", "mlflow"},
        description=f"{spec.task.title()} candidates for {spec.name} ({names}; dummy baseline) compared on "
        f"held-out rows by {spec.training.primary_metric}; the best registered in MLflow as "
        f"{spec.registered_model_name}@challenger and promoted to @champion only if not worse than it.",
        check_specs=[
            dg.AssetCheckSpec(QUALITY_CHECK, asset=key, blocking=True,
                              description=f"the challenger's validation metrics meet {dict(spec.training.min_metrics)}"),
            dg.AssetCheckSpec(PROMOTION_CHECK, asset=key, blocking=True,
                              description="the challenger scores at least as well as the champion (plus the "
                              "promotion margin) on the same held-out rows"),
        ],
    )
    def model(
        context: dg.AssetExecutionContext, config: TrainingConfig, warehouse: Warehouse, tracking: MlflowTracking,
    ) -> dg.MaterializeResult:
        import time

        from mlops_assets.training.promotion import PromotionError, champion_scorer, promote_if_better
        from mlops_assets.training.train import (
            ASSET_KEY_TAG,
            MlflowLoggingError,
            TrainingInputError,
            read_training_data,
            train_and_register,
            training_window,
        )

        def fail(message: str):
            return dg.Failure(description=message, allow_retries=False)

        from mlops_assets.recovery import end_dead_mlflow_runs

        # MLflow's first contact in this process (its import, the store) happens here: booked as MLflow's cost.
        setup_started, setup_cpu = time.perf_counter(), (time.process_time(), time.thread_time())
        for ended in end_dead_mlflow_runs(tracking, spec):
            context.log.warning(f"{spec.name}: MLflow run {ended} was left RUNNING by a dead process; ended as FAILED")
        setup = (time.perf_counter() - setup_started, time.process_time() - setup_cpu[0],
                 time.thread_time() - setup_cpu[1])
        run_id = context.run.run_id
        try:
            # Read, then close: an open DuckDB connection would block ingestion for the whole fit.
            with warehouse.connect(read_only=True) as con:
                window = training_window(con, spec, config.train_until)
                if not window.partitions and window.excluded:
                    raise fail(f"{spec.name}: every ingested partition failed an ingestion gate, nothing to train on: "
                               + "; ".join(f"{p!r}: {why}" for p, why in window.excluded.items())
                               + f"; ingest a cleaner file (`mlops-assets ingest {spec.name} FILE`)")
                data = read_training_data(con, spec, until=config.train_until, dagster_run_id=run_id)
            trained = train_and_register(
                data, spec, tracking, candidates=config.candidates,
                tags={"dagster_run_id": run_id, ASSET_KEY_TAG: key.to_user_string()},
            )
        except (MissingInput, TrainingInputError, MlflowLoggingError) as exc:
            raise fail(str(exc)) from None
        for partition, why in window.excluded.items():
            context.log.warning(f"{spec.name}: partition {partition!r} left out of the training window: {why}")
        context.log.info(f"{spec.name}: {trained.why}; registered v{trained.version} as challenger")
        trained.timings["mlflow_setup"] = setup[0]
        trained.cpu["mlflow_setup"] = {"process": setup[1], "thread": setup[2]}

        started, cpu_started = time.perf_counter(), (time.process_time(), time.thread_time())
        scorer = champion_scorer(tracking, spec, trained.valid_X, trained.valid_y)
        try:
            decision = promote_if_better(
                tracking, spec, challenger_version=trained.version, challenger_metrics=trained.metrics,
                rows=trained.rows_validation, scorer=scorer,
                margin=config.promotion_margin,
                floor_failures=trained.quality_failures, record_on_runs=[trained.parent_run_id, trained.run_id],
            )
        except PromotionError as exc:  # its message says where the alias stands
            raise fail(f"{exc}; challenger v{trained.version} is registered") from None
        except Exception as exc:  # raised before the alias write (reading or scoring the champion, the lock)
            raise fail(f"{spec.name}: promoting challenger v{trained.version} failed ({type(exc).__name__}: {exc}); "
                       "the champion alias was not moved; re-materialize or `mlops-assets promote`") from exc
        # Predicting with the champion is evaluation; loading it, the lock and the alias are the registry's cost.
        trained.timings["evaluating"] += scorer.seconds["scoring"]
        trained.timings["promotion"] = time.perf_counter() - started - scorer.seconds["scoring"]
        scoring_cpu = scorer.seconds["scoring_cpu"]  # predicting with the champion: evaluation, as above
        trained.cpu["evaluating"] = {k: v + scoring_cpu for k, v in trained.cpu.get("evaluating", {}).items()}
        trained.cpu["promotion"] = {"process": time.process_time() - cpu_started[0] - scoring_cpu,
                                    "thread": time.thread_time() - cpu_started[1] - scoring_cpu}
        context.log.info(decision.summary())

        plots = {f"plot_{p.split('/')[-1].removesuffix('.png')}": dg.MetadataValue.url(
            _artifact_url(tracking, trained.parent_run_id, p)) for p in trained.plots}
        scores = {"challenger_score": decision.challenger_score}
        if decision.champion_score is not None:
            scores["champion_score"] = decision.champion_score
        return dg.MaterializeResult(
            metadata={
                "registered_model": spec.registered_model_name,
                "version": trained.version,
                "champion": decision.champion_after == decision.challenger_version,
                "champion_version": decision.champion_after or "none",
                "previous_champion_version": decision.champion_version or "none",
                "promotion": dg.MetadataValue.md(promotion_markdown(decision, spec)),
                **scores,
                "winner": trained.winner,
                "why": trained.why,
                "candidates": dg.MetadataValue.md(candidates_markdown(spec, trained)),
                "model_uri": trained.model_uri,
                "mlflow_run": dg.MetadataValue.url(tracking.run_url(trained.experiment_id, trained.parent_run_id)),
                "mlflow_model_run": dg.MetadataValue.url(tracking.run_url(trained.experiment_id, trained.run_id)),
                "mlflow_parent_run_id": trained.parent_run_id,
                "mlflow_run_id": trained.run_id,
                **plots,
                "metrics": dg.MetadataValue.json(trained.metrics),
                **{f"metric_{k}": v for k, v in trained.metrics.items()},
                "feature_importance": dg.MetadataValue.json(dict(list(trained.importances.items())[:20])),
                "training_partitions": dg.MetadataValue.json(trained.partitions),
                "excluded_partitions": dg.MetadataValue.json(window.excluded),
                "validation": dg.MetadataValue.json(trained.validation),
                "training_window": f"{trained.partitions[0]} .. {trained.partitions[-1]} ({len(trained.partitions)} partitions)",
                "training_rows_per_partition": dg.MetadataValue.json(trained.partition_rows),
                "rows_train": trained.rows_train,
                "rows_validation": trained.rows_validation,
                "n_features": len(trained.feature_names),
                "code_version": trained.lineage["code_version"],
                "spec_hash": trained.lineage["spec_hash"],
                "timings": dg.MetadataValue.json({k: round(v, 3) for k, v in trained.timings.items()}),
                "cpu_seconds": dg.MetadataValue.json(
                    {phase: {k: round(v, 3) for k, v in c.items()} for phase, c in trained.cpu.items()}),
                "mlflow_warm_up": dg.MetadataValue.json({k: round(v, 3) for k, v in trained.warm_up.items()}),
                "mlflow_logging_detail": dg.MetadataValue.json(
                    {k: round(v, 3) for k, v in trained.logging_detail.items()}),
                "seconds": round(trained.seconds, 2),
            },
            check_results=[
                dg.AssetCheckResult(
                    check_name=QUALITY_CHECK,
                    passed=not trained.quality_failures,
                    metadata={k: v for k, v in trained.metrics.items() if v == v},
                    description="; ".join(trained.quality_failures) or None,
                ),
                dg.AssetCheckResult(
                    check_name=PROMOTION_CHECK,
                    passed=decision.not_worse,
                    metadata={"challenger_version": decision.challenger_version, **scores,
                              "compared_with_version": decision.champion_version or "none",
                              "margin": decision.margin, "rows": decision.rows, "promoted": decision.promoted,
                              "attempts": decision.attempts},
                    description=decision.summary(),
                ),
            ],
        )

    return model
