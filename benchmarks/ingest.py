"""Raw-to-cleaned ingest throughput and peak memory against a bare DuckDB `read_csv`, in the same run.

    .venv/bin/python benchmarks/ingest.py [--rows 1000000 10000000] [--repeats 3] [--memory-limit 1GB]

For each size, a transactions CSV is generated once; then, alternating, each contender runs in a
fresh subprocess (so peak RSS is its own):
  bare  CREATE TABLE t AS SELECT * FROM read_csv(file)          (DuckDB auto-detection, typed columns)
  ours  raw (sniff, hash, contract) -> cleaned (one typed scan with rejects, checks, quarantine) -> pandera,
        published to the warehouse as it runs (a DuckLake: SQLite catalog, Parquet files)
Prints rows/s, peak RSS, the ratio ours/bare and the share of ingest time spent sniffing.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as a script from a checkout: this checkout's package, installed or not
    sys.path.insert(0, str(REPO))

from mlops_assets.progress import Progress  # noqa: E402 (needs the path above)


def make_csv(path: Path, rows: int) -> None:
    from mlops_assets.datasets.generator import generate_day

    chunk = 100_000
    day = dt.date(2026, 1, 1)
    with path.open("w", encoding="utf-8", newline="") as handle:
        written = 0
        while written < rows:
            n = min(chunk, rows - written)
            frame = generate_day(day + dt.timedelta(days=written // chunk), n, seed=1)
            frame.to_csv(handle, index=False, header=written == 0, date_format="%Y-%m-%d %H:%M:%S", lineterminator="\n")
            written += n


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def worker(kind: str, csv_path: Path, db_path: Path, memory_limit: str) -> dict:
    import duckdb

    if kind == "bare":
        started = time.perf_counter()
        con = duckdb.connect(str(db_path), config={"memory_limit": memory_limit})
        con.execute(f"CREATE TABLE t AS SELECT * FROM read_csv('{csv_path}')")
        rows = con.execute("SELECT count(*) FROM t").fetchone()[0]
        con.close()
        return {"seconds": time.perf_counter() - started, "rows": rows, "peak_rss_mb": peak_rss_mb()}

    from mlops_assets.datasets.spec import load_specs
    from mlops_assets.home import MlopsHome
    from mlops_assets.ingest.cleaning import clean_partition
    from mlops_assets.ingest.dialect import sniff_csv
    from mlops_assets.ingest.landing import SNIFF_SAMPLE_BYTES, register_file
    from mlops_assets.resources import LocalWarehouse

    spec = load_specs()["transactions"]
    lake = MlopsHome(db_path)
    warehouse = LocalWarehouse(catalog_path=str(lake.lake_catalog), data_path=str(lake.lake_data),
                               temp_directory=str(lake.scratch), memory_limit=memory_limit)
    # Once per process, not per ingest: load the (signature-checked) DuckDB extensions, attach the lake.
    t0 = time.perf_counter()
    with warehouse.connect():
        pass
    open_seconds = time.perf_counter() - t0
    t0 = time.perf_counter()
    sniff_csv(csv_path, sample_bytes=SNIFF_SAMPLE_BYTES, expected_columns=[c.header for c in spec.columns])
    sniff_seconds = time.perf_counter() - t0
    started = time.perf_counter()
    with warehouse.connect() as con:
        register_file(con, spec, csv_path, "bench")
        raw_done = time.perf_counter()
        cleaned = clean_partition(con, spec, "bench")
    finished = time.perf_counter()
    assert cleaned.rows_read == cleaned.rows_cleaned + cleaned.rows_quarantined
    return {
        "seconds": finished - started,
        "rows": cleaned.rows_cleaned,
        "rows_read": cleaned.rows_read,
        "raw_seconds": raw_done - started,
        "clean_seconds": finished - raw_done,
        "validated": cleaned.rows_validated,
        "sniff_seconds": sniff_seconds,
        "open_seconds": open_seconds,
        "peak_rss_mb": peak_rss_mb(),
    }


def run_worker(kind: str, csv_path: Path, workdir: Path, memory_limit: str) -> dict:
    import shutil

    db = workdir / (f"{kind}.duckdb" if kind == "bare" else f"{kind}-lake")
    for leftover in workdir.glob(f"{db.name}*"):
        shutil.rmtree(leftover) if leftover.is_dir() else leftover.unlink()
    out = subprocess.run(
        [sys.executable, __file__, "--worker", kind, "--csv", str(csv_path), "--db", str(db), "--memory-limit", memory_limit],
        capture_output=True, text=True, check=True,
    )
    for leftover in workdir.glob(f"{db.name}*"):
        shutil.rmtree(leftover) if leftover.is_dir() else leftover.unlink()
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--memory-limit", default="1GB", help="DuckDB memory_limit for both contenders")
    parser.add_argument("--worker", choices=["bare", "ours"])
    parser.add_argument("--csv", type=Path)
    parser.add_argument("--db", type=Path)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.csv, args.db, args.memory_limit)))
        return

    print(f"cores {os.cpu_count()}, DuckDB memory_limit {args.memory_limit}, repeats {args.repeats}")
    with tempfile.TemporaryDirectory(prefix="mlops-bench-") as tmp:
        workdir = Path(tmp)
        for rows in args.rows:
            csv_path = workdir / f"transactions_{rows}.csv"
            t0 = time.perf_counter()
            make_csv(csv_path, rows)
            size_mb = csv_path.stat().st_size / 2**20
            print(f"\n{rows:,} rows, {size_mb:,.0f} MiB CSV (generated in {time.perf_counter() - t0:.0f}s)")
            repeats = args.repeats if rows <= 2_000_000 else 1
            results: dict[str, list[dict]] = {"bare": [], "ours": []}
            progress = Progress(f"  {rows:,} rows", repeats * 2, "measurements", every=0)
            for _ in range(repeats):
                for kind in ("bare", "ours"):
                    results[kind].append(run_worker(kind, csv_path, workdir, args.memory_limit))
                    progress.advance(rows=rows)
            bare_s = statistics.median(r["seconds"] for r in results["bare"])
            ours_s = statistics.median(r["seconds"] for r in results["ours"])
            ours = min(results["ours"], key=lambda r: abs(r["seconds"] - ours_s))
            bare_mem = max(r["peak_rss_mb"] for r in results["bare"])
            ours_mem = max(r["peak_rss_mb"] for r in results["ours"])
            print(f"  bare DuckDB read_csv   {rows / bare_s:>12,.0f} rows/s  {bare_s:7.2f}s  peak RSS {bare_mem:7.0f} MiB")
            print(f"  ours raw->cleaned      {rows / ours_s:>12,.0f} rows/s  {ours_s:7.2f}s  peak RSS {ours_mem:7.0f} MiB")
            print(f"    raw {ours['raw_seconds']:.2f}s, cleaned {ours['clean_seconds']:.2f}s (pandera-validated "
                  f"{ours['validated']:,} rows), sniff {ours['sniff_seconds']:.3f}s; once per process: opening "
                  f"the lake (extensions + ATTACH) {ours['open_seconds']:.2f}s, not counted")
            print(f"  throughput ratio ours/bare: {bare_s / ours_s:.2f}x (target >= 0.6x)")
            print(f"  sniffing share of ingest time: {ours['sniff_seconds'] / ours_s:.2%} (target < 5%)")
            print(f"  peak memory ratio ours/bare: {ours_mem / bare_mem:.2f}x; CSV size / our peak RSS: {size_mb / ours_mem:.1f}x")


if __name__ == "__main__":
    main()
