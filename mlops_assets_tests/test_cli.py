"""The lifecycle verbs in-process: where runs land, no stale training window, train/monitor summaries, spec draft.

Each test has its own MLOPS_HOME and Dagster instance; the session's environment is restored after.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from mlops_assets.definitions import local_resources
from mlops_assets.home import MlopsHome
from mlops_assets.stages import Stage, asset_key

ENV = ("MLOPS_HOME", "DAGSTER_HOME", "BENTOML_HOME", "MLFLOW_TRACKING_URI", "MLOPS_DATASET_SPECS", "BENTOML_DO_NOT_TRACK",
       "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "MLFLOW_LOGGING_LEVEL")


@pytest.fixture()
def isolated_env(monkeypatch, tmp_path):
    """The process environment as a user's shell might have it; whatever the CLI sets is undone after the test."""
    for key in ENV:
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("MLOPS_HOME", str(tmp_path / "home"))
    return monkeypatch


@pytest.mark.parametrize("dagster_home", [None, "", "relative/dagster", "absolute"])
def test_every_cli_run_lands_in_a_persistent_instance(isolated_env, tmp_path, dagster_home):
    """No DAGSTER_HOME (or an empty, relative or missing one) never means a throwaway instance."""
    from mlops_assets.cli.errors import dagster_instance

    isolated_env.chdir(tmp_path)
    if dagster_home == "absolute":
        dagster_home = str(tmp_path / "elsewhere" / "dagster")  # set by the user, not created yet
    if dagster_home is not None:
        isolated_env.setenv("DAGSTER_HOME", dagster_home)
    home = MlopsHome.from_env()
    home.export_env()
    expected = {None: home.dagster_home, "": home.dagster_home, "relative/dagster": tmp_path / "relative" / "dagster"}
    expected = expected.get(dagster_home) or Path(dagster_home)
    assert os.environ["DAGSTER_HOME"] == str(expected)
    assert (expected / "dagster.yaml").is_file()
    with dagster_instance() as instance:
        instance.add_dynamic_partitions("probe", ["written by one instance"])
    with dg.DagsterInstance.get() as again:  # what a later command (or `make dev`) opens
        assert again.get_dynamic_partitions("probe") == ["written by one instance"]


def test_an_existing_instance_config_is_kept(isolated_env, tmp_path):
    custom = tmp_path / "mine"
    custom.mkdir()
    (custom / "dagster.yaml").write_text("telemetry:\n  enabled: false\nrun_monitoring:\n  enabled: true\n")
    isolated_env.setenv("DAGSTER_HOME", str(custom))
    MlopsHome.from_env().export_env()
    assert "run_monitoring" in (custom / "dagster.yaml").read_text()


# --------------------------------------------------------------------------- no stale training window

WINE_HEADER = ("fixed acidity;volatile acidity;citric acid;residual sugar;chlorides;free sulfur dioxide;"
               "total sulfur dioxide;density;pH;sulphates;alcohol;quality")


@pytest.fixture()
def runner(tmp_path, specs):
    from mlops_assets.cli.runner import Runner
    from mlops_assets.definitions import build_definitions

    home = MlopsHome(tmp_path / "home").ensure()
    with dg.instance_for_test() as instance:
        yield Runner(build_definitions(home, specs), instance, home, log_level="CRITICAL")


def _batch(wine_dir: Path, target: Path, start: int, stop: int) -> Path:
    lines = (wine_dir / "winequality-white.csv").read_text().splitlines()
    target.write_text("\r\n".join([lines[0], *lines[1 + start:1 + stop]]) + "\r\n")
    return target


def _clean_only(runner, spec, path: Path):
    """What a user does in the UI by materializing only raw + cleaned for a new file."""
    landing = runner.home.landing(spec.name, create=True) / path.name
    landing.write_bytes(path.read_bytes())
    runner.register_partition(spec, path.name)
    return runner.execute("wine_quality_ingest", path.name,
                          asset_selection=[asset_key(spec.name, Stage.RAW), asset_key(spec.name, Stage.CLEANED)])


