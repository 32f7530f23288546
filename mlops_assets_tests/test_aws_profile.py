"""The `aws` profile for real: S3 on a loopback moto server, PostgreSQL for the lake catalog, Dagster and MLflow.

The whole wine_quality graph materializes with MLOPS_PROFILE=aws: four partition runs in separate
processes at once, then training (model + Bento), then a later file and its drift report. Every
count is taken independently of the code under test: expected rows from the files written here,
stored rows read straight from the lake with DuckDB's own ATTACH, objects listed with boto3, runs
and catalog rows read from PostgreSQL with psycopg2.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mlops_assets.home import MlopsHome
from mlops_assets_tests.services import ServiceUnavailable, moto_server, postgres_server

pytestmark = pytest.mark.slow  # servers and child processes with the whole stack

BUCKET, PREFIX = "mlops-test-bucket", "team/mlops"
RED_PARTS = 4
WHITE_ROWS = 600
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "us-east-1"}


def _split(shipped: Path, parts: int, limit: int | None = None) -> list[bytes]:
    """The shipped file cut into `parts` files of whole rows, each with the header (CRLF kept)."""
    header, *rows = shipped.read_bytes().splitlines(keepends=True)
    rows = rows[:limit] if limit else rows
    size = -(-len(rows) // parts)
    return [header + b"".join(rows[i:i + size]) for i in range(0, len(rows), size)]


@pytest.fixture(scope="module")
def cloud(tmp_path_factory):
    """PostgreSQL + moto S3 on loopback, and the environment of the `aws` profile pointing at them."""
    workdir = tmp_path_factory.mktemp("aws")
    try:
        with postgres_server() as pg, moto_server(workdir / "moto") as moto:
            import boto3

            for database in ("mlops", "mlflow"):
                pg.create_database(database)
            s3 = boto3.client("s3", endpoint_url=moto.endpoint, region_name="us-east-1",
                              aws_access_key_id="testing", aws_secret_access_key="testing")
            s3.create_bucket(Bucket=BUCKET)
            home = workdir / "home"
            inherited = {k: v for k, v in os.environ.items()
                         if not k.startswith(("MLOPS_", "DAGSTER_", "BENTOML_HOME", "MLFLOW_", "AWS_"))}
            env = {
                **inherited, **CREDENTIALS,
                "MLOPS_PROFILE": "aws", "MLOPS_HOME": str(home), "DAGSTER_HOME": str(home / "dagster"),
                "BENTOML_HOME": str(home / "bentoml"), "BENTOML_DO_NOT_TRACK": "True",
                "MLOPS_S3_BUCKET": BUCKET, "MLOPS_S3_PREFIX": PREFIX,
                "MLOPS_LAKE_DATA_PATH": f"s3://{BUCKET}/{PREFIX}/lake/",
                "MLOPS_PG_HOST": pg.host, "MLOPS_PG_PORT": str(pg.port), "MLOPS_PG_DB": "mlops",
                "MLOPS_PG_USER": pg.user, "MLOPS_PG_PASSWORD": pg.password,
                "MLFLOW_TRACKING_URI": pg.dsn("mlflow"), "AWS_ENDPOINT_URL": moto.endpoint,
            }
            yield {"pg": pg, "s3": s3, "env": env, "home": home, "workdir": workdir, "endpoint": moto.endpoint}
    except ServiceUnavailable as exc:
        pytest.skip(f"the aws profile needs PostgreSQL and a moto S3 server on this machine: {exc}")


def _python(cloud, code: str) -> None:
    done = subprocess.run([sys.executable, "-c", code], env=cloud["env"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]


def _runs(cloud, *commands: list[str]) -> None:
    """Start every command at once, each a separate process running one job of the platform; all must succeed."""
    processes = [
        subprocess.Popen([sys.executable, "-m", "mlops_assets_tests.crash_driver", "--dataset", "wine_quality", *args],
                         env=cloud["env"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for args in commands
    ]
    outputs = [p.communicate(timeout=1500)[0] for p in processes]
    assert [p.returncode for p in processes] == [0] * len(processes), "\n-----\n".join(o[-2500:] for o in outputs)


@pytest.fixture(scope="module")
def materialized(cloud, wine_dir):
    """Red wine as four files ingested by four processes at once, a model trained on them, then white arrives."""
    s3 = cloud["s3"]
    files = {f"red-{i + 1}.csv": data for i, data in enumerate(_split(wine_dir / "winequality-red.csv", RED_PARTS))}
    files["white-1.csv"] = _split(wine_dir / "winequality-white.csv", 1, limit=WHITE_ROWS)[0]
    for name, data in files.items():
        s3.put_object(Bucket=BUCKET, Key=f"{PREFIX}/{MlopsHome.landing_key('wine_quality', name, daily=False)}",
                      Body=data)
    reds = [n for n in files if n.startswith("red-")]
    # The deployment's instance exists before runs start (the webserver and daemon create its tables);
    # the lake is created by the runs themselves, all at once.
    _python(cloud, "import dagster as dg; from mlops_assets.home import MlopsHome; MlopsHome.from_env().ensure(); "
                   f"dg.DagsterInstance.get().add_dynamic_partitions('wine_quality_files', {list(files)!r})")
    _runs(cloud, *[["--job", "wine_quality_ingest", "--partition", name] for name in reds])
    _runs(cloud, ["--job", "wine_quality_train"])
    _runs(cloud, ["--job", "wine_quality_ingest", "--partition", "white-1.csv"])
    _runs(cloud, ["--job", "wine_quality_monitor"])
    return {name: data.count(b"\n") - 1 for name, data in files.items()}


def _lake(cloud):
    """A DuckDB connection to the lake made here, with DuckDB's own ATTACH (not the warehouse resource)."""
    import duckdb

    from mlops_assets.resources.warehouse import extension_directory

    pg, host = cloud["pg"], cloud["endpoint"].split("//", 1)[1]
    con = duckdb.connect(config={"extension_directory": str(extension_directory()),
                                 "autoinstall_known_extensions": False, "autoload_known_extensions": False})
    con.execute("LOAD ducklake; LOAD postgres; LOAD httpfs")
    con.execute(f"CREATE SECRET (TYPE s3, KEY_ID 'testing', SECRET 'testing', REGION 'us-east-1', ENDPOINT '{host}', "
                "URL_STYLE 'path', USE_SSL false)")
    con.execute(f"ATTACH 'ducklake:postgres:dbname=mlops host={pg.host} port={pg.port} user={pg.user} "
                f"password={pg.password}' AS lake (METADATA_SCHEMA 'mlops_lake', READ_ONLY)")
    return con


