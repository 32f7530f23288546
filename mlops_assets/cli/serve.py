"""`mlops-assets serve D [--port P] [--workers N]`: `bentoml serve` the Bento of D's champion, with the right store.

The Bento carries its model tag and contract; this command only says where the store and the home are
(BENTOML_HOME, MLOPS_HOME: the prediction log goes under the home) and how many workers to run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from mlops_assets.cli.errors import UsageError, dataset_spec, positive_int
from mlops_assets.home import MlopsHome


def add_parser(sub) -> argparse.ArgumentParser:
    parser = sub.add_parser("serve", help="serve a dataset's champion Bento with `bentoml serve`")
    parser.add_argument("dataset")
    parser.add_argument("--port", type=int, default=3001)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--json", action="store_true", help="print what is served as one JSON line, then serve")
    parser.add_argument("--workers", type=positive_int, default=None,
                        help="worker processes (default: the Bento's, 1); each appends its own prediction log file")
    return parser


def champion_bento_tag(bentoml, spec, version) -> str | None:
    """The newest Bento built for `spec` whose model is `version` (a ModelVersion: the champion), else None.

    Read from what packaging recorded, through public BentoML APIs: each Bento's `model` label names its
    model in the store, whose labels carry the registered model, MLflow version and run it was copied from.
    The newest Bento overall may serve a challenger that was never promoted, or the champion before a
    rollback (`mlops-assets promote`), so "newest" alone is not "the champion's".
    """
    try:
        bentos = bentoml.bentos.list(spec.bento_service_name)
    except bentoml.exceptions.NotFound:
        return None
    matching = []
    for bento in bentos:
        labels = bento.info.labels
        if labels.get("dataset") != spec.name or not labels.get("model"):
            continue
        try:
            model = bentoml.models.get(labels["model"])
        except bentoml.exceptions.NotFound:  # the model was deleted from the store: this Bento cannot start
            continue
        recorded = model.info.labels
        if (recorded.get("mlflow_model") == spec.registered_model_name
                and recorded.get("mlflow_version") == str(version.version)
                and recorded.get("mlflow_run_id") == version.run_id):
            matching.append(bento)
    newest = max(matching, key=lambda b: b.info.creation_time, default=None)
    return None if newest is None else str(newest.tag)


def champion_bento(home: MlopsHome, spec) -> tuple[str, str]:
    """(Bento tag, champion version) to serve for `spec`, or a one-line UsageError saying what builds it."""
    from mlops_assets.cli.promote import profile_tracking
    from mlops_assets.resources import BentoStore
    from mlops_assets.training.registry import champion

    with profile_tracking(home) as tracking:  # the profile's MLflow; a fresh home has no store to ask
        version = champion(tracking, spec) if tracking.has_store() else None
    if version is None:
        raise UsageError(f"{spec.name} has no champion model yet, so nothing to serve; train one with "
                         f"`mlops-assets train {spec.name}`", dataset=spec.name)
    tag = champion_bento_tag(BentoStore(home=str(home.bentoml_home)).bentoml(), spec, version)
    if tag is None:
        raise UsageError(f"{spec.name}: no Bento serves the champion v{version.version} yet; build it by "
                         f"materializing {spec.name}/bento (Dagster UI, or `dagster asset materialize -m "
                         f"mlops_assets.definitions --select {spec.name}/bento`), or `mlops-assets train {spec.name}` "
                         "for a new model", dataset=spec.name, champion_version=str(version.version))
    return tag, str(version.version)


def run(args: argparse.Namespace, home: MlopsHome) -> int:
    spec = dataset_spec(args.dataset)
    tag, version = champion_bento(home, spec)
    bentoml = Path(sys.executable).parent / "bentoml"
    env = {**os.environ, "BENTOML_HOME": str(home.bentoml_home), "MLOPS_HOME": str(home.root)}
    if args.workers:
        # BentoML's public configuration override (the service is named like its Bento); quoted: it has dashes.
        env["BENTOML_CONFIG_OPTIONS"] = f'services."{tag.split(":")[0]}".workers={args.workers}'
    url = f"http://{args.host}:{args.port}"
    if args.json:
        print(json.dumps({"dataset": spec.name, "bento": tag, "champion_version": version, "url": url, "predict": f"{url}/predict",
                          "bentoml_home": str(home.bentoml_home)}), flush=True)
    else:
        print(f"serving {tag} (champion v{version}) on {url} (BENTOML_HOME={home.bentoml_home}); POST {url}/predict "
              '{"records": [...]}; `mlops-assets status --json` has an example body', flush=True)
    try:
        return subprocess.call([str(bentoml), "serve", tag, "--host", args.host, "--port", str(args.port)], env=env)
    except KeyboardInterrupt:
        return 0
