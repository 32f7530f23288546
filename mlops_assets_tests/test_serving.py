"""A real `bentoml serve` from bento/ on a loopback port answers with the champion's predictions."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

REPO = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def served(platform, home):
    port = _free_port()
    env = {**os.environ, "MLOPS_DATASET": "transactions", "MLOPS_HOME": str(home.root)}
    env.pop("BENTOML_HOME", None)  # the service must find the store under MLOPS_HOME by itself
    log = (home.root / "serve.log").open("w")
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "bentoml"), "serve", "--host", "127.0.0.1", "--port", str(port)],
        cwd=REPO / "bento", env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                pytest.fail("bentoml serve exited: " + (home.root / "serve.log").read_text()[-3000:])
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        else:
            pytest.fail("bentoml serve not ready in 120 s: " + (home.root / "serve.log").read_text()[-3000:])
        yield url
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(timeout=30)
        log.close()


def test_predict_returns_predictions_with_the_champion_that_made_them(served, home, specs, instance, tracking):
    from mlops_assets.cli.status import collect_status

    body = collect_status(home, specs, instance)["datasets"]["transactions"]["serve_example"]
    response = httpx.post(f"{served}/predict", json=body, timeout=30)
    assert response.status_code == 200, response.text
    answer = response.json()
    champion = tracking.client().get_model_version_by_alias("mlops_assets.transactions", "champion")
    assert answer["model"] == "mlops_assets.transactions"
    assert answer["version"] == str(champion.version)
    assert len(answer["predictions"]) == len(body["records"])
    assert all(0.0 <= p <= 1.0 for p in answer["probabilities"])
    assert answer["ids"] == [r["transaction_id"] for r in body["records"]]


def test_predict_scores_risky_transactions_higher(served):
    base = {"amount": 25.0, "merchant_category": "grocery", "hour_of_day": 12, "distance_from_home": 3.0,
            "transactions_24h": 2, "card_present": True}
    risky = {**base, "amount": 2500.0, "merchant_category": "electronics", "hour_of_day": 3,
             "distance_from_home": 900.0, "transactions_24h": 14, "card_present": False}
    answer = httpx.post(f"{served}/predict", json={"records": [base, risky]}, timeout=30).json()
    assert answer["probabilities"][1] > answer["probabilities"][0]


@pytest.mark.parametrize(
    ("record", "field"),
    [
        ({"amount": "lots"}, "amount"),
        ({"merchant_category": "casino"}, "merchant_category"),
        ({"hour_of_day": 31}, "hour_of_day"),
        ({"card_present": None}, "card_present"),
    ],
)
def test_bad_requests_get_a_400_naming_the_field(served, record, field):
    base = {"amount": 25.0, "merchant_category": "grocery", "hour_of_day": 12, "distance_from_home": 3.0,
            "transactions_24h": 2, "card_present": True}
    response = httpx.post(f"{served}/predict", json={"records": [{**base, **record}]}, timeout=30)
    assert response.status_code == 400, response.text
    assert field in response.text
    assert "Traceback" not in response.text


def test_empty_request_is_refused_clearly(served):
    response = httpx.post(f"{served}/predict", json={"records": []}, timeout=30)
    assert response.status_code == 400
    assert "records" in response.text
