"""One home for state: every path the platform reads or writes is a method of `MlopsHome`.

Layout (created on demand)::

    $MLOPS_HOME/
      landing/<dataset>/            CSV files waiting to be ingested (generator output, file drops)
      archive/<dataset>/<partition>/ every version of every dropped file, named by content hash
      warehouse.duckdb              cleaned, features and quarantine tables, one schema per dataset
      mlflow/mlflow.db              MLflow tracking + registry (SQLite)
      mlflow/artifacts/             MLflow artifacts (models, training references)
      bentoml/                      BENTOML_HOME: model store and built Bentos
      reports/<dataset>/            Evidently drift reports (HTML)
      predictions/<dataset>/        the served predictions: append-only Arrow files, one per worker per hour
      feedback/<dataset>/           delayed ground truth posted to the service's /feedback, same format
      dagster/                      DAGSTER_HOME: runs, materializations, schedules, sensors

Files shipped with the package (dataset specs' seed files) are read from `shipped_file()`.
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


@dataclass(frozen=True)
class MlopsHome:
    """Paths under one MLOPS_HOME: pure path arithmetic, no I/O until `ensure()` (or `create=True`)."""

    root: Path

    @classmethod
    def from_env(cls) -> MlopsHome:
        return cls(default_home_root())

    def landing(self, dataset: str, *, create: bool = False) -> Path:
        return _maybe_create(self.root / "landing" / dataset, create)

    def landing_file(self, dataset: str, partition: str, *, daily: bool) -> Path:
        """Daily data lands as `<dataset>_<YYYY-MM-DD>.csv`; a dropped file is its own partition key."""
        return self.landing(dataset) / (f"{dataset}_{partition}.csv" if daily else partition)

    def archive(self, dataset: str, *, create: bool = False) -> Path:
        return _maybe_create(self.root / "archive" / dataset, create)

    def reports(self, dataset: str, *, create: bool = False) -> Path:
        return _maybe_create(self.root / "reports" / dataset, create)

    def predictions(self, dataset: str, *, create: bool = False) -> Path:
        """The prediction log the Bento of `dataset` appends to (read by `<dataset>/prediction_log`)."""
        return _maybe_create(self.root / "predictions" / dataset, create)

    def feedback(self, dataset: str, *, create: bool = False) -> Path:
        """Labels posted to the Bento's `/feedback` for predictions it made."""
        return _maybe_create(self.root / "feedback" / dataset, create)

    def serving_layout(self, dataset: str) -> dict[str, str]:
        """Where a Bento of `dataset` writes, relative to the home, so the service (which does not import
        this package) follows this layout: it is recorded in the Bento at packaging."""
        return {
            "bentoml_home": self.bentoml_home.relative_to(self.root).as_posix(),
            "predictions": self.predictions(dataset).relative_to(self.root).as_posix(),
            "feedback": self.feedback(dataset).relative_to(self.root).as_posix(),
        }

    @staticmethod
    def shipped_file(dataset: str, name: str) -> Path:
        """A file shipped with the package for `dataset` (e.g. the UCI wine files)."""
        return SHIPPED_DATA_DIR / dataset / name

    @property
    def warehouse(self) -> Path:
        return self.root / "warehouse.duckdb"

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
        return self.root / "bentoml"

    @property
    def dagster_home(self) -> Path:
        return self.root / "dagster"

    def ensure(self) -> MlopsHome:
        for path in (self.root, self.mlflow_dir, self.artifact_root, self.bentoml_home, self.dagster_home):
            path.mkdir(parents=True, exist_ok=True)
        instance_config = self.dagster_home / "dagster.yaml"
        if not instance_config.exists():
            # Defaults (SQLite storage in this folder), written out so Dagster does not warn about them.
            instance_config.write_text(
                "# Dagster instance for mlops_assets: SQLite storage in this folder.\ntelemetry:\n  enabled: false\n"
            )
        return self

    def export_env(self) -> None:
        """Point every tool at this home (DAGSTER_HOME, BENTOML_HOME, MLflow) for this process and its children."""
        self.ensure()
        os.environ["MLOPS_HOME"] = str(self.root)
        os.environ.setdefault("DAGSTER_HOME", str(self.dagster_home))
        os.environ.setdefault("BENTOML_HOME", str(self.bentoml_home))
        os.environ.setdefault("MLFLOW_TRACKING_URI", self.tracking_uri)
        os.environ.setdefault("BENTOML_DO_NOT_TRACK", "True")
        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


def _maybe_create(path: Path, create: bool) -> Path:
    if create:
        path.mkdir(parents=True, exist_ok=True)
    return path
