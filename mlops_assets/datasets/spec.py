"""Declarative dataset specs: one YAML file per dataset, validated on load.

A spec is everything the platform needs to build a dataset's asset chain, so adding a dataset is
adding a YAML file (to `mlops_assets/datasets/specs/` or to a directory named by
`MLOPS_DATASET_SPECS`), never writing Python.
"""

from __future__ import annotations

import os
import re
from functools import cached_property
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

BUILTIN_SPECS_DIR = Path(__file__).resolve().parent / "specs"

ColumnType = Literal["string", "integer", "float", "boolean", "timestamp", "date", "category"]
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


class SpecError(ValueError):
    """A dataset spec that cannot be used; the message names the file and the field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ColumnSpec(_Strict):
    name: str
    type: ColumnType
    source: str | None = Field(None, description="Header name in the CSV when it differs from `name`.")
    role: Literal["feature", "id", "time", "target"] = "feature"
    required: bool = False
    unique: bool = False
    min: float | None = None
    max: float | None = None
    values: tuple[str, ...] | None = None
    transform: Literal["log1p"] | None = None
    format: str | None = Field(
        None, description="How a date or timestamp column's values are written when not ISO (YYYY-MM-DD), as a "
        "strptime format: `%d.%m.%Y` for 31.01.2026, `%m/%d/%Y` for 01/31/2026. All date columns of a spec share "
        "one format (and all timestamp columns one): the reader parses a file's dates with one format.")

    @model_validator(mode="after")
    def _check(self) -> ColumnSpec:
        if not _NAME.match(self.name):
            raise ValueError(f"column name {self.name!r} must be snake_case (a-z, 0-9, _)")
        if self.format is not None and self.type not in ("date", "timestamp"):
            raise ValueError(f"column {self.name!r}: `format` only applies to date and timestamp columns, "
                             f"not {self.type}; remove it")
        if self.format is not None and "%" not in self.format:
            raise ValueError(f"column {self.name!r}: format {self.format!r} is not a strptime format (e.g. %d.%m.%Y)")
        if self.type == "category" and not self.values:
            raise ValueError("a category column needs `values`, the labels it may hold (e.g. `values: [basic, pro]`); "
                             "`mlops-assets spec draft` lists them from a CSV")
        if self.values is not None and self.type != "category":
            raise ValueError(f"column {self.name!r}: `values` lists the labels of a category column, but this one is "
                             f"{self.type}; remove `values` or make it `type: category`")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"column {self.name!r}: min {self.min:g} is greater than max {self.max:g}; swap them")
        if self.transform == "log1p" and (self.min is None or self.min < 0):
            raise ValueError(f"column {self.name!r}: transform log1p needs `min` >= 0")
        return self

    @property
    def header(self) -> str:
        return self.source or self.name


class SourceSpec(_Strict):
    kind: Literal["generator", "file_drop"]
    seed: int = 0
    rows_per_day: int = 100_000
    seed_files: tuple[str, ...] = ()


class PartitioningSpec(_Strict):
    kind: Literal["daily", "files"]
    start_date: str | None = None

    @model_validator(mode="after")
    def _check(self) -> PartitioningSpec:
        if self.kind == "daily" and not self.start_date:
            raise ValueError("daily partitioning needs `start_date` (YYYY-MM-DD)")
        return self


EstimatorKind = Literal[
    "hist_gradient_boosting", "random_forest", "logistic_regression", "ridge", "linear", "dummy"
]
# Which estimator kinds exist for which task (`linear` is the old name: logistic or ridge by task).
ESTIMATORS_FOR_TASK = {
    "classification": ("hist_gradient_boosting", "random_forest", "logistic_regression", "linear", "dummy"),
    "regression": ("hist_gradient_boosting", "random_forest", "ridge", "linear", "dummy"),
}
# Validation metrics per task; the primary metric and `min_metrics` must name one of them.
METRICS_FOR_TASK = {
    "classification": ("average_precision", "roc_auc", "f1", "precision", "recall", "log_loss", "brier"),
    "regression": ("rmse", "mae", "r2"),
}
_ESTIMATOR_KINDS = frozenset(ESTIMATORS_FOR_TASK["classification"] + ESTIMATORS_FOR_TASK["regression"])
LOWER_IS_BETTER = frozenset({"rmse", "mae", "log_loss", "brier"})
BASELINE = "dummy"
DEFAULT_ESTIMATOR = "hist_gradient_boosting"


class CandidateSpec(_Strict):
    """One model to try: a scikit-learn estimator kind and its parameters, under a name unique in the spec."""

    name: str
    estimator: EstimatorKind | None = Field(None, description="Default: the name, when it is an estimator kind.")
    params: dict[str, float | int | str | bool | None] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _check(self) -> CandidateSpec:
        if not _NAME.match(self.name):
            raise ValueError(f"candidate name {self.name!r} must be snake_case (a-z, 0-9, _)")
        if self.estimator is None and self.name not in _ESTIMATOR_KINDS:
            raise ValueError(f"candidate {self.name!r} needs `estimator` (one of {sorted(_ESTIMATOR_KINDS)})")
        return self

    @property
    def kind(self) -> str:
        return self.estimator or self.name


class TrainingSpec(_Strict):
    """How `<dataset>/model` trains: the candidates it compares, how it validates and when it promotes.

    The old single-model form (`estimator:` + `params:`) still loads, as a one-candidate list.
    """

    candidates: tuple[CandidateSpec, ...] = (CandidateSpec(name=DEFAULT_ESTIMATOR),)
    class_weight: Literal["balanced"] | None = Field(
        None, description="`balanced` reweights rare classes (fraud) for every candidate that accepts weights."
    )
    window_partitions: int | None = None
    validation_fraction: float = Field(0.2, gt=0, lt=1)
    primary_metric: str
    min_metrics: dict[str, float] = Field(default_factory=dict)
    promotion_margin: float = Field(
        0.0, ge=0, description="How much better than the champion (in the primary metric) a challenger must be."
    )

    @model_validator(mode="before")
    @classmethod
    def _single_estimator_form(cls, data):
        if not isinstance(data, dict) or ("estimator" not in data and "params" not in data):
            return data
        data = dict(data)
        if "candidates" in data:
            raise ValueError("use either `candidates` or the old `estimator`/`params`, not both")
        kind = data.pop("estimator", DEFAULT_ESTIMATOR)
        data["candidates"] = [{"name": kind, "estimator": kind, "params": data.pop("params", {}) or {}}]
        return data

    @model_validator(mode="after")
    def _check(self) -> TrainingSpec:
        if not self.candidates:
            raise ValueError("`candidates` is empty: list at least one model to train")
        names = [c.name for c in self.candidates]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"duplicate candidate names {dupes}")
        return self

    @property
    def candidate_by_name(self) -> dict[str, CandidateSpec]:
        return {c.name: c for c in self.candidates}

    def higher_is_better(self, metric: str | None = None) -> bool:
        return (metric or self.primary_metric) not in LOWER_IS_BETTER


class DriftSpec(_Strict):
    """When inputs have moved enough to warn, and enough to retrain; how much data each side may use."""

    warn_share: float = Field(0.15, gt=0, le=1, description="drifted-column share above which the check warns")
    severe_share: float = Field(0.2, gt=0, le=1, description="share above which drift is severe (retrain evidence)")
    sample_rows: int = Field(20_000, gt=0, description="row budget per side; above it, seeded samples")
    num_method: str = Field("wasserstein", description="Evidently drift method for numerical columns")
    cat_method: str = Field("jensenshannon", description="Evidently drift method for categorical columns")
    column_threshold: float = Field(0.1, gt=0, description="per-column drift threshold of those methods")
    current_window_hours: float = Field(1.0, gt=0, description="served inputs of this many hours are the current window")
    cooldown_minutes: float = Field(60.0, ge=0, description="no second automatic retrain of a dataset within this")
    max_retrains_per_day: int = Field(3, ge=0, description="cap on automatic retrains per dataset per UTC day")
    performance_tolerance: float = Field(
        0.1, ge=0, description="relative drop of the primary metric below the champion's validation score that is "
        "retrain evidence (0.1 = 10% worse)")

    @model_validator(mode="before")
    @classmethod
    def _renamed(cls, data):
        if isinstance(data, dict) and "threshold" in data:  # the single threshold of older specs
            data = {**data}
            data.setdefault("severe_share", data.pop("threshold"))
        return data

    @model_validator(mode="after")
    def _ordered(self) -> DriftSpec:
        if self.warn_share > self.severe_share:
            raise ValueError(f"warn_share {self.warn_share} must not exceed severe_share {self.severe_share}")
        return self


class QualitySpec(_Strict):
    max_quarantine_share: float = Field(0.05, ge=0, le=1)


class ContractSpec(_Strict):
    """Pinned parts of the ingestion contract; what is not pinned is learned from the first file."""

    delimiter: str | None = None
    encoding: str | None = None
    header: bool | None = None


class DatasetSpec(_Strict):
    name: str
    description: str = ""
    source: SourceSpec
    partitioning: PartitioningSpec
    task: Literal["classification", "regression"]
    target: str
    key: str | None = None
    time_column: str | None = None
    columns: tuple[ColumnSpec, ...]
    training: TrainingSpec
    drift: DriftSpec = DriftSpec()
    quality: QualitySpec = QualitySpec()
    contract: ContractSpec | None = None
    spec_path: str | None = None

    @model_validator(mode="after")
    def _check(self) -> DatasetSpec:
        if not _NAME.match(self.name):
            raise ValueError(f"dataset name {self.name!r} must be snake_case")
        names = [c.name for c in self.columns]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"duplicate column names {dupes}")
        for field in ("target", "key", "time_column"):
            value = getattr(self, field)
            if value is not None and value not in names:
                raise ValueError(f"`{field}: {value}` is not one of the columns {names}")
        target = self.column_by_name[self.target]
        if target.role != "target":
            raise ValueError(f"column {target.name!r} is the target but has role {target.role}: a model would be "
                             f"given the answer as input; set `role: target` on column {target.name!r}")
        others = [c.name for c in self.columns if c.role == "target" and c.name != self.target]
        if others:
            raise ValueError(f"column(s) {others} have role target but the spec's target is {self.target!r}; "
                             "give them another role (feature, id or time)")
        if self.task == "classification" and target.type == "float":
            raise ValueError(f"task classification needs a yes/no target, but column {target.name!r} is float; "
                             "use `task: regression`, or re-export the target as a boolean (yes/no, 0/1)")
        if not self.feature_columns:
            raise ValueError("no feature columns: mark at least one column with role feature")
        for kind in ("date", "timestamp"):
            formats = {c.format for c in self.columns if c.type == kind}
            if len(formats) > 1:
                shown = ", ".join(f"{c.name} {c.format or 'ISO'}" for c in self.columns if c.type == kind)
                raise ValueError(f"the {kind} columns are written in different formats ({shown}); the reader parses "
                                 f"a file's {kind}s with one `format`: give them all the same one")
        self._check_training()
        return self

    def _check_training(self) -> None:
        """What a training spec means depends on the task: estimators and metrics must fit it."""
        training, task = self.training, self.task
        for candidate in training.candidates:
            if candidate.kind not in ESTIMATORS_FOR_TASK[task]:
                raise ValueError(f"training.candidates: {candidate.name!r} uses estimator {candidate.kind!r}, "
                                 f"which does not do {task}; use one of {list(ESTIMATORS_FOR_TASK[task])}")
        known = METRICS_FOR_TASK[task]
        if training.primary_metric not in known:
            raise ValueError(f"training.primary_metric {training.primary_metric!r} is not a {task} metric; "
                             f"use one of {list(known)}")
        unknown = sorted(set(training.min_metrics) - set(known))
        if unknown:
            raise ValueError(f"training.min_metrics {unknown} are not {task} metrics; use some of {list(known)}")
        if training.class_weight and task != "classification":
            raise ValueError("training.class_weight only applies to classification")

    @cached_property
    def column_by_name(self) -> dict[str, ColumnSpec]:
        return {c.name: c for c in self.columns}

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def feature_columns(self) -> list[ColumnSpec]:
        return [c for c in self.columns if c.role == "feature"]

    @property
    def feature_names(self) -> list[str]:
        """The model's input columns, in spec order (the order features and requests are built in)."""
        return [c.name for c in self.feature_columns]

    @property
    def input_columns(self) -> list[str]:
        """Cleaned columns a prediction request carries: everything except the target."""
        return [c.name for c in self.columns if c.role != "target"]

    def read_format(self, kind: Literal["date", "timestamp"]) -> str | None:
        """The strptime format the reader parses this spec's `kind` columns with (None: ISO)."""
        return next((c.format for c in self.columns if c.type == kind and c.format), None)

    @property
    def target_column(self) -> ColumnSpec:
        return self.column_by_name[self.target]

    @property
    def registered_model_name(self) -> str:
        return f"mlops_assets.{self.name}"

    @property
    def bento_model_name(self) -> str:
        return f"mlops-{self.name.replace('_', '-')}"

    @property
    def bento_service_name(self) -> str:
        """The name of the Bentos built for this dataset (`<name>:<version>` tags)."""
        return f"{self.bento_model_name}-service"

    @property
    def is_daily(self) -> bool:
        return self.partitioning.kind == "daily"


