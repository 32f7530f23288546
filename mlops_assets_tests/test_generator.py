"""The transactions generator: deterministic, realistic fraud rate, learnable signal, visible drift."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys

import pandas as pd
import pytest

from mlops_assets.datasets.generator import generate_day, write_day

DAY = dt.date(2026, 3, 1)


def test_same_seed_and_day_give_the_same_bytes(tmp_path):
    a = write_day(tmp_path / "a.csv", DAY, 2000, seed=5).read_bytes()
    b = write_day(tmp_path / "b.csv", DAY, 2000, seed=5).read_bytes()
    c = write_day(tmp_path / "c.csv", DAY, 2000, seed=6).read_bytes()
    assert a == b and a != c


def test_fraud_rate_is_realistic_and_learnable():
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import roc_auc_score

    train = generate_day(DAY, 60_000, seed=1)
    test = generate_day(DAY + dt.timedelta(days=1), 60_000, seed=1)
    assert 0.01 <= train["is_fraud"].mean() <= 0.02
    cols = ["amount", "hour_of_day", "distance_from_home", "transactions_24h", "card_present"]
    model = HistGradientBoostingClassifier(random_state=0).fit(train[cols].astype(float), train["is_fraud"])
    auc = roc_auc_score(test["is_fraud"], model.predict_proba(test[cols].astype(float))[:, 1])
    assert auc > 0.8
    drifted = generate_day(DAY + dt.timedelta(days=1), 60_000, seed=1, drifted=True)
    drifted_auc = roc_auc_score(drifted["is_fraud"], model.predict_proba(drifted[cols].astype(float))[:, 1])
    assert drifted_auc < auc - 0.2, "drift should change the fraud pattern, not only the inputs"
    assert drifted["amount"].median() > 1.3 * train["amount"].median()
    assert (drifted["merchant_category"] == "online").mean() > (train["merchant_category"] == "online").mean() + 0.08


@pytest.mark.slow  # starts a Python process with the whole stack
def test_cli_generate_writes_one_file_per_day_with_drift(tmp_path):
    env_home = tmp_path / "home"
    result = subprocess.run(
        [sys.executable, "-m", "mlops_assets.cli", "generate", "transactions", "--start", "2026-02-01",
         "--days", "3", "--rows-per-day", "500", "--drift-from", "2026-02-03"],
        env={**__import__("os").environ, "MLOPS_HOME": str(env_home)}, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    files = sorted((env_home / "landing" / "transactions").glob("*.csv"))
    assert [f.name for f in files] == [f"transactions_2026-02-0{d}.csv" for d in (1, 2, 3)]
    frames = [pd.read_csv(f) for f in files]
    assert all(len(f) == 500 for f in frames)
    assert frames[2]["amount"].median() > frames[0]["amount"].median()


@pytest.mark.slow  # starts a Python process with the whole stack
def test_cli_generate_rejects_a_bad_date_in_one_line(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "mlops_assets.cli", "generate", "transactions", "--start", "2026-13-01", "--days", "1"],
        env={**__import__("os").environ, "MLOPS_HOME": str(tmp_path)}, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 2
    assert "'2026-13-01' is not a date" in result.stderr and "Traceback" not in result.stderr
