"""A new dataset, as a user meets it: an awkward export, one drafted spec, the CLI alone, a served prediction.

The user sets MLOPS_HOME and nothing else (no DAGSTER_HOME, no BENTOML_HOME, no spec directory); the
drafted spec is used exactly as written; every run must show in the Dagster instance `make dev` opens.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import httpx
import pytest

from mlops_assets_tests.awkward_export import read_rows, write_deliveries

CLI = Path(sys.executable).parent / "mlops-assets"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow  # a dozen CLI processes, a training run, a Bento server
def test_from_an_awkward_export_to_a_served_prediction_with_the_cli_alone(tmp_path, monkeypatch):
    home = tmp_path / "home"
    env = {k: v for k, v in os.environ.items()
           if k not in ("DAGSTER_HOME", "BENTOML_HOME", "MLFLOW_TRACKING_URI", "MLOPS_DATASET_SPECS")}
    env["MLOPS_HOME"] = str(home)

    def cli(*args: str) -> subprocess.CompletedProcess:
        done = subprocess.run([str(CLI), *args], env=env, capture_output=True, text=True, timeout=600, cwd=tmp_path)
        assert "Traceback" not in done.stderr, done.stderr
        return done

    def cli_json(*args: str, expect: int = 0) -> dict:
        done = cli(*args, "--json")
        assert done.returncode == expect, done.stderr[-3000:]
        return json.loads(done.stdout)

    part1, part2, part3 = write_deliveries(tmp_path)  # part3 arrives gzip-compressed
    drafted = cli_json("spec", "draft", str(part1), "--target", "Had Affair?")
    spec_path = Path(drafted["spec_path"])
    assert spec_path == home / "specs" / "affairs.yaml"
    assert (drafted["task"], drafted["rows_cleaned"], drafted["rows_quarantined"]) == ("classification", 2122, 0)
    spec_bytes = hashlib.sha256(spec_path.read_bytes()).hexdigest()

    for part in (part1, part2):  # files arrive one after the other
        ingested = cli_json("ingest", "affairs", str(part))
        assert ingested["ok"] and ingested["rows_cleaned"] == ingested["feature_rows"] == len(read_rows(part))

    trained = cli_json("train", "affairs")
    assert trained["ok"] and trained["champion"] is True, trained["problems"]
    assert trained["training_partitions"] == [part1.name, part2.name] and trained["features_built"] == []
    assert trained["metrics"]["roc_auc"] > 0.6 and trained["bento"].startswith("mlops-affairs-service:")

    latest = cli_json("ingest", "affairs", str(part3))
    assert latest["dialect"]["compression"] == "gzip" and latest["rows_cleaned"] == len(read_rows(part3))
    drift = cli("monitor", "affairs", "--json")
    report = json.loads(drift.stdout)
    assert drift.returncode == (1 if report["severe"] else 0), drift.stderr
    assert report["current_partition"] == part3.name and report["reference_model_version"] == trained["version"]
    assert Path(report["report"]).is_file()

    status = cli_json("status", "affairs")
    assert status["dagster_home"] == str(home / "dagster")
    assert status["datasets"]["affairs"]["features_missing"] == []
    body = status["datasets"]["affairs"]["serve_example"]

    # Everything the CLI ran is in the instance the UI reads.
    monkeypatch.setenv("DAGSTER_HOME", str(home / "dagster"))
    with dg.DagsterInstance.get() as instance:
        triggers = sorted(r.tags.get("mlops/trigger", "") for r in instance.get_runs())
    assert triggers == ["cli-ingest"] * 3 + ["cli-monitor", "cli-train"]

    port = _free_port()
    log = (tmp_path / "serve.log").open("w")
    server = subprocess.Popen([str(CLI), "serve", "affairs", "--port", str(port)], env=env, cwd=tmp_path, stdout=log,
                              stderr=subprocess.STDOUT, start_new_session=True)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            assert server.poll() is None, (tmp_path / "serve.log").read_text()[-3000:]
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        else:
            pytest.fail("mlops-assets serve not ready in 180 s: " + (tmp_path / "serve.log").read_text()[-3000:])
        answer = httpx.post(f"{url}/predict", json=body, timeout=30)
        assert answer.status_code == 200, answer.text
        prediction = answer.json()
        assert (prediction["model"], prediction["version"]) == ("mlops_assets.affairs", trained["version"])
        assert len(prediction["predictions"]) == len(body["records"])
        assert all(isinstance(p, bool) for p in prediction["predictions"])
    finally:
        os.killpg(server.pid, 15)
        server.wait(timeout=60)
        log.close()
    assert hashlib.sha256(spec_path.read_bytes()).hexdigest() == spec_bytes  # used exactly as drafted
