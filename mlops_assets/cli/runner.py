"""Run the platform's jobs in-process against the persistent Dagster instance (what `make demo` does).

Runs go through the same job definitions the UI uses, asset checks included, and land in
DAGSTER_HOME, so `make dev` shows everything that was materialized here.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import uuid
from dataclasses import dataclass

import dagster as dg

from mlops_assets.datasets.factory import job_name, partitions_for
from mlops_assets.datasets.generator import generate_range
from mlops_assets.datasets.spec import DatasetSpec
from mlops_assets.files import atomic_copy
from mlops_assets.home import MlopsHome
from mlops_assets.stages import metadata_values
from mlops_assets.stages.model import training_run_config

log = logging.getLogger(__name__)


class JobFailed(RuntimeError):
    """A job run failed; the message carries Dagster's own failure descriptions."""


@dataclass
class Runner:
    defs: dg.Definitions
    instance: dg.DagsterInstance
    home: MlopsHome
    log_level: str = "WARNING"
    progress: bool = False  # progress lines on stderr while a run goes (the CLI's verbs)

    def _following(self, run_id: str, label: str):
        if not self.progress:
            return contextlib.nullcontext()
        from mlops_assets.progress import RunProgress

        return RunProgress(self.instance, run_id, label)

    def execute(
        self, job_name: str, partition_key: str | None = None, *, asset_selection: list[dg.AssetKey] | None = None,
        tags: dict[str, str] | None = None, ops_config: dict | None = None,
    ) -> dg.ExecuteInProcessResult:
        """Run a job (or part of it) and return the result, failed or not."""
        job = self.defs.resolve_job_def(job_name)
        run_config: dict = {"loggers": {"console": {"config": {"log_level": self.log_level}}}}
        if ops_config:
            run_config["ops"] = ops_config
        run_id = str(uuid.uuid4())
        with self._following(run_id, job_name + (f" [{partition_key}]" if partition_key else "")):
            return job.execute_in_process(
                instance=self.instance,
                partition_key=partition_key,
                asset_selection=asset_selection,
                raise_on_error=False,
                tags=tags or {},
                run_config=run_config,
                run_id=run_id,
            )

    def run(
        self, job_name: str, partition_key: str | None = None, tags: dict[str, str] | None = None,
        ops_config: dict | None = None,
    ) -> dg.ExecuteInProcessResult:
        """Run a job; raise JobFailed naming every failed step and failed check."""
        result = self.execute(job_name, partition_key, tags=tags, ops_config=ops_config)
        problems = failures(result, self.gates)
        if problems:
            where = f"{job_name}" + (f" [{partition_key}]" if partition_key else "")
            raise JobFailed(f"{where} failed: " + " | ".join(problems))
        return result

    def run_request(self, request: dg.RunRequest, *, check: bool = True) -> dg.ExecuteInProcessResult:
        """Execute what a sensor or schedule asked for (its asset selection and tags), here and now.

        With `check`, a failed step or gate check raises JobFailed; without, the result tells.
        """
        keys = list(request.asset_selection or [])
        job = self.defs.resolve_implicit_job_def_def_for_assets(keys)
        run_id = str(uuid.uuid4())
        label = ", ".join(k.to_user_string() for k in keys) + (f" [{request.partition_key}]" if request.partition_key else "")
        with self._following(run_id, label):
            result = job.execute_in_process(
                instance=self.instance, asset_selection=keys, partition_key=request.partition_key,
                tags=dict(request.tags), raise_on_error=False,
                run_config={"loggers": {"console": {"config": {"log_level": self.log_level}}}},
                run_id=run_id,
            )
        problems = failures(result, self.gates)
        if problems and check:
            raise JobFailed("requested run failed: " + " | ".join(problems))
        return result

    @property
    def gates(self) -> set[dg.AssetCheckKey]:
        """The blocking checks: their failure fails a command. Other checks (drift, performance) are findings."""
        return {spec.key for a in self.defs.assets for spec in a.check_specs if spec.blocking}

    def register_partition(self, spec: DatasetSpec, partition_key: str) -> None:
        partitions = partitions_for(spec)
        if isinstance(partitions, dg.DynamicPartitionsDefinition) and not self.instance.has_dynamic_partition(partitions.name, partition_key):
            self.instance.add_dynamic_partitions(partitions.name, [partition_key])

    def ingest(self, spec: DatasetSpec, partition_key: str) -> None:
        self.register_partition(spec, partition_key)
        self.run(job_name(spec.name, "ingest"), partition_key)


