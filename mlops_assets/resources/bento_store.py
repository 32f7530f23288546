"""The BentoML model store: BENTOML_HOME must be set before bentoml is imported, so this resource owns it."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import dagster as dg


class BentoStore(dg.ConfigurableResource):
    """BENTOML_HOME for this process; `bentoml()` returns the module bound to it."""

    home: str

    def bentoml(self):
        resolved = str(Path(self.home).resolve())
        current = os.environ.get("BENTOML_HOME")
        if current and str(Path(current).resolve()) != resolved and "bentoml" in sys.modules:
            raise RuntimeError(
                f"bentoml was already imported with BENTOML_HOME={current}; this process cannot switch to {resolved}"
            )
        Path(resolved).mkdir(parents=True, exist_ok=True)
        os.environ["BENTOML_HOME"] = resolved
        os.environ.setdefault("BENTOML_DO_NOT_TRACK", "True")
        import bentoml

        return bentoml
