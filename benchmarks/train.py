"""Where the model asset's time goes: reading, fitting, evaluating, MLflow logging and the registry.

    .venv/bin/python benchmarks/train.py [--rows 100000 1000000] [--runs 2]

For each size, in a fresh process and a fresh MLOPS_HOME: generate transactions (100k rows a day),
ingest them through the real ingest assets, create the MLflow store once (as a deployment has it),
then materialize `transactions/model` `--runs` times with the shipped spec (3 candidates + the
dummy baseline). Run 1 has no champion; later runs also load and score the champion on the same
held-out rows. The split comes from the asset's own `timings` metadata:

  reading         features + reference sample + lineage out of DuckDB
  fitting         every candidate's `fit`
  evaluating      predictions and metrics on the held-out rows, permutation importances of the winner
  mlflow_logging  parent + child runs, model (skops), reference, plots, lineage, registration, alias
  promotion       read the champion, load it from the registry, lock, compare-and-set the alias, tags
                  (predicting with the champion on the held-out rows is counted in evaluating)

Overhead = (mlflow_logging + promotion) / fitting; the target is under 10% at 1M rows.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mlops_assets.progress import Progress

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
ROWS_PER_DAY = 100_000


def worker(rows: int, runs: int, root: Path, candidates: list[str] | None) -> dict:
    os.environ["MLOPS_HOME"] = str(root)
    os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = "false"
    import dagster as dg
    from mlflow import MlflowClient

    from mlops_assets.datasets.factory import build_dataset
    from mlops_assets.datasets.generator import generate_range
    from mlops_assets.datasets.spec import load_specs
    from mlops_assets.definitions import local_resources
    from mlops_assets.home import MlopsHome
    from mlops_assets.stages import Stage, asset_key

    home = MlopsHome(root).ensure()
    spec = load_specs()["transactions"]
    dataset = build_dataset(spec)
    resources = local_resources(home)
    start = dt.date.fromisoformat(spec.partitioning.start_date)
    days = max(1, rows // ROWS_PER_DAY)
    generate_range(home, spec.name, start, days, rows // days, seed=spec.source.seed)
    instance = dg.DagsterInstance.ephemeral()
    ingest = [a for a in dataset.assets if a.key in {asset_key(spec.name, s) for s in (Stage.RAW, Stage.CLEANED, Stage.FEATURES)}]
    t0 = time.perf_counter()
    for offset in range(days):
        day = (start + dt.timedelta(days=offset)).isoformat()
        assert dg.materialize(ingest, resources=resources, partition_key=day, instance=instance).success
    ingest_seconds = time.perf_counter() - t0
    t0 = time.perf_counter()
    MlflowClient(tracking_uri=home.tracking_uri).search_experiments()  # schema migrations: once per store
    store_seconds = time.perf_counter() - t0

    model = next(a for a in dataset.assets if a.key == asset_key(spec.name, Stage.MODEL))
    results = []
    for _ in range(runs):
        t0 = time.perf_counter()
        config = {"candidates": candidates} if candidates else {}
        result = dg.materialize([model], resources=resources, instance=instance, raise_on_error=False,
                                run_config={"ops": {"transactions__model": {"config": config}}})
        wall = time.perf_counter() - t0
        meta = {k: v.value for k, v in result.get_asset_materialization_events()[-1].materialization.metadata.items()}
        results.append({
            "wall": wall, "timings": meta["timings"], "logging_detail": meta["mlflow_logging_detail"], "winner": meta["winner"], "version": meta["version"],
            "promoted": meta["champion"], "challenger_score": meta["challenger_score"],
            "champion_score": meta.get("champion_score"), "rows_train": meta["rows_train"],
            "rows_validation": meta["rows_validation"],
            "fit_by_candidate": _fit_by_candidate(resources["tracking"], meta["mlflow_parent_run_id"]),
        })
    return {"rows": rows, "ingest_seconds": ingest_seconds, "store_seconds": store_seconds, "runs": results,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def _fit_by_candidate(tracking, parent_run_id: str) -> dict[str, float]:
    client = tracking.client()
    parent = client.get_run(parent_run_id)
    return {k.removesuffix(".fit_seconds"): round(v, 2) for k, v in parent.data.metrics.items()
            if k.endswith(".fit_seconds")}


def report(result: dict) -> None:
    print(f"\n{result['rows']:,} rows: ingest {result['ingest_seconds']:.0f}s (not part of the model asset), "
          f"MLflow store created in {result['store_seconds']:.1f}s, peak RSS {result['peak_rss_mb']:.0f} MiB")
    phases = ("reading", "fitting", "evaluating", "mlflow_logging", "promotion")
    print("  run  " + "".join(f"{p:>15}" for p in phases) + f"{'wall':>9}{'overhead':>10}  winner (scores)")
    for i, run in enumerate(result["runs"], 1):
        t = run["timings"]
        overhead = (t["mlflow_logging"] + t["promotion"]) / t["fitting"]
        scores = f"challenger {run['challenger_score']:.4f}"
        if run["champion_score"] is not None:
            scores += f" vs champion {run['champion_score']:.4f}"
        print(f"  {i:>3}  " + "".join(f"{t[p]:>14.2f}s" for p in phases) + f"{run['wall']:>8.1f}s{overhead:>10.1%}"
              f"  {run['winner']} v{run['version']} ({scores}; {'promoted' if run['promoted'] else 'rejected'})")
        print("       fit seconds by candidate: " + ", ".join(f"{k} {v}" for k, v in run["fit_by_candidate"].items()))
        print("       mlflow_logging by part:   " + ", ".join(f"{k} {v:.2f}" for k, v in run["logging_detail"].items()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--candidates", nargs="+", help="default: the spec's candidates")
    parser.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--home", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.runs, args.home, args.candidates)))
        return
    print(f"cores {os.cpu_count()}; transactions, {ROWS_PER_DAY:,} rows a day; {args.runs} model runs per size")
    progress = Progress("  sizes", len(args.rows), "sizes", every=0)
    for rows in args.rows:
        with tempfile.TemporaryDirectory(prefix="mlops-bench-train-") as tmp:
            out = subprocess.run(
                [sys.executable, __file__, "--worker", str(rows), "--runs", str(args.runs), "--home", tmp,
                 *(["--candidates", *args.candidates] if args.candidates else [])],
                capture_output=True, text=True,
            )
            if out.returncode != 0:
                sys.exit(f"benchmark worker for {rows:,} rows failed:\n{out.stderr[-4000:]}")
            report(json.loads(out.stdout.strip().splitlines()[-1]))
            progress.advance(rows=rows)


if __name__ == "__main__":
    main()
