"""Real `bentoml serve <bento tag>` processes on loopback ports, started from the Bentos the demo built.

The transactions Bento runs with an API key, a small request bound and two workers; the wine Bento
runs with nothing but BENTOML_HOME set, as issue 6.3 asks of a Bento that stands alone.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

REPO = Path(__file__).resolve().parents[1]
BENTOML = str(Path(sys.executable).parent / "bentoml")
API_KEY = "s3cret-test-key"
MAX_BYTES = 2_000_000
AUTH = {"Authorization": f"Bearer {API_KEY}"}
SAFE = {"amount": 25.0, "merchant_category": "grocery", "hour_of_day": 12, "distance_from_home": 3.0,
        "transactions_24h": 2, "card_present": True}
RISKY = {**SAFE, "amount": 2500.0, "merchant_category": "electronics", "hour_of_day": 3,
         "distance_from_home": 900.0, "transactions_24h": 14, "card_present": False}
WINE = {"fixed_acidity": 7.4, "volatile_acidity": 0.7, "citric_acid": 0.0, "residual_sugar": 1.9, "chlorides": 0.076,
        "free_sulfur_dioxide": 11.0, "total_sulfur_dioxide": 34.0, "density": 0.9978, "ph": 3.51, "sulphates": 0.56,
        "alcohol": 9.4}

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Served:
    """A running server, and every prediction row it answered with a 2xx (counted here, by the client)."""

    url: str
    log: Path
    headers: dict[str, str] = field(default_factory=dict)
    rows_answered: int = 0
    request_ids: list[str] = field(default_factory=list)
    home: object = None  # the MlopsHome whose store the server reads (when not the session's)

    def post(self, path: str, body=None, *, headers: dict | None = None, **kwargs) -> httpx.Response:
        response = httpx.post(f"{self.url}{path}", json=body, headers={**self.headers, **(headers or {})},
                              timeout=60, **kwargs)
        if response.is_success and path in ("/predict", "/predict_batch"):
            answer = response.json()
            self.rows_answered += len(answer["predictions"])
            self.request_ids.append(answer["request_id"])
        return response


@contextlib.contextmanager
def _bentoml_serve(args: list[str], env: dict[str, str], log: Path, cwd: Path):
    port = _free_port()
    with log.open("w") as out:
        proc = subprocess.Popen([BENTOML, "serve", *args, "--host", "127.0.0.1", "--port", str(port)], cwd=cwd,
                                env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 240
            while True:
                if proc.poll() is not None:
                    pytest.fail(f"bentoml serve exited: {log.read_text()[-3000:]}")
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                        break
                if time.monotonic() > deadline:
                    pytest.fail(f"bentoml serve not ready in 240 s: {log.read_text()[-3000:]}")
                time.sleep(0.5)
            yield url
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)


def _bento_tag(instance, dataset: str) -> str:
    from mlops_assets.stages import Stage, asset_key

    event = instance.get_latest_materialization_event(asset_key(dataset, Stage.BENTO))
    return str(event.asset_materialization.metadata["bento"].value)


@pytest.fixture(scope="module")
def tx(platform, home, instance, tmp_path_factory):
    """The transactions Bento by tag: API key, a 2 MB body bound and two workers (one log file each)."""
    env = {k: v for k, v in os.environ.items() if k != "MLOPS_DATASET"}
    env.update({"BENTOML_HOME": str(home.bentoml_home), "MLOPS_HOME": str(home.root), "MLOPS_API_KEY": API_KEY,
                "MLOPS_MAX_REQUEST_BYTES": str(MAX_BYTES),
                "BENTOML_CONFIG_OPTIONS": 'services."mlops-transactions-service".workers=2'})
    work = tmp_path_factory.mktemp("tx-serve")
    with _bentoml_serve([_bento_tag(instance, "transactions")], env, work / "serve.log", work) as url:
        yield Served(url, work / "serve.log", headers=AUTH)


@pytest.fixture(scope="module")
def wine(platform, home, instance, tmp_path_factory):
    """The wine Bento the demo built, exported and imported alone into an empty store, served by tag with
    nothing set but where that store is: no MLOPS_HOME, no dataset, no model store but the Bento's own."""
    import bentoml

    from mlops_assets.home import MlopsHome

    work = tmp_path_factory.mktemp("wine-serve")
    elsewhere = MlopsHome(work / "home")
    tag = _bento_tag(instance, "wine_quality")
    archive = bentoml.bentos.export_bento(tag, str(work / "wine.bento"))
    env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/root"),
           "BENTOML_HOME": str(elsewhere.bentoml_home), "BENTOML_DO_NOT_TRACK": "True"}
    subprocess.run([BENTOML, "import", archive], env=env, check=True, capture_output=True, timeout=300)
    with _bentoml_serve([tag], env, work / "serve.log", work) as url:
        served = Served(url, work / "serve.log")
        served.home = elsewhere
        yield served


