"""`features` -> candidate models fitted side by side -> the best registered in MLflow as `challenger`.

The registered pipeline is [feature transformer, estimator]: it predicts from cleaned columns, needs
no project code to load, and carries its training reference sample (for drift) as a run artifact.

MLflow layout, one parent run per materialization (so one link shows the whole comparison)::

    <dataset>-train            parent: lineage tags (Dagster run, asset key, code version, spec hash,
    |                          partitions, file hashes), `<candidate>.<metric>` for every candidate,
    |                          candidates.json, plots/, lineage/lineage.json, the promotion decision
    +-- <candidate>            child per candidate: params, validation metrics, fit/predict seconds
    +-- <winner>               the winner's child also holds the model, reference/, lineage/ and
                               `decision_threshold`: the registered version points at this run

So everything that reads "the run of a version" (the drift reference, the Bento's decision threshold,
`mlops-assets lineage`) finds it on the winner's child run, and the parent is the materialization.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import logging
import tempfile
import threading
import time
import warnings
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from mlops_assets.datasets.spec import BASELINE, ESTIMATORS_FOR_TASK, LOWER_IS_BETTER, DatasetSpec
from mlops_assets.recovery import process_tags
from mlops_assets.resources.tracking import MlflowTracking
from mlops_assets.tables import MissingInput, partitions_in_order, q, table, table_exists
from mlops_assets.training.features import feature_names, fitted_feature_transformer
from mlops_assets.training.lineage import build_lineage, lineage_tags, log_lineage
from mlops_assets.training.registry import CHALLENGER_ALIAS, REFERENCE_ARTIFACT

log = logging.getLogger(__name__)

_RUNTIME_PACKAGES = ("scikit-learn", "skops", "numpy", "pandas", "scipy")
_LINEAR = ("logistic_regression", "ridge", "linear")
CANDIDATES_ARTIFACT = "candidates.json"
ASSET_KEY_TAG = "mlops.asset_key"
ROLE_TAG = "mlops.role"
WINNER_TAG = "mlops.winner"
REFERENCE_SEED = 17
# Rows used for permutation importances: enough to rank features, cheap at any data size.
_IMPORTANCE_ROWS = 5000


class TrainingInputError(ValueError):
    """The data or the configuration cannot train a model; the message says what to change."""


class MlflowLoggingError(RuntimeError):
    """Logging to MLflow failed part-way; the runs are ended FAILED and no alias moved."""


@dataclass(frozen=True)
class Candidate:
    """A model to fit; a baseline is scored for reference and never wins."""

    name: str
    kind: str
    params: dict[str, Any]
    baseline: bool = False


@dataclass
class TrainingData:
    """Everything read from the warehouse, so the connection closes before the long work starts."""

    partitions: list[str]
    features: pd.DataFrame
    feature_cols: list[str]
    reference: pd.DataFrame
    lineage: dict[str, Any]
    seconds: float


@dataclass
class Split:
    train: pd.DataFrame
    valid: pd.DataFrame
    how: str
    window: dict[str, Any]


@dataclass
class CandidateResult:
    candidate: Candidate
    estimator: Any
    params: dict[str, Any]
    metrics: dict[str, float]
    fit_seconds: float
    predict_seconds: float
    scores: np.ndarray
    warnings: list[str] = field(default_factory=list)
    run_id: str | None = None

    @property
    def name(self) -> str:
        return self.candidate.name


class _Laps:
    """Seconds per named section of a sequence of steps (where MLflow logging time goes)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._last = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.seconds[name] = self.seconds.get(name, 0.0) + now - self._last
        self._last = now


@dataclass
class Logged:
    """Where a training run landed in MLflow."""

    experiment_id: str
    parent_run_id: str
    run_id: str
    version: str
    plots: list[str]
    lineage: dict[str, Any]
    laps: dict[str, float] = field(default_factory=dict)


@dataclass
class TrainedModel:
    run_id: str
    parent_run_id: str
    experiment_id: str
    version: str
    model_uri: str
    winner: str
    why: str
    metrics: dict[str, float]
    candidates: list[CandidateResult]
    quality_failures: list[str]
    partitions: list[str]
    rows_train: int
    rows_validation: int
    validation: dict[str, Any]
    feature_names: list[str]
    importances: dict[str, float]
    plots: list[str]
    lineage: dict[str, Any]
    timings: dict[str, float]
    logging_detail: dict[str, float]
    valid_X: pd.DataFrame
    valid_y: pd.Series
    params: dict[str, object] = field(default_factory=dict)
    partition_rows: dict[str, int] = field(default_factory=dict)
    """Rows each training partition contributed (train + validation), in window order."""
    cpu: dict[str, dict[str, float]] = field(default_factory=dict)
    """CPU seconds per phase: `process` (all threads, the warm-up's too) and `thread` (the fitting thread)."""
    warm_up: dict[str, float] = field(default_factory=dict)
    """The warm-up thread's own seconds when this run started it (the process's first model run), else {}."""

    @property
    def seconds(self) -> float:
        return sum(self.timings.values())


# Imported only to log the winner (mlflow, skops: its trusted-type list imports every scikit-learn module)
# and to draw and explain it (matplotlib, sklearn.inspection): ~5 s of CPU in a fresh process.
_LOGGING_MODULES = ("mlflow.sklearn", "mlflow.models", "skops.io", "matplotlib.figure", "sklearn.inspection")