def failures(result: dg.ExecuteInProcessResult, gates: set[dg.AssetCheckKey] | None = None) -> list[str]:
    """Why a run did not fully succeed: failed steps (user-facing reasons) and failed gate checks.

    `gates` are the checks that decide (blocking ones); a failed check outside them is a finding
    (see `findings`), not a failure. Without `gates`, every failed check counts.
    """
    failed_checks = [c for c in result.get_asset_check_evaluations()
                     if not c.passed and (gates is None or c.asset_check_key in gates)]
    # a step failed by its own blocking check is reported below, with the check's description
    failed_by_check = {c.asset_check_key.asset_key.to_python_identifier() for c in failed_checks}
    problems = [_failure_reason(e) for e in result.get_step_failure_events() if e.step_key not in failed_by_check]
    for check in failed_checks:
        problems.append(f"check {check.asset_check_key.to_user_string()} failed: "
                        f"{check.description or 'see the Dagster UI'}")
    if not result.success and not problems:
        problems.append("the run failed; see the Dagster UI")
    return problems


def findings(result: dg.ExecuteInProcessResult, gates: set[dg.AssetCheckKey]) -> list[str]:
    """Failed monitoring checks (drift, performance): worth telling, not a failure of the run."""
    return [f"{c.asset_check_key.to_user_string()}: {c.description or 'failed'}"
            for c in result.get_asset_check_evaluations() if not c.passed and c.asset_check_key not in gates]


def cli_runner(home: MlopsHome) -> Runner:
    """What every verb runs on: the one Definitions (every spec), the persistent instance, quiet console logs."""
    from mlops_assets.cli.errors import dagster_instance
    from mlops_assets.datasets.spec import load_specs
    from mlops_assets.definitions import build_definitions

    return Runner(build_definitions(home, load_specs()), dagster_instance(), home, log_level="CRITICAL", progress=True)


def check_results(result: dg.ExecuteInProcessResult) -> dict[str, dict]:
    """Asset check outcomes of a run, by check name: passed, and why not."""
    return {
        check.asset_check_key.name: {"passed": check.passed, "description": check.description}
        for check in result.get_asset_check_evaluations()
    }


def materialization_metadata(result: dg.ExecuteInProcessResult, key: dg.AssetKey) -> dict:
    """The metadata values of `key`'s materialization in this run ({} when it did not materialize)."""
    for event in result.get_asset_materialization_events():
        if event.asset_key == key:
            return metadata_values(event.materialization)
    return {}


def _failure_reason(event: dg.DagsterEvent) -> str:
    """The user-facing reason of a step failure: a Failure's description, else the root exception."""
    data = event.step_failure_data
    if data.user_failure_data and data.user_failure_data.description:
        return data.user_failure_data.description
    error = data.error
    while error is not None and error.cause is not None:
        error = error.cause
    return f"{event.step_key}: {error.message.strip() if error else 'failed'}"


def land_shipped_file(spec: DatasetSpec, home: MlopsHome, name: str) -> str:
    """Copy a file shipped with the dataset into its landing zone (as a user would drop it)."""
    shipped = home.shipped_file(spec.name, name)
    target = home.landing_file(spec.name, name, daily=spec.is_daily)
    if not target.exists() or target.read_bytes() != shipped.read_bytes():
        atomic_copy(shipped, target)
    return name


def _progress(runner: Runner, what: str, total: int, unit: str):
    """`advance(rows=...)` of a Progress when the runner reports progress, else a no-op."""
    if not runner.progress:
        return lambda **_: None
    from mlops_assets.progress import Progress

    return Progress(what, total, unit).advance


def run_demo(runner: Runner, specs: dict[str, DatasetSpec], *, days: int, drift_days: int, rows_per_day: int, say=log.info) -> None:
    """The story: history -> champion -> Bento; then a drifted batch arrives and is caught."""
    tx = specs["transactions"]
    start = dt.date.fromisoformat(tx.partitioning.start_date)
    drift_from = start + dt.timedelta(days=days)
    generated = _progress(runner, f"generate {tx.name}", days + drift_days, "days")
    generate_range(runner.home, tx.name, start, days + drift_days, rows_per_day, seed=tx.source.seed,
                   drift_from=drift_from, on_day=lambda _: generated(rows=rows_per_day))
    say(f"transactions: generated {days + drift_days} days x {rows_per_day} rows (drift from {drift_from})")
    for offset in range(days):
        runner.ingest(tx, (start + dt.timedelta(days=offset)).isoformat())
    last_day = (drift_from - dt.timedelta(days=1)).isoformat()
    say(f"transactions: ingested {days} days; training on them (up to {last_day})")
    runner.run(job_name(tx.name, "train"), ops_config=training_run_config(tx, train_until=last_day))
    for offset in range(days, days + drift_days):
        runner.ingest(tx, (start + dt.timedelta(days=offset)).isoformat())
    runner.run(job_name(tx.name, "monitor"))
    say("transactions: drifted days ingested and drift report written")

    wine = specs["wine_quality"]
    red, white = wine.source.seed_files
    runner.ingest(wine, land_shipped_file(wine, runner.home, red))
    runner.run(job_name(wine.name, "train"), ops_config=training_run_config(wine, train_until=red))
    runner.ingest(wine, land_shipped_file(wine, runner.home, white))
    runner.run(job_name(wine.name, "monitor"))
    say("wine_quality: trained on red, white arrived later and was checked for drift")
