"""When to retrain: once per new evidence, never for data the champion has already seen, never in a storm.

Evidence is a severe drift report or a performance drop on a partition. It is acted on only when the
champion has not been trained on the newest labeled partition yet (retraining on the same data cannot
fix drift that remains), only once per newest partition (a retrain that failed, rather than one whose
challenger lost, is retried once), and within a cooldown and a daily cap per dataset. Every decision
comes with its reason, for the sensor's tick history and the requested run's tags.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from mlops_assets.datasets.spec import DatasetSpec


@dataclass(frozen=True)
class Evidence:
    kind: str  # "drift" or "performance"
    partition: str | None
    detail: str


RUNNING, FAILED, PROMOTED, NOT_PROMOTED, FINISHED = "running", "failed", "promoted", "not_promoted", "finished"
MAX_ATTEMPTS = 2  # a retrain that failed (not one whose challenger lost) is retried once, after the cooldown


@dataclass(frozen=True)
class RetrainRun:
    """What became of the last retrain requested for a partition, as the Dagster instance knows it."""

    run_id: str
    outcome: str  # RUNNING (queued or started), FAILED (no model came out), PROMOTED, NOT_PROMOTED, FINISHED
    detail: str = ""  # e.g. "champion v3 kept" or "promoted v4"

    def describe(self, partition: str) -> str:
        run = f"run {self.run_id[:8]}"
        if self.outcome == RUNNING:
            return f"a retrain for {partition} is running ({run})"
        if self.outcome == FAILED:
            return f"the retrain for {partition} failed ({run})"
        if self.outcome == NOT_PROMOTED:
            return f"the retrain for {partition} finished ({run}): the challenger was not better ({self.detail})"
        if self.outcome == PROMOTED:
            return f"the retrain for {partition} promoted a new champion ({run}, {self.detail})"
        return f"the retrain for {partition} finished ({run})"


@dataclass
class RetrainState:
    """What the sensor remembers per dataset (JSON in its cursor)."""

    # newest labeled partitions a retrain was requested for, one entry per request (twice when a failed one was retried)
    acted_on: list[str] = field(default_factory=list)
    fired_at: list[float] = field(default_factory=list)  # UTC timestamps of requests
    # the evidence of the last request, kept until its run settles: a failed run's evidence still stands
    pending: list[dict] = field(default_factory=list)

    @classmethod
    def from_json(cls, data: dict | None) -> RetrainState:
        data = data or {}
        return cls(list(data.get("acted_on", [])), [float(t) for t in data.get("fired_at", [])],
                   list(data.get("pending", [])))

    def to_json(self) -> dict:
        return {"acted_on": self.acted_on[-20:], "fired_at": self.fired_at[-50:], "pending": self.pending}

    def attempts(self, partition: str | None) -> int:
        return self.acted_on.count(partition) if partition is not None else 0

    def pending_evidence(self, last_run: RetrainRun | None) -> list[Evidence]:
        """The last request's evidence, again, when its run failed and may still be retried; else nothing."""
        if last_run is None or last_run.outcome != FAILED or not self.acted_on:
            return []
        if self.attempts(self.acted_on[-1]) >= MAX_ATTEMPTS:
            return []
        return [Evidence(**e) for e in self.pending]

    def record(self, decision: Decision, evidence: list[Evidence], last_run: RetrainRun | None, now: dt.datetime) -> None:
        """Remember a request (and its evidence); forget the evidence once the last run settled or ran out of retries."""
        if decision.fire:
            self.acted_on.append(decision.partition)
            self.fired_at.append(now.timestamp())
            self.pending = [{"kind": e.kind, "partition": e.partition, "detail": e.detail} for e in evidence]
        elif last_run is not None and last_run.outcome != RUNNING and not self.pending_evidence(last_run):
            self.pending = []


