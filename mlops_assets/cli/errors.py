"""What the CLI tells a user in one line, and the argument types that refuse bad input early."""

from __future__ import annotations

import argparse
import datetime as dt
import json
from typing import NoReturn


class UsageError(Exception):
    """A problem with the user's input: printed as one line, exit code 2.

    `context` (e.g. the dataset, the file) goes into the JSON error object `main` prints with `--json`.
    """

    def __init__(self, message: str, **context) -> None:
        super().__init__(" ".join(str(message).split()))
        self.context = context


def refuse(message: str, *, as_json: bool = False, **context) -> NoReturn:
    """Exit 2 with a one-line reason on stderr; with `--json`, `main` prints it as a JSON object on stdout too.

    `as_json` is kept for callers' readability: `main` decides from the parsed `--json` flag, so every
    UsageError (also those raised deep in a verb) reaches a `--json` user as JSON, printed once.
    """
    raise UsageError(message, **context)


def error_json(message: str, **context) -> str:
    """The JSON error object `--json` prints on stdout for a refused command."""
    return json.dumps({"ok": False, **context, "error": " ".join(message.split())}, default=str)


def run_job_verb(args, home, act, refused: type[Exception], format_summary) -> int:
    """A verb over one dataset's job: `act(runner, spec)` makes the summary; `refused` (nothing to do yet)
    exits 2 with its one line; the summary prints as text or `--json`; exit 1 when it is not ok."""
    from mlops_assets.cli.runner import cli_runner

    spec = dataset_spec(args.dataset)
    runner = cli_runner(home)
    try:
        summary = act(runner, spec)
    except refused as exc:
        refuse(str(exc), as_json=args.json, dataset=spec.name)
    print(json.dumps(summary, indent=2, default=str) if args.json else format_summary(summary))
    return 0 if summary["ok"] else 1


def date_arg(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date in YYYY-MM-DD form") from None


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least 1")
    return value


def dataset_spec(name: str):
    """The spec of dataset `name`, or a UsageError listing the known ones."""
    from mlops_assets.datasets.spec import load_specs

    specs = load_specs()
    if name not in specs:
        raise UsageError(f"unknown dataset {name!r}; known: {sorted(specs)}", dataset=name)
    return specs[name]


def dagster_instance():
    """The persistent instance at DAGSTER_HOME (set and created by `MlopsHome.export_env`), with runs whose
    process died marked failed first, so no ghost holds a run slot."""
    import os

    import dagster as dg

    from mlops_assets.recovery import reconcile_dead_runs

    try:
        instance = dg.DagsterInstance.get()
    except dg.DagsterError as exc:  # DAGSTER_HOME missing, relative, or not a directory
        reason = " ".join(str(exc).split())
        raise UsageError(f"cannot open the Dagster instance at DAGSTER_HOME={os.environ.get('DAGSTER_HOME')!r}: "
                         f"{reason}") from None
    reconcile_dead_runs(instance)
    return instance