def _champion(tracking, dataset: str):
    return tracking.client().get_model_version_by_alias(f"mlops_assets.{dataset}", "champion")


def _metric(url: str, name: str) -> dict[tuple, float]:
    """Every sample of metric `name` on /metrics, keyed by its sorted labels."""
    from prometheus_client.parser import text_string_to_metric_families

    samples = {}
    for family in text_string_to_metric_families(httpx.get(f"{url}/metrics", timeout=30).text):
        for sample in family.samples:
            if sample.name == name:
                samples[tuple(sorted(sample.labels.items()))] = sample.value
    return samples


# ---- the transactions Bento ---------------------------------------------------------------------------


def test_predict_answers_with_the_champion_its_version_and_a_request_id(tx, tracking):
    response = tx.post("/predict", {"records": [SAFE, {**RISKY, "transaction_id": "t-2"}]})
    assert response.status_code == 200, response.text
    answer = response.json()
    champion = _champion(tracking, "transactions")
    assert (answer["model"], answer["version"]) == ("mlops_assets.transactions", str(champion.version))
    assert len(answer["predictions"]) == 2 and all(0.0 <= p <= 1.0 for p in answer["probabilities"])
    assert answer["probabilities"][1] > answer["probabilities"][0]
    assert answer["ids"] == [None, "t-2"]
    assert len(answer["request_id"]) == 32 and response.headers["x-request-id"] == answer["request_id"]
    traced = tx.post("/predict", {"records": [SAFE]}, headers={"X-Request-ID": "trace-42"})
    assert traced.json()["request_id"] == "trace-42" == traced.headers["x-request-id"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"records": [{k: v for k, v in SAFE.items() if k != "amount"}]}, "amount"),  # missing field
        ({"records": [{**SAFE, "amount": "lots"}]}, "amount"),  # wrong type
        ({"records": [{**SAFE, "hour_of_day": 31}]}, "hour_of_day"),  # out of range
        ({"records": [{**SAFE, "amount": -5}]}, "amount"),  # below the spec's minimum
        ({"records": [{**SAFE, "merchant_category": "casino"}]}, "merchant_category"),  # unknown category
        ({"records": [{**SAFE, "card_present": None}]}, "card_present"),  # null in a required field
        ({"records": [{**SAFE, "card_present": "yes"}]}, "card_present"),  # no coercion of strings
        ({"records": [{**SAFE, "hour_of_day": 3.5}]}, "hour_of_day"),  # a fraction for an integer
        ({"records": [{**SAFE, "colour": "red"}]}, "colour"),  # a field the model does not know
        ({"records": []}, "records"),  # empty list
        ({"records": [SAFE] * 1001}, "records"),  # oversized batch for /predict
        ({"records": SAFE}, "records"),  # not a list
        ({}, "records"),  # no records at all
    ],
)
def test_each_invalid_payload_is_a_4xx_naming_the_field(tx, body, field):
    response = tx.post("/predict", body)
    assert response.status_code == 400, response.text
    named = {str(part) for error in response.json()["detail"] for part in error["loc"]}
    assert field in named, response.text
    assert "Traceback" not in response.text


def test_malformed_json_and_non_json_bodies_are_4xx(tx):
    broken = httpx.post(f"{tx.url}/predict", content=b'{"records": [', headers={**AUTH, "content-type": "application/json"})
    assert broken.status_code == 400 and "JSON" in broken.text, broken.text
    # curl -d sends a form content type: these routes read every body as JSON
    form = httpx.post(f"{tx.url}/predict", content=json.dumps({"records": [SAFE]}).encode(),
                      headers={**AUTH, "content-type": "application/x-www-form-urlencoded"})
    assert form.status_code == 200, form.text
    tx.rows_answered += 1
    tx.request_ids.append(form.json()["request_id"])
    multipart = httpx.post(f"{tx.url}/predict", files={"records": ("x.json", b"[]")}, headers=AUTH)
    assert multipart.status_code == 400, multipart.text


def test_request_size_is_bounded_with_a_413_never_a_5xx(tx):
    big = {"records": [SAFE] * 20_000}  # ~2.7 MB of JSON, above the 2 MB bound of this server
    assert len(json.dumps(big)) > MAX_BYTES
    response = tx.post("/predict_batch", big)
    assert response.status_code == 413 and "bytes" in response.json()["error"], response.text

    def chunks():  # no content-length: the bound must hold while the body streams in
        payload = json.dumps(big).encode()
        for start in range(0, len(payload), 65536):
            yield payload[start:start + 65536]

    streamed = httpx.post(f"{tx.url}/predict_batch", content=chunks(), headers={**AUTH, "content-type": "application/json"},
                          timeout=60)
    assert streamed.status_code == 413, streamed.text


