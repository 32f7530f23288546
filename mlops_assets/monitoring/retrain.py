"""When to retrain: once per new evidence, never for data the champion has already seen, never in a storm.

Evidence is a severe drift report or a performance drop on a partition. It is acted on only when the
champion has not been trained on the newest labeled partition yet (retraining on the same data cannot
fix drift that remains), only once per newest partition, and within a cooldown and a daily cap per
dataset. Every decision comes with its reason, for the sensor's tick history.
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


@dataclass
class RetrainState:
    """What the sensor remembers per dataset (JSON in its cursor)."""

    acted_on: list[str] = field(default_factory=list)  # newest labeled partitions a retrain was requested for
    fired_at: list[float] = field(default_factory=list)  # UTC timestamps of requests

    @classmethod
    def from_json(cls, data: dict | None) -> RetrainState:
        data = data or {}
        return cls(list(data.get("acted_on", [])), [float(t) for t in data.get("fired_at", [])])

    def to_json(self) -> dict:
        return {"acted_on": self.acted_on[-20:], "fired_at": self.fired_at[-50:]}


@dataclass(frozen=True)
class Decision:
    fire: bool
    reason: str
    consumed: bool  # the evidence is dealt with (fired, or can never be acted on); False = look again later
    partition: str | None = None  # when firing: the newest labeled partition the retrain will include


def decide(
    spec: DatasetSpec,
    evidence: list[Evidence],
    newest_labeled: str | None,
    champion_version: str | None,
    champion_partitions: set[str],
    state: RetrainState,
    now: dt.datetime,
) -> Decision:
    name = spec.name
    if not evidence:
        if state.acted_on:
            when = dt.datetime.fromtimestamp(max(state.fired_at), dt.UTC).isoformat(timespec="minutes")
            return Decision(False, f"{name}: no new evidence since the retrain requested for {state.acted_on[-1]} "
                            f"at {when}", True)
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
    if newest_labeled in state.acted_on:
        return Decision(False, f"{name}: {what}; a retrain including {newest_labeled} was already requested "
                        f"(champion v{champion_version} kept: the challenger was not better)", True)
    stamp = now.timestamp()
    last = max(state.fired_at, default=None)
    cooldown = spec.drift.cooldown_minutes * 60
    if last is not None and stamp - last < cooldown:
        until = dt.datetime.fromtimestamp(last + cooldown, dt.UTC).isoformat(timespec="minutes")
        return Decision(False, f"{name}: {what}; in cooldown until {until}", False)
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0).timestamp()
    today = sum(1 for t in state.fired_at if t >= midnight)
    if today >= spec.drift.max_retrains_per_day:
        return Decision(False, f"{name}: {what}; daily cap of {spec.drift.max_retrains_per_day} retrains reached", False)
    return Decision(True, f"{name}: {what}; champion v{champion_version} has not seen {newest_labeled}: retrain",
                    True, newest_labeled)
