"""One `<dataset>/model` materialization in a process of its own, released by a start file.

    python -m mlops_assets_tests.train_worker SPEC_PATH HOME_ROOT CANDIDATES_JSON READY_FILE GO_FILE

Imports happen before READY_FILE is written, so two workers released by GO_FILE really train,
log and decide at the same time against the same MLflow store. Prints one JSON line.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path


def main(spec_path: str, home_root: str, candidates: str, ready_file: str, go_file: str) -> int:
    import dagster as dg
    import mlflow.sklearn  # noqa: F401  (the heavy imports happen before the start signal, not after)
    import sklearn.ensemble
    import sklearn.linear_model  # noqa: F401

    from mlops_assets.datasets.factory import build_dataset
    from mlops_assets.datasets.spec import load_spec
    from mlops_assets.definitions import local_resources
    from mlops_assets.home import MlopsHome
    from mlops_assets.training import promotion, train  # noqa: F401  (imported before the start signal)

    spec = load_spec(Path(spec_path))
    model = next(a for a in build_dataset(spec).assets if a.key.path[-1] == "model")
    home = MlopsHome(Path(home_root))
    resources = local_resources(home)
    Path(ready_file).touch()
    deadline = time.monotonic() + 120
    while not Path(go_file).exists():
        if time.monotonic() > deadline:
            return 3
        time.sleep(0.005)
    config = {"candidates": json.loads(candidates)}
    result = dg.materialize([model], resources=resources, instance=dg.DagsterInstance.ephemeral(),
                            raise_on_error=False, run_config={"ops": {f"{spec.name}__model": {"config": config}}})
    metadata = {}
    for event in result.get_asset_materialization_events():
        metadata = {k: v.value for k, v in event.materialization.metadata.items()
                    if isinstance(v.value, (str, int, float, bool))}
    checks = {c.check_name: c.passed for c in result.get_asset_check_evaluations()}
    print(json.dumps({"metadata": metadata, "checks": checks}))
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
