"""`mlops-assets generate D --start DAY --days N`: write synthetic landing CSVs, one per day."""

from __future__ import annotations

import argparse
import datetime as dt

from mlops_assets.cli.errors import UsageError, date_arg, positive_int
from mlops_assets.home import MlopsHome


def add_parser(sub) -> argparse.ArgumentParser:
    parser = sub.add_parser("generate", help="write synthetic landing CSVs (one per day)")
    parser.add_argument("dataset")
    parser.add_argument("--start", type=date_arg, required=True, help="first day, YYYY-MM-DD")
    parser.add_argument("--days", type=positive_int, required=True)
    parser.add_argument("--rows-per-day", type=positive_int, default=None, help="default: the dataset spec's")
    parser.add_argument("--drift-from", type=date_arg, default=None, help="switch drift on from this day")
    return parser


def run(args: argparse.Namespace, home: MlopsHome) -> int:
    from mlops_assets.datasets.generator import write_day_to
    from mlops_assets.datasets.spec import load_specs

    specs = load_specs()
    spec = specs.get(args.dataset)
    if spec is None or spec.source.kind != "generator":
        raise UsageError(f"{args.dataset!r} has no generator; generated datasets: "
                         f"{[n for n, s in specs.items() if s.source.kind == 'generator']}")
    from mlops_assets.definitions import profile_resources
    from mlops_assets.progress import Progress

    rows = args.rows_per_day or spec.source.rows_per_day
    progress = Progress(f"generate {spec.name}", args.days, "days")
    paths = []
    # Into the profile's landing zone (a folder, or S3 in the `aws` profile), each file published whole.
    with profile_resources(home) as resources:
        for offset in range(args.days):
            day = args.start + dt.timedelta(days=offset)
            key = MlopsHome.landing_key(spec.name, day.isoformat(), daily=True)
            with resources.storage.writing(key) as temporary:
                write_day_to(temporary, day, rows, seed=spec.source.seed,
                             drifted=args.drift_from is not None and day >= args.drift_from)
            paths.append(resources.storage.uri(key))
            progress.advance(rows=rows)
    for path in paths:
        print(path)
    print(f"{len(paths)} files, {rows} rows each" + (f", drift from {args.drift_from}" if args.drift_from else ""))
    return 0
