"""Test session: one temporary MLOPS_HOME for the whole run, and the platform materialized into it once.

The environment is set before anything imports bentoml or mlflow, because both read their homes
from the environment once per process.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

_SESSION_HOME = Path(tempfile.mkdtemp(prefix="mlops-test-"))
os.environ["MLOPS_HOME"] = str(_SESSION_HOME)
os.environ["DAGSTER_HOME"] = str(_SESSION_HOME / "dagster")
os.environ["BENTOML_HOME"] = str(_SESSION_HOME / "bentoml")
os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{_SESSION_HOME / 'mlflow' / 'mlflow.db'}"
os.environ["BENTOML_DO_NOT_TRACK"] = "True"
os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
# One OpenMP thread per process: on a busy 2-core machine, HistGradientBoosting's OpenMP threads spin
# against each other and a 1-second fit takes 15 (measured); test data is small, one thread is plenty.
os.environ.setdefault("OMP_NUM_THREADS", "1")
(_SESSION_HOME / "dagster").mkdir(parents=True, exist_ok=True)

# Small but real: enough rows for a fraud model to learn and for drift to show.
DEMO_DAYS, DEMO_DRIFT_DAYS, DEMO_ROWS_PER_DAY = 4, 1, 4000


def pytest_sessionfinish(session, exitstatus):
    shutil.rmtree(_SESSION_HOME, ignore_errors=True)


@pytest.fixture(scope="session")
def home():
    from mlops_assets.home import MlopsHome

    return MlopsHome(_SESSION_HOME).ensure()


@pytest.fixture(scope="session")
def specs():
    from mlops_assets.datasets.spec import load_specs

    return load_specs()


@pytest.fixture(scope="session")
def instance(home):
    import dagster as dg

    return dg.DagsterInstance.get()


@pytest.fixture(scope="session")
def defs(home, specs):
    from mlops_assets.definitions import build_definitions

    return build_definitions(home, specs)


@pytest.fixture(scope="session")
def platform(defs, instance, home, specs):
    """The whole graph of both datasets, materialized once through the real jobs (the demo story)."""
    from mlops_assets.cli.runner import Runner, run_demo

    runner = Runner(defs, instance, home)
    run_demo(runner, specs, days=DEMO_DAYS, drift_days=DEMO_DRIFT_DAYS, rows_per_day=DEMO_ROWS_PER_DAY)
    return runner


@pytest.fixture()
def warehouse(home):
    from mlops_assets.definitions import local_resources

    return local_resources(home)["warehouse"]


@pytest.fixture(scope="session")
def tracking(home):
    from mlops_assets.resources import MlflowTracking

    return MlflowTracking(tracking_uri=home.tracking_uri, artifact_root=str(home.artifact_root))


@pytest.fixture(scope="session")
def corpus(tmp_path_factory) -> dict[str, Path]:
    """The awkward-CSV corpus, written once per session."""
    from mlops_assets_tests.csv_corpus import build_corpus

    return build_corpus(tmp_path_factory.mktemp("csv_corpus"))


@pytest.fixture(scope="session")
def wine_dir() -> Path:
    """The UCI wine files exactly as distributed (shipped in the repo)."""
    from mlops_assets.home import SHIPPED_DATA_DIR

    return SHIPPED_DATA_DIR / "wine_quality"


def pytest_collection_modifyitems(config, items):
    """Tests that use the whole-graph demo are slow by nature: `make test-fast` leaves them out."""
    for item in items:
        if "platform" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.slow)


@pytest.fixture()
def fresh_home(tmp_path):
    """A temporary MLOPS_HOME of its own, for tests that must not share state with the session demo."""
    from mlops_assets.home import MlopsHome

    return MlopsHome(tmp_path / "home").ensure()


@pytest.fixture()
def fresh_resources(fresh_home):
    """The local profile's resources pointed at `fresh_home`."""
    from mlops_assets.definitions import local_resources

    return local_resources(fresh_home)
