"""Training: candidates, champion vs challenger on the same rows, compare-and-set promotion, rollback, lineage.

Every test has an MLOPS_HOME of its own (real DuckDB, real MLflow on SQLite). The toy data is designed
so the right answer is known without the code under test: the label is an XOR of x1 and x2 on half
the rows and `x1 > 0.5` on the other half, so trees find it all, a linear model only the second half,
and the dummy nothing.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import dagster as dg
import numpy as np
import pytest

from mlops_assets.datasets.factory import DatasetDefinitions, build_dataset
from mlops_assets.datasets.spec import load_spec
from mlops_assets.home import MlopsHome

TOY_SPEC = """
name: toy
source: {kind: file_drop}
partitioning: {kind: files}
task: classification
target: label
columns:
  - {name: x1, type: float, required: true}
  - {name: x2, type: float, required: true}
  - {name: x3, type: float, required: true}
  - {name: label, type: boolean, role: target, required: true}
training:
  candidates:
    - {name: logistic_regression}
    - {name: hist_gradient_boosting, params: {max_iter: 60}}
  primary_metric: average_precision
  min_metrics: {roc_auc: 0.6}
"""
TOY_FILES = {"a.csv": 1, "b.csv": 2}  # file name -> seed
TOY_ROWS = 600


def toy_csv(seed: int, rows: int = TOY_ROWS, regression: bool = False) -> bytes:
    rng = np.random.default_rng(seed)
    x1, x2, x3 = rng.random((3, rows))
    if regression:
        y = 3 * x1 - 2 * x2 + rng.normal(0, 0.05, rows)
        values = [f"{v:.5f}" for v in y]
    else:
        label = np.where(x3 < 0.5, (x1 > 0.5) ^ (x2 > 0.5), x1 > 0.5) ^ (rng.random(rows) < 0.03)
        values = ["true" if v else "false" for v in label]
    lines = ["x1,x2,x3,label"] + [f"{a:.5f},{b:.5f},{c:.5f},{v}" for a, b, c, v in zip(x1, x2, x3, values)]
    return ("\n".join(lines) + "\n").encode()


@dataclasses.dataclass
class Toy:
    spec_path: Path
    dataset: DatasetDefinitions
    home: MlopsHome
    resources: dict
    files: dict[str, bytes]

    @property
    def spec(self):
        return self.dataset.spec

    @property
    def tracking(self):
        return self.resources["tracking"]

    def train(self, **config) -> dg.ExecuteInProcessResult:
        model = next(a for a in self.dataset.assets if a.key.path[-1] == "model")
        return dg.materialize([model], resources=self.resources, instance=dg.DagsterInstance.ephemeral(),
                              raise_on_error=False,
                              run_config={"ops": {f"{self.spec.name}__model": {"config": config}}})


def ingest_files(dataset: DatasetDefinitions, home: MlopsHome, resources: dict, files: dict[str, bytes]) -> None:
    instance = dg.DagsterInstance.ephemeral()
    ingest = [a for a in dataset.assets if a.key.path[-1] in ("raw", "cleaned", "features")]
    for name, content in files.items():
        (home.landing(dataset.spec.name, create=True) / name).write_bytes(content)
        instance.add_dynamic_partitions(dataset.partitions_def.name, [name])
        assert dg.materialize(ingest, resources=resources, partition_key=name, instance=instance).success


@pytest.fixture(scope="module")
def mlflow_template(tmp_path_factory) -> Path:
    """An empty MLflow database with its schema migrated once: creating one costs seconds, copying it nothing."""
    from mlflow import MlflowClient

    db = tmp_path_factory.mktemp("mlflow") / "mlflow.db"
    MlflowClient(tracking_uri=f"sqlite:///{db}").search_experiments()
    return db


@pytest.fixture()
def home(fresh_home, mlflow_template) -> MlopsHome:
    """A fresh MLOPS_HOME whose MLflow store already exists (as it does after a first run, or in production)."""
    shutil.copyfile(mlflow_template, fresh_home.mlflow_dir / "mlflow.db")
    return fresh_home


@pytest.fixture(scope="module")
def toy_warehouse(tmp_path_factory) -> tuple[Path, Path, dict[str, bytes]]:
    """The toy files ingested once (raw -> features); each test copies the warehouse into its own home."""
    from mlops_assets.definitions import local_resources

    root = tmp_path_factory.mktemp("toy")
    spec_dir = root / "specs"
    spec_dir.mkdir()
    (spec_dir / "toy.yaml").write_text(TOY_SPEC)
    home = MlopsHome(root / "home").ensure()
    files = {name: toy_csv(seed) for name, seed in TOY_FILES.items()}
    ingest_files(build_dataset(load_spec(spec_dir / "toy.yaml")), home, local_resources(home), files)
    return spec_dir / "toy.yaml", home.lake_dir, files


@pytest.fixture()
def toy(toy_warehouse, home, fresh_resources, monkeypatch) -> Toy:
    spec_path, lake, files = toy_warehouse
    shutil.copytree(lake, home.lake_dir)  # catalog and data files: the lake's file paths are relative
    monkeypatch.setenv("MLOPS_DATASET_SPECS", str(spec_path.parent))  # the CLI finds the toy dataset
    monkeypatch.setenv("MLOPS_HOME", str(home.root))
    return Toy(spec_path, build_dataset(load_spec(spec_path)), home, fresh_resources, files)


def metadata(result: dg.ExecuteInProcessResult) -> dict:
    events = result.get_asset_materialization_events()
    assert events, "the model was not materialized: " + " | ".join(
        str(e.step_failure_data.user_failure_data.description if e.step_failure_data.user_failure_data
            else e.step_failure_data.error) for e in result.get_step_failure_events())
    return {k: v.value for k, v in events[-1].materialization.metadata.items()}


def check(result: dg.ExecuteInProcessResult, name: str):
    return next(c for c in result.get_asset_check_evaluations() if c.check_name == name)


def failure_description(result: dg.ExecuteInProcessResult) -> str:
    data = result.get_step_failure_events()[0].step_failure_data
    return data.user_failure_data.description if data.user_failure_data else str(data.error)


def alias(tracking, spec, name: str = "champion") -> str | None:
    """Read straight from the registry, not through the code under test."""
    aliases = tracking.client().get_registered_model(spec.registered_model_name).aliases
    return None if name not in aliases else str(aliases[name])


def children(tracking, parent_run_id: str) -> list:
    client = tracking.client()
    parent = client.get_run(parent_run_id)
    return client.search_runs([parent.info.experiment_id], f"tags.mlflow.parentRunId = '{parent_run_id}'")


def cli(capsys, *argv: str) -> tuple[int, str, str]:
    from mlops_assets.cli.main import main

    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# ---------------------------------------------------------------- candidates and the winner


@pytest.mark.slow  # trains candidates and logs them to a real MLflow store
def test_a_designed_run_picks_the_expected_winner_with_one_child_run_per_candidate(toy):
    result = toy.train()
    assert result.success, failure_description(result)
    meta = metadata(result)
    assert meta["winner"] == "hist_gradient_boosting"
    assert meta["champion"] is True and alias(toy.tracking, toy.spec) == meta["version"]
    assert alias(toy.tracking, toy.spec, "challenger") == meta["version"]
    for name in ("hist_gradient_boosting", "logistic_regression", "dummy"):
        assert name in meta["candidates"]
    assert "baseline" in meta["candidates"] and "**winner**" in meta["candidates"]

    client = toy.tracking.client()
    parent = client.get_run(meta["mlflow_parent_run_id"])
    runs = {r.data.params["candidate"]: r for r in children(toy.tracking, parent.info.run_id)}
    assert set(runs) == {"hist_gradient_boosting", "logistic_regression", "dummy"}
    for run in runs.values():
        assert run.info.status == "FINISHED"
        assert {"average_precision", "roc_auc", "fit_seconds"} <= set(run.data.metrics)
        assert run.data.tags["dagster_run_id"] == result.run_id
    scores = {name: run.data.metrics["average_precision"] for name, run in runs.items()}
    assert scores["hist_gradient_boosting"] > scores["logistic_regression"] > scores["dummy"]
    # the registered version is the winner's child run
    version = client.get_model_version(toy.spec.registered_model_name, meta["version"])
    assert version.run_id == runs["hist_gradient_boosting"].info.run_id == meta["mlflow_run_id"]
    # lineage tags on the parent: Dagster run, asset key, code, spec, files by their own sha256
    tags = parent.data.tags
    assert tags["dagster_run_id"] == result.run_id and tags["mlops.asset_key"] == "toy/model"
    assert tags["mlops.code_version"] and tags["mlops.spec_hash"].startswith("sha256:")
    expected = {name: "sha256:" + hashlib.sha256(content).hexdigest() for name, content in toy.files.items()}
    assert json.loads(tags["mlops.file_hashes"]) == expected
    assert json.loads(tags["mlops.partitions"]) == list(toy.files)
    # plots a person opens from the Dagster UI are real PNGs in the parent run
    plots = {Path(a.path).name for a in client.list_artifacts(parent.info.run_id, "plots")}
    assert plots == {"pr_curve.png", "confusion_matrix.png", "feature_importance.png"}
    import mlflow.artifacts

    png = Path(mlflow.artifacts.download_artifacts(run_id=parent.info.run_id, artifact_path="plots/pr_curve.png"))
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "get-artifact" in meta["plot_pr_curve"] and parent.info.run_id in meta["plot_pr_curve"]


@pytest.mark.slow  # trains candidates and logs them to a real MLflow store
def test_data_without_a_clock_is_validated_on_a_stratified_holdout(toy):
    meta = metadata(toy.train(candidates=["logistic_regression"]))
    # each file's rows of each class: 20% held out, rounded half up (counted from the files themselves)
    expected = {"true": 0, "false": 0}
    for content in toy.files.values():
        labels = [line.rsplit(",", 1)[1] for line in content.decode().splitlines()[1:]]
        for label in expected:
            expected[label] += int(labels.count(label) * 0.2 + 0.5)
    winner = toy.tracking.client().get_run(meta["mlflow_run_id"])
    assert meta["rows_validation"] == sum(expected.values())
    assert "stratified" in meta["validation"]["split"]
    # stratified: the validation positive rate is exactly the one the per-file class counts give
    assert winner.data.metrics["positive_rate"] == pytest.approx(expected["true"] / sum(expected.values()))


@pytest.mark.slow  # trains candidates and logs them to a real MLflow store
def test_a_new_partition_never_moves_rows_the_champion_trained_on_into_validation(toy):
    """Wine-like data (files, no clock): train on a.csv, then on a.csv + b.csv. The second model's validation
    rows from a.csv must be exactly the first's, or the champion would be scored on rows it trained on."""
    from mlops_assets.training.train import read_training_data, split

    def sides(until=None) -> tuple[set, set]:
        with toy.resources["warehouse"].connect(read_only=True) as con:
            data = read_training_data(con, toy.spec, until=until)
        parts = split(toy.spec, data.features)
        rows = lambda frame: {tuple(r) for r in frame[frame["_partition"] == "a.csv"][["x1", "x2", "x3"]].itertuples(index=False)}  # noqa: E731
        return rows(parts.train), rows(parts.valid)

    train_alone, valid_alone = sides("a.csv")
    train_both, valid_both = sides()
    assert len(train_alone) + len(valid_alone) == TOY_ROWS
    assert valid_both == valid_alone and train_both == train_alone
    assert not valid_both & train_alone  # nothing the first model trained on is held out by the second
    assert abs(len(valid_alone) - 0.2 * TOY_ROWS) <= 2


