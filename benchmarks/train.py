"""Where the model asset's time goes: reading, fitting, evaluating, MLflow logging and the registry.

    .venv/bin/python benchmarks/train.py [--rows 100000 1000000] [--runs 2]

For each size, in a fresh MLOPS_HOME: one process generates transactions (100k rows a day), ingests
them through the real ingest assets and creates the MLflow store once (as a deployment has it); then a
second, fresh process materializes `transactions/model` `--runs` times with the shipped spec (3
candidates + the dummy baseline). Run 1 of that process is what every Dagster run is (a fresh process
that has imported nothing of MLflow yet, and no champion exists); later runs are warm (MLflow's
once-per-process costs paid) and also load and score the champion on the same held-out rows. The
split comes from the asset's own `timings`, `cpu_seconds` and `mlflow_warm_up` metadata:

  mlflow_setup    MLflow's first contact in the run (its import, the store; ending runs of dead processes)
  reading         features + reference sample + lineage out of DuckDB
  fitting         every candidate's `fit` (and its validation predictions, in CPU seconds)
  evaluating      predictions and metrics on the held-out rows, permutation importances of the winner
  mlflow_logging  parent + child runs, model (skops), reference, plots, lineage, registration, alias
  promotion       read the champion, load it from the registry, lock, compare-and-set the alias, tags
                  (predicting with the champion on the held-out rows is counted in evaluating)
  warm-up         the background thread that pays MLflow's once-per-process costs (imports, the
                  first save_model's distribution scan) while the candidates fit (run 1 only)

Two overheads, both against fitting:
  wall  (mlflow_setup + mlflow_logging + promotion) / fitting, in wall seconds. On run 1 the warm-up
        runs during fitting: with no spare core it slows fitting down instead of showing up here.
  cpu   (warm-up thread + mlflow_setup + mlflow_logging + promotion, CPU seconds of every thread) /
        CPU seconds of the fitting thread. This books the warm-up as MLflow's wherever it ran. With
        OMP_NUM_THREADS=1 the fitting thread does all the fitting.
The target is under 10% at 1M rows.
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


def prepare(rows: int, root: Path) -> dict:
    """Data and store for the model runs, in a process of its own (the model runs' process stays fresh)."""
    os.environ["MLOPS_HOME"] = str(root)
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
    return {"ingest_seconds": ingest_seconds, "store_seconds": time.perf_counter() - t0}


def worker(rows: int, runs: int, root: Path, candidates: list[str] | None) -> dict:
    """`runs` model materializations in this (fresh) process."""
    os.environ["MLOPS_HOME"] = str(root)
    os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = "false"
    t0 = time.perf_counter()
    import dagster as dg

    from mlops_assets.datasets.factory import build_dataset
    from mlops_assets.datasets.spec import load_specs
    from mlops_assets.definitions import local_resources
    from mlops_assets.home import MlopsHome
    from mlops_assets.stages import Stage, asset_key, metadata_values

    assert "mlflow" not in sys.modules, "run 1 must find MLflow not imported, as a Dagster run does"
    home = MlopsHome(root).ensure()
    spec = load_specs()["transactions"]
    dataset = build_dataset(spec)
    resources = local_resources(home)
    instance = dg.DagsterInstance.ephemeral()
    imports_seconds = time.perf_counter() - t0

    model = next(a for a in dataset.assets if a.key == asset_key(spec.name, Stage.MODEL))
    results = []
    for _ in range(runs):
        t0 = time.perf_counter()
        config = {"candidates": candidates} if candidates else {}
        result = dg.materialize([model], resources=resources, instance=instance, raise_on_error=False,
                                run_config={"ops": {"transactions__model": {"config": config}}})
        wall = time.perf_counter() - t0
        meta = metadata_values(result.get_asset_materialization_events()[-1].materialization)
        results.append({
            "wall": wall, "timings": meta["timings"], "cpu": meta["cpu_seconds"], "warm_up": meta["mlflow_warm_up"],
            "logging_detail": meta["mlflow_logging_detail"], "winner": meta["winner"], "version": meta["version"],
            "promoted": meta["champion"], "challenger_score": meta["challenger_score"],
            "champion_score": meta.get("champion_score"), "rows_train": meta["rows_train"],
            "rows_validation": meta["rows_validation"],
            "fit_by_candidate": _fit_by_candidate(resources["tracking"], meta["mlflow_parent_run_id"]),
        })
    return {"rows": rows, "imports_seconds": imports_seconds, "runs": results,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def _fit_by_candidate(tracking, parent_run_id: str) -> dict[str, float]:
    client = tracking.client()
    parent = client.get_run(parent_run_id)
    return {k.removesuffix(".fit_seconds"): round(v, 2) for k, v in parent.data.metrics.items()
            if k.endswith(".fit_seconds")}


def overheads(run: dict) -> tuple[float, float, float]:
    """(wall overhead, cpu overhead, MLflow CPU seconds) of one run; see the module docstring."""
    t, cpu, warm = run["timings"], run["cpu"], run["warm_up"]
    wall = (t["mlflow_setup"] + t["mlflow_logging"] + t["promotion"]) / t["fitting"]
    mlflow_cpu = warm.get("cpu", 0.0) + sum(cpu[p]["process"] for p in ("mlflow_setup", "mlflow_logging", "promotion"))
    return wall, mlflow_cpu / cpu["fitting"]["thread"], mlflow_cpu


def report(result: dict) -> None:
    print(f"\n{result['rows']:,} rows: ingest {result['ingest_seconds']:.0f}s (not part of the model asset), "
          f"MLflow store created in {result['store_seconds']:.1f}s; model-run process: imports before run 1 "
          f"{result['imports_seconds']:.1f}s, peak RSS {result['peak_rss_mb']:.0f} MiB; load average "
          f"{result['load'][0]:.1f} before, {result['load'][1]:.1f} after")
    phases = ("mlflow_setup", "reading", "fitting", "evaluating", "mlflow_logging", "promotion")
    print("  run         " + "".join(f"{p:>15}" for p in phases) + f"{'warm-up':>10}{'wall':>9}{'overhead':>10}")
    for i, run in enumerate(result["runs"], 1):
        t, cpu, warm = run["timings"], run["cpu"], run["warm_up"]
        wall_overhead, cpu_overhead, mlflow_cpu = overheads(run)
        kind = "fresh" if i == 1 else "warm"
        print(f"  {i:>3} {kind:<5} s  " + "".join(f"{t[p]:>14.2f}s" for p in phases)
              + f"{warm.get('wall', 0.0):>9.2f}s{run['wall']:>8.1f}s{wall_overhead:>10.1%}")
        print("          cpu s  " + "".join(f"{cpu[p]['process']:>14.2f}s" if p in cpu else f"{'-':>15}" for p in phases)
              + f"{warm.get('cpu', 0.0):>9.2f}s{'':>9}{cpu_overhead:>10.1%}"
              + f"   (fitting thread {cpu['fitting']['thread']:.2f}s; MLflow {mlflow_cpu:.2f}s)")
        scores = f"challenger {run['challenger_score']:.4f}"
        if run["champion_score"] is not None:
            scores += f" vs champion {run['champion_score']:.4f}"
        print(f"       {run['winner']} v{run['version']} ({scores}; {'promoted' if run['promoted'] else 'rejected'})")
        print("       fit seconds by candidate: " + ", ".join(f"{k} {v}" for k, v in run["fit_by_candidate"].items()))
        print("       mlflow_logging by part:   " + ", ".join(f"{k} {v:.2f}" for k, v in run["logging_detail"].items()))
        if warm:
            print("       warm-up CPU by step:      " + ", ".join(
                f"{k.removeprefix('cpu.')} {v:.2f}" for k, v in warm.items() if k.startswith("cpu.")))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--candidates", nargs="+", help="default: the spec's candidates")
    parser.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--prepare", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--home", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.prepare:
        print(json.dumps(prepare(args.prepare, args.home)))
        return
    if args.worker:
        print(json.dumps(worker(args.worker, args.runs, args.home, args.candidates)))
        return
    print(f"cores {os.cpu_count()}; transactions, {ROWS_PER_DAY:,} rows a day; {args.runs} model runs per size")
    progress = Progress("  sizes", len(args.rows), "sizes", every=0)
    for rows in args.rows:
        with tempfile.TemporaryDirectory(prefix="mlops-bench-train-") as tmp:
            prepared = _child(["--prepare", str(rows), "--home", tmp], rows)
            load_before = os.getloadavg()[0]
            result = _child(["--worker", str(rows), "--runs", str(args.runs), "--home", tmp,
                             *(["--candidates", *args.candidates] if args.candidates else [])], rows)
            report({**prepared, **result, "load": (load_before, os.getloadavg()[0])})
            progress.advance(rows=rows)


def _child(arguments: list[str], rows: int) -> dict:
    out = subprocess.run([sys.executable, __file__, *arguments], capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"benchmark {arguments[0]} for {rows:,} rows failed:\n{out.stderr[-4000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    main()
