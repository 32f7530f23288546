"""Crashes and overlaps lose nothing: kill -9 inside each stage, concurrent partition runs, bad folders.

Each test has its own MLOPS_HOME and Dagster instance. Kills happen in a child process
(`crash_driver`) inside the stage's own transaction, after its writes and before COMMIT.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys

import dagster as dg
import pytest

from mlops_assets.datasets.generator import generate_range

pytestmark = pytest.mark.slow  # child processes with the whole stack

DAY = dt.date(2026, 1, 1)
ROWS = 300


def _driver(home, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "MLOPS_HOME": str(home.root), "DAGSTER_HOME": str(home.dagster_home),
           "BENTOML_HOME": str(home.bentoml_home), "MLFLOW_TRACKING_URI": home.tracking_uri}
    return subprocess.run([sys.executable, "-m", "mlops_assets_tests.crash_driver", *args], env=env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture()
def runner(fresh_home, specs, monkeypatch):
    """An in-process runner on `fresh_home`'s own persistent instance (the one the child processes use)."""
    from mlops_assets.cli.runner import Runner
    from mlops_assets.definitions import build_definitions

    monkeypatch.setenv("DAGSTER_HOME", str(fresh_home.dagster_home))
    with dg.DagsterInstance.get() as instance:
        yield Runner(build_definitions(fresh_home, specs), instance, fresh_home, log_level="CRITICAL")


def _started_runs(instance) -> list:
    return list(instance.get_run_records(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED])))


def _counts(runner, dataset: str, partition: str) -> dict[str, int]:
    with runner.defs.resources["warehouse"].connect(read_only=True) as con:
        one = lambda sql: con.execute(sql, [partition]).fetchone()[0]  # noqa: E731
        key = "transaction_id" if dataset == "transactions" else "fixed_acidity"
        return {
            "cleaned": one(f"SELECT count(*) FROM {dataset}.cleaned WHERE _partition = ?"),
            "distinct": one(f"SELECT count(DISTINCT (_source_line, {key})) FROM {dataset}.cleaned WHERE _partition = ?"),
            "contracts": one(f"SELECT count(*) FROM {dataset}.ingestion_contracts WHERE _partition = ?"),
            "rows_read": one(f"SELECT coalesce(max(rows_read), -1) FROM {dataset}.ingestion_contracts WHERE _partition = ?"),
            "features": one(f"SELECT count(*) FROM {dataset}.features WHERE _partition = ?")
            if con.execute(f"SELECT count(*) FROM information_schema.tables WHERE table_schema = '{dataset}' "
                           "AND table_name = 'features'").fetchone()[0] else 0,
            "staging": con.execute(f"SELECT count(*) FROM information_schema.tables WHERE table_schema = '{dataset}' "
                                   "AND table_name LIKE '_stage__%'").fetchone()[0],
        }


@pytest.mark.parametrize("module", ["mlops_assets.ingest.landing", "mlops_assets.ingest.cleaning",
                                    "mlops_assets.training.features"], ids=["raw", "cleaned", "features"])
def test_kill_inside_an_ingest_stage_then_rerun_gives_exact_counts_and_no_ghost(runner, specs, module):
    from mlops_assets.recovery import reconcile_dead_runs

    home = runner.home
    generate_range(home, "transactions", DAY, 1, ROWS, seed=5)
    killed = _driver(home, "--dataset", "transactions", "--job", "transactions_ingest", "--partition",
                     DAY.isoformat(), "--kill-before-commit-in", module)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert len(_started_runs(runner.instance)) == 1  # the ghost, before reconciliation

    dead = reconcile_dead_runs(runner.instance)
    assert len(dead) == 1 and not _started_runs(runner.instance)
    failed = runner.instance.get_run_by_id(dead[0].run_id)
    assert failed.status == dg.DagsterRunStatus.FAILURE

    runner.ingest(specs["transactions"], DAY.isoformat())
    counts = _counts(runner, "transactions", DAY.isoformat())
    assert counts == {"cleaned": ROWS, "distinct": ROWS, "contracts": 1, "rows_read": ROWS, "features": ROWS,
                      "staging": 0}


@pytest.fixture()
def wine_champion(runner, specs):
    """Wine red ingested and trained, in child processes (BentoML binds its store once per process)."""
    from mlops_assets.cli.runner import land_shipped_file

    wine = specs["wine_quality"]
    red = land_shipped_file(wine, runner.home, "winequality-red.csv")
    for args in (("--job", "wine_quality_ingest", "--partition", red), ("--job", "wine_quality_train")):
        done = _driver(runner.home, "--dataset", "wine_quality", *args)
        assert done.returncode == 0, done.stderr[-2000:]
    return wine


def test_kill_while_building_the_bento_then_rerun_serves_a_loadable_champion(runner, wine_champion):
    from mlops_assets.recovery import reconcile_dead_runs
    from mlops_assets.resources import MlflowTracking
    from mlops_assets.training.registry import champion, load_champion_pipeline

    killed = _driver(runner.home, "--dataset", "wine_quality", "--job", "wine_quality_train",
                     "--kill-in", "mlops_assets.serving.packaging:build_bento")
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert len(reconcile_dead_runs(runner.instance)) == 1
    rerun = _driver(runner.home, "--dataset", "wine_quality", "--job", "wine_quality_train")
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert not _started_runs(runner.instance)

    local = MlflowTracking(tracking_uri=runner.home.tracking_uri, artifact_root=str(runner.home.artifact_root))
    version = champion(local, wine_champion)
    pipeline = load_champion_pipeline(local, wine_champion, version)
    with runner.defs.resources["warehouse"].connect(read_only=True) as con:
        rows = con.execute("SELECT * FROM wine_quality.cleaned LIMIT 5").df()
    assert len(pipeline.predict(rows)) == 5
    bento = runner.instance.get_latest_materialization_event(dg.AssetKey(["wine_quality", "bento"]))
    assert bento.asset_materialization.metadata["mlflow_version"].value == str(version.version)


