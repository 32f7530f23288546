"""The prediction log without a server: the service's own writer (bento/service.py) and the monitoring reader."""

from __future__ import annotations

import datetime as dt
import importlib.util
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from mlops_assets.monitoring.prediction_log import labeled_predictions, log_files, read_log, served_inputs

REPO = Path(__file__).resolve().parents[1]
SERVICE = REPO / "bento" / "service.py"


def _service():
    """bento/service.py as a module (it is not a package: the Bento carries it alone)."""
    spec = importlib.util.spec_from_file_location("mlops_bento_service", SERVICE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _schema():
    import pyarrow as pa

    return pa.schema([pa.field("request_id", pa.string()), pa.field("row", pa.int32()),
                      pa.field("ts", pa.timestamp("us", tz="UTC")), pa.field("endpoint", pa.string()),
                      pa.field("model_version", pa.string()), pa.field("amount", pa.float64()),
                      pa.field("prediction", pa.bool_()), pa.field("probability", pa.float64())])


def _rows(n: int, *, request: str, at: dt.datetime, version: str = "1") -> dict:
    """Columns as the service hands them to its log: arrays, or one value for every row."""
    import numpy as np

    return {"request_id": request, "row": np.arange(n, dtype=np.int32),
            "ts": np.datetime64(at.astimezone(dt.UTC).replace(tzinfo=None), "us"), "endpoint": "predict",
            "model_version": version, "amount": np.arange(n, dtype=float), "prediction": np.arange(n) % 2 == 0,
            "probability": np.full(n, 0.5)}


WRITER = """
import datetime as dt, importlib.util, sys
spec = importlib.util.spec_from_file_location("svc", sys.argv[1]); svc = importlib.util.module_from_spec(spec)
spec.loader.exec_module(svc)
sys.path.insert(0, sys.argv[3])
from mlops_assets_tests.test_prediction_log import _rows, _schema
log = svc.ArrowLog(__import__("pathlib").Path(sys.argv[2]), _schema(), flush_seconds=0.05)
for i in range(40):
    log.append(_rows(25, request=f"{sys.argv[4]}-{i}", at=dt.datetime.now(dt.UTC)), 25)
log.close()
"""


@pytest.mark.slow  # starts two writer processes
def test_two_worker_processes_append_to_their_own_files_and_nothing_is_lost(tmp_path):
    folder = tmp_path / "predictions" / "transactions"
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(SERVICE), str(folder), str(REPO), f"w{n}"])
             for n in range(2)]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    files = log_files(folder)
    assert len(files) == 2 and len({f.name.split("-")[-2] for f in files}) == 2  # one file per process (pid)
    logged = read_log(folder)
    assert len(logged) == 2 * 40 * 25
    assert logged.groupby("request_id").size().eq(25).all() and logged["request_id"].nunique() == 80


def test_a_batch_still_being_written_is_not_read_yet(tmp_path):
    svc = _service()
    folder = tmp_path / "log"
    log = svc.ArrowLog(folder, _schema(), flush_seconds=0.05)
    log.append(_rows(10, request="a", at=dt.datetime.now(dt.UTC)), 10)
    log.close()
    path = log_files(folder)[0]
    complete = path.read_bytes()
    path.write_bytes(complete[:-8])  # drop the end-of-stream marker, as in a file still open
    assert len(read_log(folder)) == 10
    path.write_bytes(complete[:-8] + complete[8:200])  # and a half-written batch after it
    assert len(read_log(folder)) == 10


def test_rows_that_cannot_be_written_are_counted_as_dropped_and_the_writer_goes_on(tmp_path):
    svc = _service()
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the log folder should be")
    dropped = []
    log = svc.ArrowLog(blocked / "transactions", _schema(), flush_seconds=0.05, on_drop=dropped.append)
    log.append(_rows(3, request="a", at=dt.datetime.now(dt.UTC)), 3)
    time.sleep(0.5)
    log.append(_rows(4, request="b", at=dt.datetime.now(dt.UTC)), 4)
    log.close()
    assert sum(dropped) == 7  # the second batch came after the first failure: the writer went on


def test_the_drift_window_is_the_last_hour_of_served_rows(tmp_path, specs):
    svc = _service()
    now = dt.datetime.now(dt.UTC)
    folder = tmp_path / "log"
    log = svc.ArrowLog(folder, _schema(), flush_seconds=0.05)
    log.append(_rows(7, request="old", at=now - dt.timedelta(hours=3)), 7)
    log.append(_rows(5, request="new", at=now - dt.timedelta(minutes=10), version="2"), 5)
    log.close()
    spec = specs["transactions"]
    with pytest.raises(ValueError, match="merchant_category"):  # this log lacks the spec's other features
        served_inputs(folder, spec, hours=1, now=now)
    window = read_log(folder, since=now - dt.timedelta(hours=1), until=now)
    assert list(window["request_id"].unique()) == ["new"] and len(window) == 5
    assert len(read_log(folder)) == 12


def test_feedback_joins_its_prediction_and_the_latest_label_wins():
    now = pd.Timestamp.now(tz="UTC")
    served = pd.DataFrame({"request_id": ["a", "a", "b"], "row": [0, 1, 0], "ts": [now] * 3, "prediction": [1.0, 2.0, 3.0]})
    labels = pd.DataFrame({"request_id": ["a", "a", "zzz"], "row": [1, 1, 0], "ts": [now, now + pd.Timedelta(1, "s"), now],
                           "label": [5.0, 6.0, 1.0]})
    joined = labeled_predictions(served, labels)
    assert joined[["request_id", "row", "prediction", "label"]].values.tolist() == [["a", 1, 2.0, 6.0]]


def test_model_calls_run_with_native_threads_capped():
    import sklearn.ensemble  # noqa: F401 - loads scikit-learn's OpenMP runtime
    from threadpoolctl import threadpool_info

    svc = _service()
    executor = svc.model_thread("model", 1)
    pools = executor.submit(threadpool_info).result()
    executor.shutdown()
    openmp = [p for p in pools if p["user_api"] == "openmp"]
    assert openmp and all(p["num_threads"] == 1 for p in openmp)


@pytest.mark.parametrize(
    ("recorded", "store", "expected"),
    [
        ("bentoml", "{tmp}/home/bentoml", "{tmp}/home"),  # the usual layout: the store inside the home
        ("stores/bento", "{tmp}/home/stores/bento", "{tmp}/home"),
        ("/elsewhere/bentoml", "{tmp}/srv/bentoml", "{tmp}/srv"),  # built with a store outside the home
        ("bentoml", "{tmp}/moved-store", "{tmp}"),  # store renamed since the build
    ],
)
def test_a_bento_served_by_tag_finds_where_to_log_without_mlops_home(tmp_path, monkeypatch, recorded, store, expected):
    """Served with only BENTOML_HOME set, the service picks a home for its prediction log; never a crash."""
    monkeypatch.delenv("MLOPS_HOME", raising=False)
    monkeypatch.setenv("BENTOML_HOME", store.format(tmp=tmp_path))
    contract = {"layout": {"bentoml_home": recorded, "predictions": "predictions/x", "feedback": "feedback/x"}}
    home, layout = _service().serving_home(contract)
    assert home == Path(expected.format(tmp=tmp_path)).resolve()
    assert layout == contract["layout"]
