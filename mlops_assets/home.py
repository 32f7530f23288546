"""One home for state: every path the platform reads or writes is a method of `MlopsHome`.

Layout (created on demand)::

    $MLOPS_HOME/
      landing/<dataset>/            CSV files waiting to be ingested (generator output, file drops)
      archive/<dataset>/<partition>/ every version of every dropped file, named by content hash
      lake/catalog.sqlite           the warehouse's DuckLake catalog (tables, snapshots), one schema per dataset
      lake/data/                    the warehouse's data: Parquet files per table and partition
      tmp/                          DuckDB spill space and downloaded copies (safe to delete between runs)
      mlflow/mlflow.db              MLflow tracking + registry (SQLite)
      mlflow/artifacts/             MLflow artifacts (models, training references)
      mlflow/locks/<model>.champion.lock  serializes every move of a registered model's `champion` alias (flock)
      bentoml/                      BENTOML_HOME: model store and built Bentos
      reports/<dataset>/            Evidently drift reports (HTML)
      predictions/<dataset>/        the served predictions: append-only Arrow files, one per worker per hour
      feedback/<dataset>/           delayed ground truth posted to the service's /feedback, same format
      dagster/                      DAGSTER_HOME: runs, materializations, schedules, sensors
      specs/                        dataset specs written by `mlops-assets spec draft` (loaded like built-in ones)

Files shipped with the package (dataset specs' seed files) are read from `shipped_file()`. Landing,
archive and report files are also named by keys (`landing_key()`, ...) relative to the root, so the
cloud profile stores the same layout under an S3 prefix.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_DIR = PACKAGE_DIR.parent
SHIPPED_DATA_DIR = PACKAGE_DIR / "datasets" / "data"
BENTO_DIR = REPO_DIR / "bento"


def default_home_root() -> Path:
    """`MLOPS_HOME`, else `.mlops/` in the repository checkout, else `.mlops/` in the working directory."""
    configured = os.environ.get("MLOPS_HOME")
    if configured:
        return Path(configured).expanduser().resolve()
    if (REPO_DIR / "workspace.yaml").exists():
        return REPO_DIR / ".mlops"
    return Path.cwd().resolve() / ".mlops"


INSTANCE_CONFIG_MARKER = "# Dagster instance for mlops_assets (managed:"
INSTANCE_CONFIG = f"""{INSTANCE_CONFIG_MARKER} rewritten on upgrade; delete this line to keep your own edits)
# Storage: SQLite in this folder. Runs queue (max 4 at once, on a 2-core laptop), and run monitoring
# fails runs that never start or whose workers die; the `reconcile_dead_runs` sensor and every
# `mlops-assets` command also fail runs whose process is gone, so ghosts never hold a run slot.
telemetry:
  enabled: false
nux:
  enabled: false  # no community sign-up dialog over the asset graph
run_coordinator:
  module: dagster.core.run_coordinator
  class: QueuedRunCoordinator
  config:
    max_concurrent_runs: 4
run_monitoring:
  enabled: true
  start_timeout_seconds: 180
  cancel_timeout_seconds: 180
  max_resume_run_attempts: 0
  poll_interval_seconds: 60
"""


PROFILE_ENV = "MLOPS_PROFILE"
PROFILE_NAMES = ("local", "aws")


def current_profile() -> str:
    """The deployment profile, decided here only: `MLOPS_PROFILE` (`local` by default, or `aws`)."""
    profile = os.environ.get(PROFILE_ENV, "local").strip() or "local"
    if profile not in PROFILE_NAMES:
        raise ValueError(f"{PROFILE_ENV}={profile!r} is not one of {list(PROFILE_NAMES)}")
    return profile


# The `aws` profile keeps runs, events and schedules in PostgreSQL (the same MLOPS_PG_* settings as the
# warehouse catalog; the lake's tables live in their own schema). Runs launch as local processes here;
# a deployment on ECS uses its own dagster.yaml with the EcsRunLauncher (see terraform/).
CLOUD_INSTANCE_CONFIG = f"""{INSTANCE_CONFIG_MARKER} rewritten on upgrade; delete this line to keep your own edits)
# Profile `aws`: instance storage in PostgreSQL, settings from the environment (no secrets in this file).
telemetry:
  enabled: false
nux:
  enabled: false  # no community sign-up dialog over the asset graph