@dataclass
class WarmUp:
    """The background warm-up of this process: its own wall and CPU seconds, booked as MLflow's cost."""

    done: threading.Event = field(default_factory=threading.Event)
    wall: float = 0.0
    cpu: float = 0.0
    steps: dict[str, float] = field(default_factory=dict)  # CPU seconds per import, and the first save
    reported: bool = False

    def report(self) -> dict[str, float]:
        """Its seconds, for the first model run of the process that asks (later runs found it paid)."""
        if self.reported:
            return {}
        self.reported = True
        self.done.wait(30)  # logging the model waited on its imports anyway: it has (nearly) always finished
        return {"wall": self.wall, "cpu": self.cpu, "finished": float(self.done.is_set()),
                **{f"cpu.{step}": seconds for step, seconds in self.steps.items()}}


@cache
def _warm_up_logging() -> WarmUp:
    """Pay the once-per-process costs of logging a model in a background thread while the candidates fit.

    A Dagster run is a fresh process, so these costs come with every materialization: the imports
    (~5 s), and MLflow's first `save_model`, which scans every installed distribution (~5 s in this
    venv) to check the pinned requirements; MLflow has no public switch for that check, so a throwaway
    save of a one-row dummy model to a temporary directory fills its cache. Fitting runs mostly in
    native code; on a machine with a spare core this overlaps instead of adding up, on a busy one it
    competes with fitting, so the thread's own wall and CPU seconds are reported as MLflow's cost
    (`WarmUp.report`, the model asset's `mlflow_warm_up` metadata). Failures are ignored here: the real
    call at logging time raises them with their context.
    """
    warm = WarmUp()

    def run() -> None:
        started, cpu = time.perf_counter(), time.thread_time()
        try:
            for name in _LOGGING_MODULES:
                step = time.thread_time()
                importlib.import_module(name)
                warm.steps[name.split(".")[0]] = warm.steps.get(name.split(".")[0], 0.0) + time.thread_time() - step
            import mlflow.sklearn
            from sklearn.dummy import DummyClassifier

            step = time.thread_time()
            with tempfile.TemporaryDirectory() as tmp:
                mlflow.sklearn.save_model(DummyClassifier().fit([[0], [1]], [0, 1]), str(Path(tmp) / "m"),
                                          pip_requirements=_requirements())
            warm.steps["first_save"] = time.thread_time() - step
        except Exception as exc:  # see the docstring
            log.debug("warming up MLflow logging failed: %s", exc)
        finally:
            warm.wall, warm.cpu = time.perf_counter() - started, time.thread_time() - cpu
            warm.done.set()

    threading.Thread(target=run, name="warm-up-mlflow-logging", daemon=True).start()
    return warm


class _CpuClock:
    """CPU seconds per phase: the whole process (every thread) and this thread alone (where fits run)."""

    def __init__(self) -> None:
        self.seconds: dict[str, dict[str, float]] = {}
        self._last = (time.process_time(), time.thread_time())

    def lap(self, name: str) -> None:
        now = (time.process_time(), time.thread_time())
        entry = self.seconds.setdefault(name, {"process": 0.0, "thread": 0.0})
        entry["process"] += now[0] - self._last[0]
        entry["thread"] += now[1] - self._last[1]
        self._last = now


def _requirements() -> list[str]:
    """Pinned runtime requirements of the registered model (passed explicitly: inferring them takes ~18 s)."""
    return [f"{p}=={importlib.metadata.version(p)}" for p in _RUNTIME_PACKAGES]


# ---------------------------------------------------------------- candidates


def resolve_candidates(spec: DatasetSpec, names: list[str] | None = None) -> list[Candidate]:
    """The spec's candidates, or those named in run config (spec names or plain estimator kinds), plus the baseline.

    The `dummy` baseline is always scored so a winner that does not beat "predict the average" shows.
    """
    by_name = spec.training.candidate_by_name
    kinds = ESTIMATORS_FOR_TASK[spec.task]
    chosen: list[Candidate] = []
    for name in dict.fromkeys(names) if names is not None else by_name:
        if name in by_name:
            c = by_name[name]
            chosen.append(Candidate(name, c.kind, dict(c.params)))
        elif name in kinds:
            chosen.append(Candidate(name, name, {}))
        else:
            raise TrainingInputError(
                f"{spec.name}: candidate {name!r} is neither in the spec's training.candidates {list(by_name)} "
                f"nor a {spec.task} estimator {list(kinds)}"
            )
    if not chosen:
        raise TrainingInputError(f"{spec.name}: `candidates` is empty; name at least one of {list(by_name)}")
    if all(c.kind != BASELINE for c in chosen):
        chosen.append(Candidate(BASELINE, BASELINE, {}, baseline=True))
    return chosen