def load_spec(path: Path) -> DatasetSpec:
    """Parse and validate one spec file; errors name the file and the offending field."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.MarkedYAMLError as exc:  # a syntax error: where it is, as editors and compilers say it
        mark = exc.problem_mark or exc.context_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        problem = " ".join(str(exc.problem or exc.context or "invalid YAML").split())
        raise SpecError(f"{where}: {problem} (YAML syntax; fix the spec file)") from None
    except (OSError, yaml.YAMLError) as exc:
        raise SpecError(f"{path}: cannot read dataset spec: {' '.join(str(exc).split())}") from exc
    if not isinstance(data, dict):
        raise SpecError(f"{path}: a dataset spec must be a YAML mapping")
    try:
        spec = DatasetSpec.model_validate({**data, "spec_path": str(path)})
    except ValidationError as exc:
        problems = "; ".join(f"{_field(err['loc'], data)}: {_message(err)}" for err in exc.errors())
        raise SpecError(f"{path}: invalid dataset spec: {problems}") from exc
    if spec.name != path.stem:
        raise SpecError(f"{path}: spec `name: {spec.name}` must match the file name {path.stem!r}")
    return spec


def _field(loc: tuple, data: dict) -> str:
    """Where in the spec: `columns[balance].type`, naming a column by its name rather than its index."""
    text = ""
    for depth, part in enumerate(loc):
        if isinstance(part, int):
            item = None
            if depth == 1 and loc[0] == "columns" and isinstance(data.get("columns"), list) and part < len(data["columns"]):
                item = data["columns"][part]
            name = item.get("name") if isinstance(item, dict) else None
            text += f"[{name}]" if isinstance(name, str) and name else f"[#{part + 1}]"
        else:
            text += f".{part}" if text else str(part)
    return text or "(top level)"


def _message(error: dict) -> str:
    message = error["msg"].removeprefix("Value error, ")
    given = error.get("input")
    if error["type"] in ("literal_error", "enum") and isinstance(given, (str, int, float, bool)):
        message += f", not {given!r}"
    return message


def spec_dirs() -> list[Path]:
    """Built-in specs, then those `spec draft` wrote to `$MLOPS_HOME/specs`, then `MLOPS_DATASET_SPECS`."""
    from mlops_assets.home import MlopsHome

    extra = [Path(p) for p in os.environ.get("MLOPS_DATASET_SPECS", "").split(os.pathsep) if p]
    dirs = [BUILTIN_SPECS_DIR, MlopsHome.from_env().specs_dir, *extra]
    return list(dict.fromkeys(d.resolve() for d in dirs))


def load_specs() -> dict[str, DatasetSpec]:
    """All dataset specs, built-in first; a later directory may not redefine a dataset."""
    specs: dict[str, DatasetSpec] = {}
    for directory in spec_dirs():
        for path in sorted(directory.glob("*.yaml")) if directory.is_dir() else ():
            spec = load_spec(path)
            if spec.name in specs:
                raise SpecError(f"{path}: dataset {spec.name!r} is already defined in {specs[spec.name].spec_path}")
            specs[spec.name] = spec
    return specs
