"""Champion vs challenger: promote only a model at least as good, and never on a stale comparison.

MLflow's registry has no conditional update: `set_registered_model_alias` is last-writer-wins. Two
model runs that each read "champion = v3", decide, and write would leave the alias on whichever wrote
last, better or not. So the read-decide-write is made a compare-and-set:

1. read the champion and score it on the challenger's held-out rows (slow: loads the model), unlocked;
2. take the champion lock of the registered model (`MlflowTracking.promotion_lock`), re-read the
   alias: if it moved while we were scoring, release and go back to 1 against the new champion;
3. still holding the lock: decide, record the decision (tags), move the alias, read it back; release.
   Recording first means a failure to record leaves the alias untouched; a failure while moving it is
   reported with where the registry says the alias stands.

Every writer of `champion` (model runs, `mlops-assets promote`) takes the same lock, so no write lands
between our re-read and our write. The lock belongs to the tracking store, so everything writing to one
store shares it: an `flock` beside a local SQLite store, a PostgreSQL session advisory lock on the
MLflow database in the cloud (model runs as separate ECS tasks on separate hosts). Both are released
when the holder dies, so a crashed run never leaves a stale lock behind.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from mlops_assets.datasets.spec import LOWER_IS_BETTER, DatasetSpec
from mlops_assets.resources.tracking import MlflowTracking, PromotionLockError
from mlops_assets.training.registry import CHAMPION_ALIAS, PROMOTION_TAG, champion, load_champion_pipeline

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 5


class NotComparable(Exception):
    """The champion cannot be scored on the challenger's rows (another feature set, unloadable model)."""


class PromotionError(RuntimeError):
    """The promotion step could not complete; the message says where the alias stands."""


@dataclass
class PromotionDecision:
    promoted: bool
    not_worse: bool  # the comparison alone (the quality floor aside)
    reason: str
    metric: str
    challenger_version: str
    challenger_score: float
    champion_version: str | None  # the champion compared against (None: there was none)
    champion_score: float | None
    margin: float
    rows: int
    champion_after: str | None  # where the alias stands after the decision
    attempts: int = 1
    champions_seen: list[str] = field(default_factory=list)
    champion_metrics: dict[str, float] = field(default_factory=dict)

    def summary(self) -> str:
        """One sentence with both scores, for logs, tags and the Dagster UI."""
        if self.promoted:
            verb = "promoted to champion"
        elif self.champion_after == self.challenger_version:
            verb = "already champion"
        else:
            verb = "rejected, champion stays " + (f"v{self.champion_after}" if self.champion_after else "unset")
        scores = f"{self.metric} {self.challenger_score:.4f}"
        if self.champion_version not in (None, self.challenger_version):
            champ = "n/a" if self.champion_score is None else f"{self.champion_score:.4f}"
            scores += f" vs champion v{self.champion_version} {champ} on the same {self.rows:,} held-out rows"
        return f"challenger v{self.challenger_version} {verb}: {scores} (margin {self.margin}); {self.reason}"


@contextlib.contextmanager
def champion_lock(tracking: MlflowTracking, spec: DatasetSpec) -> Iterator[None]:
    """The tracking store's lock on `spec`'s champion alias; failing to take it is a PromotionError (nothing moved)."""
    with contextlib.ExitStack() as stack:
        try:
            stack.enter_context(tracking.promotion_lock(spec.registered_model_name))
        except PromotionLockError as exc:
            raise PromotionError(f"{spec.name}: {exc}; the champion alias was not touched") from None
        yield


class ChampionScorer:
    """Scores a registered version on rows of the features table (`X`, `y`), as the challenger was scored.

    The registered pipeline is [feature transformer, estimator] and the transformer is stateless
    (`training.features`), so the estimator step on feature rows predicts exactly what the whole
    pipeline predicts on the cleaned rows they came from. Keeps the seconds spent loading models from
    the registry apart from those spent predicting (the latter is evaluation, not registry overhead).
    """

    def __init__(self, tracking: MlflowTracking, spec: DatasetSpec, X: pd.DataFrame, y: pd.Series) -> None:
        self.tracking, self.spec, self.X, self.y = tracking, spec, X, y
        self.seconds = {"loading": 0.0, "scoring": 0.0, "scoring_cpu": 0.0}

    def __call__(self, version) -> dict[str, float]:
        from mlops_assets.training.train import evaluate_scores, predict_scores

        started = time.perf_counter()
        try:
            pipeline = load_champion_pipeline(self.tracking, self.spec, version)
        except Exception as exc:  # any load failure means "cannot compare", said with its cause
            raise NotComparable(f"champion v{version.version} cannot be loaded ({type(exc).__name__}: {exc})") from exc
        finally:
            self.seconds["loading"] += time.perf_counter() - started
        estimator = getattr(pipeline, "named_steps", {}).get("estimator")
        if estimator is None:
            raise NotComparable(f"champion v{version.version} is not a [features, estimator] pipeline")
        needed = list(getattr(estimator, "feature_names_in_", self.X.columns))
        missing = sorted(set(needed) - set(self.X.columns))
        if missing:
            raise NotComparable(f"champion v{version.version} uses features {missing} that the current "
                                "features table does not have (the spec changed)")
        started, cpu = time.perf_counter(), time.thread_time()
        metrics = evaluate_scores(self.spec, self.y, predict_scores(self.spec, estimator, self.X[needed]))
        self.seconds["scoring"] += time.perf_counter() - started
        self.seconds["scoring_cpu"] += time.thread_time() - cpu
        return metrics


