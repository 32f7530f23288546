"""Where landing files and reports live, as a resource so tests and profiles can point it elsewhere."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from mlops_assets.home import MlopsHome


class HomeResource(dg.ConfigurableResource):
    """The MLOPS_HOME root; landing zones and report folders hang off it."""

    root: str

    @property
    def home(self) -> MlopsHome:
        return MlopsHome(Path(self.root))

    def landing(self, dataset: str) -> Path:
        path = self.home.landing(dataset)
        path.mkdir(parents=True, exist_ok=True)
        return path

    def reports(self, dataset: str) -> Path:
        path = self.home.reports(dataset)
        path.mkdir(parents=True, exist_ok=True)
        return path
