"""`<dataset>/cleaned`: typed rows that pass the spec's checks; the rest quarantined with line and reason."""


import warnings

import dagster as dg

from mlops_assets.datasets.spec import DatasetSpec
from mlops_assets.ingest.gates import QUARANTINE_CHECK, quarantine_gates
from mlops_assets.resources import FileStorage, Warehouse
from mlops_assets.stages import Stage, asset_key
from mlops_assets.stages.failures import user_failures

ROWS_CONSERVED_CHECK = "rows_conserved"


def column_schema_metadata(spec: DatasetSpec) -> dg.TableSchema:
    """The pandera schema generated from the spec, as Dagster shows column schemas (via dagster-pandera)."""
    from dagster_pandera import pandera_schema_to_dagster_type

    from mlops_assets.ingest.cleaning import pandera_schema

    with warnings.catch_warnings():
        # dagster-pandera is marked beta; its schema conversion is what we want from it.
        warnings.simplefilter("ignore", dg.BetaWarning)
        return pandera_schema_to_dagster_type(pandera_schema(spec)).metadata["schema"].value


def build_cleaned_asset(spec: DatasetSpec, partitions_def: dg.PartitionsDefinition) -> dg.AssetsDefinition:
    key = asset_key(spec.name, Stage.CLEANED)
    limit = spec.quality.max_quarantine_share

    @dg.asset(
        key=key,
        deps=[asset_key(spec.name, Stage.RAW)],
        partitions_def=partitions_def,
        group_name=spec.name,
        kinds={"duckdb", "pandera"},
        description=f"Typed rows of {spec.name} read from the raw file in one scan that pass the spec's checks "
        "(pandera-validated); every other row is quarantined with file, line, column and reason.",
        metadata={
            "dagster/column_schema": column_schema_metadata(spec),
            "dagster/table_name": f"warehouse.{spec.name}.cleaned",
        },
        check_specs=[
            dg.AssetCheckSpec(ROWS_CONSERVED_CHECK, asset=key, blocking=True,
                              description="rows the reader produced = rows stored in the cleaned partition + rows "
                              "stored in quarantine for the file, counted from the tables after publishing"),
            dg.AssetCheckSpec(QUARANTINE_CHECK, asset=key, blocking=True,
                              description=f"quarantined share <= {limit:.0%}"),
        ],
    )
    def cleaned(context: dg.AssetExecutionContext, warehouse: Warehouse, storage: FileStorage) -> dg.MaterializeResult:
        from mlops_assets.ingest.cleaning import clean_partition, preview_partition

        partition = context.partition_key
        with user_failures(f"{spec.name}/cleaned"), warehouse.connect() as con:
            result = clean_partition(con, spec, partition, local_copy=storage.local_copy)
            preview = preview_partition(con, spec, partition)
            gate = quarantine_gates(con, spec, [partition])[partition]  # the rule training applies too
        reasons = "\n".join(f"| {why} | {count} |" for why, count in result.quarantine_reasons.items())
        stored = result.rows_cleaned + result.rows_quarantined
        return dg.MaterializeResult(
            metadata={
                "rows_read": result.rows_read,
                "rows_cleaned": result.rows_cleaned,
                "rows_quarantined": result.rows_quarantined,
                "quarantine_share": gate.share,
                "rows_validated_by_pandera": result.rows_validated,
                "quarantine_reasons": dg.MetadataValue.md("| column: reason | rows |\n|---|---|\n" + reasons)
                if reasons else "none",
                "quarantine_reason_counts": dg.MetadataValue.json(dict(result.quarantine_reasons)),
                "preview": dg.MetadataValue.md(preview.to_markdown(index=False)),
                "dagster/row_count": result.rows_cleaned,
            },
            check_results=[
                dg.AssetCheckResult(
                    check_name=ROWS_CONSERVED_CHECK,
                    passed=result.rows_read == stored,
                    metadata={"rows_read": result.rows_read, "rows_cleaned": result.rows_cleaned,
                              "rows_quarantined": result.rows_quarantined},
                    description=None if result.rows_read == stored else
                    f"the reader produced {result.rows_read} rows but {stored} are stored "
                    f"({result.rows_cleaned} cleaned + {result.rows_quarantined} quarantined); re-materialize "
                    f"{spec.name}/cleaned for {partition!r} and report the difference if it persists",
                ),
                dg.AssetCheckResult(
                    check_name=QUARANTINE_CHECK,
                    passed=gate.passed,
                    metadata={"quarantine_share": gate.share, "limit": gate.limit},
                    description=None if gate.passed else
                    f"{gate.problem}; see table {spec.name}.quarantine. The rows are kept; features and training "
                    "leave this partition out until a cleaner file is ingested under its name",
                ),
            ],
        )

    return cleaned
