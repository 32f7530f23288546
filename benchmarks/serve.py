"""Serving benchmark: our Bento (`bentoml serve <tag>`) against a minimal FastAPI + uvicorn app on the same model.

    python benchmarks/serve.py                 # the transactions Bento of $MLOPS_HOME (make demo first)
    python benchmarks/serve.py --demo          # builds a small demo in a temporary home first (~1-2 min)

For `/predict` (one record per request) and `/predict_batch` (`--batch-rows` records per request, as
records and, ours only, as columns), at each concurrency (1, 8, 32), the two servers run side by side in
the same run, one worker each, the same model-thread cap (`--model-threads`, default 1), loaded by the same
generator in alternating rounds (`--rounds`, default 3; the ratio is the median of the rounds' ratios, so
a change in the machine's load hits both sides). In-process `predict_proba` on the same model is the
floor (what a request costs with no server at all). The script prints throughput, p50/p99 latency and
non-2xx counts, and the ratios ours / FastAPI. These 2-core machines are shared and noisy: compare ratios
measured in one run, not absolute numbers across runs.

Load generator: `wrk` (Debian package `wrk`; closed loop, N connections, `--timeout 30s`) when it is on
PATH, else an asyncio + httpx client (`--load python`), which costs more CPU on the same cores.
The benchmark's own predictions go to a temporary MLOPS_HOME, not to the home's prediction log.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

WRK_SCRIPT = """
local f = assert(io.open("{body}", "rb"))
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = f:read("*a")
f:close()
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('RESULT {{"requests": %d, "seconds": %f, "p50_us": %d, "p99_us": %d, "non_2xx": %d, '
    .. '"socket_errors": %d}}\\n', summary.requests, summary.duration / 1e6, latency:percentile(50),
    latency:percentile(99), e.status, e.connect + e.read + e.write + e.timeout))