def _postgres(cloud, database: str, sql: str) -> list[tuple]:
    import psycopg2

    pg = cloud["pg"]
    connection = psycopg2.connect(host=pg.host, port=pg.port, user=pg.user, password=pg.password, dbname=database)
    try:
        with connection.cursor() as cursor:
            cursor.execute(sql)
            return cursor.fetchall()
    finally:
        connection.close()


def _keys(cloud, prefix: str) -> list[str]:
    pages = cloud["s3"].get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=f"{PREFIX}/{prefix}")
    return [item["Key"][len(PREFIX) + 1:] for page in pages for item in page.get("Contents", [])]


def test_partitions_written_at_once_land_exactly_once_in_the_lake(cloud, materialized):
    con = _lake(cloud)
    stored = dict(con.execute("SELECT _partition, count(*) FROM lake.wine_quality.cleaned GROUP BY 1").fetchall())
    quarantined = con.execute("SELECT count(*) FROM lake.wine_quality.quarantine").fetchone()[0]
    distinct = con.execute("SELECT count(DISTINCT (_partition, _source_line)) FROM lake.wine_quality.cleaned").fetchone()[0]
    features = dict(con.execute("SELECT _partition, count(*) FROM lake.wine_quality.features GROUP BY 1").fetchall())
    contracts = con.execute("SELECT _partition, source_path FROM lake.wine_quality.ingestion_contracts").fetchall()
    assert stored == materialized and quarantined == 0
    assert distinct == sum(materialized.values())
    assert features == materialized
    # file drops are archived, and the warehouse points at the archived copy in S3
    assert sorted(p for p, _ in contracts) == sorted(materialized)
    assert all(path.startswith(f"s3://{BUCKET}/{PREFIX}/archive/wine_quality/") for _, path in contracts)


def test_catalog_in_postgres_and_data_in_s3(cloud, materialized):
    catalog = {r[0] for r in _postgres(cloud, "mlops", "SELECT table_name FROM mlops_lake.ducklake_table "
                                                       "WHERE end_snapshot IS NULL")}
    assert {"cleaned", "features", "quarantine", "ingestion_contracts", "file_versions"} <= catalog
    snapshots = _postgres(cloud, "mlops", "SELECT count(*) FROM mlops_lake.ducklake_snapshot")[0][0]
    assert snapshots >= len(materialized) * 3  # raw, cleaned and features each commit per partition
    files = _postgres(cloud, "mlops", "SELECT count(*) FROM mlops_lake.ducklake_data_file df "
                                      "JOIN mlops_lake.ducklake_table t USING (table_id) "
                                      "WHERE t.table_name = 'cleaned' AND df.end_snapshot IS NULL")[0][0]
    parquet = [k for k in _keys(cloud, "lake/wine_quality/cleaned/") if k.endswith(".parquet")]
    assert files >= len(materialized) and len(parquet) >= files
    landed = _keys(cloud, "landing/wine_quality/")
    archived = _keys(cloud, "archive/wine_quality/")
    assert sorted(Path(k).name for k in landed) == sorted(materialized)
    assert sorted(k.split("/")[2] for k in archived) == sorted(materialized)
    # Dagster's runs are in PostgreSQL too: 4 + 1 ingests, a train and a monitor run, all successful
    runs = dict(_postgres(cloud, "mlops", "SELECT status, count(*) FROM runs GROUP BY status"))
    assert runs == {"SUCCESS": RED_PARTS + 3}


