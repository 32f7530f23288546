"""Progress lines of long CLI work: counts, rates and time left, read from real runs."""

from __future__ import annotations

import io
import time
import uuid

import dagster as dg
import pytest

from mlops_assets.progress import Progress, RunProgress


def test_progress_lines_count_rate_and_time_left_and_always_end_with_the_last_unit():
    out = io.StringIO()
    progress = Progress("generate transactions", 4, "days", every=0.0, stream=out)
    for _ in range(4):
        time.sleep(0.02)
        progress.advance(rows=1000)
    lines = out.getvalue().splitlines()
    assert len(lines) == 4
    assert lines[1].startswith("generate transactions: 2/4 days (50%), 2,000 rows, ")
    assert "rows/s" in lines[1] and "left" in lines[1]
    assert lines[-1].startswith("generate transactions: 4/4 days (100%), 4,000 rows") and "done in" in lines[-1]


def test_progress_is_throttled_but_never_drops_the_final_line():
    out = io.StringIO()
    progress = Progress("ingest", 500, "files", every=3600, stream=out)
    for _ in range(500):
        progress.advance()
    lines = out.getvalue().splitlines()
    assert len(lines) == 2 and lines[0].startswith("ingest: 1/500 files") and lines[1].startswith("ingest: 500/500 files")


@pytest.mark.slow  # waits for a heartbeat of a real run
def test_a_followed_run_reports_each_step_with_its_rows_and_a_heartbeat_while_one_runs_long():
    @dg.asset
    def loaded() -> dg.MaterializeResult:
        return dg.MaterializeResult(metadata={"rows_read": 12_345, "size_bytes": 3 * 2**20})

    @dg.asset(deps=[loaded])
    def slow() -> None:
        time.sleep(1.5)

    @dg.asset(deps=[slow])
    def broken() -> None:
        raise ValueError("bad row")

    defs = dg.Definitions(assets=[loaded, slow, broken], jobs=[dg.define_asset_job("all_three")])
    out = io.StringIO()
    run_id = str(uuid.uuid4())
    with dg.instance_for_test() as instance, RunProgress(instance, run_id, "demo job", poll=0.2, heartbeat=0.5,
                                                          stream=out):
        result = defs.resolve_job_def("all_three").execute_in_process(instance=instance, run_id=run_id,
                                                                      raise_on_error=False)
    assert not result.success
    lines = out.getvalue().splitlines()
    assert all(line.startswith("demo job: ") for line in lines)
    done = next(line for line in lines if "loaded done" in line)
    assert "12,345 rows" in done and "rows/s" in done and "3.0 MiB" in done
    assert any("running slow for" in line for line in lines)  # a heartbeat while the slow step runs
    assert any("broken FAILED" in line for line in lines)
    assert lines[-1].startswith("demo job: finished in")
