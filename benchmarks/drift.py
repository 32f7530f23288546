"""Drift report time and peak memory against a direct per-column scipy computation, in the same run.

    .venv/bin/python benchmarks/drift.py [--reference-rows 100000 1000000 10000000] [--current-rows 1000000]

For each reference size, a DuckDB table of 20 columns (15 numerical, 5 categorical; the current side
shifted on a third of them) is generated once; then each contender runs in a fresh subprocess (so
peak RSS is its own):
  ours   the drift_report path: partition-first seeded samples within the spec's row budget, then
         Evidently's DataDriftPreset (Wasserstein / Jensen-Shannon) and the self-contained HTML report
  scipy  the floor: every row of both sides read into numpy, then per column scipy's KS test and
         Wasserstein distance (numerical) or Jensen-Shannon distance (categorical); no report
Prints seconds, peak RSS and the ratios ours/scipy of both (time target: 10M x 1M under 60 s, within 3x of scipy).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as a script from a checkout: this checkout's package, installed or not
    sys.path.insert(0, str(REPO))

from mlops_assets.progress import Progress  # noqa: E402 (needs the path above)

NUMERICAL = [f"x{i}" for i in range(15)]
CATEGORICAL = [f"k{i}" for i in range(5)]
LEVELS = ["a", "b", "c", "d", "e", "f"]


def bench_spec():
    from mlops_assets.datasets.spec import DatasetSpec

    columns = [{"name": c, "type": "float"} for c in NUMERICAL]
    columns += [{"name": c, "type": "category", "values": LEVELS} for c in CATEGORICAL]
    columns.append({"name": "y", "type": "boolean", "role": "target"})
    return DatasetSpec.model_validate({
        "name": "bench", "source": {"kind": "file_drop"}, "partitioning": {"kind": "files"},
        "task": "classification", "target": "y", "columns": columns, "training": {"primary_metric": "roc_auc"},
    })


def make_table(db: Path, reference_rows: int, current_rows: int) -> None:
    """`bench.cleaned` with partitions `reference` and `current` (the current side shifted on 5 + 2 columns)."""
    import duckdb

    con = duckdb.connect(str(db))
    con.execute("CREATE SCHEMA IF NOT EXISTS bench")

    def side(partition: str, rows: int, shift: float) -> str:
        numbers = ", ".join(
            f"(random() + random() + random() - 1.5) * {1 + i % 4} + {shift if i < 5 else 0} AS x{i}" for i in range(15)
        )
        cats = ", ".join(
            f"CASE WHEN random() < {0.35 if (i < 2 and shift) else 0.0} THEN 'f' "
            f"ELSE ['a','b','c','d','e'][1 + CAST(floor(random() * 5) AS INT)] END AS k{i}" for i in range(5)
        )
        return f"SELECT {numbers}, {cats}, random() < 0.1 AS y, '{partition}' AS _partition FROM range({rows})"

    con.execute(f"CREATE OR REPLACE TABLE bench.cleaned AS {side('reference', reference_rows, 0.0)} "
                f"UNION ALL {side('current', current_rows, 0.6)}")
    con.close()


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_ours(db: Path, out: Path) -> dict:
    import duckdb

    from mlops_assets.monitoring.drift import run_drift_report, sample_partition

    spec = bench_spec()
    started = time.perf_counter()
    con = duckdb.connect(str(db), read_only=True)
    reference, _ = sample_partition(con, spec, "reference", spec.drift.sample_rows)
    current, _ = sample_partition(con, spec, "current", spec.drift.sample_rows)
    con.close()
    sampled = time.perf_counter()
    summary = run_drift_report(spec, current, reference, out / "report.html")
    return {"seconds": time.perf_counter() - started, "sample_seconds": sampled - started,
            "drifted": summary.drifted_columns, "share": summary.drift_share, "peak_rss_mb": peak_rss_mb(),
            "rows_per_side": [len(reference), len(current)]}


def run_scipy(db: Path) -> dict:
    import duckdb
    import numpy as np
    from scipy import stats
    from scipy.spatial import distance

    started = time.perf_counter()
    con = duckdb.connect(str(db), read_only=True)
    drifted = []
    for column in NUMERICAL:
        ref = con.execute(f"SELECT {column} FROM bench.cleaned WHERE _partition = 'reference'").fetchnumpy()[column]
        cur = con.execute(f"SELECT {column} FROM bench.cleaned WHERE _partition = 'current'").fetchnumpy()[column]
        stats.ks_2samp(ref, cur)
        normed = stats.wasserstein_distance(ref, cur) / (np.std(ref) or 1.0)
        if normed >= 0.1:
            drifted.append(column)
    for column in CATEGORICAL:
        counts = dict(((p, v), n) for p, v, n in con.execute(
            f"SELECT _partition, {column}, count(*) FROM bench.cleaned GROUP BY ALL").fetchall())
        ref = np.array([counts.get(("reference", v), 0) for v in LEVELS], dtype=float)
        cur = np.array([counts.get(("current", v), 0) for v in LEVELS], dtype=float)
        if distance.jensenshannon(ref / ref.sum(), cur / cur.sum()) >= 0.1:
            drifted.append(column)
    con.close()
    return {"seconds": time.perf_counter() - started, "drifted": sorted(drifted), "peak_rss_mb": peak_rss_mb()}


def worker(kind: str, db: Path, out: Path) -> None:
    print(json.dumps(run_ours(db, out) if kind == "ours" else run_scipy(db)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference-rows", type=int, nargs="+", default=[100_000, 1_000_000, 10_000_000])
    parser.add_argument("--current-rows", type=int, default=1_000_000)
    parser.add_argument("--worker", choices=["ours", "scipy"])
    parser.add_argument("--db", type=Path)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.db, args.out)
        return

    print(f"cores {os.cpu_count()}; 20 columns (15 numerical, 5 categorical); current side {args.current_rows:,} rows")
    with tempfile.TemporaryDirectory(prefix="mlops-bench-drift-") as tmp:
        workdir = Path(tmp)
        for rows in args.reference_rows:
            db = workdir / "drift_bench.duckdb"
            t0 = time.perf_counter()
            make_table(db, rows, args.current_rows)
            print(f"\nreference {rows:,} rows x current {args.current_rows:,} rows (generated in "
                  f"{time.perf_counter() - t0:.0f}s)")
            results = {}
            progress = Progress(f"  reference {rows:,} rows", 2, "measurements", every=0)
            for kind in ("scipy", "ours"):
                done = subprocess.run([sys.executable, __file__, "--worker", kind, "--db", str(db), "--out", tmp],
                                      capture_output=True, text=True, check=True)
                results[kind] = json.loads(done.stdout.strip().splitlines()[-1])
                progress.advance(rows=rows + args.current_rows)
            ours, floor = results["ours"], results["scipy"]
            print(f"  scipy, every row   {floor['seconds']:7.2f}s  peak RSS {floor['peak_rss_mb']:6.0f} MiB  "
                  f"drifted {len(floor['drifted'])}")
            print(f"  ours (Evidently)   {ours['seconds']:7.2f}s  peak RSS {ours['peak_rss_mb']:6.0f} MiB  "
                  f"drifted {len(ours['drifted'])} (share {ours['share']:.2f}); sampling {ours['sample_seconds']:.2f}s, "
                  f"{ours['rows_per_side'][0]:,} / {ours['rows_per_side'][1]:,} rows per side")
            print(f"  ratio ours/scipy: time {ours['seconds'] / floor['seconds']:.2f}x (target <= 3x), "
                  f"peak RSS {ours['peak_rss_mb'] / floor['peak_rss_mb']:.2f}x; "
                  f"same drifted columns: {ours['drifted'] == floor['drifted']}")
            db.unlink()


if __name__ == "__main__":
    main()