def test_model_tracked_in_postgres_with_artifacts_in_s3_and_its_snapshot_rereadable(cloud, materialized, monkeypatch):
    from mlflow import MlflowClient

    for key, value in {**CREDENTIALS, "AWS_ENDPOINT_URL": cloud["endpoint"]}.items():
        monkeypatch.setenv(key, value)
    uri = cloud["env"]["MLFLOW_TRACKING_URI"]
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    version = client.get_model_version_by_alias("mlops_assets.wine_quality", "champion")
    run = client.get_run(version.run_id)
    assert run.info.artifact_uri.startswith(f"s3://{BUCKET}/{PREFIX}/mlflow/wine_quality/")
    assert run.data.tags.get("dagster_run_id") and run.data.metrics["r2"] >= 0.2
    artifacts = _keys(cloud, "mlflow/wine_quality/")  # MLflow 3 keeps logged models beside the runs
    assert any(k.endswith("/MLmodel") for k in artifacts)
    assert f"mlflow/wine_quality/{version.run_id}/artifacts/lineage/lineage.json" in artifacts
    assert _postgres(cloud, "mlflow", "SELECT count(*) FROM runs WHERE status = 'FINISHED'")[0][0] >= 1

    lineage = json.loads(Path(client.download_artifacts(version.run_id, "lineage/lineage.json",
                                                        str(cloud["workdir"]))).read_text())
    reds = sorted(n for n in materialized if n.startswith("red-"))
    assert sorted(p["partition"] for p in lineage["partitions"]) == reds
    assert isinstance(lineage["snapshot_id"], int)
    assert run.data.tags["mlops.lake_snapshot"] == str(lineage["snapshot_id"])
    con = _lake(cloud)
    at_training = con.execute(
        f"SELECT count(*) FROM lake.wine_quality.cleaned AT (VERSION => {lineage['snapshot_id']})").fetchone()[0]
    now = con.execute("SELECT count(*) FROM lake.wine_quality.cleaned").fetchone()[0]
    assert at_training == sum(materialized[n] for n in reds)  # white arrived after training
    assert now == sum(materialized.values())


def test_drift_report_written_to_s3_and_bento_built(cloud, materialized):
    reports = _keys(cloud, "reports/wine_quality/")
    assert len(reports) == 1 and reports[0].endswith(".html") and "white-1.csv" in reports[0]
    body = cloud["s3"].get_object(Bucket=BUCKET, Key=f"{PREFIX}/{reports[0]}")["Body"].read()
    assert len(body) > 100_000 and b"<html" in body[:2000].lower()
    metadata = _postgres(
        cloud, "mlops",
        "SELECT event FROM event_logs WHERE dagster_event_type = 'ASSET_MATERIALIZATION' "
        "AND asset_key LIKE '%drift_report%' ORDER BY id DESC LIMIT 1")[0][0]
    assert f"s3://{BUCKET}/{PREFIX}/reports/wine_quality/" in metadata
    bentos = list((cloud["home"] / "bentoml" / "bentos").glob("mlops-wine-quality-service/*"))
    assert bentos, "the bento asset built no Bento"


