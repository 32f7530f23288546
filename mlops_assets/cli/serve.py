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


def latest_bento_tag(home: MlopsHome, dataset: str) -> str | None:
    """The newest Bento the `bento` asset built for `dataset`, from the Dagster instance's records."""
    from mlops_assets.cli.errors import dagster_instance
    from mlops_assets.stages import Stage, asset_key

    event = dagster_instance().get_latest_materialization_event(asset_key(dataset, Stage.BENTO))
    if event is None or event.asset_materialization is None:
        return None
    tag = event.asset_materialization.metadata.get("bento")
    return str(tag.value) if tag is not None else None


def run(args: argparse.Namespace, home: MlopsHome) -> int:
    spec = dataset_spec(args.dataset)
    tag = latest_bento_tag(home, spec.name)
    if tag is None:
        raise UsageError(f"{spec.name} has no Bento yet; build one with `mlops-assets train {spec.name}` (or by "
                         f"materializing {spec.name}/bento in the Dagster UI)")
    bentoml = Path(sys.executable).parent / "bentoml"
    env = {**os.environ, "BENTOML_HOME": str(home.bentoml_home), "MLOPS_HOME": str(home.root)}
    if args.workers:
        # BentoML's public configuration override (the service is named like its Bento); quoted: it has dashes.
        env["BENTOML_CONFIG_OPTIONS"] = f'services."{tag.split(":")[0]}".workers={args.workers}'
    url = f"http://{args.host}:{args.port}"
    if args.json:
        print(json.dumps({"dataset": spec.name, "bento": tag, "url": url, "predict": f"{url}/predict",
                          "bentoml_home": str(home.bentoml_home)}), flush=True)
    else:
        print(f"serving {tag} on {url} (BENTOML_HOME={home.bentoml_home}); POST {url}/predict "
              '{"records": [...]}; `mlops-assets status --json` has an example body', flush=True)
    try:
        return subprocess.call([str(bentoml), "serve", tag, "--host", args.host, "--port", str(args.port)], env=env)
    except KeyboardInterrupt:
        return 0