REGRESSION_SPEC = """
name: toyreg
source: {kind: file_drop}
partitioning: {kind: files}
task: regression
target: label
columns:
  - {name: x1, type: float, required: true}
  - {name: x2, type: float, required: true}
  - {name: x3, type: float, required: true}
  - {name: label, type: float, role: target, required: true}
training:
  candidates:
    - {name: random_forest, params: {n_estimators: 30}}
    - {name: ridge, params: {alpha: 0.01}}
  primary_metric: rmse
  min_metrics: {r2: 0.5}
"""


@pytest.mark.slow  # trains candidates and logs them to a real MLflow store
def test_a_lower_is_better_metric_picks_the_lowest_and_logs_residuals(tmp_path, home, fresh_resources):
    """y = 3 x1 - 2 x2 + small noise: the linear model wins on RMSE; trees only approximate the plane."""
    (tmp_path / "toyreg.yaml").write_text(REGRESSION_SPEC)
    toy = Toy(tmp_path / "toyreg.yaml", build_dataset(load_spec(tmp_path / "toyreg.yaml")), home,
              fresh_resources, {"r.csv": toy_csv(5, 400, regression=True)})
    ingest_files(toy.dataset, toy.home, toy.resources, toy.files)
    result = toy.train()
    assert result.success, failure_description(result)
    meta = metadata(result)
    assert meta["winner"] == "ridge"
    assert meta["metric_rmse"] < 0.1  # the noise is 0.05
    plots = {Path(a.path).name for a in toy.tracking.client().list_artifacts(meta["mlflow_parent_run_id"], "plots")}
    assert "residuals.png" in plots and "feature_importance.png" in plots


