"""`<dataset>/raw`: the landing file registered as the partition's raw data, its contract checked."""


import datetime as dt

import dagster as dg

from mlops_assets.datasets.spec import DatasetSpec
from mlops_assets.resources import HomeResource, Warehouse
from mlops_assets.stages import Stage, asset_key
from mlops_assets.stages.failures import user_failures

CONTRACT_CHECK = "matches_established_contract"


def build_raw_asset(spec: DatasetSpec, partitions_def: dg.PartitionsDefinition) -> dg.AssetsDefinition:
    key = asset_key(spec.name, Stage.RAW)

    @dg.asset(
        key=key,
        partitions_def=partitions_def,
        group_name=spec.name,
        kinds={"csv", "duckdb"},
        description=f"The landing CSV of {spec.name} registered as raw data: sniffed dialect, header matched to "
        "the spec, content hash, every version kept; its ingestion contract is checked against the dataset's.",
        check_specs=[
            dg.AssetCheckSpec(
                CONTRACT_CHECK, asset=key, blocking=True,
                description="the file's delimiter, encoding, header, columns and column types match the dataset's "
                "established contract (pinned in the spec, else learned from its first file)",
            )
        ],
    )
    def raw(context: dg.AssetExecutionContext, home: HomeResource, warehouse: Warehouse) -> dg.MaterializeResult:
        from mlops_assets.files import sweep_temporaries
        from mlops_assets.ingest.contract import contract_differences, established_contract
        from mlops_assets.ingest.dialect import UnreadableFile
        from mlops_assets.ingest.landing import first_contract, register_file

        partition = context.partition_key
        paths = home.paths
        path = paths.landing_file(spec.name, partition, daily=spec.is_daily)
        for folder in (paths.landing(spec.name), paths.archive(spec.name)):
            for leftover in sweep_temporaries(folder):
                context.log.info(f"removed {leftover}, left by a writer that died")
        if not path.exists() and spec.source.kind == "generator":
            from mlops_assets.datasets.generator import write_day

            with user_failures(f"{spec.name}/raw"):
                write_day(path.parent, dt.date.fromisoformat(partition), spec.source.rows_per_day,
                          seed=spec.source.seed)
            context.log.info(f"generated {path} ({spec.source.rows_per_day} rows)")
        if not path.exists():
            raise dg.Failure(
                description=f"{spec.name}/raw: no landing file for partition {partition!r}: expected {path}. "
                "Drop the CSV there.",
                allow_retries=False,
            )
        archive = paths.archive(spec.name) if spec.source.kind == "file_drop" else None
        with user_failures(f"{spec.name}/raw"):
            try:
                with warehouse.connect() as con:
                    raw_file = register_file(con, spec, path, partition, archive_dir=archive)
                    first = first_contract(con, spec, exclude_partition=partition)
            except UnreadableFile as exc:
                raise dg.Failure(
                    description=str(exc), metadata={"file": dg.MetadataValue.path(str(path))}, allow_retries=False
                ) from None
        contract = raw_file.dialect.to_metadata()
        established = established_contract(first[1] if first else None, spec.contract)
        differences = contract_differences(contract, established) if established else []
        against = first[0] if first else "the spec's pinned contract"
        if raw_file.previous_hash:
            kept = f"every version is kept in {archive}" if archive else "the generator can rewrite earlier versions"
            context.log.warning(f"{path.name}: content changed since the last ingest; version {raw_file.version} "
                                f"replaces {raw_file.previous_hash[:19]} ({kept})")
        return dg.MaterializeResult(
            metadata={
                "file": dg.MetadataValue.path(str(path)),
                "content_hash": raw_file.content_hash,
                "size_bytes": raw_file.size_bytes,
                "delimiter": repr(raw_file.dialect.delimiter),
                "encoding": raw_file.dialect.encoding,
                "header": raw_file.dialect.has_header,
                "sample_rows": raw_file.dialect.sample_rows,
                "ingestion_contract": dg.MetadataValue.json(contract),
                "file_version": raw_file.version,
                "previous_hash": raw_file.previous_hash or "",
                **({"archived_copy": dg.MetadataValue.path(str(raw_file.archived_copy))} if raw_file.archived_copy else {}),
                **({"ignored_columns": dg.MetadataValue.json(raw_file.ignored_columns)} if raw_file.ignored_columns else {}),
            },
            data_version=dg.DataVersion(raw_file.content_hash),
            check_results=[
                dg.AssetCheckResult(
                    check_name=CONTRACT_CHECK,
                    passed=not differences,
                    metadata={"established_by": against, "differences": dg.MetadataValue.json(differences)},
                    description=f"{path.name} differs from the contract established by {against}: "
                    + "; ".join(differences) + ". Fix the file, or pin the new contract in the dataset spec "
                    "(`contract:`) and re-materialize"
                    if differences else None,
                )
            ],
        )

    return raw
