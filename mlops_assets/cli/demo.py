"""`mlops-assets demo`: the whole story on embedded defaults, through the same jobs the UI runs."""

from __future__ import annotations

import argparse

from mlops_assets.cli.errors import dagster_instance, positive_int
from mlops_assets.home import MlopsHome


def add_parser(sub) -> argparse.ArgumentParser:
    parser = sub.add_parser("demo", help="run the main job end to end on embedded defaults")
    parser.add_argument("--days", type=positive_int, default=10, help="days of history before drift")
    parser.add_argument("--drift-days", type=positive_int, default=2)
    parser.add_argument("--rows-per-day", type=positive_int, default=5000)
    return parser


def run(args: argparse.Namespace, home: MlopsHome) -> int:
    from mlops_assets.cli.runner import Runner, run_demo
    from mlops_assets.cli.status import collect_status, format_status
    from mlops_assets.datasets.spec import load_specs
    from mlops_assets.definitions import build_definitions

    specs = load_specs()
    runner = Runner(build_definitions(home, specs), dagster_instance(), home, log_level="CRITICAL", progress=True)
    run_demo(runner, specs, days=args.days, drift_days=args.drift_days, rows_per_day=args.rows_per_day, say=print)
    print(format_status(collect_status(home, specs, runner.instance)))
    print(
        "\nNext:\n"
        "  make dev         Dagster UI (asset lineage, runs, checks)   http://127.0.0.1:3000\n"
        "  make mlflow-ui   MLflow UI (runs, registry, champion)      http://127.0.0.1:5000\n"
        "  make serve       bentoml serve the transactions champion    http://127.0.0.1:3001/predict\n"
        "  mlops-assets status --json   everything above, including an example request body"
    )
    return 0