@pytest.mark.slow  # trains candidates and logs them to a real MLflow store
def test_fraud_validates_on_the_newest_rows_with_class_weights(home, fresh_resources, specs):
    import datetime as dt

    from mlops_assets.datasets.generator import generate_range

    spec = specs["transactions"]
    dataset = build_dataset(spec)
    generate_range(home, spec.name, dt.date(2026, 1, 1), 2, 1500, seed=spec.source.seed)
    instance = dg.DagsterInstance.ephemeral()
    ingest = [a for a in dataset.assets if a.key.path[-1] in ("raw", "cleaned", "features")]
    for day in ("2026-01-01", "2026-01-02"):
        assert dg.materialize(ingest, resources=fresh_resources, partition_key=day, instance=instance).success
    model = next(a for a in dataset.assets if a.key.path[-1] == "model")
    result = dg.materialize([model], resources=fresh_resources, instance=instance, raise_on_error=False)
    meta = metadata(result)
    with fresh_resources["warehouse"].connect(read_only=True) as con:
        stamps = [r[0] for r in con.execute("SELECT timestamp FROM transactions.cleaned ORDER BY timestamp").fetchall()]
    cut = int(len(stamps) * 0.8)
    assert meta["rows_validation"] == len(stamps) - cut
    assert meta["validation"]["from"] == str(stamps[cut]) and meta["validation"]["to"] == str(stamps[-1])
    client = fresh_resources["tracking"].client()
    runs = {r.data.params["candidate"]: r for r in children(fresh_resources["tracking"], meta["mlflow_parent_run_id"])}
    assert set(runs) == {"hist_gradient_boosting", "random_forest", "logistic_regression", "dummy"}
    for name in ("hist_gradient_boosting", "random_forest", "logistic_regression"):
        assert runs[name].data.params["param.class_weight"] == "balanced"
    # what the drift report and the Bento read from the registered version's run
    version_run = client.get_run(meta["mlflow_run_id"])
    assert 0 < version_run.data.metrics["decision_threshold"] < 1
    assert {a.path for a in client.list_artifacts(meta["mlflow_run_id"])} >= {"reference", "lineage"}