def _cleaned_rows(runner, partition: str) -> int:
    with local_resources(runner.home)["warehouse"].connect(read_only=True) as con:
        return con.execute("SELECT count(*) FROM wine_quality.cleaned WHERE _partition = ?", [partition]).fetchone()[0]


@pytest.mark.slow  # ingests, builds features and trains through the CLI's jobs
def test_features_follow_cleaned_and_training_refuses_a_stale_window(runner, specs, wine_dir, tmp_path):
    from mlops_assets.cli.ingest import ingest
    from mlops_assets.cli.runner import failures

    spec = specs["wine_quality"]
    assert ingest(runner, spec, _batch(wine_dir, tmp_path / "week1.csv", 0, 900))["feature_rows"] == 900
    tick = dg.evaluate_automation_conditions(defs=runner.defs, instance=runner.instance)
    assert tick.total_requested == 0  # everything ingested is featurized

    assert _clean_only(runner, spec, _batch(wine_dir, tmp_path / "week2.csv", 900, 1800)).success
    model_only = runner.execute("wine_quality_train", asset_selection=[asset_key(spec.name, Stage.MODEL)])
    assert not model_only.success
    (problem,) = failures(model_only)
    assert "'week2.csv'" in problem and "'week1.csv'" not in problem
    assert "older window" in problem and "mlops-assets train wine_quality" in problem

    # The automation the UI runs (sensor `features_follow_cleaned`) requests exactly the missing partition ...
    tick = dg.evaluate_automation_conditions(defs=runner.defs, instance=runner.instance, cursor=tick.cursor)
    assert tick.get_requested_partitions(asset_key(spec.name, Stage.FEATURES)) == {"week2.csv"}
    # ... and not a partition whose cleaned rows failed a blocking check.
    noisy = _batch(wine_dir, tmp_path / "noisy.csv", 1800, 1900)
    noisy.write_bytes(noisy.read_bytes().replace(b";6\r\n", b";66\r\n"))  # quality 66: far out of range
    checks = {c.check_name: c.passed for c in _clean_only(runner, spec, noisy).get_asset_check_evaluations()}
    assert checks["quarantine_share_within_limit"] is False
    tick = dg.evaluate_automation_conditions(defs=runner.defs, instance=runner.instance, cursor=tick.cursor)
    assert "noisy.csv" not in tick.get_requested_partitions(asset_key(spec.name, Stage.FEATURES))


@pytest.mark.slow  # a CLI process that trains and builds a Bento (bentoml binds a process to one home)
def test_cli_train_builds_missing_features_then_trains_on_exactly_the_ingested_window(specs, wine_dir, tmp_path,
                                                                                        isolated_env):
    from mlops_assets.cli.ingest import ingest
    from mlops_assets.cli.runner import Runner
    from mlops_assets.cli.train import format_summary
    from mlops_assets.definitions import build_definitions

    home = MlopsHome(tmp_path / "home").ensure()
    isolated_env.setenv("DAGSTER_HOME", str(home.dagster_home))  # the instance the CLI process will use
    spec = specs["wine_quality"]
    with dg.DagsterInstance.get() as instance:
        runner = Runner(build_definitions(home, specs), instance, home, log_level="CRITICAL")
        assert ingest(runner, spec, _batch(wine_dir, tmp_path / "week1.csv", 0, 1500))["ok"]
        assert _clean_only(runner, spec, _batch(wine_dir, tmp_path / "week2.csv", 1500, 3000)).success
        # week1 is cleaned again after its features were built: its features are stale now, too.
        assert runner.execute("wine_quality_ingest", "week1.csv",
                              asset_selection=[asset_key(spec.name, Stage.CLEANED)]).success
        rows = {p: _cleaned_rows(runner, p) for p in ("week1.csv", "week2.csv")}

        env = {**os.environ, "MLOPS_HOME": str(home.root)}
        env.pop("DAGSTER_HOME")  # the CLI finds $MLOPS_HOME/dagster by itself
        done = subprocess.run([sys.executable, "-m", "mlops_assets.cli", "train", "wine_quality", "--json"], env=env,
                              capture_output=True, text=True, timeout=900)
        assert done.returncode == 0, done.stderr[-3000:]
        summary = json.loads(done.stdout)
        assert summary["features_built"] == ["week1.csv", "week2.csv"]
        assert summary["training_partitions"] == ["week1.csv", "week2.csv"]
        assert summary["training_rows_per_partition"] == rows
        assert summary["rows_train"] + summary["rows_validation"] == 3000
        assert summary["champion"] is True and summary["bento"].startswith("mlops-wine-quality-service:")
        text = format_summary(summary)
        assert "built first for week1.csv, week2.csv" in text and "week2.csv (1500 rows)" in text

        record = instance.get_latest_materialization_event(asset_key(spec.name, Stage.MODEL))
        assert record.asset_materialization.metadata["training_partitions"].value == ["week1.csv", "week2.csv"]
        built = instance.get_latest_materialization_event(asset_key(spec.name, Stage.FEATURES))
        assert instance.get_run_by_id(built.run_id).tags["mlops/trigger"] == "cli-train"  # shown in the UI as such