def champion_scorer(tracking: MlflowTracking, spec: DatasetSpec, X: pd.DataFrame, y: pd.Series) -> ChampionScorer:
    return ChampionScorer(tracking, spec, X, y)


def compare(spec: DatasetSpec, challenger_score: float, champion_score: float | None, has_champion: bool,
            margin: float, not_comparable: str | None = None, challenger_is_older: bool = False) -> tuple[bool, str]:
    """Is the challenger at least as good as the champion plus the margin? (and why, in words)

    A challenger registered before the champion (a slow run finishing after a faster, newer one) must
    be strictly better: on a tie the newer model keeps the alias.
    """
    from mlops_assets.training.train import is_better

    if not has_champion:
        return True, "no champion yet"
    if not_comparable:
        return False, (f"{not_comparable}; the challenger is not promoted automatically: promote it by hand with "
                       f"`mlops-assets promote {spec.name} VERSION` if it should serve")
    better = "lower" if spec.training.primary_metric in LOWER_IS_BETTER else "higher"
    if not is_better(spec, challenger_score, champion_score, margin):
        return False, f"not as good as the champion plus the margin ({better} is better)"
    if challenger_is_older and challenger_score == champion_score:
        return False, "ties with a champion registered after it: the newer model keeps the alias"
    return True, f"at least as good as the champion plus the margin ({better} is better)"


def promote_if_better(
    tracking: MlflowTracking,
    spec: DatasetSpec,
    *,
    challenger_version: str,
    challenger_metrics: dict[str, float],
    rows: int,
    scorer: Callable[[object], dict[str, float]],
    margin: float | None = None,
    floor_failures: list[str] = (),
    record_on_runs: list[str] = (),
) -> PromotionDecision:
    """Compare-and-set promotion of `challenger_version` (see the module docstring).

    The decision is recorded as tags on the model version and on `record_on_runs` (the MLflow runs).
    """
    metric = spec.training.primary_metric
    margin = spec.training.promotion_margin if margin is None else margin
    challenger_score = float(challenger_metrics.get(metric, float("nan")))
    seen = champion(tracking, spec)
    versions_seen: list[str] = []
    for attempt in range(1, MAX_ATTEMPTS + 1):
        seen_version = None if seen is None else str(seen.version)
        versions_seen.append(seen_version or "none")
        # Someone made this very version champion by hand (`mlops-assets promote`) while it was being
        # compared: there is nothing to compare with and nothing to move.
        already = seen_version == str(challenger_version)
        champion_metrics: dict[str, float] = {}
        not_comparable = None
        if seen is not None and not already:
            try:
                champion_metrics = scorer(seen)
            except NotComparable as exc:
                not_comparable = str(exc)
        champion_score = champion_metrics.get(metric)
        if already:
            comparable_ok, promote, reason = True, False, "already champion (promoted by hand)"
            if floor_failures:
                reason += "; below the quality floor: " + "; ".join(floor_failures)
        else:
            older = seen is not None and int(seen.version) > int(challenger_version)
            comparable_ok, reason = compare(spec, challenger_score, champion_score, seen is not None, margin,
                                            not_comparable, challenger_is_older=older)
            promote = comparable_ok and not floor_failures
            if floor_failures:
                reason += ("; but" if comparable_ok else "; also") + " below the quality floor: " + "; ".join(floor_failures)
        with champion_lock(tracking, spec):
            current = champion(tracking, spec)
            if (None if current is None else str(current.version)) != seen_version:
                log.info("%s: champion moved from v%s to v%s while deciding; deciding again",
                         spec.name, seen_version, None if current is None else current.version)
                seen = current
                continue
            decision = PromotionDecision(
                promoted=promote, not_worse=comparable_ok, reason=reason, metric=metric, challenger_version=str(challenger_version),
                challenger_score=challenger_score, champion_version=seen_version, champion_score=champion_score,
                margin=margin, rows=rows, champion_after=str(challenger_version) if promote or already else seen_version,
                attempts=attempt, champions_seen=versions_seen, champion_metrics=champion_metrics,
            )
            # Recorded before the alias moves: a failure here leaves the alias where it was, as the message says.
            try:
                record(tracking, spec, decision, record_on_runs)
            except Exception as exc:
                raise PromotionError(
                    f"{spec.name}: recording the decision on challenger v{challenger_version} failed "
                    f"({type(exc).__name__}: {exc}); the champion alias was not moved (still {_named(seen_version)})"
                ) from exc
            if promote:
                _move_champion(tracking, spec, decision, record_on_runs)
            return decision
    raise PromotionError(f"{spec.name}: the champion changed {MAX_ATTEMPTS} times while v{challenger_version} "
                         f"was being compared ({versions_seen}); the alias was not touched, re-materialize "
                         f"{spec.name}/model")


