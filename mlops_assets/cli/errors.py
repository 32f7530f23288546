"""What the CLI tells a user in one line, and the argument types that refuse bad input early."""

from __future__ import annotations

import argparse
import datetime as dt


class UsageError(Exception):
    """A problem with the user's input: printed as one line, exit code 2."""


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
        raise UsageError(f"unknown dataset {name!r}; known: {sorted(specs)}")
    return specs[name]


def dagster_instance():
    """The persistent instance under DAGSTER_HOME, with runs whose process died marked failed first."""
    import dagster as dg

    from mlops_assets.recovery import reconcile_dead_runs

    instance = dg.DagsterInstance.get()
    reconcile_dead_runs(instance)
    return instance
