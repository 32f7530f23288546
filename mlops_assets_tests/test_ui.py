"""The Dagster UI, clicked in a real browser: lineage, Materialize all, a backfill, the model and drift pages.

`dagster dev` runs on a loopback port against its own MLOPS_HOME; Debian's chromium is driven by
playwright (no browser download). Screenshots go to $MLOPS_SCREENSHOTS (default: a temporary folder);
`make screenshots` writes them to docs/screenshots/ for the README tour.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import pytest

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
TX_DAYS = 3
TX_ROWS = 2000

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (make system-deps installs it)"),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_http(url: str, proc: subprocess.Popen, log: Path, seconds: float = 180) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"server exited: {log.read_text()[-3000:]}")
        try:
            if httpx.get(url, timeout=3).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(1)
    pytest.fail(f"{url} not ready in {seconds:.0f} s: {log.read_text()[-3000:]}")


class Ui:
    """One `dagster dev` and one browser; `graphql()` asks the webserver what the page should show."""

    def __init__(self, url: str, home, browser, shots: Path) -> None:
        self.url, self.home, self.browser, self.shots = url, home, browser, shots

    def page(self):
        page = self.browser.new_page(viewport={"width": 1440, "height": 900})
        page.set_default_timeout(60_000)
        return page

    def shot(self, page, name: str) -> Path:
        path = self.shots / f"{name}.png"
        page.screenshot(path=str(path))
        return path

    def graphql(self, query: str, variables: dict | None = None) -> dict:
        response = httpx.post(f"{self.url}/graphql", json={"query": query, "variables": variables or {}}, timeout=60)
        response.raise_for_status()
        body = response.json()
        assert "errors" not in body, body
        return body["data"]

    def backfills(self) -> list[dict]:
        data = self.graphql("""{ partitionBackfillsOrError { ... on PartitionBackfills {
            results { id status numPartitions assetSelection { path } } } } }""")
        return data["partitionBackfillsOrError"]["results"]

    def wait_backfill_done(self, known: set[str], seconds: float = 900) -> dict:
        """The one backfill not in `known`, once it finished (any terminal status)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            new = [b for b in self.backfills() if b["id"] not in known]
            if new and new[0]["status"] not in ("REQUESTED", "CANCELING", "FAILING"):
                return new[0]
            time.sleep(3)
        pytest.fail(f"backfill not finished in {seconds:.0f} s: {self.backfills()}")

    def failed_runs(self) -> list[dict]:
        data = self.graphql("""{ runsOrError(filter: {statuses: [FAILURE]}) { ... on Runs {
            results { runId jobName } } } }""")
        return data["runsOrError"]["results"]

    def latest_materialization(self, path: list[str]) -> dict | None:
        data = self.graphql(
            """query($key: AssetKeyInput!) { assetOrError(assetKey: $key) { ... on Asset {
                assetMaterializations(limit: 1) { runId partition
                  metadataEntries { label ... on UrlMetadataEntry { url } ... on FloatMetadataEntry { floatValue }
                                    ... on TextMetadataEntry { text } } } } } }""",
            {"key": {"path": path}},
        )
        found = data["assetOrError"].get("assetMaterializations") or []
        return found[0] if found else None


@pytest.fixture(scope="module")
def ui():
    from playwright.sync_api import sync_playwright

    from mlops_assets.cli.runner import land_shipped_file
    from mlops_assets.datasets.generator import generate_range
    from mlops_assets.datasets.spec import load_specs
    from mlops_assets.home import MlopsHome

    root = Path(tempfile.mkdtemp(prefix="mlops-ui-"))
    home = MlopsHome(root / "home").ensure()
    specs = load_specs()
    start = dt.date.fromisoformat(specs["transactions"].partitioning.start_date)
    generate_range(home, "transactions", start, TX_DAYS, TX_ROWS, seed=3)
    land_shipped_file(specs["wine_quality"], home, "winequality-red.csv")  # the landing sensor picks it up

    shots = Path(os.environ.get("MLOPS_SCREENSHOTS") or root / "screenshots")
    shots.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    env = {**os.environ, "MLOPS_HOME": str(home.root), "DAGSTER_HOME": str(home.dagster_home),
           "BENTOML_HOME": str(home.bentoml_home), "MLFLOW_TRACKING_URI": home.tracking_uri}
    log = root / "dagster-dev.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [str(Path(sys.executable).parent / "dagster"), "dev", "-w", "workspace.yaml", "-h", "127.0.0.1",
             "-p", str(port)],
            cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_http(f"{url}/server_info", proc, log)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            try:
                yield Ui(url, home, browser, shots)
            finally:
                browser.close()
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        shutil.rmtree(root / "home", ignore_errors=True)