end
"""


# ---- the baseline: a minimal FastAPI app, as most people would write it -----------------------------


def baseline_app(model_tag: str):
    """FastAPI + uvicorn serving the same Bento model: one `predict_proba` per request, no batching, no log."""
    import bentoml
    import pandas as pd
    from fastapi import FastAPI
    from pydantic import BaseModel

    stored = bentoml.models.get(model_tag)
    pipeline = bentoml.sklearn.load_model(stored)
    features = [c["name"] for c in json.loads(stored.info.metadata["input_schema"]) if c["required"]]
    threshold = float(stored.info.metadata.get("decision_threshold", 0.5))
    app = FastAPI()

    class Body(BaseModel):
        records: list[dict]

    def score(body):
        probabilities = pipeline.predict_proba(pd.DataFrame.from_records(body.records, columns=features))[:, 1]
        return {"predictions": (probabilities >= threshold).tolist(), "probabilities": probabilities.round(6).tolist()}

    score.__annotations__ = {"body": Body}  # a local class: FastAPI cannot resolve it from a string annotation

    app.post("/predict")(score)
    app.post("/predict_batch")(score)
    return app


# ---- servers -----------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def server(cmd: list[str], env: dict[str, str], url: str, log: Path, timeout: float = 180):
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                                cwd=log.parent)
        try:
            wait_ready(proc, url, log, timeout)
            yield proc
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)


def wait_ready(proc: subprocess.Popen, url: str, log: Path, timeout: float) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited: {log.read_text()[-2000:]}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=2).status_code == 200:
                return
        time.sleep(0.5)
    raise SystemExit(f"server not ready in {timeout:.0f} s: {log.read_text()[-2000:]}")


# ---- load --------------------------------------------------------------------------------------------


def run_wrk(url: str, body_file: Path, concurrency: int, seconds: float) -> dict:
    script = body_file.with_suffix(".lua")
    script.write_text(WRK_SCRIPT.format(body=body_file))
    threads = min(concurrency, 2)
    out = subprocess.run(["wrk", f"-t{threads}", f"-c{concurrency}", f"-d{seconds:.0f}s", "--timeout", "30s",
                          "-s", str(script), url], capture_output=True, text=True, check=True).stdout
    line = next(x for x in out.splitlines() if x.startswith("RESULT "))
    raw = json.loads(line[len("RESULT "):])
    return {"requests": raw["requests"], "seconds": raw["seconds"], "p50_ms": raw["p50_us"] / 1000,
            "p99_ms": raw["p99_us"] / 1000, "non_2xx": raw["non_2xx"], "socket_errors": raw["socket_errors"]}


def run_python(url: str, body_file: Path, concurrency: int, seconds: float) -> dict:
    import httpx

    body = body_file.read_bytes()

    async def main() -> dict:
        latencies: list[float] = []
        bad = 0
        deadline = time.perf_counter() + seconds
        limits = httpx.Limits(max_connections=concurrency)
        async with httpx.AsyncClient(limits=limits, timeout=30) as client:
            async def worker() -> None:
                nonlocal bad
                while time.perf_counter() < deadline:
                    started = time.perf_counter()
                    response = await client.post(url, content=body, headers={"content-type": "application/json"})
                    latencies.append(time.perf_counter() - started)
                    bad += not response.is_success

            started = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(concurrency)))
            elapsed = time.perf_counter() - started
        latencies.sort()
        return {"requests": len(latencies), "seconds": elapsed, "p50_ms": 1000 * latencies[len(latencies) // 2],
                "p99_ms": 1000 * latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
                "non_2xx": bad, "socket_errors": 0}

    return asyncio.run(main())


# ---- the floor ---------------------------------------------------------------------------------------


def floor(model_tag: str, records: list[dict], batch: list[dict], seconds: float) -> dict:
    """In-process `predict_proba` on the same model: the cost of a request without any server."""
    import bentoml
    import pandas as pd

    stored = bentoml.models.get(model_tag)
    pipeline = bentoml.sklearn.load_model(stored)
    features = [c["name"] for c in json.loads(stored.info.metadata["input_schema"]) if c["required"]]
    result = {}
    for name, rows in (("predict", records), ("predict_batch", batch)):
        frame = pd.DataFrame.from_records(rows, columns=features)
        pipeline.predict_proba(frame)
        times: list[float] = []
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            pipeline.predict_proba(frame)
            times.append(time.perf_counter() - started)
        times.sort()
        mean = statistics.fmean(times)
        result[name] = {"requests": len(times), "seconds": sum(times), "p50_ms": 1000 * times[len(times) // 2],
                        "p99_ms": 1000 * times[min(len(times) - 1, int(len(times) * 0.99))], "non_2xx": 0,
                        "socket_errors": 0, "per_second": 1 / mean, "rows_per_second": len(rows) / mean}
    return result


# ---- the run -----------------------------------------------------------------------------------------


def example_rows(home, spec, n: int) -> list[dict]:
    """`n` real cleaned rows (input columns only), repeated if the warehouse holds fewer."""
    from mlops_assets.definitions import local_resources
    from mlops_assets.tables import q, table

    columns = spec.feature_names
    with local_resources(home)["warehouse"].connect(read_only=True) as con:
        frame = con.execute(f"SELECT {', '.join(q(c) for c in columns)} FROM {table(spec, 'cleaned')} "
                            f"USING SAMPLE reservoir({int(n)} ROWS) REPEATABLE (7)").df()
    rows = json.loads(frame.to_json(orient="records"))
    return (rows * (n // max(1, len(rows)) + 1))[:n]


def latest_bento(bentoml, spec) -> tuple[str, str]:
    """(bento tag, model tag) of the newest Bento built for `spec`."""
    bentos = [b for b in bentoml.bentos.list() if b.tag.name == spec.bento_service_name]
    if not bentos:
        raise SystemExit(f"no {spec.name} Bento in {os.environ['BENTOML_HOME']}: run `make demo` first, "
                         "or pass --demo to build one in a temporary home")
    bento = max(bentos, key=lambda b: b.info.creation_time)
    return str(bento.tag), str(bento.info.services[0].models[0].tag)


def build_demo(root: Path) -> None:
    import dagster as dg

    from mlops_assets.cli.runner import Runner, run_demo
    from mlops_assets.datasets.spec import load_specs
    from mlops_assets.definitions import build_definitions
    from mlops_assets.home import MlopsHome

    home = MlopsHome(root).ensure()
    specs = load_specs()
    runner = Runner(build_definitions(home, specs), dg.DagsterInstance.get(), home, log_level="CRITICAL")
    run_demo(runner, {k: v for k, v in specs.items()}, days=4, drift_days=1, rows_per_day=4000)


def combine(runs: list[dict]) -> dict:
    """Rounds of one contender: throughput over all of them, median p50/p99, every non-2xx."""
    return {"requests": sum(r["requests"] for r in runs), "seconds": sum(r["seconds"] for r in runs),
            "per_second": sum(r["requests"] for r in runs) / sum(r["seconds"] for r in runs),
            "p50_ms": statistics.median(r["p50_ms"] for r in runs), "p99_ms": statistics.median(r["p99_ms"] for r in runs),
            "non_2xx": sum(r["non_2xx"] for r in runs), "socket_errors": sum(r["socket_errors"] for r in runs)}


def table_rows(results: list[dict]) -> str:
    lines = ["| endpoint | rows/request | concurrency | server | requests/s | rows/s | p50 ms | p99 ms | non-2xx |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in results:
        lines.append(f"| /{r['endpoint']} | {r['rows']} | {r['concurrency']} | {r['server']} | {r['per_second']:.0f} | "
                     f"{r['rows_per_second']:.0f} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | "
                     f"{r['non_2xx'] + r['socket_errors']} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="transactions")
    parser.add_argument("--demo", action="store_true", help="build a small demo in a temporary home first")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--seconds", type=float, default=5.0, help="per measurement")
    parser.add_argument("--rounds", type=int, default=3, help="alternating measurements per contender and cell")
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--batch-rows", type=int, default=5000)
    parser.add_argument("--load", choices=["wrk", "python"], default="wrk" if shutil.which("wrk") else "python")
    parser.add_argument("--model-threads", type=int, default=1,
                        help="native (OpenMP) threads per model call, the same for all three contenders")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--baseline-app", help=argparse.SUPPRESS)  # internal: run the FastAPI baseline
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.baseline_app:
        import uvicorn

        uvicorn.run(baseline_app(args.baseline_app), host="127.0.0.1", port=args.port, workers=1)
        return 0

    from mlops_assets.datasets.spec import load_specs
    from mlops_assets.home import MlopsHome

    work = Path(tempfile.mkdtemp(prefix="mlops-bench-serve-"))
    if args.demo:
        os.environ["MLOPS_HOME"] = str(work / "home")
        os.environ["DAGSTER_HOME"] = str(work / "home" / "dagster")
    home = MlopsHome.from_env()
    home.export_env()
    if args.demo:
        print(f"building a small demo in {home.root} ...", flush=True)
        build_demo(home.root)
    import bentoml

    spec = load_specs()[args.dataset]
    bento_tag, model_tag = latest_bento(bentoml, spec)
    one = example_rows(home, spec, 1)
    batch = example_rows(home, spec, args.batch_rows)
    columns = {k: [r[k] for r in batch] for k in batch[0]}
    bodies = {"predict": work / "one.json", "predict_batch": work / "batch.json",
              "predict_batch (columns)": work / "columns.json"}
    bodies["predict"].write_text(json.dumps({"records": one}))
    bodies["predict_batch"].write_text(json.dumps({"records": batch}))
    bodies["predict_batch (columns)"].write_text(json.dumps({"columns": columns}))
    rows = {"predict": 1, "predict_batch": len(batch), "predict_batch (columns)": len(batch)}

    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=args.model_threads):  # first: nothing else of ours runs yet
        floor_results = floor(model_tag, one, batch, args.seconds * args.rounds)
    bin_dir = Path(sys.executable).parent
    ours_port, base_port = free_port(), free_port()
    env = {**os.environ, "BENTOML_HOME": str(home.bentoml_home), "MLOPS_HOME": str(work / "served"),
           "BENTOML_DO_NOT_TRACK": "True", "MLOPS_MODEL_THREADS": str(args.model_threads),
           "OMP_NUM_THREADS": str(args.model_threads)}
    load = run_wrk if args.load == "wrk" else run_python
    print(f"{bento_tag} (model {model_tag}) vs FastAPI + uvicorn, one worker each, {args.model_threads} model "
          f"thread(s); load: {args.load}; {os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.1f}", flush=True)
    results: list[dict] = []
    ours = server([str(bin_dir / "bentoml"), "serve", bento_tag, "--host", "127.0.0.1", "--port", str(ours_port)],
                  env, f"http://127.0.0.1:{ours_port}/readyz", work / "ours.log")
    base = server([sys.executable, __file__, "--baseline-app", model_tag, "--port", str(base_port)],
                  env, f"http://127.0.0.1:{base_port}/docs", work / "baseline.log")
    ratios: list[tuple[str, int, float]] = []
    with ours, base:
        for endpoint in ("predict", "predict_batch", "predict_batch (columns)"):
            for concurrency in args.concurrency:
                contenders = [("bentoml (ours)", ours_port)]
                if endpoint != "predict_batch (columns)":  # the baseline takes records only
                    contenders.append(("fastapi", base_port))
                rounds: dict[str, list[dict]] = {name: [] for name, _ in contenders}
                for _ in range(args.rounds):  # alternate, so a change in the machine's load hits both sides
                    for name, port in contenders:
                        url = f"http://127.0.0.1:{port}/{endpoint.split(' ')[0]}"
                        load(url, bodies[endpoint], min(concurrency, 8), args.warmup)
                        rounds[name].append(load(url, bodies[endpoint], concurrency, args.seconds))
                for name, runs in rounds.items():
                    r = combine(runs)
                    per_second = r["per_second"]
                    results.append({"endpoint": endpoint, "rows": rows[endpoint], "concurrency": concurrency,
                                    "server": name, **r, "rows_per_second": per_second * rows[endpoint]})
                    print(f"  /{endpoint:<23} c={concurrency:<3} {name:<15} {per_second:8.0f} req/s "
                          f"{per_second * rows[endpoint]:10.0f} rows/s  p50 {r['p50_ms']:7.1f} ms  "
                          f"p99 {r['p99_ms']:7.1f} ms  non-2xx {r['non_2xx'] + r['socket_errors']}", flush=True)
                if len(rounds) == 2:
                    ratios.append((endpoint, concurrency, statistics.median(
                        (a["requests"] / a["seconds"]) / (b["requests"] / b["seconds"])
                        for a, b in zip(rounds["bentoml (ours)"], rounds["fastapi"]))))
    for endpoint, r in floor_results.items():
        results.append({"endpoint": endpoint, "rows": rows[endpoint], "concurrency": 1,
                        "server": "in-process predict_proba (floor)", **r})

    print("\n" + table_rows(results))
    print(f"\nratios, ours / FastAPI (throughput; median of {args.rounds} alternating rounds):")
    for endpoint, concurrency, ratio in ratios:
        pair = {r["server"]: r for r in results if r["endpoint"] == endpoint and r["concurrency"] == concurrency}
        print(f"  /{endpoint:<23} c={concurrency:<3} {ratio:5.2f}x   (p99 ours {pair['bentoml (ours)']['p99_ms']:.1f} ms, "
              f"FastAPI {pair['fastapi']['p99_ms']:.1f} ms)")
    for endpoint, r in floor_results.items():
        print(f"  floor /{endpoint}: {r['per_second']:.0f} calls/s, {r['rows_per_second']:.0f} rows/s, "
              f"p50 {r['p50_ms']:.1f} ms, p99 {r['p99_ms']:.1f} ms")
    if args.json:
        args.json.write_text(json.dumps({"results": results, "ratios": ratios}, indent=2))
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
