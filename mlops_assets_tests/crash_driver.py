"""Run one platform job in this process, optionally killing the process with SIGKILL at a chosen point.

Used by the crash tests as `python -m mlops_assets_tests.crash_driver ...`: the kill lands inside the
stage's own transaction (after its writes, before COMMIT) or inside a named function, like a power cut.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import signal


def _die(*_args, **_kwargs):
    os.kill(os.getpid(), signal.SIGKILL)


def kill_before_commit(module_name: str) -> None:
    """Make `module_name`'s `transaction` run its block, then die before COMMIT."""
    module = importlib.import_module(module_name)
    real = module.transaction

    @contextlib.contextmanager
    def dying_transaction(con):
        with real(con):
            yield
            _die()

    module.transaction = dying_transaction


def kill_in(target: str) -> None:
    """Replace `module:function` with a SIGKILL."""
    module_name, function = target.split(":")
    setattr(importlib.import_module(module_name), function, _die)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--job", required=True)
    parser.add_argument("--partition")
    parser.add_argument("--kill-before-commit-in", help="module whose transaction dies before COMMIT")
    parser.add_argument("--kill-in", help="module:function replaced by a SIGKILL")
    parser.add_argument("--ops-config", default=None, help="JSON run config for ops")
    args = parser.parse_args()

    import json

    import dagster as dg

    from mlops_assets.cli.runner import Runner
    from mlops_assets.datasets.spec import load_specs
    from mlops_assets.definitions import build_definitions
    from mlops_assets.home import MlopsHome

    if args.kill_before_commit_in:
        kill_before_commit(args.kill_before_commit_in)
    if args.kill_in:
        kill_in(args.kill_in)
    home = MlopsHome.from_env().ensure()
    specs = load_specs()
    runner = Runner(build_definitions(home, specs), dg.DagsterInstance.get(), home, log_level="CRITICAL")
    spec = specs[args.dataset]
    if args.partition:
        runner.register_partition(spec, args.partition)
    ops = json.loads(args.ops_config) if args.ops_config else None
    runner.run(args.job, args.partition, ops_config=ops)


if __name__ == "__main__":
    main()