def test_no_sign_up_dialog_stands_between_the_user_and_the_graph(ui):
    assert ui.graphql("{ shouldShowNux }")["shouldShowNux"] is False
    page = ui.page()
    page.goto(f"{ui.url}/asset-groups")
    page.get_by_role("button", name="Materialize all").wait_for()
    assert page.get_by_role("dialog").count() == 0
    ui.shot(page, "global-lineage")


@pytest.mark.parametrize("dataset", ["transactions", "wine_quality"])
def test_asset_graph_shows_each_datasets_lineage(ui, dataset):
    page = ui.page()
    page.goto(f"{ui.url}/locations/mlops_assets/asset-groups/{dataset}")
    for stage in ("raw", "cleaned", "features", "model", "drift_report", "bento"):
        page.get_by_text(stage, exact=True).first.wait_for()
    ui.shot(page, f"lineage-{dataset}")


def test_materialize_all_for_wine_by_clicking_completes(ui):
    page = ui.page()
    page.goto(f"{ui.url}/locations/mlops_assets/asset-groups/wine_quality")
    page.get_by_role("button", name="Materialize all").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_text(re.compile(r"Launch runs to materialize \d+ assets")).wait_for()
    # The red file lands as a partition through the landing sensor: wait until the dialog can select it.
    deadline = time.monotonic() + 240
    while "1 partition" not in dialog.inner_text():
        if time.monotonic() > deadline:
            pytest.fail(f"the landed red file never became a partition: {dialog.inner_text()}")
        dialog.get_by_role("button", name="Cancel").click()
        time.sleep(5)
        page.get_by_role("button", name="Materialize all").click()
        dialog.get_by_role("button", name="All", exact=True).click()
    dialog.get_by_role("button", name="All", exact=True).click()
    ui.shot(page, "materialize-all-dialog")
    # One partition selected: the UI offers a single run ("Launch 1 run") rather than a backfill.
    dialog.get_by_role("button", name=re.compile(r"^Launch")).click()
    stages = ("raw", "cleaned", "features", "model", "drift_report", "bento")
    deadline = time.monotonic() + 900
    while any(ui.latest_materialization(["wine_quality", s]) is None for s in stages):
        failed = ui.failed_runs()
        assert not failed, f"runs failed: {failed}"
        if time.monotonic() > deadline:
            pytest.fail("Materialize all did not complete in 900 s")
        time.sleep(5)


def test_backfill_of_three_transactions_days_from_the_ui_completes_and_is_listed(ui):
    known = {b["id"] for b in ui.backfills()}
    page = ui.page()
    page.goto(f"{ui.url}/assets/transactions/raw")
    page.get_by_text("Materialize…").first.click()  # the asset page's launch button (its icon is in its name)
    dialog = page.get_by_role("dialog")
    # With more than 90 days of partitions the dialog opens on the last 90, without the partition box:
    # "Show all partitions" brings it (its placeholder shows the range syntax).
    box = dialog.get_by_placeholder(re.compile(r"^ex: "))
    show_all = dialog.get_by_text("Show all partitions")
    box.or_(show_all).first.wait_for()
    if show_all.is_visible():
        show_all.click()
    box.wait_for()
    start = dt.date(2026, 1, 1)
    days = [start + dt.timedelta(days=i) for i in range(TX_DAYS)]
    box.fill(f"[{days[0]}...{days[-1]}]")
    box.press("Enter")
    dialog.get_by_text(f"{TX_DAYS} partitions").wait_for()
    ui.shot(page, "backfill-dialog")
    dialog.get_by_role("button", name="Launch backfill").click()
    backfill = ui.wait_backfill_done(known)
    assert backfill["status"] in ("COMPLETED", "COMPLETED_SUCCESS"), backfill
    assert backfill["numPartitions"] == TX_DAYS

    page.goto(f"{ui.url}/overview/backfills")
    page.get_by_text(backfill["id"]).first.wait_for()
    ui.shot(page, "backfills")
    for day in days:
        data = ui.graphql(
            """query($key: AssetKeyInput!, $p: [String!]) { assetOrError(assetKey: $key) { ... on Asset {
                assetMaterializations(partitions: $p, limit: 1) { partition
                  metadataEntries { label ... on IntMetadataEntry { intValue } } } } } }""",
            {"key": {"path": ["transactions", "raw"]}, "p": [day.isoformat()]},
        )
        (materialization,) = data["assetOrError"]["assetMaterializations"]
        assert materialization["partition"] == day.isoformat()


