"""The warehouse as a DuckLake: colliding commits are retried and then refused clearly, reads are one snapshot,
and both profiles give asset code the same resources."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Iterator

import pytest

from mlops_assets.home import MlopsHome
from mlops_assets.resources import FileStorage, LocalWarehouse, MlflowTracking, Warehouse
from mlops_assets.resources.warehouse import WarehouseBusy
from mlops_assets.tables import commit_attempts, snapshot_id, transaction


@pytest.fixture()
def lake(tmp_path) -> LocalWarehouse:
    warehouse = LocalWarehouse(catalog_path=str(tmp_path / "lake" / "catalog.sqlite"),
                               data_path=str(tmp_path / "lake" / "data"))
    with warehouse.connect() as con:
        con.execute("CREATE SCHEMA ds")
        con.execute("CREATE TABLE ds.t (_partition VARCHAR, x BIGINT)")
    return warehouse


@contextlib.contextmanager
def _catalog_held(path: str, seconds: float) -> Iterator[None]:
    """Another process holding the SQLite catalog's write lock for `seconds` (locks between two SQLite
    libraries in one process do not exclude each other, so it has to be another process)."""
    code = ("import sqlite3, sys, time; db = sqlite3.connect(sys.argv[1], timeout=0, isolation_level=None); "
            "db.execute('BEGIN EXCLUSIVE'); print('held', flush=True); time.sleep(float(sys.argv[2])); "
            "db.execute('ROLLBACK')")
    holder = subprocess.Popen([sys.executable, "-c", code, path, str(seconds)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        yield
    finally:
        holder.wait(timeout=60)


def _write(con, rows: int, timeout: float) -> int:
    tries = 0
    for attempt in commit_attempts(con, "ds.t [p1]", timeout=timeout):
        tries += 1
        with attempt, transaction(con):
            con.execute("DELETE FROM ds.t WHERE _partition = 'p1'")
            con.execute(f"INSERT INTO ds.t SELECT 'p1', range FROM range({rows})")
    return tries


@pytest.mark.slow  # waits out real commit collisions between writers
def test_a_commit_that_meets_another_writer_is_retried_until_it_lands(lake):
    with _catalog_held(lake.catalog_path, 2.0), lake.connect() as con:
        tries = _write(con, 1000, timeout=120)
    assert tries > 1  # it did collide, and was done again
    with lake.connect(read_only=True) as con:
        assert con.execute("SELECT count(*), count(DISTINCT x) FROM ds.t").fetchone() == (1000, 1000)


@pytest.mark.slow  # waits out real commit collisions between writers
def test_a_commit_that_keeps_colliding_is_refused_with_what_to_do(lake):
    with _catalog_held(lake.catalog_path, 6.0), lake.connect() as con, pytest.raises(WarehouseBusy) as refused:
        _write(con, 10, timeout=1.0)
    message = str(refused.value)
    assert message.startswith("ds.t [p1]: the commit collided with other writers")
    assert "database is locked" in message and "nothing was written" in message and "Re-run" in message
    with lake.connect(read_only=True) as con:
        assert con.execute("SELECT count(*) FROM ds.t").fetchone()[0] == 0


def test_a_read_only_connection_reads_one_snapshot_while_others_commit(lake):
    with lake.connect() as writer:
        writer.execute("INSERT INTO ds.t VALUES ('p0', 1)")
    with lake.connect(read_only=True) as reader:
        before = snapshot_id(reader)
        assert reader.execute("SELECT count(*) FROM ds.t").fetchone()[0] == 1
        with lake.connect() as writer:
            writer.execute("INSERT INTO ds.t VALUES ('p0', 2)")
            after = snapshot_id(writer)
        assert after > before
        assert snapshot_id(reader) == before
        assert reader.execute("SELECT count(*) FROM ds.t").fetchone()[0] == 1
    with lake.connect(read_only=True) as reader:
        assert reader.execute("SELECT count(*) FROM ds.t").fetchone()[0] == 2
        assert reader.execute(f"SELECT count(*) FROM ds.t AT (VERSION => {before})").fetchone()[0] == 1


def test_reading_a_warehouse_that_was_never_written_says_what_to_do(tmp_path):
    missing = LocalWarehouse(catalog_path=str(tmp_path / "none" / "catalog.sqlite"), data_path=str(tmp_path / "d"))
    with pytest.raises(FileNotFoundError, match="materialize a `raw` asset first"), missing.connect(read_only=True):
        pass


def test_both_profiles_give_asset_code_the_same_resources(tmp_path):
    from mlops_assets.definitions import PROFILES

    home = MlopsHome(tmp_path)
    local, aws = PROFILES["local"](home), PROFILES["aws"](home)
    assert set(local) == set(aws)
    for name, base in (("warehouse", Warehouse), ("storage", FileStorage), ("tracking", MlflowTracking)):
        assert isinstance(local[name], base) and isinstance(aws[name], base)
        assert type(local[name]) is not type(aws[name])