def test_predict_batch_scores_like_predict_for_many_rows(tx):
    rows = [{**(RISKY if i % 7 == 0 else SAFE), "amount": float(10 + i), "hour_of_day": i % 24} for i in range(1000)]
    batch = tx.post("/predict_batch", {"records": rows})
    online = tx.post("/predict", {"records": rows})
    columnar = tx.post("/predict_batch", {"columns": {k: [r[k] for r in rows] for k in rows[0]}})
    assert batch.status_code == online.status_code == columnar.status_code == 200, batch.text + columnar.text
    assert batch.json()["probabilities"] == online.json()["probabilities"] == columnar.json()["probabilities"]
    assert len(batch.json()["predictions"]) == 1000 and batch.json()["request_id"] != online.json()["request_id"]
    ragged = tx.post("/predict_batch", {"columns": {**{k: [r[k] for r in rows] for k in rows[0]}, "amount": [1.0]}})
    assert ragged.status_code == 400 and ragged.json()["detail"][0]["loc"] == ["columns", "amount"], ragged.text
    both = tx.post("/predict_batch", {"records": rows[:1], "columns": {k: [v] for k, v in rows[0].items()}})
    assert both.status_code == 400 and "either" in both.text


def test_lineage_names_model_run_training_files_code_and_build_time(tx, tracking, warehouse, instance):
    import bentoml

    from mlops_assets.training.lineage import load_lineage

    lineage = httpx.get(f"{tx.url}/lineage", headers=AUTH, timeout=30).json()
    champion = _champion(tracking, "transactions")
    assert (lineage["model"], lineage["version"], lineage["mlflow_run_id"]) == (
        "mlops_assets.transactions", str(champion.version), champion.run_id)
    with warehouse.connect(read_only=True) as con:
        hashes = dict(con.execute("SELECT _partition, content_hash FROM transactions.ingestion_contracts").fetchall())
    assert lineage["training_partitions"], lineage
    for part in lineage["training_partitions"]:
        assert part["content_hash"] == hashes[part["partition"]]
    assert lineage["code_version"] == load_lineage(tracking, champion.run_id)["code_version"]
    assert lineage["bento"] == _bento_tag(instance, "transactions")
    built = dt.datetime.fromisoformat(lineage["bento_built_at"])
    created = bentoml.get(lineage["bento"]).info.creation_time
    assert abs((created - built).total_seconds()) < 120


def test_api_key_guards_predictions_lineage_and_feedback_but_not_health(tx):
    body = {"records": [SAFE]}
    for method, path, payload in (("POST", "/predict", body), ("POST", "/predict_batch", body),
                                  ("GET", "/lineage", None), ("POST", "/feedback", {"request_id": "x", "label": True})):
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"X-API-Key": "wrong"}):
            response = httpx.request(method, f"{tx.url}{path}", json=payload, headers=headers, timeout=30)
            assert response.status_code == 401, (path, headers, response.text)
    assert tx.post("/predict", body, headers={"Authorization": ""} | {"X-API-Key": API_KEY}).status_code == 200
    for path in ("/livez", "/readyz", "/metrics"):
        assert httpx.get(f"{tx.url}{path}", timeout=30).status_code == 200, path


def test_metrics_count_predictions_by_label_and_version_and_not_health_calls(tx, tracking):
    version = str(_champion(tracking, "transactions").version)

    def counts():
        predictions = _metric(tx.url, "mlops_predictions_total")
        latency = _metric(tx.url, "mlops_prediction_latency_seconds_count")
        by_label = {dict(k)["label"]: v for k, v in predictions.items()
                    if dict(k)["model_version"] == version and dict(k)["endpoint"] == "predict"}
        requests = sum(v for k, v in latency.items() if dict(k) == {"endpoint": "predict", "model_version": version})
        return by_label, requests

    before, requests_before = counts()
    answered = {"true": 0, "false": 0}
    for body in ({"records": [SAFE]}, {"records": [RISKY, SAFE]}, {"records": [RISKY] * 3}):
        for label in tx.post("/predict", body).json()["predictions"]:
            answered[str(label).lower()] += 1
    for path in ("/readyz", "/livez", "/metrics", "/docs.json", "/readyz"):
        httpx.get(f"{tx.url}{path}", timeout=30)
    after, requests_after = counts()
    assert {k: after.get(k, 0) - before.get(k, 0) for k in answered} == answered
    assert requests_after - requests_before == 3


