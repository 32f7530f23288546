"""`mlops-assets`: generate data, run the demo, ingest a file, report status.

Errors a user can fix (a bad file, a bad date, a failed check) print one line and exit non-zero;
tracebacks are for bugs, not for bad input.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import sys
from pathlib import Path

from mlops_assets.home import MlopsHome


class UsageError(Exception):
    """A problem with the user's input: printed as one line, exit code 2."""


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date in YYYY-MM-DD form") from None


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least 1")
    return value


def _specs():
    from mlops_assets.datasets.spec import load_specs

    return load_specs()


def _instance():
    import dagster as dg

    return dg.DagsterInstance.get()


def cmd_generate(args: argparse.Namespace, home: MlopsHome) -> int:
    from mlops_assets.generator import generate_range

    spec = _specs().get(args.dataset)
    if spec is None or spec.source.kind != "generator":
        raise UsageError(f"{args.dataset!r} has no generator; generated datasets: "
                         f"{[n for n, s in _specs().items() if s.source.kind == 'generator']}")
    rows = args.rows_per_day or spec.source.rows_per_day
    paths = generate_range(home.landing(spec.name), args.start, args.days, rows, seed=spec.source.seed, drift_from=args.drift_from)
    for path in paths:
        print(path)
    print(f"{len(paths)} files, {rows} rows each" + (f", drift from {args.drift_from}" if args.drift_from else ""))
    return 0


def cmd_demo(args: argparse.Namespace, home: MlopsHome) -> int:
    from mlops_assets.definitions import build_definitions
    from mlops_assets.runner import Runner, run_demo
    from mlops_assets.status import collect_status, format_status

    specs = _specs()
    runner = Runner(build_definitions(home, specs), _instance(), home, log_level="CRITICAL")
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


def cmd_status(args: argparse.Namespace, home: MlopsHome) -> int:
    from mlops_assets.status import collect_status, format_status

    status = collect_status(home, _specs(), _instance())
    print(json.dumps(status, indent=2, default=str) if args.json else format_status(status))
    return 0


def cmd_ingest(args: argparse.Namespace, home: MlopsHome) -> int:
    from mlops_assets.definitions import build_definitions
    from mlops_assets.ingest_command import IngestRefused, format_summary, ingest
    from mlops_assets.runner import Runner

    specs = _specs()
    spec = specs.get(args.dataset)
    if spec is None:
        raise UsageError(f"unknown dataset {args.dataset!r}; known: {sorted(specs)}")
    runner = Runner(build_definitions(home, specs), _instance(), home, log_level="CRITICAL")
    try:
        summary = ingest(runner, spec, Path(args.path), args.partition)
    except IngestRefused as exc:
        if args.json:
            print(json.dumps({"ok": False, "dataset": spec.name, "file": args.path, "error": str(exc)}))
        raise UsageError(str(exc)) from None
    print(json.dumps(summary, indent=2, default=str) if args.json else format_summary(summary))
    return 0 if summary["ok"] else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mlops-assets", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    gen = sub.add_parser("generate", help="write synthetic landing CSVs (one per day)")
    gen.add_argument("dataset")
    gen.add_argument("--start", type=_date, required=True, help="first day, YYYY-MM-DD")
    gen.add_argument("--days", type=_positive, required=True)
    gen.add_argument("--rows-per-day", type=_positive, default=None, help="default: the dataset spec's (100000)")
    gen.add_argument("--drift-from", type=_date, default=None, help="switch drift on from this day")
    gen.set_defaults(func=cmd_generate)

    demo = sub.add_parser("demo", help="run the main job end to end on embedded defaults")
    demo.add_argument("--days", type=_positive, default=10, help="days of history before drift")
    demo.add_argument("--drift-days", type=_positive, default=2)
    demo.add_argument("--rows-per-day", type=_positive, default=5000)
    demo.set_defaults(func=cmd_demo)

    ing = sub.add_parser("ingest", help="land one CSV file and materialize it through cleaned now")
    ing.add_argument("dataset")
    ing.add_argument("path")
    ing.add_argument("--partition", default=None, help="partition key (default: the file name, or its date)")
    ing.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    ing.set_defaults(func=cmd_ingest)

    status = sub.add_parser("status", help="latest materializations, champion, drift, Bento, example request")
    status.add_argument("--json", action="store_true")
    status.set_defaults(func=cmd_status)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    home = MlopsHome.from_env()
    home.export_env()
    from mlops_assets.datasets.spec import SpecError
    from mlops_assets.runner import JobFailed

    try:
        return args.func(args, home)
    except (UsageError, SpecError, JobFailed) as exc:
        print(f"mlops-assets: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
