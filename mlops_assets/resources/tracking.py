"""MLflow tracking + registry as a typed resource.

We use our own ConfigurableResource rather than dagster-mlflow's legacy `mlflow_tracking`: its
run_config overrides are ignored once configured and it can end the MLflow run early with parallel
branches. One MLflow run per model materialization, tagged with the Dagster run id, is simpler.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import random
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import dagster as dg

if TYPE_CHECKING:
    from mlflow import MlflowClient

log = logging.getLogger(__name__)

# (process, tracking URI) pairs whose store answered once: its tables exist from then on.
_STORES_READY: set[tuple[int, str]] = set()
# What MLflow's first contact with a fresh store raises when another process creates the tables at the
# same moment (its migrations are not safe to run concurrently).
_CREATION_RACE = ("already exists", "duplicate key", "UniqueViolation", "database is locked", "alembic_version")


class PromotionLockError(RuntimeError):
    """The champion lock could not be taken (held too long by another process, or its store unreachable)."""


class MlflowTracking(dg.ConfigurableResource):
    """Tracking URI (SQLite locally, Postgres in the cloud) and where experiment artifacts go."""

    tracking_uri: str
    artifact_root: str
    ui_url: str = "http://127.0.0.1:5000"
    lock_timeout_seconds: float = 300.0

    @contextlib.contextmanager
    def promotion_lock(self, registered_model: str) -> Iterator[None]:
        """Exclusive lock held by every writer of `registered_model`'s `champion` alias (see training/promotion.py).

        It belongs to the tracking store, so every process writing to the same store shares it, however
        its resource was built: an `flock` on a file beside a SQLite store (one machine), a session-level
        advisory lock in a PostgreSQL store (every host that reaches the database: ECS tasks, workers).
        Both are released when the holder's process (or database session) dies, so a crash leaves none.
        Raises PromotionLockError after `lock_timeout_seconds`.
        """
        scheme = self.tracking_uri.split(":", 1)[0].split("+", 1)[0].lower()
        if scheme == "sqlite":
            store = Path(self.tracking_uri.removeprefix("sqlite:///"))
            with _file_lock(store.parent / "locks" / f"{registered_model}.champion.lock", self.lock_timeout_seconds):
                yield
        elif scheme in ("postgresql", "postgres"):
            with _advisory_lock(self.tracking_uri, registered_model, self.lock_timeout_seconds):
                yield
        else:
            raise PromotionLockError(
                f"no lock shared by every writer of tracking store {scheme}://...: champion aliases can only be "
                "moved safely with a SQLite (one machine) or PostgreSQL tracking URI"
            )

    def artifact_location(self) -> str:
        """Where new experiments keep their artifacts (models, references, lineage)."""
        return self.artifact_root

    def run_url(self, experiment_id: str, run_id: str) -> str:
        """Link to a run in the MLflow UI (shown on the asset's metadata)."""
        return f"{self.ui_url.rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}"

    def has_store(self) -> bool:
        """False while a local SQLite store does not exist yet: nothing has been tracked, so there is no
        champion, and a reader must not create the store (concurrent creations race in MLflow's migrations)."""
        prefix = "sqlite:///"
        return not self.tracking_uri.startswith(prefix) or Path(self.tracking_uri[len(prefix):]).exists()

    def setup(self) -> None:
        """Point the mlflow module at our store (it keeps the URI in process-global state)."""
        import mlflow

        mlflow.set_tracking_uri(self.tracking_uri)
        mlflow.set_registry_uri(self.tracking_uri)

    def client(self) -> MlflowClient:
        from mlflow import MlflowClient

        self.setup()
        key = (os.getpid(), self.tracking_uri)
        if key in _STORES_READY:
            return MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri)
        # First contact in this process: MLflow creates a fresh store's tables (client construction opens the
        # tracking store, the first registry call the registry store), and two processes doing that at once
        # collide (many runs starting together on a new deployment). Retry until the winner has finished.
        attempts = 8
        for attempt in range(attempts):
            try:
                client = MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri)
                client.search_registered_models(max_results=1)
                break
            except Exception as exc:
                if attempt == attempts - 1 or not any(m in str(exc) for m in _CREATION_RACE):
                    raise
                time.sleep(0.3 * (attempt + 1) + random.random() * 0.3)
        _STORES_READY.add(key)
        return client

    def experiment_id(self, dataset: str) -> str:
        """The dataset's experiment, created on first use with artifacts under our artifact root."""
        client = self.client()
        name = f"mlops_assets/{dataset}"
        experiment = client.get_experiment_by_name(name)
        if experiment is not None:
            return experiment.experiment_id
        location = self.artifact_location().rstrip("/") + f"/{dataset}"
        if "://" not in location:
            Path(location).mkdir(parents=True, exist_ok=True)
            location = Path(location).resolve().as_uri()
        return client.create_experiment(name, artifact_location=location)