# --------------------------------------------------------------------------- the spec verb


def _main(*argv: str) -> int:
    from mlops_assets.cli.main import main

    return main(list(argv))


def test_spec_draft_writes_where_every_command_finds_it(isolated_env, tmp_path, wine_dir, capsys):
    from mlops_assets.datasets.spec import load_specs

    assert _main("spec", "draft", str(wine_dir / "winequality-red.csv"), "--target", "quality", "--name", "reds") == 0
    out = capsys.readouterr().out
    path = tmp_path / "home" / "specs" / "reds.yaml"
    assert f"wrote {path}" in out and "next: mlops-assets ingest reds" in out
    assert load_specs()["reds"].target == "quality"

    # Drafting again does not overwrite silently; a built-in dataset's name is refused.
    assert _main("spec", "draft", str(wine_dir / "winequality-red.csv"), "--target", "quality", "--name", "reds") == 2
    assert "--force to redraft" in capsys.readouterr().err
    assert _main("spec", "draft", str(wine_dir / "winequality-red.csv"), "--target", "quality", "--name",
                 "wine_quality", "--json") == 2
    refusal = json.loads(capsys.readouterr().out)
    assert refusal["ok"] is False and "dataset 'wine_quality' already exists" in refusal["error"]
    assert _main("spec", "draft", str(wine_dir / "winequality-red.csv"), "--target", "quality", "--name", "reds",
                 "--force", "--json") == 0
    assert json.loads(capsys.readouterr().out)["rows_cleaned"] == 1599


def test_spec_draft_to_stdout_and_bad_targets_exit_2_in_one_line(isolated_env, wine_dir, capsys):
    assert _main("spec", "draft", str(wine_dir / "winequality-red.csv"), "--target", "quality", "--out", "-") == 0
    printed = capsys.readouterr().out
    assert printed.startswith("# Dataset spec drafted by") and "name: winequality_red" in printed
    assert _main("spec", "draft", str(wine_dir / "winequality-red.csv"), "--target", "colour") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no column 'colour' to predict" in err and "Traceback" not in err


# --------------------------------------------------------------------------- serve: the champion's Bento


