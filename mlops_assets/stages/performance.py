"""`<dataset>/performance`: the champion scored on each newly labeled partition, against its validation score.

A drop of the primary metric beyond the spec's tolerance, on data the champion was not trained on,
is retrain evidence of its own (the check errors; `retrain_on_drift` acts on it).
"""

import dagster as dg

from mlops_assets.datasets.spec import DatasetSpec
from mlops_assets.resources import MlflowTracking, Warehouse
from mlops_assets.stages import Stage, asset_key
from mlops_assets.stages.failures import user_failures
from mlops_assets.tables import table

PERFORMANCE_CHECK = "performance_within_tolerance"


def build_performance_asset(spec: DatasetSpec, partitions_def: dg.PartitionsDefinition) -> dg.AssetsDefinition:
    name = spec.name
    key = asset_key(name, Stage.PERFORMANCE)
    primary = spec.training.primary_metric

    @dg.asset(
        key=key,
        deps=[asset_key(name, Stage.CLEANED), asset_key(name, Stage.MODEL)],
        partitions_def=partitions_def,
        group_name=name,
        kinds={"scikitlearn"},
        description=f"The {name} champion's {primary} on each newly labeled partition, compared with its validation "
        f"score; a relative drop over {spec.drift.performance_tolerance:.0%} is retrain evidence.",
        check_specs=[dg.AssetCheckSpec(PERFORMANCE_CHECK, asset=key,
                                       description=f"{primary} within {spec.drift.performance_tolerance:.0%} of "
                                       "the champion's validation score")],
    )
    def performance(context: dg.AssetExecutionContext, warehouse: Warehouse, tracking: MlflowTracking) -> dg.MaterializeResult:
        from mlops_assets.monitoring.performance import INTERVAL, assess, labeled_rows
        from mlops_assets.training.lineage import load_lineage
        from mlops_assets.training.registry import champion, load_champion_pipeline

        partition = context.partition_key
        version = champion(tracking, spec)
        if version is None:  # the first partitions arrive before any model: nothing to score yet, not a failure
            context.log.info(f"{name}: no champion yet; {partition} is scored once one exists (re-materialize)")
            return dg.MaterializeResult(
                metadata={"scored": False, "reason": "no champion yet"},
                check_results=[dg.AssetCheckResult(check_name=PERFORMANCE_CHECK, passed=True,
                                                   description="no champion yet: nothing to score")],
            )
        with user_failures(f"{name}/performance"), warehouse.connect(read_only=True) as con:
            rows = labeled_rows(con, spec, partition)
            cleaned = con.execute(f"SELECT count(*) FROM {table(spec, 'cleaned')} WHERE _partition = ?",
                                  [partition]).fetchone()[0]
        if rows.empty:
            # Served data often arrives before its labels: a finding for the UI, not a failed ingest, and no
            # retrain evidence. Re-materialize the partition once its labels are in.
            reason = (f"no labels: none of the {cleaned} cleaned rows of {partition} has a {spec.target}"
                      if cleaned else f"no labels: {partition} has no cleaned rows")
            context.log.info(f"{name}: {partition} not scored ({reason})")
            return dg.MaterializeResult(
                metadata={"scored": False, "reason": reason, "rows_cleaned": int(cleaned), "rows_labeled": 0,
                          "champion_version": str(version.version), "retrain_evidence": False},
                check_results=[dg.AssetCheckResult(check_name=PERFORMANCE_CHECK, passed=True,
                                                   description=f"not scored: {reason}")],
            )
        run = tracking.client().get_run(version.run_id)
        pipeline = load_champion_pipeline(tracking, spec, version)
        report = assess(spec, partition, pipeline, rows, run.data.metrics.get("decision_threshold"),
                        dict(run.data.metrics))
        trained_on = {p["partition"] for p in load_lineage(tracking, version.run_id).get("partitions", [])}
        in_training = partition in trained_on
        evidence = report.dropped and not in_training
        shown = {k: v for k, v in report.metrics.items() if v == v}  # NaN-free for the UI
        return dg.MaterializeResult(
            metadata={
                "scored": True,
                "champion_version": str(version.version),
                "rows_scored": report.rows,
                "metrics": dg.MetadataValue.json(shown),
                f"{primary}": report.current,
                f"validation_{primary}": report.validation,
                "relative_drop": report.relative_drop,
                f"{primary}_interval_{int(INTERVAL * 100)}": dg.MetadataValue.json(
                    list(report.interval) if report.interval else None),
                "tolerance": spec.drift.performance_tolerance,
                "dropped": report.dropped,
                "in_training_window": in_training,
                "retrain_evidence": evidence,
            },
            check_results=[dg.AssetCheckResult(
                check_name=PERFORMANCE_CHECK,
                passed=not report.dropped,
                severity=dg.AssetCheckSeverity.ERROR if evidence else dg.AssetCheckSeverity.WARN,
                metadata={f"{primary}": report.current, f"validation_{primary}": report.validation},
                description=None if not report.dropped else
                f"{primary} {report.current:.4f} vs validation {report.validation:.4f} "
                f"({report.relative_drop:.0%} worse, tolerance {spec.drift.performance_tolerance:.0%})"
                + (" on a partition the champion trained on" if in_training else ""),
            )],
        )

    return performance