def test_feedback_accepts_a_label_for_a_served_prediction(tx):
    request_id = tx.post("/predict", {"records": [RISKY]}).json()["request_id"]
    response = tx.post("/feedback", {"request_id": request_id, "label": True})
    assert response.status_code == 202 and response.json() == {"request_id": request_id, "row": 0, "accepted": True}
    for body, named in (({"request_id": request_id, "label": "fraud"}, "label"),
                        ({"request_id": "not a request id!", "label": False}, "request_id"),
                        ({"request_id": request_id, "label": True, "row": -1}, "row"),
                        ({"label": True}, "request_id")):
        bad = tx.post("/feedback", body)
        assert bad.status_code == 400 and named in bad.text, bad.text


def test_every_prediction_is_logged_then_exposed_to_dagster_and_drives_drift(tx, home, instance, tracking):
    import dagster as dg

    from mlops_assets.datasets.factory import build_dataset
    from mlops_assets.datasets.spec import load_specs
    from mlops_assets.definitions import local_resources
    from mlops_assets.monitoring.prediction_log import log_files, read_log

    folder = home.predictions("transactions")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and (len(read_log(folder)) < tx.rows_answered
                                           or len(read_log(home.feedback("transactions"))) < 1):
        time.sleep(0.5)  # both logs are written off the request path, within about a second
    logged = read_log(folder)
    assert len(logged) == tx.rows_answered
    assert set(logged["request_id"]) == set(tx.request_ids)
    assert set(logged["model_version"]) == {str(_champion(tracking, "transactions").version)}
    assert logged["amount"].notna().all() and logged["probability"].between(0, 1).all()
    assert log_files(folder), folder

    dataset = build_dataset(load_specs()["transactions"])
    selected = [a for a in dataset.assets if a.key in (dataset.key("prediction_log"), dataset.key("drift_report"))]
    result = dg.materialize(selected, resources=local_resources(home), instance=instance)
    assert result.success
    log_meta = result.asset_materializations_for_node("transactions__prediction_log")[0].metadata
    assert log_meta["rows"].value == tx.rows_answered
    assert log_meta["requests"].value == len(set(tx.request_ids))
    assert log_meta["labeled_predictions"].value == 1 and log_meta["feedback_rows"].value == 1
    drift = result.asset_materializations_for_node("transactions__drift_report")[0].metadata
    assert drift["current_window"].value == "prediction_log"
    assert drift["current_rows"].value == tx.rows_answered


def test_schemathesis_finds_no_server_error_in_the_openapi_document(tx):
    schemathesis = Path(sys.executable).parent / "schemathesis"
    run = subprocess.run(
        [str(schemathesis), "run", f"{tx.url}/docs.json", "--checks", "not_a_server_error", "--max-examples", "12",
         "--workers", "1", "--seed", "7", "-H", f"Authorization: Bearer {API_KEY}", "--no-color"],
        capture_output=True, text=True, timeout=600, cwd=tx.log.parent,
    )
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert "Server error" not in run.stdout and " passed" in run.stdout, run.stdout[-2000:]


# ---- the wine Bento, standing alone -------------------------------------------------------------------


def test_wine_bento_serves_wine_by_tag_with_nothing_else_set(wine, tracking):
    from mlops_assets.monitoring.prediction_log import read_log

    lineage = httpx.get(f"{wine.url}/lineage", timeout=30).json()
    champion = _champion(tracking, "wine_quality")
    assert (lineage["dataset"], lineage["model"], lineage["version"]) == (
        "wine_quality", "mlops_assets.wine_quality", str(champion.version))
    answer = wine.post("/predict", {"records": [WINE, {**WINE, "alcohol": 13.5}]}).json()
    assert answer["task"] == "regression" and all(0 <= p <= 10 for p in answer["predictions"])
    assert wine.post("/predict", {"records": [SAFE]}).status_code == 400  # a transactions row is not a wine
    # MLOPS_HOME unset: the log goes to the home that holds the store (BENTOML_HOME's parent)
    folder = wine.home.predictions("wine_quality")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and len(read_log(folder)) < 2:
        time.sleep(0.5)
    assert list(read_log(folder)["request_id"]) == [answer["request_id"]] * 2


def test_without_a_champion_the_service_fails_at_start_with_the_command_that_makes_one(tmp_path):
    env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/root"), "BENTOML_HOME": str(tmp_path / "empty"),
           "BENTOML_DO_NOT_TRACK": "True"}
    for args in (["service:Predictor", "--arg", "model_tag=mlops-wine-quality:latest"], ["service:Predictor"]):
        run = subprocess.run([BENTOML, "serve", *args, "--port", str(_free_port())], cwd=REPO / "bento", env=env,
                             capture_output=True, text=True, timeout=120)
        output = run.stdout + run.stderr
        assert run.returncode != 0, output
        assert "mlops-assets demo" in output and "Traceback" not in output, output
