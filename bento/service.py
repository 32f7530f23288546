"""BentoML service answering predictions from the champion model of one dataset.

`MLOPS_DATASET` picks the dataset (default `transactions`). The request schema is built from the
model's own metadata (the dataset spec at training time), so a bad request gets a 400 naming the
field, and the service imports the model, never the training code.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any, Literal


def _default_mlops_home() -> Path:
    here = Path(__file__).resolve().parent
    repo = here.parent
    return repo / ".mlops" if (repo / "workspace.yaml").exists() else Path.cwd() / ".mlops"


_HOME_FROM_USER = "BENTOML_HOME" in os.environ
# The model store lives in MLOPS_HOME (workers inherit this environment).
os.environ.setdefault("BENTOML_HOME", str(Path(os.environ.get("MLOPS_HOME") or _default_mlops_home()) / "bentoml"))
os.environ.setdefault("BENTOML_DO_NOT_TRACK", "True")

import bentoml  # noqa: E402

if not _HOME_FROM_USER:
    # `bentoml serve` resolved its home (~/bentoml) before importing this file; point its stores at ours.
    from bentoml._internal.bento import BentoStore
    from bentoml._internal.configuration.containers import BentoMLContainer
    from bentoml._internal.models import ModelStore

    BentoMLContainer.bentoml_home.set(os.environ["BENTOML_HOME"])
    BentoMLContainer.model_store.set(ModelStore(os.path.join(os.environ["BENTOML_HOME"], "models")))
    BentoMLContainer.bento_store.set(BentoStore(os.path.join(os.environ["BENTOML_HOME"], "bentos")))
import pandas as pd  # noqa: E402
from pydantic import BaseModel, ConfigDict, Field, create_model  # noqa: E402

DATASET = os.environ.get("MLOPS_DATASET", "transactions")
MODEL_NAME = "mlops-" + DATASET.replace("_", "-")
MAX_RECORDS = 10_000
_PY_TYPES: dict[str, Any] = {
    "integer": int,
    "float": float,
    "boolean": bool,
    "string": str,
    "timestamp": str,
    "date": str,
}


def _latest_model():
    try:
        return bentoml.models.get(f"{MODEL_NAME}:latest")
    except bentoml.exceptions.NotFound as exc:
        raise RuntimeError(
            f"no model {MODEL_NAME!r} in the BentoML store at {os.environ['BENTOML_HOME']}: "
            f"materialize {DATASET}/bento first (make demo)"
        ) from exc


def _record_type(schema: list[dict]) -> type[BaseModel]:
    """A pydantic model of one input row: types, ranges and allowed values from the dataset spec."""
    fields: dict[str, Any] = {}
    for column in schema:
        annotation: Any = _PY_TYPES.get(column["type"], str)
        if column.get("values"):
            annotation = Literal[tuple(column["values"])]
        constraints = {k: column[v] for k, v in (("ge", "min"), ("le", "max")) if column.get(v) is not None}
        if column["type"] not in ("integer", "float"):
            constraints = {}
        if column["required"]:
            fields[column["name"]] = (annotation, Field(..., **constraints))
        else:
            fields[column["name"]] = (annotation | None, Field(None, **constraints))
    return create_model("Record", __config__=ConfigDict(extra="forbid"), **fields)


MODEL = _latest_model()
INPUT_SCHEMA = json.loads(MODEL.info.metadata["input_schema"])
Record = _record_type(INPUT_SCHEMA)
FEATURES = [c["name"] for c in INPUT_SCHEMA if c["required"]]


class Prediction(BaseModel):
    model: str
    version: str
    task: str
    predictions: list[Any]
    probabilities: list[float] | None = None
    threshold: float | None = None
    ids: list[Any] | None = None


@bentoml.service(name=f"{MODEL_NAME}-service", traffic={"timeout": 30})
class Predictor:
    """Serves the champion pipeline (feature transformer + estimator) from the BentoML store."""

    model_ref = bentoml.models.BentoModel(str(MODEL.tag))

    def __init__(self) -> None:
        self.pipeline = bentoml.sklearn.load_model(self.model_ref)
        info = bentoml.models.get(self.model_ref.tag).info
        self.model_name = info.labels["mlflow_model"]
        self.model_version = info.labels["mlflow_version"]
        self.task = info.metadata["task"]
        self.key = info.metadata.get("key") or None
        self.threshold = float(info.metadata.get("decision_threshold", 0.5))

    @bentoml.api
    def predict(self, records: Annotated[list[Record], Field(min_length=1, max_length=MAX_RECORDS)]) -> Prediction:  # type: ignore[valid-type]
        rows = [r.model_dump() for r in records]
        frame = pd.DataFrame(rows, columns=[*FEATURES])
        probabilities = None
        if self.task == "classification":
            probabilities = self.pipeline.predict_proba(frame)[:, 1].round(6).tolist()
            predictions = [p >= self.threshold for p in probabilities]
        else:
            predictions = [float(v) for v in self.pipeline.predict(frame)]
        return Prediction(
            model=self.model_name,
            version=self.model_version,
            task=self.task,
            predictions=predictions,
            probabilities=probabilities,
            threshold=self.threshold if self.task == "classification" else None,
            ids=[r.get(self.key) for r in rows] if self.key else None,
        )
