"""Champion -> BentoML: copy the champion into the BentoML model store and build the Bento that serves it.

A Bento must stand alone: `bentoml serve <bento tag>` with only `BENTOML_HOME` set serves the dataset's
model. So everything the service needs is recorded in the Bento at build, through public BentoML APIs:

- the exact model tag and the service contract (request and label schema from the spec, where the
  prediction log goes under MLOPS_HOME) as Bento *build arguments* (`bentoml.use_arguments()`);
  `bentoml serve <tag>` re-applies a Bento's recorded arguments before importing the service (checked:
  the bentofile's `envs` are not applied by `bentoml serve`, only baked into container images);
- the model's lineage (training files by content hash, code version) and decision threshold as the
  Bento model's metadata, so `/lineage` answers without MLflow at runtime.

`bento/` never imports this package: the contract is plain JSON.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
from pathlib import Path
from typing import Any

from mlops_assets.datasets.spec import DatasetSpec
from mlops_assets.home import BENTO_DIR, MlopsHome

# Raise when the contract's shape changes in a way an older service.py could not read.
CONTRACT_VERSION = 1


def input_schema(spec: DatasetSpec) -> list[dict]:
    """The request fields: every cleaned column except the target; features are required."""
    return [
        {
            "name": c.name,
            "type": c.type,
            "required": c.role == "feature",
            "min": c.min,
            "max": c.max,
            "values": list(c.values) if c.values else None,
        }
        for c in spec.columns
        if c.role != "target"
    ]


def service_contract(spec: DatasetSpec, home: MlopsHome) -> dict[str, Any]:
    """What the service of `spec` accepts and where it writes, as the JSON the Bento carries."""
    target = spec.target_column
    return {
        "contract_version": CONTRACT_VERSION,
        "dataset": spec.name,
        "task": spec.task,
        "key": spec.key,
        "inputs": input_schema(spec),
        "target": {"name": target.name, "type": target.type, "min": target.min, "max": target.max},
        "layout": home.serving_layout(spec.name),
    }


def import_champion(
    bentoml,
    spec: DatasetSpec,
    model_version,
    load_pipeline,
    *,
    contract: dict[str, Any],
    lineage: dict[str, Any],
    threshold: float | None = None,
) -> tuple[str, bool]:
    """Save the champion pipeline to the model store once per MLflow version; returns (tag, reused)."""
    metadata = {
        "task": spec.task,
        "target": spec.target,
        "key": spec.key or "",
        "input_schema": json.dumps(contract["inputs"]),
        "contract": json.dumps(contract, sort_keys=True),
        "lineage": json.dumps(lineage, sort_keys=True),
        "decision_threshold": 0.5 if threshold is None else float(threshold),
    }
    try:
        stored = bentoml.models.list(spec.bento_model_name)
    except bentoml.exceptions.NotFound:
        stored = []
    for existing in stored:
        labels, old = existing.info.labels, existing.info.metadata
        if (
            labels.get("mlflow_version") == str(model_version.version)
            and labels.get("mlflow_run_id") == model_version.run_id
            and all(old.get(k) == metadata[k] for k in ("contract", "lineage"))
        ):
            return str(existing.tag), True
    saved = bentoml.sklearn.save_model(
        spec.bento_model_name,
        load_pipeline(),
        labels={
            "dataset": spec.name,
            "mlflow_model": spec.registered_model_name,
            "mlflow_version": str(model_version.version),
            "mlflow_run_id": model_version.run_id,
        },
        metadata=metadata,
    )
    return str(saved.tag), False


def build_bento(
    bentoml, spec: DatasetSpec, model_tag: str, contract: dict[str, Any], bento_dir: Path = BENTO_DIR
) -> tuple[str, str]:
    """Build `bento/` serving exactly `model_tag`; returns (bento tag, path in the bento store).

    The version is chosen here (time + random suffix, like BentoML's own) so the build time the
    service reports in `/lineage` is the one in the tag's record, without reading BentoML internals.
    """
    built_at = dt.datetime.now(dt.UTC)
    name = spec.bento_service_name
    version = built_at.strftime("%Y%m%d%H%M%S") + secrets.token_hex(3)
    bento = bentoml.bentos.build_bentofile(
        str(bento_dir / "bentofile.yaml"),
        build_ctx=str(bento_dir),
        name=name,
        version=version,
        labels={"dataset": spec.name, "model": model_tag},
        args={
            "model_tag": model_tag,
            "service_name": name,
            "bento_tag": f"{name}:{version}",
            "contract": json.dumps(contract, sort_keys=True),
            "built_at": built_at.isoformat(timespec="seconds"),
        },
        reload=True,
    )
    return str(bento.tag), str(bento.path)