def _estimator_class(kind: str, task: str):
    from sklearn.dummy import DummyClassifier, DummyRegressor
    from sklearn.ensemble import (
        HistGradientBoostingClassifier,
        HistGradientBoostingRegressor,
        RandomForestClassifier,
        RandomForestRegressor,
    )
    from sklearn.linear_model import LogisticRegression, Ridge

    classes = {
        ("hist_gradient_boosting", "classification"): HistGradientBoostingClassifier,
        ("hist_gradient_boosting", "regression"): HistGradientBoostingRegressor,
        ("random_forest", "classification"): RandomForestClassifier,
        ("random_forest", "regression"): RandomForestRegressor,
        ("logistic_regression", "classification"): LogisticRegression,
        ("linear", "classification"): LogisticRegression,
        ("ridge", "regression"): Ridge,
        ("linear", "regression"): Ridge,
        ("dummy", "classification"): DummyClassifier,
        ("dummy", "regression"): DummyRegressor,
    }
    return classes[(kind, task)]


def build_estimator(spec: DatasetSpec, candidate: Candidate) -> tuple[Any, dict[str, Any]]:
    """An unfitted estimator and the parameters it was given.

    Unknown parameter names are refused naming the spec field. Seeds default to 0 (reruns give the
    same model), and `class_weight` from the spec reaches every estimator that accepts it. Linear
    models are scaled first: the features mix log-amounts, hours and one-hot flags.
    """
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    cls = _estimator_class(candidate.kind, spec.task)
    accepted = cls().get_params()
    unknown = sorted(set(candidate.params) - set(accepted))
    if unknown:
        raise TrainingInputError(
            f"{spec.spec_path or spec.name}: training.candidates.{candidate.name}.params: {unknown} are not "
            f"parameters of {cls.__name__}; it takes {sorted(accepted)}"
        )
    params = dict(candidate.params)
    if "random_state" in accepted and params.get("random_state") is None:
        params["random_state"] = 0
    if spec.training.class_weight and "class_weight" in accepted and "class_weight" not in params:
        params["class_weight"] = spec.training.class_weight
    try:
        estimator = cls(**params)
    except (TypeError, ValueError) as exc:
        raise TrainingInputError(f"{spec.spec_path or spec.name}: training.candidates.{candidate.name}: {exc}") from None
    if candidate.kind in _LINEAR:
        estimator = Pipeline([("scale", StandardScaler()), ("model", estimator)])
    return estimator, params


# ---------------------------------------------------------------- data


class StaleFeatures(MissingInput):
    """Cleaned partitions of the training window have no up-to-date features: training now would use an older window."""


@dataclass(frozen=True)
class TrainingWindow:
    """The partitions to train on, and those within its span left out because a blocking ingestion gate failed."""

    partitions: list[str]
    excluded: dict[str, str] = field(default_factory=dict)
    """{partition: why}: e.g. too many rows quarantined (`ingest.gates`); its rows are kept, never trained on."""


def training_window(con: duckdb.DuckDBPyConnection, spec: DatasetSpec, until: str | None = None) -> TrainingWindow:
    """The training window: the newest N usable cleaned partitions with rows (days by date, files by arrival), up to
    `until`; partitions that failed a blocking ingestion gate are left out (and named) before the newest N are taken.

    Taken from `cleaned`, not from `features`: a partition whose features were never built (or are
    older than its cleaned rows) must stop training, not silently drop out of the window.
    """
    from mlops_assets.ingest.gates import failed_gates

    partitions = ingested_partitions(con, spec)
    if until is not None:
        if until not in partitions:
            raise MissingInput(f"{spec.name}: train_until={until!r} is not an ingested partition; known: {partitions[-5:]}")
        partitions = partitions[: partitions.index(until) + 1]
    failed = failed_gates(con, spec, partitions)
    usable = [p for p in partitions if p not in failed]
    window = spec.training.window_partitions
    chosen = usable[-window:] if window else usable
    # Name the left-out partitions the window would have held: those newer than its oldest partition.
    start = partitions.index(chosen[0]) if chosen else 0
    return TrainingWindow(chosen, {p: failed[p] for p in partitions[start:] if p in failed})


def training_partitions(con: duckdb.DuckDBPyConnection, spec: DatasetSpec, until: str | None = None) -> list[str]:
    """The partitions of `training_window` (see there)."""
    return training_window(con, spec, until).partitions


def ingested_partitions(con: duckdb.DuckDBPyConnection, spec: DatasetSpec) -> list[str]:
    """Cleaned partitions holding rows, oldest first (a file whose every row was quarantined has nothing to train on)."""
    if not table_exists(con, spec, "cleaned_partitions"):
        return []
    return [p for p in partitions_in_order(con, spec, "cleaned_partitions") if _has_rows(con, spec, p)]


def _has_rows(con: duckdb.DuckDBPyConnection, spec: DatasetSpec, partition: str) -> bool:
    return bool(con.execute(
        f"SELECT EXISTS (SELECT 1 FROM {table(spec, 'cleaned')} WHERE _partition = ?)", [partition]
    ).fetchone()[0])


def stale_feature_partitions(con: duckdb.DuckDBPyConnection, spec: DatasetSpec, partitions: list[str]) -> list[str]:
    """Those of `partitions` whose features are missing, or were built from an earlier cleaning of the partition.

    `features` carries each row's `_ingested_at` (when its cleaned partition was published), so
    comparing it with `cleaned_partitions.cleaned_at` tells exactly which partitions are behind.
    """
    if not partitions:
        return []
    placeholders = ", ".join("?" for _ in partitions)
    cleaned_at = dict(con.execute(
        f"SELECT _partition, cleaned_at FROM {table(spec, 'cleaned_partitions')} WHERE _partition IN ({placeholders})",
        partitions,
    ).fetchall())
    built: dict[str, object] = {}
    if table_exists(con, spec, "features"):
        built = dict(con.execute(
            f"SELECT _partition, max(_ingested_at) FROM {table(spec, 'features')} WHERE _partition IN ({placeholders}) "
            "GROUP BY _partition",
            partitions,
        ).fetchall())
    return [p for p in partitions if p not in built or built[p] != cleaned_at.get(p)]