def test_status_in_the_aws_profile_answers_from_the_cloud_without_printing_secrets(cloud, materialized):
    done = subprocess.run([sys.executable, "-m", "mlops_assets.cli", "status", "--json"], env=cloud["env"],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    status = json.loads(done.stdout)
    wine = status["datasets"]["wine_quality"]
    assert wine["champion"]["model_uri"] == "models:/mlops_assets.wine_quality@champion"
    assert wine["drift_report"].startswith(f"s3://{BUCKET}/{PREFIX}/reports/wine_quality/")
    assert len(wine["serve_example"]["records"]) == 2
    assert "postgres" in status["warehouse"] and f"s3://{BUCKET}/{PREFIX}/lake/" in status["warehouse"]
    assert cloud["pg"].password not in done.stdout


def test_cli_generate_and_ingest_land_in_s3_and_a_replaced_version_is_archived(cloud, materialized, tmp_path):
    """Last in this module: it replaces red-1.csv. The CLI lands files in the profile's landing zone (S3 here)."""
    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "mlops_assets.cli", *args], env=cloud["env"],
                              capture_output=True, text=True, timeout=600)

    generated = cli("generate", "transactions", "--start", "2026-02-01", "--days", "2", "--rows-per-day", "300")
    assert generated.returncode == 0, generated.stderr[-3000:]
    assert sorted(_keys(cloud, "landing/transactions/")) == [
        "landing/transactions/transactions_2026-02-01.csv", "landing/transactions/transactions_2026-02-02.csv"]

    before = cloud["s3"].get_object(Bucket=BUCKET, Key=f"{PREFIX}/landing/wine_quality/red-1.csv")["Body"].read()
    replacement = tmp_path / "red-1.csv"
    header, *rows = before.decode().splitlines(keepends=True)
    replacement.write_text(header + "".join(rows[:150]))
    done = cli("ingest", "wine_quality", str(replacement), "--json")
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout)
    assert summary["landed_as"] == f"s3://{BUCKET}/{PREFIX}/landing/wine_quality/red-1.csv"
    assert summary["rows_cleaned"] == 150
    landed = cloud["s3"].get_object(Bucket=BUCKET, Key=f"{PREFIX}/landing/wine_quality/red-1.csv")["Body"].read()
    assert landed == replacement.read_bytes()
    archived = [cloud["s3"].get_object(Bucket=BUCKET, Key=f"{PREFIX}/{k}")["Body"].read()
                for k in _keys(cloud, "archive/wine_quality/red-1.csv/")]
    assert before in archived and landed in archived  # the replaced version kept, the new one registered
    con = _lake(cloud)
    assert con.execute("SELECT count(*) FROM lake.wine_quality.cleaned WHERE _partition = 'red-1.csv'").fetchone()[0] == 150


# ---------------------------------------------------------------- the champion lock across hosts


@pytest.fixture(scope="module")
def postgres():
    """PostgreSQL alone (no S3, no runs): enough for the champion lock and the registry behind it."""
    try:
        with postgres_server() as pg:
            yield pg
    except ServiceUnavailable as exc:
        pytest.skip(f"needs a PostgreSQL server on this machine: {exc}")


def test_promotions_from_separate_hosts_wait_for_one_another_on_the_tracking_database(postgres, specs):
    """Each ECS task has its own disk, so a file lock cannot serialize them: the lock lives in MLflow's database."""
    import threading
    import time

    import psycopg2

    from mlops_assets.resources import S3MlflowTracking
    from mlops_assets.training.promotion import PromotionError, promote_version

    spec = specs["wine_quality"]
    database = postgres.create_database("registry")

    def task(timeout: float) -> S3MlflowTracking:  # one per "host": nothing shared but the database
        return S3MlflowTracking(tracking_uri=postgres.dsn(database), bucket=BUCKET, lock_timeout_seconds=timeout)

    def advisory_locks() -> int:  # read by PostgreSQL itself, on a connection of the test's own
        connection = psycopg2.connect(host=postgres.host, port=postgres.port, user=postgres.user,
                                      password=postgres.password, dbname=database)
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted")
                return cursor.fetchone()[0]
        finally:
            connection.close()

    client = task(60).client()
    client.create_registered_model(spec.registered_model_name)
    for _ in range(2):
        client.create_model_version(spec.registered_model_name, source=f"s3://{BUCKET}/model", run_id=None)

    holding, release = threading.Event(), threading.Event()

    def deciding_model_run() -> None:  # another host, inside its decide-and-move section
        with task(60).promotion_lock(spec.registered_model_name):
            holding.set()
            release.wait(60)

    other = threading.Thread(target=deciding_model_run)
    other.start()
    try:
        assert holding.wait(60) and advisory_locks() == 1
        started = time.monotonic()
        with pytest.raises(PromotionError) as refused:
            promote_version(task(1), spec, "1")
        assert time.monotonic() - started >= 1
        message = str(refused.value)
        assert "held by another session for 1 s" in message and "the champion alias was not touched" in message
        assert "\n" not in message and postgres.password not in message
        assert client.get_registered_model(spec.registered_model_name).aliases == {}

        done: dict = {}
        waiting = threading.Thread(target=lambda: done.update(moved=promote_version(task(60), spec, "2")))
        waiting.start()
        time.sleep(1.5)
        assert waiting.is_alive() and not done  # waits while the other host decides
        assert client.get_registered_model(spec.registered_model_name).aliases == {}
    finally:
        release.set()
        other.join(60)
    waiting.join(60)
    assert done["moved"] == (None, "2")  # and proceeds once it is released
    assert client.get_registered_model(spec.registered_model_name).aliases == {"champion": 2}
    assert advisory_locks() == 0