# ---------------------------------------------------------------- champion vs challenger


@pytest.mark.slow  # trains candidates and logs them to a real MLflow store
def test_a_dummy_challenger_is_registered_rejected_and_the_champion_kept(toy):
    first = metadata(toy.train())
    result = toy.train(candidates=["dummy"])
    assert not result.success  # the blocking checks stop what follows (the Bento)
    meta = metadata(result)
    assert meta["winner"] == "dummy" and meta["champion"] is False
    assert alias(toy.tracking, toy.spec) == first["version"]
    assert alias(toy.tracking, toy.spec, "challenger") == meta["version"] != first["version"]
    verdict = check(result, "not_worse_than_champion")
    assert not verdict.passed
    assert f"v{first['version']}" in verdict.description and "rejected" in verdict.description
    assert meta["champion_score"] == pytest.approx(first["metric_average_precision"])
    assert meta["challenger_score"] < meta["champion_score"]
    assert "Rejected" in meta["promotion"]
    client = toy.tracking.client()
    version = client.get_model_version(toy.spec.registered_model_name, meta["version"])
    assert version.tags["mlops.promotion"] == "rejected"
    assert float(version.tags["mlops.champion_score"]) == pytest.approx(meta["champion_score"], rel=1e-5)
    assert client.get_run(meta["mlflow_parent_run_id"]).data.tags["mlops.promotion"] == "rejected"


@pytest.mark.slow  # trains candidates and logs them to a real MLflow store
def test_a_margin_keeps_an_equal_challenger_out(toy):
    first = metadata(toy.train(candidates=["logistic_regression"]))
    held = toy.train(candidates=["logistic_regression"], promotion_margin=0.01)
    meta = metadata(held)
    assert meta["challenger_score"] == meta["champion_score"]  # same data, same seed: the same model
    assert not held.success and meta["champion"] is False
    assert alias(toy.tracking, toy.spec) == first["version"]


