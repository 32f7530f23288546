"""`mlops-assets`: generate data, run the demo, ingest a file, report status, promote and trace models, serve one.

Errors a user can fix (a bad file, a bad date, a failed check) print one line and exit non-zero;
tracebacks are for bugs, not for bad input.
"""

from __future__ import annotations

import argparse
import logging
import sys

from mlops_assets.cli import demo, generate, ingest, lineage, monitor, promote, serve, spec, status, train
from mlops_assets.cli.errors import UsageError
from mlops_assets.home import MlopsHome

VERBS = (generate, demo, spec, ingest, train, monitor, status, promote, lineage, serve)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mlops-assets", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for verb in VERBS:
        verb.add_parser(sub).set_defaults(func=verb.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    home = MlopsHome.from_env()
    try:
        home.export_env()
    except OSError as exc:
        from mlops_assets.files import describe_os_error

        return _refused(args, exc, f"MLOPS_HOME {home.root}: {describe_os_error(exc)}")
    from mlops_assets.cli.runner import JobFailed
    from mlops_assets.datasets.spec import SpecError

    try:
        return args.func(args, home)
    except (UsageError, SpecError, JobFailed) as exc:
        return _refused(args, exc, str(exc))
    except OSError as exc:  # permissions, full disk, read-only or missing folders: the user can fix these
        from mlops_assets.files import describe_os_error

        return _refused(args, exc, describe_os_error(exc))


def _refused(args: argparse.Namespace, exc: Exception, message: str) -> int:
    """One line on stderr, exit 2; with `--json`, the same reason as a JSON error object on stdout (one place)."""
    from mlops_assets.cli.errors import error_json

    message = " ".join(message.split())
    if getattr(args, "json", False):
        print(error_json(message, **getattr(exc, "context", {})), flush=True)
    print(f"mlops-assets: {message}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