@pytest.mark.slow  # ingests and trains (or builds Bentos) through the real jobs
def test_serve_picks_the_bento_of_the_champion_not_the_newest(home, specs):
    """Two Bentos in the real store (v1, then v2 newer): the champion's version decides which one serves."""
    from types import SimpleNamespace

    from sklearn.dummy import DummyRegressor

    from mlops_assets.cli.serve import champion_bento_tag
    from mlops_assets.resources import BentoStore
    from mlops_assets.serving.packaging import build_bento, import_champion, service_contract

    spec = specs["wine_quality"].model_copy(update={"name": "serve_pick"})  # its own names in the session store
    bentoml = BentoStore(home=os.environ["BENTOML_HOME"]).bentoml()
    contract = service_contract(spec, home)
    built = {}
    for number in ("1", "2"):
        version = SimpleNamespace(version=number, run_id=f"run-{number}")
        model_tag, _ = import_champion(bentoml, spec, version, lambda: DummyRegressor().fit([[0]], [5]),
                                       contract=contract, lineage={"version": number})
        built[number], _ = build_bento(bentoml, spec, model_tag, contract)

    def pick(number, run_id=None):
        return champion_bento_tag(bentoml, spec, SimpleNamespace(version=number, run_id=run_id or f"run-{number}"))

    assert pick("1") == built["1"]  # after `promote serve_pick 1`: the older Bento, not the newest
    assert pick("2") == built["2"]
    assert pick("3") is None  # a champion nobody packaged
    assert pick("1", run_id="another-run") is None  # same number, another registry (e.g. a reset MLflow)


def test_json_errors_reach_stdout_for_every_refusal(isolated_env, tmp_path, capsys):
    """`--json` users get one JSON error object on stdout, exit 2, one line on stderr: unknown dataset, nothing to serve."""
    probe = tmp_path / "probe.csv"
    probe.write_text("a,b\n1,2\n")
    for argv, words in ((("ingest", "nosuch", str(probe)), "unknown dataset 'nosuch'"),
                        (("serve", "nosuch"), "unknown dataset 'nosuch'"),
                        (("serve", "wine_quality"), "no champion model yet")):
        assert _main(*argv, "--json") == 2, argv
        out, err = capsys.readouterr()
        error = json.loads(out)
        assert error["ok"] is False and words in error["error"], argv
        assert err.count("\n") == 1 and words in err and "Traceback" not in err, argv


@pytest.mark.parametrize("partition", ["../x", "..", "a/b", "a\\b", "nul\0byte", ".hidden", ""])
def test_ingest_refuses_a_partition_key_that_is_not_one_plain_name(isolated_env, tmp_path, wine_dir, capsys, specs,
                                                                  partition):
    from mlops_assets.cli.ingest import IngestRefused, partition_for

    batch = _batch(wine_dir, tmp_path / "week1.csv", 0, 50)
    assert _main("ingest", "wine_quality", str(batch), "--partition", partition, "--json") == 2
    out, err = capsys.readouterr()
    assert json.loads(out)["ok"] is False and err.count("\n") == 1 and "partition" in err
    home = tmp_path / "home"
    written = [p for p in home.rglob("*") if p.is_file() and ("week1" in p.name or p.name == "x")]
    assert written == []  # nothing landed, archived or written beside the home's folders
    assert not (tmp_path / "x").exists() and not (home / "landing" / "x").exists()

    hidden = batch.rename(tmp_path / ".week1.csv")  # the key taken from a file name is checked the same way
    with pytest.raises(IngestRefused, match="starts with '.'"):
        partition_for(specs["wine_quality"], hidden, None)


# --------------------------------------------------------------------------- train summary wording


def _trained_summary(**checks) -> dict:
    return {"ok": False, "dataset": "wine_quality", "features_built": [], "training_partitions": ["a.csv", "b.csv"],
            "training_rows_per_partition": {"a.csv": 900, "b.csv": 900}, "registered_model": "mlops_assets.wine_quality",
            "version": "3", "champion": False, "primary_metric": "rmse", "metrics": {"rmse": 0.7, "r2": 0.3},
            "rows_train": 1440, "rows_validation": 360, "mlflow_run": None, "bento": None,
            "checks": {name: {"passed": passed, "description": why} for name, (passed, why) in checks.items()},
            "problems": [], "dagster_run_id": "r"}


