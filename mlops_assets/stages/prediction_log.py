"""`<dataset>/prediction_log`: what the served Bento answered, as an asset (rows, time range, model versions).

The service appends to the log on its own; materializing this asset reads it and reports it, so the
log shows up in the asset graph (bento -> prediction_log -> drift_report) and its history in the UI.
"""


import dagster as dg

from mlops_assets.datasets.spec import DatasetSpec
from mlops_assets.resources import HomeResource
from mlops_assets.stages import Stage, asset_key


def build_prediction_log_asset(spec: DatasetSpec) -> dg.AssetsDefinition:
    name = spec.name

    @dg.asset(
        key=asset_key(name, Stage.PREDICTION_LOG),
        deps=[asset_key(name, Stage.BENTO)],
        group_name=name,
        kinds={"arrow"},
        description=f"Every prediction the {name} Bento served (request id, time, model version, inputs, "
        "outputs) and the labels posted to its /feedback, appended under MLOPS_HOME by the service.",
    )
    def prediction_log(context: dg.AssetExecutionContext, home: HomeResource) -> dg.MaterializeResult:
        from mlops_assets.monitoring.prediction_log import summarize

        predictions, feedback = home.paths.predictions(name), home.paths.feedback(name)
        summary = summarize(predictions, feedback)
        context.log.info(f"{name}: {summary.rows} predictions logged ({summary.first} .. {summary.last}), "
                         f"{summary.labeled_rows} with feedback")
        versions = "\n".join(f"| {v} | {n} |" for v, n in summary.model_versions.items())
        return dg.MaterializeResult(
            metadata={
                "rows": summary.rows,
                "requests": summary.requests,
                "rows_last_hour": summary.rows_last_hour,
                "first_prediction": summary.first or "none",
                "last_prediction": summary.last or "none",
                "model_versions": dg.MetadataValue.json(summary.model_versions),
                "rows_by_version": dg.MetadataValue.md(
                    "| model version | rows |\n| --- | --- |\n" + (versions or "| (none) | 0 |")
                ),
                "endpoints": dg.MetadataValue.json(summary.endpoints),
                "feedback_rows": summary.feedback_rows,
                "labeled_predictions": summary.labeled_rows,
                "files": summary.files,
                "folder": dg.MetadataValue.path(str(predictions)),
                "feedback_folder": dg.MetadataValue.path(str(feedback)),
            }
        )

    return prediction_log