def test_eight_partition_runs_in_separate_processes_land_exactly_once(runner, specs):
    days = [DAY + dt.timedelta(days=i) for i in range(8)]
    generate_range(runner.home, "transactions", DAY, 8, ROWS, seed=9)
    env = {**os.environ, "MLOPS_HOME": str(runner.home.root), "DAGSTER_HOME": str(runner.home.dagster_home)}
    processes = [
        subprocess.Popen([sys.executable, "-m", "mlops_assets_tests.crash_driver", "--dataset", "transactions",
                          "--job", "transactions_ingest", "--partition", d.isoformat()],
                         env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for d in days
    ]
    outputs = [p.communicate(timeout=600)[0] for p in processes]
    assert [p.returncode for p in processes] == [0] * 8, "\n".join(o[-1500:] for o in outputs)
    for day in days:
        counts = _counts(runner, "transactions", day.isoformat())
        assert counts["cleaned"] == counts["distinct"] == counts["features"] == ROWS
        assert counts["contracts"] == 1
    with runner.defs.resources["warehouse"].connect(read_only=True) as con:
        assert con.execute("SELECT count(*) FROM transactions.cleaned").fetchone()[0] == 8 * ROWS


def test_two_runs_of_the_same_new_day_both_succeed(runner, specs):
    """Both find no landing file and generate it; neither tears the other's file or fails on its name."""
    day = "2026-03-01"
    env = {**os.environ, "MLOPS_HOME": str(runner.home.root), "DAGSTER_HOME": str(runner.home.dagster_home)}
    processes = [
        subprocess.Popen([sys.executable, "-m", "mlops_assets_tests.crash_driver", "--dataset", "transactions",
                          "--job", "transactions_ingest", "--partition", day],
                         env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=600)[0] for p in processes]
    assert [p.returncode for p in processes] == [0, 0], "\n".join(o[-1500:] for o in outputs)
    rows = specs["transactions"].source.rows_per_day
    counts = _counts(runner, "transactions", day)
    assert counts["cleaned"] == counts["distinct"] == counts["features"] == rows
    landing = runner.home.landing("transactions")
    assert [p.name for p in landing.iterdir()] == [f"transactions_{day}.csv"]  # no temporaries left


def test_a_file_where_the_reports_folder_should_be_fails_the_report_in_one_line(runner, wine_champion):
    from mlops_assets.cli.runner import JobFailed

    blocker = runner.home.reports("wine_quality")
    blocker.parent.mkdir(parents=True, exist_ok=True)
    blocker.write_text("not a folder")
    with pytest.raises(JobFailed) as failure:
        runner.run("wine_quality_monitor")
    message = str(failure.value)
    assert "wine_quality/drift_report" in message and str(blocker) in message
    assert "a file stands where a folder is expected" in message
    assert "Traceback" not in message and "\n" not in message


def test_cli_with_an_unusable_mlops_home_says_so_in_one_line(tmp_path):
    blocker = tmp_path / "home"
    blocker.write_text("a file, not a folder")
    result = subprocess.run([sys.executable, "-m", "mlops_assets.cli", "status"],
                            env={**os.environ, "MLOPS_HOME": str(blocker), "DAGSTER_HOME": str(blocker / "dagster")},
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr and result.stderr.count("\n") == 1
    assert str(blocker) in result.stderr and "a file stands where a folder is expected" in result.stderr


def test_kill_while_logging_the_model_then_rerun_ends_the_dead_runs_and_decides(runner, wine_champion):
    """A training process killed after registering its version: runs end FAILED, the version is marked."""
    from mlops_assets.recovery import reconcile_dead_runs
    from mlops_assets.resources import MlflowTracking
    from mlops_assets.training.registry import PROMOTION_TAG, champion

    local = MlflowTracking(tracking_uri=runner.home.tracking_uri, artifact_root=str(runner.home.artifact_root))
    before = champion(local, wine_champion).version
    killed = _driver(runner.home, "--dataset", "wine_quality", "--job", "wine_quality_train",
                     "--kill-in", "mlops_assets.training.train:log_lineage")
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    client = local.client()
    experiment = client.get_experiment_by_name("mlops_assets/wine_quality").experiment_id
    running = client.search_runs([experiment], filter_string="attributes.status = 'RUNNING'")
    assert running  # the dead process left its runs open
    reconcile_dead_runs(runner.instance)

    rerun = _driver(runner.home, "--dataset", "wine_quality", "--job", "wine_quality_train")
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert not client.search_runs([experiment], filter_string="attributes.status = 'RUNNING'")
    for run in running:
        assert client.get_run(run.info.run_id).info.status == "FAILED"
    versions = client.search_model_versions("name = 'mlops_assets.wine_quality'")
    assert all(PROMOTION_TAG in v.tags for v in versions), [(v.version, v.tags) for v in versions]
    assert not _started_runs(runner.instance)
    assert int(champion(local, wine_champion).version) >= int(before)
