"""MLOPS_HOME as a resource, so tests and deployment profiles can point the assets elsewhere."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from mlops_assets.home import MlopsHome


class HomeResource(dg.ConfigurableResource):
    """The MLOPS_HOME root; every path under it comes from `paths` (one `MlopsHome`)."""

    root: str

    @property
    def paths(self) -> MlopsHome:
        return MlopsHome(Path(self.root))