@pytest.mark.parametrize(("challenger", "champion", "margin", "older", "promoted"), [
    (0.80, 0.80, 0.0, False, True),    # at least as good
    (0.80, 0.80, 0.0, True, False),    # a tie goes to the newer model
    (0.81, 0.80, 0.0, True, True),     # an older but better model still wins
    (0.80, 0.79, 0.02, False, False),  # better, but not by the margin
    (0.79, 0.80, 0.0, False, False),
])
def test_the_comparison_rule(specs, challenger, champion, margin, older, promoted):
    from mlops_assets.training.promotion import compare

    assert compare(specs["transactions"], challenger, champion, True, margin, challenger_is_older=older)[0] is promoted
    # rmse: lower is better, the same rule mirrored
    assert compare(specs["wine_quality"], -challenger, -champion, True, margin, challenger_is_older=older)[0] is promoted


def _champion_v1_and_its_data(toy):
    """A logistic-regression champion (v1) trained through the asset, and the training data it read."""
    from mlops_assets.training.train import read_training_data

    assert toy.train(candidates=["logistic_regression"]).success
    with toy.resources["warehouse"].connect(read_only=True) as con:
        return read_training_data(con, toy.spec)


@pytest.mark.slow  # trains candidates and logs them to a real MLflow store
def test_promotion_redecides_when_the_champion_moves_while_it_decides(toy):
    """Another run promotes a better model between our scoring and our write: we must lose, not overwrite it."""
    from mlops_assets.training.promotion import champion_scorer, promote_if_better, promote_version
    from mlops_assets.training.train import train_and_register

    data = _champion_v1_and_its_data(toy)
    strong = train_and_register(data, toy.spec, toy.tracking, candidates=["hist_gradient_boosting"])
    weak = train_and_register(data, toy.spec, toy.tracking, candidates=["logistic_regression"])
    real = champion_scorer(toy.tracking, toy.spec, weak.valid_X, weak.valid_y)
    calls = []

    def scorer_racing_another_run(version):
        calls.append(str(version.version))
        if len(calls) == 1:  # the other run wins the race right after we scored v1
            promote_version(toy.tracking, toy.spec, strong.version, who="test")
        return real(version)

    decision = promote_if_better(toy.tracking, toy.spec, challenger_version=weak.version,
                                 challenger_metrics=weak.metrics, rows=weak.rows_validation,
                                 scorer=scorer_racing_another_run)
    assert calls == ["1", strong.version]
    assert decision.attempts == 2 and decision.champion_version == strong.version
    assert not decision.promoted  # against v1 (same model kind) it would have been promoted
    assert alias(toy.tracking, toy.spec) == strong.version


@pytest.mark.slow  # trains candidates and logs them to a real MLflow store
def test_a_challenger_made_champion_by_hand_while_it_decides_is_left_champion(toy):
    """`mlops-assets promote` on the challenger's own version while its run compares: no crash, the alias stays."""
    from mlops_assets.training.promotion import champion_scorer, promote_if_better, promote_version
    from mlops_assets.training.train import train_and_register

    data = _champion_v1_and_its_data(toy)
    challenger = train_and_register(data, toy.spec, toy.tracking, candidates=["hist_gradient_boosting"])
    real = champion_scorer(toy.tracking, toy.spec, challenger.valid_X, challenger.valid_y)
    calls = []

    def scorer_while_a_person_promotes_the_challenger(version):
        calls.append(str(version.version))
        promote_version(toy.tracking, toy.spec, challenger.version)
        return real(version)

    decision = promote_if_better(toy.tracking, toy.spec, challenger_version=challenger.version,
                                 challenger_metrics=challenger.metrics, rows=challenger.rows_validation,
                                 scorer=scorer_while_a_person_promotes_the_challenger)
    assert calls == ["1"]  # never scored against itself
    assert decision.reason.startswith("already champion (promoted by hand)") and decision.attempts == 2
    assert decision.champion_after == challenger.version and decision.not_worse and not decision.promoted
    assert "already champion" in decision.summary()
    assert alias(toy.tracking, toy.spec) == challenger.version
    version = toy.tracking.client().get_model_version(toy.spec.registered_model_name, challenger.version)
    assert version.tags["mlops.promotion"] == "manual"  # what the person did, not overwritten by the run