def record(tracking: MlflowTracking, spec: DatasetSpec, decision: PromotionDecision, run_ids: list[str]) -> None:
    """The decision as tags on the version and the runs: a rejected challenger is findable in MLflow."""
    tags = {
        PROMOTION_TAG: _outcome(decision),
        "mlops.promotion_reason": decision.summary()[:8000],
        "mlops.promotion_metric": decision.metric,
        "mlops.challenger_score": _fmt(decision.challenger_score),
        "mlops.champion_score": _fmt(decision.champion_score),
        "mlops.compared_with_version": decision.champion_version or "none",
        "mlops.promotion_margin": str(decision.margin),
        "mlops.decided_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    client = tracking.client()
    for key, value in tags.items():
        client.set_model_version_tag(spec.registered_model_name, decision.challenger_version, key, value)
    for run_id in run_ids:
        from mlflow.entities import RunTag

        client.log_batch(run_id, tags=[RunTag(k, v) for k, v in tags.items()])


def _outcome(decision: PromotionDecision) -> str:
    if decision.promoted:
        return "promoted"
    # made champion by hand while this run decided: the version keeps the tag `promote` gave it
    return "manual" if decision.champion_after == decision.challenger_version else "rejected"


def _named(version: str | None) -> str:
    return "unset" if version is None else f"v{version}"


def _move_champion(tracking: MlflowTracking, spec: DatasetSpec, decision: PromotionDecision,
                   run_ids: list[str]) -> None:
    """Point `champion` at the challenger and read it back; any failure says where the alias stands now."""
    version, before = decision.challenger_version, decision.champion_version
    try:
        tracking.client().set_registered_model_alias(spec.registered_model_name, CHAMPION_ALIAS, version)
        after = champion(tracking, spec)
    except Exception as exc:
        raise PromotionError(f"{spec.name}: moving the champion alias from {_named(before)} to v{version} failed "
                             f"({type(exc).__name__}: {exc}); {_alias_now(tracking, spec, decision, run_ids)}") from exc
    if after is None or str(after.version) != version:
        raise PromotionError(f"{spec.name}: set the champion alias to v{version} but the registry reads back "
                             f"{_named(None if after is None else str(after.version))}; "
                             f"{_alias_now(tracking, spec, decision, run_ids)}")


def _alias_now(tracking: MlflowTracking, spec: DatasetSpec, decision: PromotionDecision, run_ids: list[str]) -> str:
    """Where the alias stands after a failed move, read from the registry (the call may have landed before
    failing); when it did not land, the decision's tags are corrected to say so (best effort)."""
    try:
        now = champion(tracking, spec)
    except Exception as exc:  # the store is unreachable: say so rather than guess
        return (f"the champion alias could not be read back ({type(exc).__name__}); check it with "
                f"`mlops-assets lineage {spec.name}` and move it with `mlops-assets promote {spec.name} VERSION`")
    now_version = None if now is None else str(now.version)
    if now_version == decision.challenger_version:
        return f"the champion alias did move: it is now v{now_version} (was {_named(decision.champion_version)})"
    try:
        client = tracking.client()
        client.set_model_version_tag(spec.registered_model_name, decision.challenger_version, PROMOTION_TAG, "failed")
        for run_id in run_ids:
            client.set_tag(run_id, PROMOTION_TAG, "failed")
    except Exception as exc:  # the message below is what matters; the tag is a courtesy
        log.warning("%s: could not tag v%s as failed: %s", spec.name, decision.challenger_version, exc)
    return f"the champion alias was not moved: it is still {_named(now_version)}"


def _fmt(value: float | None) -> str:
    return "none" if value is None or np.isnan(value) else f"{value:.6g}"


def promote_version(tracking: MlflowTracking, spec: DatasetSpec, version: str,
                    who: str = "manual") -> tuple[str | None, str]:
    """Move `champion` to `version` by hand (rollback), under the same lock; returns (before, after)."""
    client = tracking.client()
    with champion_lock(tracking, spec):
        before = champion(tracking, spec)
        before_version = None if before is None else str(before.version)
        client.set_registered_model_alias(spec.registered_model_name, CHAMPION_ALIAS, str(version))
        after = champion(tracking, spec)
        tags = {PROMOTION_TAG: who, "mlops.promoted_from_version": before_version or "none",
                "mlops.decided_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}
        for key, value in tags.items():
            client.set_model_version_tag(spec.registered_model_name, str(version), key, value)
    return before_version, str(after.version)
