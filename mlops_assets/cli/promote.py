"""`mlops-assets promote D VERSION`: move D's `champion` alias to a registered version by hand (rollback).

It goes through the same champion lock as model runs (the tracking store's: a file lock locally, a
PostgreSQL advisory lock in the `aws` profile), so a run deciding at the same moment re-decides against
the version chosen here instead of overwriting it. The Bento is not rebuilt:
materialize `D/bento` (or run `D_train`) to serve the new champion.
"""

from __future__ import annotations

import argparse
import contextlib
import re
from collections.abc import Iterator

from mlops_assets.cli.errors import UsageError, dataset_spec
from mlops_assets.home import MlopsHome

_VERSION = re.compile(r"^(?:models:/)?(?:(?P<model>[^/@]+)/)?v?(?P<number>\d+)$")
# MLflow keeps version numbers in an INTEGER column: 32 bits in PostgreSQL. A larger number names no
# version, and asking the store about it fails inside the driver instead of answering "no such version".
MAX_VERSION = 2**31 - 1


def add_parser(sub) -> argparse.ArgumentParser:
    parser = sub.add_parser("promote", help="move a dataset's champion alias to a registered model version (rollback)")
    parser.add_argument("dataset")
    parser.add_argument("version", help="a version of the dataset's registered model: 3, v3 or models:/<model>/3")
    return parser


@contextlib.contextmanager
def profile_tracking(home: MlopsHome) -> Iterator:
    """The current profile's MLflow resource, as model runs get it (the `aws` profile's is PostgreSQL + S3)."""
    from mlops_assets.definitions import profile_resources

    with profile_resources(home) as resources:
        yield resources.tracking


def resolve_version(spec, text: str, tracking):
    """The ModelVersion `text` names among `spec`'s registered model, or a one-line UsageError."""
    from mlops_assets.datasets.spec import load_specs
    from mlops_assets.training.registry import model_version

    match = _VERSION.match(text.strip())
    if not match:
        raise UsageError(f"{text!r} is not a model version; give a number (3), v3 or models:/<model>/3")
    owner = match.group("model")
    if owner is not None:
        specs = load_specs()
        owner = specs[owner].registered_model_name if owner in specs else owner
        if owner != spec.registered_model_name:
            raise UsageError(f"{text} is a version of {owner}, not of {spec.name} ({spec.registered_model_name})")
    number = match.group("number")
    if not tracking.has_store():  # nothing tracked yet; asking would create the store
        raise UsageError(f"{spec.name} has no model version {number} (nothing has been trained in this home yet; "
                         f"run `mlops-assets train {spec.name}`)")
    version = model_version(tracking, spec, number) if int(number) <= MAX_VERSION else None
    if version is None:
        known = sorted(int(v.version) for v in tracking.client().search_model_versions(
            f"name = '{spec.registered_model_name}'"))
        raise UsageError(f"{spec.name} has no model version {number} "
                         f"(registered: {', '.join(map(str, known)) or 'none yet'})")
    run = tracking.client().get_run(version.run_id) if version.run_id else None
    trained_on = run.data.tags.get("dataset") if run else None
    if trained_on != spec.name:
        raise UsageError(f"version {number} of {spec.registered_model_name} was trained on dataset "
                         f"{trained_on or 'unknown'}, not {spec.name}; refusing to serve it as {spec.name}'s champion")
    return version


def run(args: argparse.Namespace, home: MlopsHome) -> int:
    from mlops_assets.training.promotion import PromotionError, promote_version

    spec = dataset_spec(args.dataset)
    with profile_tracking(home) as tracking:
        version = resolve_version(spec, args.version, tracking)
        try:
            before, after = promote_version(tracking, spec, str(version.version))
        except PromotionError as exc:  # the lock was not taken: nothing moved, and the message says so
            raise UsageError(str(exc)) from None
        metric = spec.training.primary_metric
        value = tracking.client().get_run(version.run_id).data.metrics.get(metric)
    shown = f"{metric} {value:.4f}" if value is not None else f"no {metric} logged"
    if before == after:
        print(f"{spec.name}: v{after} is already the champion ({shown})")
    else:
        print(f"{spec.name}: champion v{before or '-'} -> v{after} ({shown}); "
              f"rebuild what serves it: materialize {spec.name}/bento (or run {spec.name}_train)")
    return 0