storage:
  postgres:
    postgres_db:
      hostname: {{env: MLOPS_PG_HOST}}
      port: {{env: MLOPS_PG_PORT}}
      db_name: {{env: MLOPS_PG_DB}}
      username: {{env: MLOPS_PG_USER}}
      password: {{env: MLOPS_PG_PASSWORD}}
      scheme: postgresql+psycopg2   # dagster-postgres speaks psycopg2 (SQLAlchemy 2.1 defaults to psycopg 3)
run_coordinator:
  module: dagster.core.run_coordinator
  class: QueuedRunCoordinator
  config:
    max_concurrent_runs: 8
run_monitoring:
  enabled: true
  start_timeout_seconds: 180
  cancel_timeout_seconds: 180
  max_resume_run_attempts: 0
  poll_interval_seconds: 60
"""


@dataclass(frozen=True)
class MlopsHome:
    """Paths under one MLOPS_HOME: pure path arithmetic, no I/O until `ensure()` (or `create=True`)."""

    root: Path

    @classmethod
    def from_env(cls) -> MlopsHome:
        return cls(default_home_root())

    # Keys: where each file lives relative to the root, the same locally and in object storage
    # (`resources.storage` maps a key to a path under MLOPS_HOME or to s3://bucket/prefix/<key>).

    @staticmethod
    def landing_prefix(dataset: str) -> str:
        return f"landing/{dataset}"

    @staticmethod
    def landing_key(dataset: str, partition: str, *, daily: bool) -> str:
        """Daily data lands as `<dataset>_<YYYY-MM-DD>.csv`; a dropped file is its own partition key."""
        return f"landing/{dataset}/" + (f"{dataset}_{partition}.csv" if daily else partition)

    @staticmethod
    def archive_prefix(dataset: str) -> str:
        return f"archive/{dataset}"

    @staticmethod
    def archive_name(source_name: str, content_hash: str) -> str:
        """`<first 16 hex of the hash><suffix of the source>`, keeping a compressed `.csv.gz` whole."""
        source = Path(source_name)
        suffix = "".join(source.suffixes[-2:]) if source.suffix.lower() == ".gz" else source.suffix
        return f"{content_hash.split(':')[-1][:16]}{suffix}"

    @staticmethod
    def archive_key(dataset: str, partition: str, content_hash: str, source_name: str) -> str:
        """`archive/<dataset>/<partition>/<archive_name>`: one copy per distinct content."""
        return f"archive/{dataset}/{partition}/{MlopsHome.archive_name(source_name, content_hash)}"

    @staticmethod
    def is_archive_key(location: str) -> bool:
        """Is `location` (a key, path or URI) a copy in the archive (`.../archive/<dataset>/<partition>/<file>`)?"""
        parts = location.replace("\\", "/").split("/")
        return len(parts) >= 4 and parts[-4] == "archive"

    @staticmethod
    def reports_prefix(dataset: str) -> str:
        return f"reports/{dataset}"

    @staticmethod
    def report_key(dataset: str, name: str) -> str:
        return f"reports/{dataset}/{name}"

    def path(self, key: str) -> Path:
        """The local path of `key` under this home."""
        return self.root / key

    def landing(self, dataset: str, *, create: bool = False) -> Path:
        return _maybe_create(self.path(self.landing_prefix(dataset)), create)

    def landing_file(self, dataset: str, partition: str, *, daily: bool) -> Path:
        return self.path(self.landing_key(dataset, partition, daily=daily))

    def archive(self, dataset: str, *, create: bool = False) -> Path:
        return _maybe_create(self.path(self.archive_prefix(dataset)), create)

    def reports(self, dataset: str, *, create: bool = False) -> Path:
        return _maybe_create(self.path(self.reports_prefix(dataset)), create)

    def predictions(self, dataset: str, *, create: bool = False) -> Path:
        """The prediction log the Bento of `dataset` appends to (read by `<dataset>/prediction_log`)."""
        return _maybe_create(self.root / "predictions" / dataset, create)

    def feedback(self, dataset: str, *, create: bool = False) -> Path:
        """Labels posted to the Bento's `/feedback` for predictions it made."""
        return _maybe_create(self.root / "feedback" / dataset, create)

    def serving_layout(self, dataset: str) -> dict[str, str]:
        """Where a Bento of `dataset` writes, relative to the home, so the service (which does not import
        this package) follows this layout: it is recorded in the Bento at packaging."""
        store = self.bentoml_home  # BENTOML_HOME may point outside the home: then it is recorded as is
        return {
            "bentoml_home": store.relative_to(self.root).as_posix() if store.is_relative_to(self.root) else str(store),
            "predictions": self.predictions(dataset).relative_to(self.root).as_posix(),
            "feedback": self.feedback(dataset).relative_to(self.root).as_posix(),
        }

    @staticmethod
    def shipped_file(dataset: str, name: str) -> Path:
        """A file shipped with the package for `dataset` (e.g. the UCI wine files)."""
        return SHIPPED_DATA_DIR / dataset / name

    @property
    def lake_dir(self) -> Path:
        return self.root / "lake"

    @property
    def lake_catalog(self) -> Path:
        """The local DuckLake catalog (SQLite)."""
        return self.lake_dir / "catalog.sqlite"

    @property
    def lake_data(self) -> Path:
        """The local DuckLake data files (Parquet, a folder per schema and table)."""
        return self.lake_dir / "data"

    @property
    def scratch(self) -> Path:
        """Room for DuckDB to spill to and for downloaded copies: never read back across runs."""
        return self.root / "tmp"

    @property
    def warehouse(self) -> Path:
        """The warehouse as a person would point at it: its catalog."""
        return self.lake_catalog

    @property
    def mlflow_dir(self) -> Path:
        return self.root / "mlflow"

    @property
    def tracking_uri(self) -> str:
        return f"sqlite:///{self.mlflow_dir / 'mlflow.db'}"

    @property
    def artifact_root(self) -> Path:
        return self.mlflow_dir / "artifacts"

    @property
    def bentoml_home(self) -> Path:
        """BENTOML_HOME when set (BentoML binds one store per process from it), else `bentoml/` here."""
        configured = os.environ.get("BENTOML_HOME")
        return Path(configured).expanduser().resolve() if configured else self.root / "bentoml"

    @property
    def dagster_home(self) -> Path:
        return self.root / "dagster"

    @property
    def specs_dir(self) -> Path:
        return self.root / "specs"

    def ensure(self, profile: str | None = None) -> MlopsHome:
        """Create the folders and the Dagster instance config of `profile` (default: `current_profile()`)."""
        for path in (self.root, self.mlflow_dir, self.artifact_root, self.bentoml_home):
            path.mkdir(parents=True, exist_ok=True)
        ensure_dagster_home(self.dagster_home, profile)
        return self

    def export_env(self) -> None:
        """Point every tool at this home (DAGSTER_HOME, BENTOML_HOME, MLflow) for this process and its children.

        A DAGSTER_HOME the user set is kept (made absolute, created with its instance config if
        missing); an unset or empty one becomes `$MLOPS_HOME/dagster`. Either way every run of
        this process lands in a persistent instance that `make dev` can show, never a throwaway one.
        """
        self.ensure()
        os.environ["MLOPS_HOME"] = str(self.root)
        configured = os.environ.get("DAGSTER_HOME", "").strip()
        dagster_home = Path(configured).expanduser().resolve() if configured else self.dagster_home
        os.environ["DAGSTER_HOME"] = str(ensure_dagster_home(dagster_home))
        os.environ.setdefault("BENTOML_HOME", str(self.bentoml_home))
        os.environ.setdefault("MLFLOW_TRACKING_URI", self.tracking_uri)
        os.environ.setdefault("BENTOML_DO_NOT_TRACK", "True")
        os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")  # MLflow 3 sends usage data unless told not to
        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
        os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")  # the CLI prints its own summary


def ensure_dagster_home(path: Path, profile: str | None = None) -> Path:
    """Create a Dagster instance directory with the `dagster.yaml` of `profile` (default: `current_profile()`).

    The file is ours to keep up to date (it carries a marker line); one a person has taken over
    (marker removed) or written before is left alone.
    """
    wanted = CLOUD_INSTANCE_CONFIG if (profile or current_profile()) == "aws" else INSTANCE_CONFIG
    path.mkdir(parents=True, exist_ok=True)
    config = path / "dagster.yaml"
    current = config.read_text() if config.exists() else None
    if current is None or (current != wanted and current.startswith(INSTANCE_CONFIG_MARKER)):
        from mlops_assets.files import atomic_path

        with atomic_path(config) as temporary:
            temporary.write_text(wanted)
    return path


def _maybe_create(path: Path, create: bool) -> Path:
    if create:
        path.mkdir(parents=True, exist_ok=True)
    return path