@dataclass(frozen=True)
class Decision:
    fire: bool
    reason: str
    consumed: bool  # the evidence is dealt with (fired, or can never be acted on); False = look again later
    partition: str | None = None  # when firing: the newest labeled partition the retrain will include
    attempt: int = 1  # when firing: 1, or 2 for the retry of a failed retrain


def run_key(dataset: str, partition: str, attempt: int) -> str:
    """One run per (partition, attempt): Dagster drops a request whose run key it has already launched."""
    return f"{dataset}:retrain:{partition}" + (f":attempt{attempt}" if attempt > 1 else "")


def decide(
    spec: DatasetSpec,
    evidence: list[Evidence],
    newest_labeled: str | None,
    champion_version: str | None,
    champion_partitions: set[str],
    state: RetrainState,
    now: dt.datetime,
    last_run: RetrainRun | None = None,
) -> Decision:
    """`last_run`: the newest retrain run requested for `newest_labeled` (without evidence: for the last request)."""
    name = spec.name
    if not evidence:
        if state.acted_on:
            last = state.acted_on[-1]
            when = dt.datetime.fromtimestamp(max(state.fired_at), dt.UTC).isoformat(timespec="minutes")
            reason = f"{name}: no new evidence since the retrain requested for {last} at {when}"
            if last_run is not None:
                reason += f"; {last_run.describe(last)}"
                if last_run.outcome == FAILED and state.attempts(last) >= MAX_ATTEMPTS:
                    reason += (f", not retried again ({state.attempts(last)} attempts); fix the cause and "
                               f"materialize {name}/model by hand")
                elif last_run.outcome == FAILED:
                    reason += f"; materialize {name}/model to retry"
            return Decision(False, reason, True)
        return Decision(False, f"{name}: no new evidence", True)
    what = "; ".join(e.detail for e in evidence)
    if champion_version is None:
        return Decision(False, f"{name}: {what}, but there is no champion yet (train one first)", True)
    if newest_labeled is None:
        return Decision(False, f"{name}: {what}, but no labeled partition to train on", True)
    if newest_labeled in champion_partitions:
        return Decision(False, f"{name}: {what}; champion v{champion_version} is already trained on the newest "
                        f"labeled partition {newest_labeled}: retraining on the same data cannot help, waiting "
                        "for new labeled data", True)
    attempts = state.attempts(newest_labeled)
    retry = ""
    if attempts:
        if last_run is None:
            return Decision(False, f"{name}: {what}; a retrain including {newest_labeled} was already requested "
                            "(its run is not in this instance)", True)
        if last_run.outcome == RUNNING:
            return Decision(False, f"{name}: {what}; {last_run.describe(newest_labeled)}", False)
        if last_run.outcome != FAILED:
            return Decision(False, f"{name}: {what}; a retrain including {newest_labeled} was already requested: "
                            f"{last_run.describe(newest_labeled)}", True)
        if attempts >= MAX_ATTEMPTS:
            return Decision(False, f"{name}: {what}; {last_run.describe(newest_labeled)}, not retried again "
                            f"({attempts} attempts); fix the cause and materialize {name}/model by hand", True)
        retry = f"{last_run.describe(newest_labeled)}; "
    stamp = now.timestamp()
    last = max(state.fired_at, default=None)
    cooldown = spec.drift.cooldown_minutes * 60
    if last is not None and stamp - last < cooldown:
        until = dt.datetime.fromtimestamp(last + cooldown, dt.UTC).isoformat(timespec="minutes")
        return Decision(False, f"{name}: {what}; {retry}in cooldown until {until}", False)
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0).timestamp()
    today = sum(1 for t in state.fired_at if t >= midnight)
    if today >= spec.drift.max_retrains_per_day:
        return Decision(False, f"{name}: {what}; {retry}daily cap of {spec.drift.max_retrains_per_day} retrains "
                        "reached", False)
    action = "retry the retrain" if retry else "retrain"
    return Decision(True, f"{name}: {what}; {retry}champion v{champion_version} has not seen {newest_labeled}: "
                    f"{action}", True, newest_labeled, attempts + 1)