@pytest.mark.slow  # trains candidates and logs them to a real MLflow store
@pytest.mark.parametrize("failure", ["recording", "alias_refused", "alias_written_then_lost"])
def test_a_failure_while_promoting_says_truly_where_the_champion_alias_is(toy, monkeypatch, failure):
    from mlflow import MlflowClient

    first = metadata(toy.train(candidates=["logistic_regression"]))
    if failure == "recording":
        tag = MlflowClient.set_model_version_tag

        def broken_tag(self, name, version, key, value):
            if key == "mlops.promotion":
                raise RuntimeError("tag write refused")
            return tag(self, name, version, key, value)

        monkeypatch.setattr(MlflowClient, "set_model_version_tag", broken_tag)
    else:
        set_alias = MlflowClient.set_registered_model_alias

        def broken_alias(self, name, alias_name, version):
            if alias_name == "champion":
                if failure == "alias_written_then_lost":
                    set_alias(self, name, alias_name, version)  # written, but the answer never arrives
                raise RuntimeError("connection reset")
            return set_alias(self, name, alias_name, version)

        monkeypatch.setattr(MlflowClient, "set_registered_model_alias", broken_alias)
    result = toy.train()  # the stronger model: it would be promoted
    monkeypatch.undo()
    assert not result.success
    message = failure_description(result)
    assert len(message.splitlines()) == 1 and ("tag write refused" in message or "connection reset" in message)
    now = alias(toy.tracking, toy.spec)
    challenger = alias(toy.tracking, toy.spec, "challenger")
    if failure == "alias_written_then_lost":
        assert now == challenger != first["version"]
        assert f"the champion alias did move: it is now v{now}" in message
    else:
        assert now == first["version"]
        assert "not moved" in message and f"still v{first['version']}" in message
        assert "did move" not in message
    if failure == "alias_refused":  # the decision recorded before the move no longer claims a promotion
        version = toy.tracking.client().get_model_version(toy.spec.registered_model_name, challenger)
        assert version.tags["mlops.promotion"] == "failed"