def stale_features_message(spec: DatasetSpec, stale: list[str]) -> str:
    """What to tell a user whose training window has partitions without up-to-date features."""
    shown = ", ".join(repr(p) for p in stale[:5]) + (f" and {len(stale) - 5} more" if len(stale) > 5 else "")
    return (
        f"{spec.name}: {len(stale)} cleaned partition(s) of the training window have no up-to-date features: {shown}; "
        f"training now would silently use an older window. Run `mlops-assets train {spec.name}` (it builds them "
        f"first), or materialize {spec.name}/features for them (Dagster UI, or `dagster asset materialize -m "
        f"mlops_assets.definitions --select {spec.name}/features --partition {stale[0]}`)"
    )


def read_training_data(
    con: duckdb.DuckDBPyConnection, spec: DatasetSpec, *, until: str | None = None, dagster_run_id: str | None = None
) -> TrainingData:
    """The window's feature rows, a seeded reference sample of its cleaned rows, and its lineage."""
    started = time.perf_counter()
    partitions = training_partitions(con, spec, until)
    if not partitions:
        raise MissingInput(f"{spec.name}: nothing ingested to train on; run `mlops-assets ingest {spec.name} FILE` first")
    stale = stale_feature_partitions(con, spec, partitions)
    if stale:
        raise StaleFeatures(stale_features_message(spec, stale))
    placeholders = ", ".join("?" for _ in partitions)
    # A fixed row order (partition, then insertion order = source line): parallel scans may return rows in
    # any order, and the split, the bootstrap and early stopping all depend on it. Same data, same model.
    # Rows without a label (served data whose outcome is not known yet) cannot teach or score a model.
    features = con.execute(
        f"SELECT * FROM {table(spec, 'features')} WHERE _partition IN ({placeholders}) "
        f"AND {q(spec.target)} IS NOT NULL ORDER BY _partition, rowid",
        partitions,
    ).df()
    cleaned_cols = ", ".join(q(c) for c in spec.input_columns)
    # The drift reference, stratified by partition: each partition of the window gives an equal share of
    # the row budget (all its rows when it has fewer), in a seeded pseudo-random order. Rows are selected
    # first and sampled second (`USING SAMPLE` on a filtered query would sample the whole table first).
    per_partition = -(-spec.drift.sample_rows // len(partitions))
    reference = con.execute(
        f"""SELECT {cleaned_cols} FROM (
                SELECT {cleaned_cols}, row_number() OVER (
                    PARTITION BY _partition ORDER BY hash(_partition, _source_line, {REFERENCE_SEED})) AS _pick
                FROM {table(spec, 'cleaned')} WHERE _partition IN ({placeholders}))
            WHERE _pick <= {per_partition} ORDER BY _pick""",
        partitions,
    ).df().head(spec.drift.sample_rows)
    lineage = build_lineage(con, spec, partitions, dagster_run_id=dagster_run_id)
    return TrainingData(partitions, features, feature_names(spec, features.columns), reference, lineage,
                        time.perf_counter() - started)


def split(spec: DatasetSpec, frame: pd.DataFrame) -> Split:
    """Validation rows: the newest ones when the data has a clock (no peeking at the future), else a stable holdout.

    Without a clock (e.g. wine files), a reshuffling split would move rows the champion trained on into
    validation whenever a partition is added, biasing the comparison toward the champion. So each
    partition's rows are split on their own: within (partition, stratum) rows are ordered by a stable
    hash of (partition, row ordinal) and the first `validation_fraction` of them (rounded half up) are
    held out. The ordinal is the row's position in its partition's features rows, which are written in
    source-line order, so a row keeps its side as long as its partition's cleaned rows are unchanged;
    adding or dropping other partitions never moves it. Strata: the class for classification, the
    target decile within the partition for regression, so rare classes and both tails are covered
    exactly up to one row per partition and stratum (a stratum of one row stays in training).
    """
    fraction = spec.training.validation_fraction
    if spec.time_column or spec.is_daily:
        order = spec.time_column or "_partition"
        ordered = frame.sort_values(order, kind="stable")
        cut = int(len(ordered) * (1 - fraction))
        train, valid = ordered.iloc[:cut], ordered.iloc[cut:]
        how = f"newest {fraction:.0%} of rows by {order}"
    else:
        held = stable_holdout(spec, frame, fraction)
        train, valid = frame[~held], frame[held]
        how = (f"{fraction:.0%} of each partition's rows, stratified by "
               f"{'class' if spec.task == 'classification' else 'target decile'}, chosen by a stable hash of "
               "(partition, row)")
    if valid.empty or train.empty:
        raise TrainingInputError(f"{spec.name}: {len(frame)} rows are too few to hold out validation rows; ingest more")
    if train[spec.target].nunique() < 2:
        raise TrainingInputError(f"{spec.name}: the training window has a single target value; ingest more data")
    window: dict[str, Any] = {"split": how, "rows": len(valid), "partitions": sorted(valid["_partition"].unique())}
    if spec.time_column:
        window["from"] = str(valid[spec.time_column].min())
        window["to"] = str(valid[spec.time_column].max())
    return Split(train, valid, how, window)


def stable_holdout(spec: DatasetSpec, frame: pd.DataFrame, fraction: float) -> np.ndarray:
    """Which rows of `frame` (ordered by partition, then source line) are held out; see `split`."""
    partition = frame["_partition"].astype(str).reset_index(drop=True)
    ordinal = partition.groupby(partition, sort=False).cumcount()
    key = pd.util.hash_pandas_object(pd.DataFrame({"p": partition, "o": ordinal}), index=False).to_numpy()
    target = frame[spec.target].reset_index(drop=True)
    if spec.task == "classification":
        stratum = target.astype(str)
    else:  # deciles of the target within the partition (fewer bins for small partitions)
        rank = target.groupby(partition, sort=False).rank(method="first") - 1
        size = partition.map(partition.value_counts())
        bins = (size // 10).clip(1, 10)
        stratum = (rank * bins // size).astype("int64").astype(str)
    groups = pd.DataFrame({"p": partition, "s": stratum, "k": key})
    position = groups.groupby(["p", "s"], sort=False)["k"].rank(method="first") - 1
    quota = np.floor(groups.groupby(["p", "s"], sort=False)["k"].transform("size") * fraction + 0.5)
    return (position < quota).to_numpy()


# ---------------------------------------------------------------- scoring


def predict_scores(spec: DatasetSpec, model, X: pd.DataFrame) -> np.ndarray:
    """Positive-class probabilities for classification, predictions for regression."""
    if spec.task == "classification":
        proba = model.predict_proba(X)
        return proba[:, list(model.classes_).index(1)]
    return np.asarray(model.predict(X), dtype=float)


def evaluate_scores(spec: DatasetSpec, y: pd.Series, scores: np.ndarray) -> dict[str, float]:
    """The task's validation metrics from scores; every candidate and the champion go through here."""
    from sklearn import metrics

    if spec.task == "classification":
        y = np.asarray(y).astype(int)
        both = len(np.unique(y)) > 1
        threshold = best_f1_threshold(y, scores)
        predicted = scores >= threshold
        clipped = np.clip(scores, 1e-15, 1 - 1e-15)
        return {
            "roc_auc": float(metrics.roc_auc_score(y, scores)) if both else float("nan"),
            "average_precision": float(metrics.average_precision_score(y, scores)) if y.any() else float("nan"),
            "precision": float(metrics.precision_score(y, predicted, zero_division=0)),
            "recall": float(metrics.recall_score(y, predicted, zero_division=0)),
            "f1": float(metrics.f1_score(y, predicted, zero_division=0)),
            "log_loss": float(metrics.log_loss(y, clipped, labels=[0, 1])),
            "brier": float(metrics.brier_score_loss(y, scores)) if both else float("nan"),
            "positive_rate": float(np.mean(y)),
            "decision_threshold": threshold,
        }
    return {
        "rmse": float(np.sqrt(metrics.mean_squared_error(y, scores))),
        "mae": float(metrics.mean_absolute_error(y, scores)),
        "r2": float(metrics.r2_score(y, scores)),
    }


def evaluate(spec: DatasetSpec, model, X: pd.DataFrame, y: pd.Series) -> dict[str, float]:
    """A fitted model's metrics on labeled rows (what monitoring uses to score the champion on new data)."""
    return evaluate_scores(spec, y, predict_scores(spec, model, X))


def best_f1_threshold(y, proba: np.ndarray) -> float:
    """The probability cut-off with the best F1 on validation data: at a 1-2% positive rate, 0.5 flags nothing."""
    from sklearn.metrics import precision_recall_curve

    if not np.asarray(y).any():
        return 0.5
    precision, recall, thresholds = precision_recall_curve(y, proba)
    if len(thresholds) == 0:
        return 0.5
    f1 = 2 * precision[:-1] * recall[:-1] / np.clip(precision[:-1] + recall[:-1], 1e-12, None)
    return float(thresholds[int(np.argmax(f1))])


def is_better(spec: DatasetSpec, a: float, b: float, margin: float = 0.0) -> bool:
    """`a` at least as good as `b` improved by `margin`, in the primary metric's direction; NaN is never better."""
    if np.isnan(a):
        return False
    if np.isnan(b):
        return True
    return a <= b - margin if spec.training.primary_metric in LOWER_IS_BETTER else a >= b + margin


def quality_failures(spec: DatasetSpec, metrics: dict[str, float]) -> list[str]:
    """Bars from `training.min_metrics` the model misses (for lower-is-better metrics, a maximum)."""
    failures = []
    for name, bar in spec.training.min_metrics.items():
        value = metrics.get(name)
        if value is None or np.isnan(value):
            failures.append(f"{name} was not computed")
        elif name in LOWER_IS_BETTER and value > bar:
            failures.append(f"{name} {value:.4f} > maximum {bar}")
        elif name not in LOWER_IS_BETTER and value < bar:
            failures.append(f"{name} {value:.4f} < minimum {bar}")
    return failures


def fit_candidates(
    spec: DatasetSpec, data: Split, feature_cols: list[str], candidates: list[Candidate], timings: dict[str, float]
) -> list[CandidateResult]:
    """Fit every candidate on the training rows and score it on the validation rows (timed apart)."""
    X, y = data.train[feature_cols], data.train[spec.target]
    Xv, yv = data.valid[feature_cols], data.valid[spec.target]
    estimators = [build_estimator(spec, c) for c in candidates]  # refuse bad params before any fitting
    results = []
    for candidate, (estimator, params) in zip(candidates, estimators):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            t0 = time.perf_counter()
            estimator.fit(X, y)
            t1 = time.perf_counter()
            scores = predict_scores(spec, estimator, Xv)
            t2 = time.perf_counter()
        metrics = evaluate_scores(spec, yv, scores)
        timings["fitting"] += t1 - t0
        timings["evaluating"] += time.perf_counter() - t1
        notes = sorted({f"{w.category.__name__}: {str(w.message).splitlines()[0][:200]}" for w in caught})
        for note in notes:
            log.warning("%s candidate %s: %s", spec.name, candidate.name, note)
        results.append(CandidateResult(candidate, estimator, params, metrics, t1 - t0, t2 - t1, scores, notes))
    return results


def _strictly_better(spec: DatasetSpec, a: float, b: float) -> bool:
    return is_better(spec, a, b) and a != b


def choose_winner(spec: DatasetSpec, results: list[CandidateResult], rows: int) -> tuple[CandidateResult, str]:
    """The best non-baseline candidate by the primary metric (ties: the first listed), and why, in words."""
    metric = spec.training.primary_metric
    eligible = [r for r in results if not r.candidate.baseline]
    winner = eligible[0]
    for result in eligible[1:]:
        if _strictly_better(spec, result.metrics[metric], winner.metrics[metric]):
            winner = result
    direction = "lowest" if metric in LOWER_IS_BETTER else "highest"
    others = ", ".join(f"{r.name} {r.metrics[metric]:.4f}" for r in eligible if r is not winner)
    why = f"{winner.name} has the {direction} {metric} on the {rows:,} validation rows: {winner.metrics[metric]:.4f}"
    if others:
        why += f" (vs {others})"
    for baseline in (r for r in results if r.candidate.baseline):
        why += f"; baseline {baseline.name} {baseline.metrics[metric]:.4f}"
        if not _strictly_better(spec, winner.metrics[metric], baseline.metrics[metric]):
            why += ": the winner is no better than the baseline"
    return winner, why


def permutation_importances(spec: DatasetSpec, model, X: pd.DataFrame, y: pd.Series) -> dict[str, float]:
    """Drop in the primary metric when a feature is shuffled: model-agnostic, on a bounded sample."""
    from sklearn.inspection import permutation_importance

    scorers = {"average_precision": "average_precision", "roc_auc": "roc_auc", "log_loss": "neg_log_loss",
               "brier": "neg_brier_score", "rmse": "neg_root_mean_squared_error", "mae": "neg_mean_absolute_error",
               "r2": "r2"}
    scoring = scorers.get(spec.training.primary_metric, "average_precision")
    if len(X) > _IMPORTANCE_ROWS:
        X = X.sample(_IMPORTANCE_ROWS, random_state=3)
        y = y.loc[X.index]
    if spec.task == "classification" and y.nunique() < 2:
        return {}
    result = permutation_importance(model, X, y, scoring=scoring, n_repeats=3, random_state=0)
    ranked = sorted(zip(X.columns, result.importances_mean), key=lambda kv: -kv[1])
    return {name: float(value) for name, value in ranked}


# ---------------------------------------------------------------- MLflow


def _trusted_types(pipeline) -> list[str]:
    """The types skops does not trust by default, limited to scikit-learn's and numpy's own."""
    import skops.io

    untrusted = skops.io.get_untrusted_types(data=skops.io.dumps(pipeline))
    foreign = [t for t in untrusted if not t.startswith(("sklearn.", "numpy."))]
    if foreign:
        raise TypeError(f"model pipeline holds types outside scikit-learn/numpy, refusing to trust: {foreign}")
    return list(untrusted)


def _finite(metrics: dict[str, float]) -> dict[str, float]:
    return {k: float(v) for k, v in metrics.items() if v is not None and np.isfinite(v)}


def _end_runs_failed() -> None:
    """End every run this thread left active as FAILED; a second error here must not hide the first."""
    import mlflow

    for _ in range(10):
        run = mlflow.active_run()
        if run is None:
            return
        try:
            mlflow.end_run(status="FAILED")
        except Exception as exc:  # the store that failed may fail again: log it, keep the original error
            log.warning("could not mark MLflow run %s FAILED: %s", run.info.run_id, exc)
            return


def _delete_version_quietly(tracking: MlflowTracking, spec: DatasetSpec, version: str | None) -> None:
    if version is None:
        return
    try:
        tracking.client().delete_model_version(spec.registered_model_name, version)
    except Exception as exc:  # best effort, see _end_runs_failed
        log.warning("could not delete half-logged model version %s v%s: %s", spec.registered_model_name, version, exc)


def log_and_register(
    spec: DatasetSpec,
    tracking: MlflowTracking,
    data: TrainingData,
    parts: Split,
    results: list[CandidateResult],
    winner: CandidateResult,
    why: str,
    importances: dict[str, float],
    tags: dict[str, str],
    run_params: dict[str, Any],
) -> Logged:
    """Parent run + one child per candidate; the winner's model registered and aliased `challenger`.

    Any failure ends the runs FAILED, removes a version registered on the way and raises
    MlflowLoggingError: no alias has moved, so the champion is untouched.
    """
    from concurrent.futures import ThreadPoolExecutor

    import mlflow
    import mlflow.sklearn
    from mlflow.entities import Metric, Param, RunTag
    from mlflow.models import infer_signature
    from sklearn.pipeline import Pipeline

    from mlops_assets.training.plots import render_plots

    laps = _Laps()
    metric = spec.training.primary_metric
    transformer = fitted_feature_transformer(spec, data.reference)
    pipeline = Pipeline([("features", transformer), ("estimator", winner.estimator)])
    example = data.reference[spec.feature_names].head(5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # integer inputs are required by the spec: no NaNs
        signature = infer_signature(example, pipeline.predict(example))
    requirements = _requirements()
    trusted = _trusted_types(pipeline)
    laps.lap("model_preparation")
    # pid and host let the next model run end these runs as FAILED if this process dies (see recovery.py).
    base_tags = {"dataset": spec.name, **tags, **lineage_tags(data.lineage), **process_tags()}
    lineage = dict(data.lineage)

    version: str | None = None
    parent_id = winner_id = None
    # Plots render in a worker thread while this one waits on the tracking store and the artifact root.
    painter = ThreadPoolExecutor(max_workers=1, thread_name_prefix="plots")
    rendering = painter.submit(render_plots, spec, results, winner, parts.valid[spec.target], importances)
    try:
        client = tracking.client()
        experiment_id = tracking.experiment_id(spec.name)
        parent = mlflow.start_run(experiment_id=experiment_id, run_name=f"{spec.name}-train",
                                  tags={**base_tags, ROLE_TAG: "parent"})
        parent_id = parent.info.run_id
        mlflow.log_params(run_params)
        # The winner goes last: its run stays open until its model is registered.
        for result in sorted(results, key=lambda r: r is winner):
            role = "baseline" if result.candidate.baseline else "candidate"
            child = mlflow.start_run(experiment_id=experiment_id, nested=True, run_name=result.name,
                                     tags={**base_tags, ROLE_TAG: role, WINNER_TAG: str(result is winner).lower()})
            result.run_id = child.info.run_id
            params = {"candidate": result.name, "estimator": result.candidate.kind,
                      "estimator_class": type(result.estimator).__name__,
                      **{f"param.{k}": v for k, v in result.params.items()}}
            metrics = {**_finite(result.metrics), "fit_seconds": result.fit_seconds,
                       "predict_seconds": result.predict_seconds}
            now = int(time.time() * 1000)
            client.log_batch(  # one round trip per candidate
                result.run_id,
                metrics=[Metric(k, v, now, 0) for k, v in metrics.items()],
                params=[Param(k, str(v)) for k, v in params.items()],
                tags=[RunTag("mlops.warnings", "\n".join(result.warnings)[:8000])] if result.warnings else [],
            )
            if result is not winner:
                mlflow.end_run()
                continue
            winner_id = child.info.run_id
            laps.lap("runs")
            info = mlflow.sklearn.log_model(
                pipeline, name="model", signature=signature, input_example=example,
                pip_requirements=requirements, skops_trusted_types=trusted,
            )
            laps.lap("model_artifact")
            with tempfile.TemporaryDirectory() as tmp:
                path = Path(tmp) / Path(REFERENCE_ARTIFACT).name
                data.reference.to_parquet(path, index=False)
                mlflow.log_artifact(str(path), artifact_path=str(Path(REFERENCE_ARTIFACT).parent))
            registered = mlflow.register_model(info.model_uri, spec.registered_model_name,
                                               tags={"dataset": spec.name, "candidate": winner.name})
            version = str(registered.version)
            lineage.update({
                "model_version": version,
                "mlflow_run_id": winner_id,
                "mlflow_parent_run_id": parent_id,
                "asset_key": tags.get(ASSET_KEY_TAG),
                "winner": winner.name,
                "primary_metric": metric,
                "metrics": _finite(winner.metrics),
                "decision_threshold": winner.metrics.get("decision_threshold"),
                "candidates": [{"name": r.name, "estimator": r.candidate.kind, "baseline": r.candidate.baseline,
                                metric: r.metrics.get(metric), "fit_seconds": round(r.fit_seconds, 3)}
                               for r in results],
                "validation": parts.window,
            })
            log_lineage(lineage)
            mlflow.end_run()
            laps.lap("registration")
        mlflow.log_metrics({f"{r.name}.{k}": v for r in results for k, v in _finite(r.metrics).items()})
        mlflow.log_metrics({f"{r.name}.fit_seconds": r.fit_seconds for r in results})
        mlflow.log_dict(candidates_table(spec, results, winner), CANDIDATES_ARTIFACT)
        laps.lap("runs")
        try:
            rendered = rendering.result()
        except Exception as exc:  # a plot is a view of the run, not a reason to lose the model
            log.warning("%s: plots not rendered (%s: %s); the run is logged without them",
                        spec.name, type(exc).__name__, exc)
            rendered = {}
        if rendered:
            with tempfile.TemporaryDirectory() as tmp:
                for path, png in rendered.items():
                    (Path(tmp) / Path(path).name).write_bytes(png)
                mlflow.log_artifacts(tmp, artifact_path=str(Path(next(iter(rendered))).parent))
        plots = sorted(rendered)
        laps.lap("plots")
        log_lineage(lineage)
        mlflow.set_tags({WINNER_TAG: winner.name, "mlops.winner_reason": why[:8000], "mlops.model_version": version})
        client.set_registered_model_alias(spec.registered_model_name, CHALLENGER_ALIAS, version)
        mlflow.end_run()
        laps.lap("runs")
    except Exception as exc:
        _end_runs_failed()
        _delete_version_quietly(tracking, spec, version)
        painter.shutdown(wait=False, cancel_futures=True)
        where = f"MLflow run {parent_id}" if parent_id else "the MLflow parent run"
        raise MlflowLoggingError(
            f"{spec.name}: logging to MLflow failed ({type(exc).__name__}: {exc}); {where} is marked FAILED, "
            f"no model version was kept and the champion is unchanged. Check the tracking store "
            f"({tracking.tracking_uri}) and the artifact root ({tracking.artifact_root}), then re-materialize "
            f"{spec.name}/model"
        ) from exc
    painter.shutdown()
    log.info("%s: MLflow logging seconds by part: %s", spec.name, {k: round(v, 3) for k, v in laps.seconds.items()})
    return Logged(experiment_id, parent_id, winner_id, version, plots, lineage, laps.seconds)


def candidates_table(spec: DatasetSpec, results: list[CandidateResult], winner: CandidateResult) -> list[dict]:
    return [
        {"candidate": r.name, "estimator": r.candidate.kind, "role": "baseline" if r.candidate.baseline else "candidate",
         "winner": r is winner, "metrics": _finite(r.metrics), "fit_seconds": round(r.fit_seconds, 3),
         "predict_seconds": round(r.predict_seconds, 3), "params": {k: str(v) for k, v in r.params.items()},
         "run_id": r.run_id, "warnings": r.warnings}
        for r in results
    ]


def train_and_register(
    data: TrainingData,
    spec: DatasetSpec,
    tracking: MlflowTracking,
    *,
    candidates: list[str] | None = None,
    tags: dict[str, str] | None = None,
) -> TrainedModel:
    """Fit the candidates, pick the best by the primary metric, log everything and register it as `challenger`.

    Promotion to champion is a separate, compare-and-set step (`training.promotion`).
    """
    timings = {"reading": data.seconds, "fitting": 0.0, "evaluating": 0.0, "mlflow_logging": 0.0}
    cpu = _CpuClock()
    warm = _warm_up_logging()
    chosen = resolve_candidates(spec, candidates)
    transformer = fitted_feature_transformer(spec, data.reference)
    expected = list(transformer.get_feature_names_out())
    if expected != data.feature_cols:
        raise TrainingInputError(
            f"{spec.name}/features has columns {data.feature_cols} but the spec's transformer makes {expected}: "
            f"re-materialize {spec.name}/features for all partitions"
        )
    parts = split(spec, data.features)
    cpu.lap("preparing")
    results = fit_candidates(spec, parts, data.feature_cols, chosen, timings)
    cpu.lap("fitting")  # candidates' predictions included: fit_candidates times them apart in wall seconds only
    winner, why = choose_winner(spec, results, len(parts.valid))
    t0 = time.perf_counter()
    importances = permutation_importances(spec, winner.estimator, parts.valid[data.feature_cols],
                                          parts.valid[spec.target])
    timings["evaluating"] += time.perf_counter() - t0
    cpu.lap("evaluating")
    failures = quality_failures(spec, winner.metrics)
    run_params = {
        "candidates": ",".join(r.name for r in results),
        "primary_metric": spec.training.primary_metric,
        "class_weight": spec.training.class_weight,
        "partitions": f"{data.partitions[0]}..{data.partitions[-1]} ({len(data.partitions)})",
        "rows_train": len(parts.train),
        "rows_validation": len(parts.valid),
        "n_features": len(data.feature_cols),
        "split": parts.how,
    }
    t0 = time.perf_counter()
    logged = log_and_register(spec, tracking, data, parts, results, winner, why, importances, tags or {}, run_params)
    timings["mlflow_logging"] = time.perf_counter() - t0
    cpu.lap("mlflow_logging")
    return TrainedModel(
        run_id=logged.run_id,
        parent_run_id=logged.parent_run_id,
        experiment_id=logged.experiment_id,
        version=logged.version,
        model_uri=f"models:/{spec.registered_model_name}/{logged.version}",
        winner=winner.name,
        why=why,
        metrics=winner.metrics,
        candidates=results,
        quality_failures=failures,
        partitions=data.partitions,
        rows_train=len(parts.train),
        rows_validation=len(parts.valid),
        validation=parts.window,
        feature_names=data.feature_cols,
        importances=importances,
        plots=logged.plots,
        lineage=logged.lineage,
        timings=timings,
        logging_detail=logged.laps,
        valid_X=parts.valid[data.feature_cols],
        valid_y=parts.valid[spec.target],
        params=run_params,
        partition_rows={p: int(n) for p, n in
                        data.features.groupby("_partition").size().reindex(data.partitions, fill_value=0).items()},
        cpu=cpu.seconds,
        warm_up=warm.report(),
    )
