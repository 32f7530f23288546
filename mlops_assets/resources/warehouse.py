"""The warehouse: a DuckLake (Parquet data files + a catalog database), with the same SQL in every profile.

Local: the catalog is a SQLite file under MLOPS_HOME and the data a folder beside it. Cloud: the
catalog is PostgreSQL and the data lives in S3. Many processes, on one machine or many, read and
write at once: a transaction reads one snapshot and writes a new one at COMMIT; commits that
collide are retried by `tables.commit_attempts`. Every connection sees the lake as its default
catalog, so asset code writes `"<dataset>"."<table>"` whatever the profile.

The DuckDB extensions come from PyPI packages (`duckdb-ext-*`, DuckDB 1.4 LTS) and are loaded from
their folder, never downloaded. DuckDB checks each extension's signature on LOAD (~1.5 s each on
these machines), so one DuckDB database per warehouse is kept per process and connections are its
cursors; each cursor has its own transactions and temp tables.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import dagster as dg
import duckdb
from dagster_aws.s3 import S3Resource

from mlops_assets.tables import COMMIT_TIMEOUT_VARIABLE, WarehouseBusy

__all__ = ["CloudWarehouse", "LocalWarehouse", "Warehouse", "WarehouseBusy"]

log = logging.getLogger(__name__)

LAKE = "lake"
"""The catalog name the lake is attached under (every connection's default catalog)."""


LAKE_METADATA_SCHEMA = "mlops_lake"
"""The PostgreSQL schema holding the lake's catalog tables (ducklake_*)."""


def extension_directory() -> Path:
    """Where the `duckdb-ext-*` packages put their binaries (site-packages/duckdb_ext/extensions)."""
    return Path(duckdb.__file__).resolve().parents[1] / "duckdb_ext" / "extensions"


def _literal(text: str) -> str:
    return "'" + str(text).replace("'", "''") + "'"


# One DuckDB database per warehouse configuration and process (see the module docstring). Keyed by pid
# too: a forked child must never use its parent's database.
_DATABASES: dict[tuple, duckdb.DuckDBPyConnection] = {}
_DATABASES_LOCK = threading.Lock()
_MAX_DATABASES = 4


class Warehouse(dg.ConfigurableResource, ABC):
    """A DuckLake; `connect()` yields a DuckDB connection whose default catalog is the lake.

    `connect(read_only=True)` reads one snapshot for the whole block (a model trains on exactly what
    its lineage names). Profiles differ only in where the catalog and the data live.
    """

    memory_limit: str | None = None
    threads: int | None = None
    temp_directory: str | None = None
    commit_timeout_seconds: float = 300.0

    # ----------------------------------------------------------------- what a profile provides

    @abstractmethod
    def extensions(self) -> tuple[str, ...]:
        """DuckDB extensions the catalog and data need, besides ducklake."""

    @abstractmethod
    def catalog_uri(self, *, redacted: bool = False) -> str:
        """The `ducklake:` metadata location (`redacted` hides secrets, for messages)."""

    @abstractmethod
    def data_uri(self) -> str:
        """Where the Parquet files go (a folder or an s3:// prefix), ending in '/'."""

    def prepare(self, con: duckdb.DuckDBPyConnection) -> None:
        """Before the first ATTACH in a process: secrets, catalog files."""

    def attach_options(self) -> str:
        """ATTACH options besides DATA_PATH."""
        return ""

    def describe(self) -> str:
        return f"DuckLake {self.catalog_uri(redacted=True)} (data {self.data_uri()})"

    def exists(self) -> bool:
        """Whether the lake has been created (True when that cannot be told without connecting)."""
        return True

    # ----------------------------------------------------------------- connections

    @contextlib.contextmanager
    def connect(self, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        if read_only and not self.exists():
            raise FileNotFoundError(f"warehouse {self.describe()} does not exist yet: materialize a `raw` asset first")
        con = self._database().cursor()
        try:
            con.execute(f"USE {LAKE}")
            con.execute(f"SET VARIABLE {COMMIT_TIMEOUT_VARIABLE} = {float(self.commit_timeout_seconds)}")
            if read_only:
                con.execute("BEGIN TRANSACTION")
            yield con
        finally:
            if read_only:
                with contextlib.suppress(duckdb.Error):
                    con.execute("ROLLBACK")
            con.close()

    def _cache_key(self) -> tuple:
        return (os.getpid(), type(self).__name__, self.catalog_uri(), self.data_uri(), self.memory_limit,
                self.threads, self.temp_directory)

    def _database(self) -> duckdb.DuckDBPyConnection:
        key = self._cache_key()
        with _DATABASES_LOCK:
            database = _DATABASES.get(key)
            if database is None:
                for stale in [k for k in _DATABASES if k[0] != os.getpid()]:
                    _DATABASES.pop(stale)  # inherited through fork: never touch, never close
                database = self._open()
                if len(_DATABASES) >= _MAX_DATABASES:
                    _DATABASES.pop(next(iter(_DATABASES))).close()
                _DATABASES[key] = database
            return database

    def _open(self) -> duckdb.DuckDBPyConnection:
        config: dict[str, Any] = {
            "extension_directory": str(extension_directory()),
            "autoinstall_known_extensions": False,
            "autoload_known_extensions": False,
        }
        if self.memory_limit:
            config["memory_limit"] = self.memory_limit
        if self.threads:
            config["threads"] = self.threads
        if self.temp_directory:
            Path(self.temp_directory).mkdir(parents=True, exist_ok=True)
            config["temp_directory"] = self.temp_directory
        database = duckdb.connect(config=config)
        try:
            database.execute("SET enable_progress_bar = false")
            for extension in ("ducklake", *self.extensions()):
                try:
                    database.execute(f"LOAD {extension}")
                except duckdb.Error as exc:
                    raise RuntimeError(
                        f"DuckDB extension {extension!r} did not load from {extension_directory()}: install the "
                        f"duckdb-ext-{extension.split('_')[0]} package matching duckdb {duckdb.__version__} "
                        f"(pip install -c constraints.txt -e .) ({str(exc).splitlines()[0]})"
                    ) from None
            self.prepare(database)
            self._attach(database)
        except BaseException:
            database.close()
            raise
        return database

    def _attach(self, database: duckdb.DuckDBPyConnection) -> None:
        """ATTACH the lake; a brand-new catalog is initialized by whoever attaches first, and a process that
        races it (many runs start at once on a new deployment) tries again."""
        import random
        import time

        sql = f"ATTACH {_literal(self.catalog_uri())} AS {LAKE} (DATA_PATH {_literal(self.data_uri())}{self.attach_options()})"
        for attempt in range(6):
            try:
                database.execute(sql)
                return
            except duckdb.Error as exc:
                message = " ".join(str(exc).replace(self.catalog_uri(), self.catalog_uri(redacted=True)).split())
                if attempt < 5 and any(m in message for m in ("already exists", "duplicate key", "locked", "onflict")):
                    time.sleep(0.2 * (attempt + 1) + random.random() * 0.2)
                    continue
                raise RuntimeError(f"could not open the warehouse {self.describe()}: {message[:500]}") from None


class LocalWarehouse(Warehouse):
    """Catalog in a SQLite file (WAL mode, so readers never block a writer's commit), data in a local folder."""

    catalog_path: str
    data_path: str

    def extensions(self) -> tuple[str, ...]:
        return ("sqlite",)

    def catalog_uri(self, *, redacted: bool = False) -> str:
        return f"ducklake:sqlite:{Path(self.catalog_path).resolve()}"

    def data_uri(self) -> str:
        return str(Path(self.data_path).resolve()) + "/"

    def exists(self) -> bool:
        return Path(self.catalog_path).exists()

    def attach_options(self) -> str:
        # The data folder belongs to this home: a home moved or copied elsewhere keeps working (the catalog
        # stores file paths relative to it).
        return ", OVERRIDE_DATA_PATH TRUE"

    def describe(self) -> str:
        return f"{self.catalog_path} (DuckLake catalog; data in {self.data_path})"

    def prepare(self, con: duckdb.DuckDBPyConnection) -> None:
        """Create the catalog file in WAL mode before DuckLake first opens it (under a lock: many may start at once)."""
        import sqlite3

        catalog = Path(self.catalog_path)
        catalog.parent.mkdir(parents=True, exist_ok=True)
        Path(self.data_path).mkdir(parents=True, exist_ok=True)
        with open(catalog.with_name(catalog.name + ".init-lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            db = sqlite3.connect(catalog)
            try:
                if db.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                    db.execute("PRAGMA journal_mode=WAL")
            finally:
                db.close()
            # DuckLake writes its metadata tables on first ATTACH: do that under the lock too.
            con.execute(f"ATTACH {_literal(self.catalog_uri())} AS _init "
                        f"(DATA_PATH {_literal(self.data_uri())}{self.attach_options()})")
            con.execute("DETACH _init")


class CloudWarehouse(Warehouse):
    """Catalog in PostgreSQL, data in S3 (credentials from the same chain boto3 uses: env, profile, task role)."""

    pg_host: str
    pg_port: int = 5432
    pg_db: str
    pg_user: str
    pg_password: str
    data_path: str
    s3: S3Resource

    def extensions(self) -> tuple[str, ...]:
        return ("postgres", "httpfs")

    def catalog_uri(self, *, redacted: bool = False) -> str:
        password = "***" if redacted else self.pg_password
        return (f"ducklake:postgres:dbname={self.pg_db} host={self.pg_host} port={self.pg_port} "
                f"user={self.pg_user} password={password}")

    def data_uri(self) -> str:
        return self.data_path.rstrip("/") + "/"

    def attach_options(self) -> str:
        # Its own schema: the database may also hold Dagster's instance tables.
        return f", METADATA_SCHEMA {_literal(LAKE_METADATA_SCHEMA)}"

    def prepare(self, con: duckdb.DuckDBPyConnection) -> None:
        """An S3 secret for DuckDB from boto3's credential chain (DuckDB's own chain needs the `aws`
        extension, which is not shipped on PyPI)."""
        import boto3

        session = boto3.session.Session(
            profile_name=self.s3.profile_name, region_name=self.s3.region_name,
            aws_access_key_id=self.s3.aws_access_key_id, aws_secret_access_key=self.s3.aws_secret_access_key,
            aws_session_token=self.s3.aws_session_token,
        )
        credentials = session.get_credentials()
        if credentials is None:
            raise RuntimeError(f"no AWS credentials found for the warehouse data at {self.data_path}: set them in "
                               "the environment, an AWS profile or the task role")
        frozen = credentials.get_frozen_credentials()
        options = {"TYPE": "s3", "KEY_ID": frozen.access_key, "SECRET": frozen.secret_key,
                   "REGION": session.region_name or "us-east-1"}
        if frozen.token:
            options["SESSION_TOKEN"] = frozen.token
        endpoint = self.s3.endpoint_url
        if endpoint:
            parsed = urlparse(endpoint if "://" in endpoint else f"https://{endpoint}")
            options.update(ENDPOINT=parsed.netloc, URL_STYLE="path", USE_SSL=str(parsed.scheme == "https").lower())
        body = ", ".join(f"{k} {v if k in ('TYPE', 'USE_SSL') else _literal(v)}" for k, v in options.items())
        con.execute(f"CREATE OR REPLACE SECRET mlops_lake_s3 ({body})")