def test_model_page_shows_candidates_promotion_and_the_mlflow_link(ui):
    materialization = ui.latest_materialization(["wine_quality", "model"])
    assert materialization is not None, "run test_materialize_all_for_wine_by_clicking_completes first"
    link = next(e["url"] for e in materialization["metadataEntries"] if e["label"] == "mlflow_run")
    page = ui.page()
    page.goto(f"{ui.url}/assets/wine_quality/model")
    for label in ("candidates", "promotion", "mlflow_run"):
        page.get_by_text(label, exact=True).first.wait_for()
    assert page.locator(f'a[href="{link}"]').count() >= 1
    body = page.inner_text("body")
    assert "dummy" in body  # the baseline is in the candidates table
    ui.shot(page, "model")
    page.get_by_placeholder("Filter metadata keys").fill("candidates")
    page.get_by_text("dummy").first.wait_for()
    ui.shot(page, "model-candidates")


def test_drift_report_page_shows_its_check_and_links_the_report(ui):
    materialization = ui.latest_materialization(["wine_quality", "drift_report"])
    assert materialization is not None
    report = next(e["url"] for e in materialization["metadataEntries"] if e["label"] == "report_url")
    page = ui.page()
    page.goto(f"{ui.url}/assets/wine_quality/drift_report")
    page.get_by_text("drift_share").first.wait_for()
    assert page.locator(f'a[href="{report}"]').count() >= 1
    ui.shot(page, "drift-report")
    page.goto(f"{ui.url}/assets/wine_quality/drift_report?view=checks")
    page.get_by_text("drift_within_limits").first.wait_for()
    ui.shot(page, "drift-report-checks")


def test_mlflow_ui_shows_the_runs_of_a_model_materialization_and_the_champion(ui):
    """`make mlflow-ui` on the same store: the experiment, the parent and child runs tagged with the Dagster
    run id, and the registered model with its `champion` alias."""
    materialization = ui.latest_materialization(["wine_quality", "model"])
    assert materialization is not None, "run test_materialize_all_for_wine_by_clicking_completes first"
    port = _free_port()
    log = ui.home.root.parent / "mlflow-ui.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [str(Path(sys.executable).parent / "mlflow"), "ui", "--backend-store-uri", ui.home.tracking_uri,
             "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
            env={**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"}, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_http(f"{url}/health", proc, log)
        page = ui.page()
        page.goto(f"{url}/#/models/mlops_assets.wine_quality")
        page.get_by_text("champion").first.wait_for()
        ui.shot(page, "mlflow-registry")
        run_id = materialization["runId"]
        runs = httpx.post(f"{url}/api/2.0/mlflow/runs/search", json={
            "experiment_ids": [_experiment_id(url, "mlops_assets/wine_quality")],
            "filter": f"tags.dagster_run_id = '{run_id}'"}, timeout=30).json()["runs"]
        tags = [{t["key"]: t["value"] for t in r["data"].get("tags", [])} for r in runs]
        training = [t for t in tags if t.get("mlops.kind") != "drift_report"]  # the same Dagster run reported drift
        parents = [t for t in training if "mlflow.parentRunId" not in t]
        assert len(parents) == 1 and len(training) > 1  # one parent run, its candidates as child runs
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=60)


def _experiment_id(url: str, name: str) -> str:
    found = httpx.get(f"{url}/api/2.0/mlflow/experiments/get-by-name", params={"experiment_name": name}, timeout=30)
    return found.json()["experiment"]["experiment_id"]
