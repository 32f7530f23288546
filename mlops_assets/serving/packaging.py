"""Champion -> BentoML: copy the champion into the BentoML model store and build the Bento.

The Bento model carries what the service needs to check requests at the boundary (the input schema
from the spec) and to say which model answered (MLflow name + version), so `bento/` never imports
training code.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

from mlops_assets.datasets.spec import DatasetSpec
from mlops_assets.home import BENTO_DIR


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


@contextlib.contextmanager
def _env(**values: str) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def import_champion(bentoml, spec: DatasetSpec, model_version, load_pipeline, threshold: float | None = None) -> tuple[str, bool]:
    """Save the champion pipeline to the model store once per MLflow version; returns (tag, reused)."""
    try:
        stored = bentoml.models.list(spec.bento_model_name)
    except bentoml.exceptions.NotFound:
        stored = []
    for existing in stored:
        labels = existing.info.labels
        if labels.get("mlflow_version") == str(model_version.version) and labels.get("mlflow_run_id") == model_version.run_id:
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
        metadata={
            "task": spec.task,
            "target": spec.target,
            "key": spec.key or "",
            "input_schema": json.dumps(input_schema(spec)),
            "decision_threshold": 0.5 if threshold is None else float(threshold),
        },
    )
    return str(saved.tag), False


def build_bento(bentoml, spec: DatasetSpec, model_tag: str, bento_dir: Path = BENTO_DIR) -> tuple[str, str]:
    """Build `bento/` for this dataset's model; returns (bento tag, path in the bento store)."""
    with _env(MLOPS_DATASET=spec.name):
        bento = bentoml.bentos.build_bentofile(
            str(bento_dir / "bentofile.yaml"),
            build_ctx=str(bento_dir),
            name=f"{spec.bento_model_name}-service",
            labels={"dataset": spec.name},
            reload=True,
        )
    return str(bento.tag), str(bento.path)
