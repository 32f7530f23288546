"""`<dataset>/raw`: the landing file registered as the partition's raw data, its contract checked."""


import datetime as dt
from pathlib import Path

import dagster as dg

from mlops_assets.datasets.spec import DatasetSpec
from mlops_assets.home import MlopsHome
from mlops_assets.resources import FileStorage, Warehouse
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
    def raw(context: dg.AssetExecutionContext, storage: FileStorage, warehouse: Warehouse) -> dg.MaterializeResult:
        from mlops_assets.ingest.contract import contract_differences, established_contract
        from mlops_assets.ingest.dialect import UnreadableFile
        from mlops_assets.ingest.landing import first_contract, register_file

        partition = context.partition_key
        key = MlopsHome.landing_key(spec.name, partition, daily=spec.is_daily)
        location = storage.uri(key)
        for prefix in (MlopsHome.landing_prefix(spec.name), MlopsHome.archive_prefix(spec.name)):
            for leftover in storage.sweep_temporaries(prefix):
                context.log.info(f"removed {leftover}, left by a writer that died")
        if not storage.exists(key) and spec.source.kind == "generator":
            from mlops_assets.datasets.generator import write_day_to

            with user_failures(f"{spec.name}/raw"), storage.writing(key) as temporary:
                write_day_to(temporary, dt.date.fromisoformat(partition), spec.source.rows_per_day,
                             seed=spec.source.seed)
            context.log.info(f"generated {location} ({spec.source.rows_per_day} rows)")
        if not storage.exists(key):
            raise dg.Failure(
                description=f"{spec.name}/raw: no landing file for partition {partition!r}: expected {location}. "
                "Drop the CSV there.",
                allow_retries=False,
            )
        archive = None
        if spec.source.kind == "file_drop":  # keep every distinct version a user dropped
            def archive(local: Path, content_hash: str) -> str:
                return storage.archive(local, spec.name, partition, content_hash)
        archive_where = storage.uri(MlopsHome.archive_prefix(spec.name))
        with user_failures(f"{spec.name}/raw"):
            try:
                with storage.local_copy(location) as local, warehouse.connect() as con:
                    raw_file = register_file(con, spec, local, partition, archive=archive, location=location)
                    first = first_contract(con, spec, exclude_partition=partition)
            except UnreadableFile as exc:
                raise dg.Failure(
                    description=str(exc), metadata={"file": dg.MetadataValue.path(location)}, allow_retries=False
                ) from None
        contract = raw_file.dialect.to_metadata()
        established = established_contract(first[1] if first else None, spec.contract)
        differences = contract_differences(contract, established) if established else []
        against = first[0] if first else "the spec's pinned contract"
        if raw_file.previous_hash:
            kept = f"every version is kept in {archive_where}" if archive else "the generator can rewrite earlier versions"
            context.log.warning(f"{Path(location).name}: content changed since the last ingest; version {raw_file.version} "
                                f"replaces {raw_file.previous_hash[:19]} ({kept})")
        return dg.MaterializeResult(
            metadata={
                "file": dg.MetadataValue.path(location),
                "content_hash": raw_file.content_hash,
                "size_bytes": raw_file.size_bytes,
                "delimiter": repr(raw_file.dialect.delimiter),
                "encoding": raw_file.dialect.encoding,
                "header": raw_file.dialect.has_header,
                "sample_rows": raw_file.dialect.sample_rows,
                "ingestion_contract": dg.MetadataValue.json(contract),
                "file_version": raw_file.version,
                "previous_hash": raw_file.previous_hash or "",
                **({"archived_copy": dg.MetadataValue.path(raw_file.archived_copy)} if raw_file.archived_copy else {}),
                **({"ignored_columns": dg.MetadataValue.json(raw_file.ignored_columns)} if raw_file.ignored_columns else {}),
            },
            data_version=dg.DataVersion(raw_file.content_hash),
            check_results=[
                dg.AssetCheckResult(
                    check_name=CONTRACT_CHECK,
                    passed=not differences,
                    metadata={"established_by": against, "differences": dg.MetadataValue.json(differences)},
                    description=f"{Path(location).name} differs from the contract established by {against}: "
                    + "; ".join(differences) + ". Fix the file, or pin the new contract in the dataset spec "
                    "(`contract:`) and re-materialize"
                    if differences else None,
                )
            ],
        )

    return raw
