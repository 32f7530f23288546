"""The whole graph of both datasets, materialized in-process, checked by what each asset produced."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from mlops_assets_tests.conftest import DEMO_DAYS, DEMO_DRIFT_DAYS, DEMO_ROWS_PER_DAY

WINE_ROWS = {"winequality-red.csv": 1599, "winequality-white.csv": 4898}


def latest_metadata(instance, dataset: str, stage: str) -> dict:
    event = instance.get_latest_materialization_event(dg.AssetKey([dataset, stage]))
    assert event is not None, f"{dataset}/{stage} was never materialized"
    return {k: v.value for k, v in event.asset_materialization.metadata.items()}


def test_every_asset_of_both_datasets_is_materialized(platform, instance, specs):
    for name in specs:
        for stage in ("raw", "cleaned", "features", "model", "drift_report", "bento"):
            assert instance.get_latest_materialization_event(dg.AssetKey([name, stage])) is not None, f"{name}/{stage}"


def test_transactions_rows_flow_through_without_loss(platform, warehouse):
    with warehouse.connect(read_only=True) as con:
        counts = dict(con.execute("SELECT _partition, rows_read FROM transactions.ingestion_contracts").fetchall())
        cleaned = con.execute("SELECT count(*) FROM transactions.cleaned").fetchone()[0]
        quarantined = con.execute("SELECT count(*) FROM transactions.quarantine").fetchone()[0]
        features = con.execute("SELECT count(*) FROM transactions.features").fetchone()[0]
        types = dict(con.execute("SELECT column_name, data_type FROM information_schema.columns "
                                 "WHERE table_schema='transactions' AND table_name='cleaned'").fetchall())
    assert len(counts) == DEMO_DAYS + DEMO_DRIFT_DAYS
    assert set(counts.values()) == {DEMO_ROWS_PER_DAY}
    assert cleaned + quarantined == sum(counts.values())
    assert quarantined == 0  # the generator writes valid rows
    assert features == cleaned
    assert types["amount"] == "DOUBLE" and types["timestamp"] == "TIMESTAMP" and types["card_present"] == "BOOLEAN"


def test_wine_files_are_read_as_semicolon_files_with_all_columns(platform, warehouse, instance):
    with warehouse.connect(read_only=True) as con:
        counts = dict(con.execute("SELECT _partition, count(*) FROM wine_quality.cleaned GROUP BY 1").fetchall())
        contracts = {p: json.loads(c) for p, c in con.execute(
            "SELECT _partition, contract FROM wine_quality.ingestion_contracts").fetchall()}
        quality = con.execute("SELECT min(quality), max(quality) FROM wine_quality.cleaned").fetchone()
    assert counts == WINE_ROWS
    for contract in contracts.values():
        assert contract["delimiter"] == ";"
        assert len(contract["columns"]) == 12
    assert quality == (3, 9)
    raw = latest_metadata(instance, "wine_quality", "raw")
    assert raw["content_hash"].startswith("sha256:") and raw["encoding"] == "utf-8"
    cleaned = latest_metadata(instance, "wine_quality", "cleaned")
    assert cleaned["rows_read"] == cleaned["rows_cleaned"] == WINE_ROWS["winequality-white.csv"]


def test_features_table_is_what_the_registered_pipeline_computes(platform, warehouse, tracking, specs):
    import mlflow.sklearn

    spec = specs["transactions"]
    tracking.setup()
    pipeline = mlflow.sklearn.load_model(f"models:/{spec.registered_model_name}@champion")
    with warehouse.connect(read_only=True) as con:
        cleaned = con.execute("SELECT * FROM transactions.cleaned ORDER BY transaction_id LIMIT 200").df()
        stored = con.execute("SELECT * FROM transactions.features ORDER BY transaction_id LIMIT 200").df()
    recomputed = pipeline.named_steps["features"].transform(cleaned[[c.name for c in spec.feature_columns]])
    pd.testing.assert_frame_equal(
        recomputed.reset_index(drop=True), stored[list(recomputed.columns)].reset_index(drop=True), check_dtype=False
    )


def test_champion_is_registered_with_metrics_signature_and_example(platform, tracking, specs):
    client = tracking.client()
    for name, metric in (("transactions", "roc_auc"), ("wine_quality", "r2")):
        spec = specs[name]
        version = client.get_model_version_by_alias(spec.registered_model_name, "champion")
        run = client.get_run(version.run_id)
        assert run.data.metrics[metric] >= spec.training.min_metrics[metric]
        assert run.data.tags["dataset"] == name and run.data.tags.get("dagster_run_id")
        artifacts = {a.path for a in client.list_artifacts(version.run_id)}
        assert "reference" in artifacts
        import mlflow

        info = mlflow.models.get_model_info(f"models:/{spec.registered_model_name}@champion")
        assert [c["name"] for c in info.signature.inputs.to_dict()] == [c.name for c in spec.feature_columns]
        assert info.saved_input_example_info is not None


def test_status_reports_a_loadable_champion_and_a_usable_request(platform, home, specs, instance):
    import mlflow.pyfunc

    from mlops_assets.cli.status import collect_status

    status = collect_status(home, specs, instance)
    tx = status["datasets"]["transactions"]
    assert Path(tx["drift_report"]).exists()
    assert tx["bento"].startswith("mlops-transactions-service:")
    mlflow.set_tracking_uri(status["tracking_uri"])
    model = mlflow.pyfunc.load_model(tx["champion"]["model_uri"])
    records = pd.DataFrame(tx["serve_example"]["records"])
    assert set(records.columns) == set(specs["transactions"].input_columns)
    predictions = model.predict(records)
    assert len(predictions) == len(records)
    wine = status["datasets"]["wine_quality"]
    assert wine["champion"]["version"] and "rmse" in wine["champion"]["metrics"]


def test_drift_reports_catch_switched_on_drift_and_red_to_white(platform, instance, home):
    for dataset in ("transactions", "wine_quality"):
        meta = latest_metadata(instance, dataset, "drift_report")
        report = Path(meta["report"])
        assert report.exists() and report.stat().st_size > 100_000
        assert report.parent == home.reports(dataset)
        assert meta["severe"] is True, f"{dataset}: drift share {meta['drift_share']}"
        assert len(json.loads(json.dumps(meta["drifted_columns"]))) >= 2
    tx = latest_metadata(instance, "transactions", "drift_report")
    first_drift_day = dt.date(2026, 1, 1) + dt.timedelta(days=DEMO_DAYS)
    assert tx["current_partition"] == first_drift_day.isoformat()
    assert "amount" in tx["drifted_columns"]


def test_bento_holds_the_champion(platform, tracking, specs):
    import bentoml

    for spec in specs.values():
        champion = tracking.client().get_model_version_by_alias(spec.registered_model_name, "champion")
        model = bentoml.models.get(f"{spec.bento_model_name}:latest")
        assert model.info.labels["mlflow_version"] == str(champion.version)
        assert model.info.labels["mlflow_run_id"] == champion.run_id
        bento = bentoml.get(f"{spec.bento_model_name}-service:latest")
        assert str(model.tag) in {str(m.tag) for m in bento.info.all_models}


def test_running_the_demo_twice_is_safe(platform, warehouse, specs):
    """Re-materializing a partition replaces it: counts stay the same, nothing is duplicated."""
    from mlops_assets.cli.runner import land_shipped_file

    platform.ingest(specs["wine_quality"], land_shipped_file(specs["wine_quality"], platform.home, "winequality-red.csv"))
    platform.ingest(specs["transactions"], "2026-01-01")
    with warehouse.connect(read_only=True) as con:
        assert con.execute("SELECT count(*) FROM wine_quality.cleaned WHERE _partition='winequality-red.csv'").fetchone()[0] == 1599
        assert con.execute("SELECT count(*) FROM transactions.cleaned WHERE _partition='2026-01-01'").fetchone()[0] == DEMO_ROWS_PER_DAY
        assert con.execute("SELECT count(*) FROM transactions.ingestion_contracts").fetchone()[0] == DEMO_DAYS + DEMO_DRIFT_DAYS
        assert con.execute("SELECT count(*) FROM wine_quality.file_versions").fetchone()[0] == 2


def test_status_cli_prints_one_json_object_keyed_by_dataset(platform, home):
    import os
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "mlops_assets.cli", "status", "--json"],
        env={**os.environ, "MLOPS_HOME": str(home.root)}, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    status = json.loads(result.stdout)
    assert set(status["datasets"]) == {"transactions", "wine_quality"}
    for data in status["datasets"].values():
        assert data["champion"]["model_uri"].endswith("@champion")
        assert data["bento"] and Path(data["drift_report"]).exists() and data["drift_share"] > 0
        assert data["serve_example"]["records"]


def test_training_window_can_be_pinned_and_a_bad_pin_is_refused(platform, instance):
    from mlops_assets.cli.runner import JobFailed

    last = (dt.date(2026, 1, 1) + dt.timedelta(days=DEMO_DAYS - 1)).isoformat()
    platform.run("transactions_train", ops_config={"transactions__model": {"config": {"train_until": last}}})
    meta = latest_metadata(instance, "transactions", "model")
    assert json.loads(json.dumps(meta["training_partitions"]))[-1] == last
    assert len(meta["training_partitions"]) == DEMO_DAYS
    with pytest.raises(JobFailed, match="train_until='2031-01-01' is not an ingested partition"):
        platform.run("transactions_train", ops_config={"transactions__model": {"config": {"train_until": "2031-01-01"}}})


def test_champion_lineage_names_every_training_file_by_content_hash(platform, tracking, warehouse, specs):
    from mlops_assets.training.lineage import load_lineage

    spec = specs["wine_quality"]
    champion = tracking.client().get_model_version_by_alias(spec.registered_model_name, "champion")
    lineage = load_lineage(tracking, champion.run_id)
    with warehouse.connect(read_only=True) as con:
        hashes = dict(con.execute("SELECT _partition, content_hash FROM wine_quality.ingestion_contracts").fetchall())
    assert [p["partition"] for p in lineage["partitions"]] == ["winequality-red.csv"]
    assert lineage["partitions"][0]["content_hash"] == hashes["winequality-red.csv"]
    assert lineage["partitions"][0]["rows_read"] == 1599
    assert lineage["spec_hash"].startswith("sha256:") and lineage["code_version"]
    assert lineage["dagster_run_id"]
