"""The DuckDB warehouse: one file, one schema per dataset.

DuckDB lets one process write a file at a time. Dagster runs steps and backfill partitions in
separate processes, so opening waits (with backoff) for the lock instead of failing the run.
"""

from __future__ import annotations

import contextlib
import logging
import random
import time
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import duckdb

log = logging.getLogger(__name__)


class WarehouseBusy(RuntimeError):
    """Another process held the warehouse for longer than we were willing to wait."""


class Warehouse(dg.ConfigurableResource):
    """A DuckDB database file; `connect()` yields a connection, waiting for other writers."""

    path: str
    lock_timeout_seconds: float = 300.0
    memory_limit: str | None = None
    threads: int | None = None

    @contextlib.contextmanager
    def connect(self, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        config: dict[str, str | int] = {}
        if self.memory_limit:
            config["memory_limit"] = self.memory_limit
        if self.threads:
            config["threads"] = self.threads
        if read_only and not Path(self.path).exists():
            raise FileNotFoundError(f"warehouse {self.path} does not exist yet: materialize a `raw` asset first")
        deadline = time.monotonic() + self.lock_timeout_seconds
        delay = 0.05
        while True:
            try:
                con = duckdb.connect(self.path, read_only=read_only, config=config)
                break
            except duckdb.IOException as exc:
                if "lock" not in str(exc).lower():
                    raise
                if time.monotonic() > deadline:
                    raise WarehouseBusy(
                        f"warehouse {self.path} is held by another process (a run writing) for over "
                        f"{self.lock_timeout_seconds:g}s; try again when it finishes"
                    ) from None
                log.info("warehouse %s is locked by another process; retrying in %.2fs", self.path, delay)
                time.sleep(delay + random.random() * delay)
                delay = min(delay * 2, 2.0)
        try:
            yield con
        finally:
            con.close()