def test_train_summary_names_the_check_that_kept_the_champion():
    from mlops_assets.cli.train import format_summary
    from mlops_assets.stages.model import PROMOTION_CHECK, QUALITY_CHECK

    lost = format_summary(_trained_summary(**{
        QUALITY_CHECK: (True, None),
        PROMOTION_CHECK: (False, "challenger v3 rejected, champion stays v2: rmse 0.7000 vs champion v2 0.6500")}))
    assert "meets the quality bar but does not beat the champion" in lost and "champion v2 0.6500" in lost
    assert "misses the quality bar" not in lost
    low = format_summary(_trained_summary(**{QUALITY_CHECK: (False, "r2 0.3000 < 0.5"), PROMOTION_CHECK: (False, "x")}))
    assert "misses the quality bar (training.min_metrics: r2 0.3000 < 0.5)" in low
    assert "trained on  2 partition(s): a.csv (900 rows), b.csv (900 rows)" in low


@pytest.mark.slow  # ingests through the real jobs before training is refused
def test_train_without_building_features_says_what_it_would_train_on_and_why_it_stopped(runner, specs, wine_dir,
                                                                                       tmp_path):
    from mlops_assets.cli.ingest import ingest
    from mlops_assets.cli.train import format_summary, train

    spec = specs["wine_quality"]
    assert ingest(runner, spec, _batch(wine_dir, tmp_path / "week1.csv", 0, 300))["ok"]
    assert _clean_only(runner, spec, _batch(wine_dir, tmp_path / "week2.csv", 300, 600)).success
    summary = train(runner, spec, build_features=False)
    assert not summary["ok"] and summary["version"] is None
    text = format_summary(summary)
    assert "no model trained" in text and "  trained on  " not in text
    assert "would have trained on 2 partition(s): week1.csv, week2.csv" in text
    stopped = next(line for line in text.splitlines() if line.lstrip().startswith("stopped"))
    assert "'week2.csv'" in stopped and "no up-to-date features" in stopped


# --------------------------------------------------------------------------- a failed ingestion gate is never trained on


@pytest.mark.slow  # ingests and trains (or builds Bentos) through the real jobs
def test_a_partition_over_the_quarantine_limit_is_left_out_of_training_and_named(runner, specs, wine_dir, tmp_path):
    from mlops_assets.cli.ingest import ingest
    from mlops_assets.cli.train import format_summary, training_plan

    spec = specs["wine_quality"]
    assert ingest(runner, spec, _batch(wine_dir, tmp_path / "week1.csv", 0, 600))["ok"]
    noisy = _batch(wine_dir, tmp_path / "noisy.csv", 600, 700)
    noisy.write_bytes(noisy.read_bytes().replace(b";6\r\n", b";66\r\n"))  # quality 66: far out of range
    noisy_summary = ingest(runner, spec, noisy)
    assert noisy_summary["checks"]["quarantine_share_within_limit"]["passed"] is False
    share = noisy_summary["rows_quarantined"] / noisy_summary["rows_read"]
    assert share > spec.quality.max_quarantine_share
    assert ingest(runner, spec, _batch(wine_dir, tmp_path / "week2.csv", 700, 1300))["ok"]

    window, stale = training_plan(runner.home, spec, None)
    assert window.partitions == ["week1.csv", "week2.csv"] and stale == []  # its features are not built either
    assert list(window.excluded) == ["noisy.csv"]
    assert f"{noisy_summary['rows_quarantined']} of 100 rows quarantined" in window.excluded["noisy.csv"]

    # The model asset applies the same rule, whoever runs it (UI, sensor, CLI), and says so in its metadata.
    result = runner.execute("wine_quality_train", asset_selection=[asset_key(spec.name, Stage.MODEL)])
    assert result.success
    record = runner.instance.get_latest_materialization_event(asset_key(spec.name, Stage.MODEL))
    metadata = record.asset_materialization.metadata
    assert metadata["training_partitions"].value == ["week1.csv", "week2.csv"]
    assert list(metadata["excluded_partitions"].value) == ["noisy.csv"]
    assert metadata["rows_train"].value + metadata["rows_validation"].value == 1200

    from mlops_assets.cli.train import _summary  # the CLI's summary names it too
    text = format_summary(_summary(spec, window, [], result, []))
    assert "left out    noisy.csv: check wine_quality/cleaned quarantine_share_within_limit failed" in text