class S3MlflowTracking(MlflowTracking):
    """Tracking in a database server (PostgreSQL), artifacts in `s3://<bucket>/<prefix>/mlflow` (boto3 finds the
    credentials, and AWS_ENDPOINT_URL for a local S3)."""

    artifact_root: str = ""
    bucket: str
    prefix: str = ""

    def artifact_location(self) -> str:
        return "s3://" + "/".join(p for p in (self.bucket, self.prefix.strip("/"), "mlflow") if p)


@contextlib.contextmanager
def _file_lock(path: Path, timeout: float) -> Iterator[None]:
    """Exclusive, cross-process lock on `path` (kernel `flock`: released if the holder dies)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+") as handle:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise PromotionLockError(
                        f"the promotion lock {path} was held by another process for {timeout:.0f} s; "
                        "see which model run or `mlops-assets promote` is stuck, then retry"
                    ) from None
                time.sleep(0.05)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def advisory_lock_key(registered_model: str) -> int:
    """The 64-bit PostgreSQL advisory lock key of a registered model's champion alias."""
    digest = hashlib.sha256(f"mlops_assets champion {registered_model}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


@contextlib.contextmanager
def _advisory_lock(tracking_uri: str, registered_model: str, timeout: float) -> Iterator[None]:
    """A session advisory lock on the MLflow database, on a connection of its own held for the section.

    The session (not a transaction) holds it, so MLflow's own connections come and go freely meanwhile;
    PostgreSQL drops it when the session ends, so a killed task leaves none behind.
    """
    import psycopg2
    from sqlalchemy.engine import make_url

    url = make_url(tracking_uri)
    where = f"{url.host}:{url.port or 5432}/{url.database}"
    key = advisory_lock_key(registered_model)
    options = {k: v for k, v in url.query.items() if isinstance(v, str)}  # e.g. sslmode
    try:
        connection = psycopg2.connect(host=url.host, port=url.port, user=url.username, password=url.password,
                                      dbname=url.database, connect_timeout=10,
                                      application_name=f"mlops-assets champion lock {registered_model}"[:63], **options)
    except psycopg2.Error as exc:
        reason = " ".join(str(exc).split())
        raise PromotionLockError(f"cannot reach the tracking database {where} to take the champion lock of "
                                 f"{registered_model}: {reason}") from None
    try:
        connection.autocommit = True
        with connection.cursor() as cursor:
            deadline = time.monotonic() + timeout
            while True:
                cursor.execute("SELECT pg_try_advisory_lock(%s)", (key,))
                if cursor.fetchone()[0]:
                    break
                if time.monotonic() > deadline:
                    raise PromotionLockError(
                        f"the champion lock of {registered_model} (PostgreSQL advisory lock {key} on {where}) was held "
                        f"by another session for {timeout:.0f} s; find it with `SELECT pid, application_name, "
                        "client_addr, state_change FROM pg_locks JOIN pg_stat_activity USING (pid) WHERE locktype = "
                        "'advisory'`, see which model run or `mlops-assets promote` is stuck, then retry"
                    )
                time.sleep(0.2)
            try:
                yield
            finally:
                try:
                    cursor.execute("SELECT pg_advisory_unlock(%s)", (key,))
                    if not cursor.fetchone()[0]:
                        log.warning("the champion lock of %s was lost during the section (session ended?)",
                                    registered_model)
                except psycopg2.Error as exc:  # closing the session below releases it anyway
                    log.warning("releasing the champion lock of %s: %s", registered_model, exc)
    finally:
        connection.close()
