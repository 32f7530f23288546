"""The lineage of a model: which files (by content hash), which code and which spec trained it.

Written once per training run as an MLflow artifact of the run that logged the model (and as run tags
for search), read back by the CLI (`lineage`), the Bento (labels, `/lineage`) and the monitoring
that needs to know what the champion has already seen.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import subprocess
from functools import cache
from typing import Any

import duckdb

from mlops_assets.datasets.spec import DatasetSpec
from mlops_assets.home import REPO_DIR
from mlops_assets.resources.tracking import MlflowTracking
from mlops_assets.tables import snapshot_id, table

LINEAGE_ARTIFACT = "lineage/lineage.json"
CODE_VERSION_TAG = "mlops.code_version"
SPEC_HASH_TAG = "mlops.spec_hash"
PARTITIONS_TAG = "mlops.partitions"
FILE_HASHES_TAG = "mlops.file_hashes"
DATA_HASH_TAG = "mlops.training_data_hash"
_MAX_TAG_CHARS = 8000  # MLflow refuses longer tag values
SNAPSHOT_TAG = "mlops.lake_snapshot"


@cache
def code_version() -> str:
    """The git commit of the checkout (with `+dirty` when it has changes), else the installed package version."""
    try:
        commit = subprocess.run(["git", "-C", str(REPO_DIR), "rev-parse", "HEAD"], capture_output=True, text=True,
                                timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(REPO_DIR), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10, check=True).stdout.strip()
        return commit + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        from importlib.metadata import PackageNotFoundError, version

        try:
            return "mlops_assets==" + version("mlops_assets")
        except PackageNotFoundError:
            return "unknown"


def spec_hash(spec: DatasetSpec) -> str:
    """sha256 of the spec's content (not of its location), so a model knows the exact spec it was built from."""
    content = spec.model_dump(mode="json", exclude={"spec_path"})
    return "sha256:" + hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()


def training_files(con: duckdb.DuckDBPyConnection, spec: DatasetSpec, partitions: list[str]) -> list[dict[str, Any]]:
    """Per training partition: the file it was read from, that file's content hash and the rows read."""
    placeholders = ", ".join("?" for _ in partitions)
    rows = con.execute(
        f"SELECT _partition, source_file, content_hash, rows_read FROM {table(spec, 'ingestion_contracts')} "
        f"WHERE _partition IN ({placeholders})",
        partitions,
    ).fetchall() if partitions else []
    by_partition = {r[0]: r for r in rows}
    return [
        {"partition": p, "file": by_partition[p][1] if p in by_partition else None,
         "content_hash": by_partition[p][2] if p in by_partition else None,
         "rows_read": by_partition[p][3] if p in by_partition else None}
        for p in partitions
    ]


def build_lineage(
    con: duckdb.DuckDBPyConnection, spec: DatasetSpec, partitions: list[str], *, dagster_run_id: str | None = None
) -> dict[str, Any]:
    """What trained a model, known before training starts; training adds the model's own fields
    (model_version, mlflow_run_id, mlflow_parent_run_id, decision_threshold, winner, candidates, validation).

    `snapshot_id` is the warehouse snapshot the connection read (one snapshot per transaction), so the exact
    training tables can be read back later with `... AT (VERSION => snapshot_id)`; it is left out where the
    warehouse has no snapshots."""
    snapshot = snapshot_id(con)
    return {
        **({"snapshot_id": snapshot} if snapshot is not None else {}),
        "dataset": spec.name,
        "registered_model": spec.registered_model_name,
        "dagster_run_id": dagster_run_id,
        "code_version": code_version(),
        "spec_hash": spec_hash(spec),
        "trained_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "partitions": training_files(con, spec, partitions),
    }


def training_data_hash(lineage: dict[str, Any]) -> str:
    """One hash for "the exact files this model saw": equal hashes mean the same training data."""
    parts = sorted(f"{p['partition']}={p['content_hash']}" for p in lineage["partitions"])
    return "sha256:" + hashlib.sha256("\n".join(parts).encode()).hexdigest()


def lineage_tags(lineage: dict[str, Any]) -> dict[str, str]:
    """Searchable run tags: code version, spec hash, partitions and file hashes (summarised past MLflow's limit)."""
    partitions = [p["partition"] for p in lineage["partitions"]]
    listed = json.dumps(partitions)
    if len(listed) > _MAX_TAG_CHARS:
        listed = f"{partitions[0]}..{partitions[-1]} ({len(partitions)} partitions; all in {LINEAGE_ARTIFACT})"
    hashes = json.dumps({p["partition"]: p["content_hash"] for p in lineage["partitions"]})
    tags = {
        CODE_VERSION_TAG: lineage["code_version"],
        SPEC_HASH_TAG: lineage["spec_hash"],
        PARTITIONS_TAG: listed,
        DATA_HASH_TAG: training_data_hash(lineage),
    }
    if "snapshot_id" in lineage:
        tags[SNAPSHOT_TAG] = str(lineage["snapshot_id"])
    if len(hashes) <= _MAX_TAG_CHARS:
        tags[FILE_HASHES_TAG] = hashes
    return tags


def log_lineage(lineage: dict[str, Any]) -> None:
    """Attach `lineage` to the active MLflow run (artifact + searchable tags)."""
    import mlflow

    mlflow.log_dict(lineage, LINEAGE_ARTIFACT)
    mlflow.set_tags(lineage_tags(lineage))


def load_lineage(tracking: MlflowTracking, run_id: str) -> dict[str, Any]:
    """The lineage logged by the training run `run_id` ({} for runs from before lineage was recorded)."""
    import mlflow.artifacts
    from mlflow.exceptions import MlflowException

    tracking.setup()
    try:
        return mlflow.artifacts.load_dict(f"runs:/{run_id}/{LINEAGE_ARTIFACT}")
    except (MlflowException, OSError):
        return {}