@pytest.mark.slow  # trains candidates and logs them to a real MLflow store
def test_two_model_runs_started_together_end_with_the_better_model(toy, tmp_path):
    assert toy.train(candidates=["logistic_regression"]).success  # a champion both runs compare with
    go = tmp_path / "go"
    workers = {}
    for name in ("hist_gradient_boosting", "logistic_regression"):
        ready = tmp_path / f"ready-{name}"
        proc = subprocess.Popen(
            [sys.executable, "-m", "mlops_assets_tests.train_worker", str(toy.spec_path), str(toy.home.root),
             json.dumps([name]), str(ready), str(go)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
        )
        workers[name] = (proc, ready)
    for proc, ready in workers.values():
        while not ready.exists():
            assert proc.poll() is None, proc.stderr.read()[-3000:]
    go.touch()
    outcome = {}
    for name, (proc, _) in workers.items():
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err[-3000:]
        outcome[name] = json.loads(out.strip().splitlines()[-1])
    strong, weak = outcome["hist_gradient_boosting"]["metadata"], outcome["logistic_regression"]["metadata"]
    assert strong["champion"] is True
    assert alias(toy.tracking, toy.spec) == strong["version"]
    if weak["champion"]:  # the weak run decided first; the strong one then compared against it
        assert strong["previous_champion_version"] == weak["version"]
    else:  # the weak run decided second and lost against the strong one
        assert weak["previous_champion_version"] == strong["version"]
    client = toy.tracking.client()
    experiment = client.get_experiment_by_name("mlops_assets/toy")
    statuses = {r.info.status for r in client.search_runs([experiment.experiment_id])}
    assert statuses == {"FINISHED"}


# ---------------------------------------------------------------- failures


@pytest.mark.slow  # trains candidates and logs them to a real MLflow store
def test_a_failure_inside_mlflow_logging_fails_the_run_and_leaves_the_champion(toy):
    first = metadata(toy.train())
    artifacts = toy.home.artifact_root / "toy"
    aside = artifacts.with_name("toy.aside")
    artifacts.rename(aside)
    artifacts.write_text("not a directory: the artifact store is broken")
    try:
        result = toy.train(candidates=["logistic_regression"])
    finally:
        artifacts.unlink()
        aside.rename(artifacts)
    assert not result.success
    message = failure_description(result)
    assert "logging to MLflow failed" in message and "champion is unchanged" in message
    assert "NotADirectoryError" in message or "FileExistsError" in message
    assert alias(toy.tracking, toy.spec) == first["version"]
    client = toy.tracking.client()
    versions = client.search_model_versions(f"name = '{toy.spec.registered_model_name}'")
    assert [v.version for v in versions] == [int(first["version"])]  # nothing half-registered
    experiment = client.get_experiment_by_name("mlops_assets/toy")
    runs = client.search_runs([experiment.experiment_id])
    assert "RUNNING" not in {r.info.status for r in runs}
    failed = [r for r in runs if r.info.status == "FAILED"]
    # the parent and the candidate whose model failed to log; candidates logged before it finished cleanly
    assert sorted(r.data.tags.get("mlops.role") for r in failed) == ["candidate", "parent"]
    assert {r.data.tags["dagster_run_id"] for r in failed} == {result.run_id}


@pytest.mark.slow  # ingests the toy dataset and starts a model run
def test_an_unknown_estimator_parameter_names_the_spec_field(toy, tmp_path):
    bad = tmp_path / "toy.yaml"
    bad.write_text(TOY_SPEC.replace("params: {max_iter: 60}", "params: {max_iterations: 60}"))
    broken = dataclasses.replace(toy, dataset=build_dataset(load_spec(bad)))
    result = broken.train()
    message = failure_description(result)
    assert "training.candidates.hist_gradient_boosting.params" in message and "max_iterations" in message
    assert str(bad) in message


# ---------------------------------------------------------------- promote and lineage


@pytest.mark.slow  # trains candidates and logs them to a real MLflow store
def test_promote_rolls_back_and_refuses_unknown_or_foreign_versions(toy, capsys):
    weak = metadata(toy.train(candidates=["logistic_regression"]))
    strong = metadata(toy.train())
    assert alias(toy.tracking, toy.spec) == strong["version"]

    code, out, _ = cli(capsys, "promote", "toy", weak["version"])
    assert code == 0 and f"v{strong['version']} -> v{weak['version']}" in out
    assert alias(toy.tracking, toy.spec) == weak["version"]
    version = toy.tracking.client().get_model_version(toy.spec.registered_model_name, weak["version"])
    assert version.tags["mlops.promotion"] == "manual"

    for argument, reason in (("99", "has no model version 99"),
                             ("99999999999999999999", "has no model version 99999999999999999999"),
                             ("models:/mlops_assets.wine_quality/1", "not of toy"),
                             ("latest", "is not a model version")):
        code, out, err = cli(capsys, "promote", "toy", argument)
        assert code == 2 and reason in err and len(err.strip().splitlines()) == 1, err
        assert alias(toy.tracking, toy.spec) == weak["version"]


@pytest.mark.slow  # trains candidates and logs them to a real MLflow store
def test_promote_refuses_a_version_trained_on_another_dataset(toy, capsys):
    import mlflow
    import mlflow.sklearn
    from sklearn.dummy import DummyClassifier

    toy.tracking.setup()
    with mlflow.start_run(experiment_id=toy.tracking.experiment_id("toy"), tags={"dataset": "wine_quality"}):
        info = mlflow.sklearn.log_model(DummyClassifier().fit([[0], [1]], [0, 1]), name="model",
                                        pip_requirements=["scikit-learn"])
    foreign = mlflow.register_model(info.model_uri, toy.spec.registered_model_name)
    code, _, err = cli(capsys, "promote", "toy", str(foreign.version))
    assert code == 2 and "trained on dataset wine_quality" in err
    assert alias(toy.tracking, toy.spec) is None


def test_promote_and_lineage_on_a_fresh_home_refuse_in_one_line_and_create_no_store(
        toy_warehouse, fresh_home, capsys, monkeypatch):
    spec_path, _, _ = toy_warehouse
    monkeypatch.setenv("MLOPS_DATASET_SPECS", str(spec_path.parent))
    monkeypatch.setenv("MLOPS_HOME", str(fresh_home.root))
    store = fresh_home.mlflow_dir / "mlflow.db"
    code, out, err = cli(capsys, "promote", "toy", "1")
    assert code == 2 and "has no model version 1" in err and len(err.strip().splitlines()) == 1, err
    code, out, err = cli(capsys, "lineage", "toy", "--version", "3", "--json")
    assert code == 2 and len(err.strip().splitlines()) == 1
    answer = json.loads(out)
    assert answer["ok"] is False and "has no model version 3" in answer["error"] and answer["dataset"] == "toy"
    code, out, _ = cli(capsys, "lineage", "nope", "--json")
    assert code == 2 and "unknown dataset" in json.loads(out)["error"]
    assert not store.exists()


@pytest.mark.slow  # trains candidates and logs them to a real MLflow store
def test_lineage_lists_the_files_and_hashes_that_trained_the_champion(toy, capsys):
    result = toy.train()
    meta = metadata(result)
    code, out, _ = cli(capsys, "lineage", "toy", "--json")
    assert code == 0
    lineage = json.loads(out)
    assert lineage["model_version"] == meta["version"] and "champion" in lineage["aliases"]
    champion = toy.tracking.client().get_model_version(toy.spec.registered_model_name, alias(toy.tracking, toy.spec))
    assert lineage["mlflow_run_id"] == champion.run_id
    assert lineage["mlflow_parent_run_id"] == meta["mlflow_parent_run_id"]
    assert lineage["dagster_run_id"] == result.run_id
    assert lineage["code_version"] and lineage["spec_hash"].startswith("sha256:")
    threshold = toy.tracking.client().get_run(champion.run_id).data.metrics["decision_threshold"]
    assert lineage["decision_threshold"] == pytest.approx(threshold)
    assert [(p["partition"], p["file"], p["content_hash"], p["rows_read"]) for p in lineage["partitions"]] == [
        (name, name, "sha256:" + hashlib.sha256(content).hexdigest(), content.decode().count("\n") - 1)
        for name, content in toy.files.items()
    ]
    code, text, _ = cli(capsys, "lineage", "toy")
    assert code == 0
    for name, content in toy.files.items():
        assert name in text and hashlib.sha256(content).hexdigest() in text
    assert result.run_id in text and champion.run_id in text and "decision threshold" in text
    code, _, err = cli(capsys, "lineage", "toy", "--version", "42")
    assert code == 2 and "no model version 42" in err


# ---------------------------------------------------------------- specs


def _spec(tmp_path, training: str) -> Path:
    path = tmp_path / "t.yaml"
    path.write_text(textwrap.dedent("""
        name: t
        source: {kind: file_drop}
        partitioning: {kind: files}
        task: classification
        target: y
        columns:
          - {name: x, type: float}
          - {name: y, type: boolean, role: target}
    """) + f"training: {training}\n")
    return path


def test_old_single_estimator_specs_still_load_as_one_candidate(tmp_path):
    spec = load_spec(_spec(tmp_path, "{estimator: random_forest, params: {n_estimators: 10}, primary_metric: roc_auc}"))
    assert [(c.name, c.kind, c.params) for c in spec.training.candidates] == [
        ("random_forest", "random_forest", {"n_estimators": 10})]
    default = load_spec(_spec(tmp_path, "{primary_metric: roc_auc}"))
    assert [c.kind for c in default.training.candidates] == ["hist_gradient_boosting"]


@pytest.mark.parametrize(("training", "reason"), [
    ("{candidates: [{name: ridge}], primary_metric: roc_auc}", "does not do classification"),
    ("{primary_metric: rmse}", "not a classification metric"),
    ("{primary_metric: roc_auc, min_metrics: {r2: 0.1}}", "not classification metrics"),
    ("{candidates: [{name: a, estimator: dummy}, {name: a, estimator: dummy}], primary_metric: roc_auc}",
     "duplicate candidate names"),
    ("{candidates: [{name: fancy}], primary_metric: roc_auc}", "needs `estimator`"),
    ("{estimator: linear, candidates: [{name: dummy}], primary_metric: roc_auc}", "not both"),
    ("{primary_metric: roc_auc, promotion_margin: -0.1}", "promotion_margin"),
])
def test_a_bad_training_spec_names_the_file_and_the_problem(tmp_path, training, reason):
    from mlops_assets.datasets.spec import SpecError

    with pytest.raises(SpecError) as error:
        load_spec(_spec(tmp_path, training))
    assert "t.yaml" in str(error.value) and reason in str(error.value)
