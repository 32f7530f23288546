"""BentoML service answering predictions from one dataset's champion, and reporting what it served.

What it serves is fixed when the `<dataset>/bento` asset builds the Bento: the exact model tag and the
service contract (request schema, label schema, where logs go) are the Bento's build arguments, which
`bentoml serve <bento tag>` applies before importing this file. So a Bento stands alone:

    BENTOML_HOME=<store> bentoml serve <bento tag>

For a development loop from this folder, pass the same arguments:
`bentoml serve service:Predictor --arg model_tag=mlops-wine-quality:latest` (the request schema then
comes from the model's metadata at start; `/docs` shows it untyped).

Environment, read when a worker starts (never at import):
- `BENTOML_HOME`: the model store (set by `mlops-assets serve`, `make serve`, or the container).
- `MLOPS_HOME`: the platform home; predictions and feedback are appended under it (at the paths the
  contract records, e.g. `predictions/<dataset>/`). Default: the parent of `BENTOML_HOME`, because a
  platform home keeps its store at `$MLOPS_HOME/bentoml`.
- `MLOPS_API_KEY`: when set, `/predict`, `/predict_batch`, `/lineage` and `/feedback` require it
  (`Authorization: Bearer <key>` or `X-API-Key: <key>`); health, metrics and docs stay open.
- `MLOPS_MAX_REQUEST_BYTES`: bodies above it get a 413 before they are read (default 32 MiB).
- `MLOPS_MODEL_THREADS`: native threads (OpenMP) per model call, default 1 (one worker, about one core).

This file imports the model, never the training code, and uses BentoML's public API only.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import datetime as dt
import gc
import hmac
import itertools
import json
import logging
import os
import re
import secrets
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from pathlib import Path
from typing import Annotated, Any, Literal, NotRequired

import bentoml
from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter
from typing_extensions import TypedDict

log = logging.getLogger("bentoml.mlops")

MAX_RECORDS = 1_000  # per /predict call: online scoring
MAX_BATCH_ROWS = 100_000  # per /predict_batch call: bulk scoring
MAX_MODEL_BATCH_ROWS = 512  # rows per model call when online requests are batched together
DEFAULT_MAX_REQUEST_BYTES = 32 * 2**20
PROTECTED_ROUTES = ("/predict", "/predict_batch", "/lineage", "/feedback")
JSON_ROUTES = frozenset({"/predict", "/predict_batch", "/feedback"})
REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_INT_LIMIT = 2**53  # integers beyond this lose precision in JSON clients and overflow numpy


class ServiceStartError(bentoml.exceptions.BentoMLException):
    """The service cannot start; the message says what to run to fix it."""


# ---- the contract recorded in the Bento (plain JSON; parsing it cannot fail the import) -------------


def _contract_from_args() -> tuple[str | None, dict[str, Any] | None, dict[str, Any], str | None]:
    """(model tag, contract, other build args, problem) from the Bento's build arguments."""
    args = vars(bentoml.use_arguments())
    model_tag = args.get("model_tag") or None
    raw = args.get("contract")
    if raw is None:
        return model_tag, None, args, None
    try:
        contract = json.loads(raw) if isinstance(raw, str) else dict(raw)
    except (TypeError, ValueError) as exc:
        return model_tag, None, args, f"the Bento's `contract` argument is not JSON: {exc}"
    return model_tag, contract, args, None


MODEL_TAG, CONTRACT, BUILD_ARGS, CONTRACT_PROBLEM = _contract_from_args()
SERVICE_NAME = str(BUILD_ARGS.get("service_name") or "mlops-predictor")  # the Bento's name, chosen at packaging


def _input_annotation(column: dict[str, Any]) -> Any:
    """One request field: the spec's type, range and allowed values; JSON types are not coerced."""
    kind = column.get("type")
    if column.get("values"):
        annotation: Any = Literal[tuple(column["values"])]
    elif kind == "integer":
        lo, hi = column.get("min"), column.get("max")
        annotation = Annotated[int, Field(strict=True, ge=-_INT_LIMIT if lo is None else int(lo),
                                          le=_INT_LIMIT if hi is None else int(hi))]
    elif kind == "float":
        bounds = {k: column[v] for k, v in (("ge", "min"), ("le", "max")) if column.get(v) is not None}
        annotation = Annotated[float, Field(strict=True, allow_inf_nan=False, **bounds)]
    elif kind == "boolean":
        annotation = Annotated[bool, Field(strict=True)]
    else:  # string, timestamp, date: carried to the log, not used by the model
        annotation = Annotated[str, Field(strict=True, max_length=256)]
    return annotation if column.get("required") else NotRequired[annotation | None]


def record_type(inputs: list[dict[str, Any]]) -> Any:
    """A TypedDict of one input row (validated to a plain dict: no per-row object to build)."""
    fields = {c["name"]: _input_annotation(c) for c in inputs}
    record = TypedDict("Record", fields)  # type: ignore[misc]
    record.__pydantic_config__ = ConfigDict(extra="forbid")  # type: ignore[attr-defined]
    return record


def columns_type(inputs: list[dict[str, Any]]) -> Any:
    """A TypedDict of one list per input field: the columnar body of /predict_batch, checked like records."""
    fields = {}
    for column in inputs:
        annotation = _input_annotation({**column, "required": True})
        values = Annotated[list[annotation if column.get("required") else annotation | None],
                           Field(max_length=MAX_BATCH_ROWS)]
        fields[column["name"]] = values if column.get("required") else NotRequired[values]
    columns = TypedDict("Columns", fields)  # type: ignore[misc]
    columns.__pydantic_config__ = ConfigDict(extra="forbid")  # type: ignore[attr-defined]
    return columns


def label_type(contract: dict[str, Any] | None) -> Any:
    """The ground truth `/feedback` accepts: a boolean for classification, the target's range otherwise."""
    if contract is None:
        return Annotated[bool, Field(strict=True)] | Annotated[float, Field(strict=True, allow_inf_nan=False)]
    target = contract["target"]
    if contract["task"] == "classification":
        return Annotated[bool, Field(strict=True)]
    bounds = {k: target[v] for k, v in (("ge", "min"), ("le", "max")) if target.get(v) is not None}
    return Annotated[float, Field(strict=True, allow_inf_nan=False, **bounds)]


def declared_types(contract: dict[str, Any] | None) -> tuple[Any, Any, Any, str | None]:
    """(Record, Columns, Label, problem): typed from the contract, or untyped when there is none or it is
    unreadable (the problem then stops the start, with its cause, instead of the import)."""
    untyped = (dict[str, Any], dict[str, list[Any]], label_type(None))
    if contract is None:
        return (*untyped, None)
    try:
        types = (record_type(contract["inputs"]), columns_type(contract["inputs"]), label_type(contract))
        for declared in types:
            TypeAdapter(declared)  # pydantic builds the schema now, inside this guard
    except (KeyError, TypeError, ValueError) as exc:
        return (*untyped, f"the Bento's contract cannot be read ({type(exc).__name__}: {exc})")
    return (*types, None)


Record, Columns, Label, _TYPES_PROBLEM = declared_types(CONTRACT)
CONTRACT_PROBLEM = CONTRACT_PROBLEM or _TYPES_PROBLEM
TYPED = CONTRACT is not None and CONTRACT_PROBLEM is None  # the API's declared types check every field
RequestId = Annotated[str, Field(pattern=REQUEST_ID.pattern, description="the request_id of a prediction response")]


class Prediction(BaseModel):
    """One answer per record, in request order, with the model that produced it."""

    request_id: str
    model: str
    version: str
    task: str
    predictions: list[Any]
    probabilities: list[float] | None = None
    threshold: float | None = None
    ids: list[Any] | None = None


class FeedbackReceipt(BaseModel):
    request_id: str
    row: int
    accepted: bool = True


class TrainingFile(BaseModel):
    partition: str
    file: str | None = None
    content_hash: str | None = None
    rows_read: int | None = None


class Lineage(BaseModel):
    """Where the served model comes from, answered from the Bento alone (no MLflow at runtime)."""

    dataset: str | None
    model: str
    version: str
    mlflow_run_id: str
    bento_model: str
    bento: str | None
    bento_built_at: str | None
    code_version: str | None
    spec_hash: str | None
    trained_at: str | None
    dagster_run_id: str | None
    training_partitions: list[TrainingFile]
    decision_threshold: float | None


# ---- at the door: API key and body size, before BentoML reads the body ------------------------------


class RequestGate:
    """ASGI middleware: 401 without the API key on protected routes, 413 beyond the size bound."""

    def __init__(self, app, protected: tuple[str, ...] = PROTECTED_ROUTES) -> None:
        self.app = app
        self.protected = frozenset(protected)
        self.api_key = (os.environ.get("MLOPS_API_KEY") or "").encode() or None
        self.max_bytes = _env_int("MLOPS_MAX_REQUEST_BYTES", DEFAULT_MAX_REQUEST_BYTES)

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope["headers"])
        path = scope["path"].rstrip("/")
        if self.api_key is not None and path in self.protected and not self._authorized(headers):
            return await _send_json(send, 401, {"error": "missing or wrong API key: send `Authorization: Bearer "
                                                         "<MLOPS_API_KEY>` or `X-API-Key: <MLOPS_API_KEY>`"},
                                    [(b"www-authenticate", b"Bearer")])
        if path in JSON_ROUTES and not _is_json(headers.get(b"content-type", b"")):
            # These routes speak JSON only: a body sent as a form (curl -d's default) or text is read as JSON,
            # so a bad body gets the JSON parser's error, never another decoder's.
            scope = {**scope, "headers": [*((k, v) for k, v in scope["headers"] if k != b"content-type"),
                                          (b"content-type", b"application/json")]}
        length = headers.get(b"content-length")
        if length is not None:
            if length.isdigit() and int(length) > self.max_bytes:
                return await self._too_large(send)
            return await self.app(scope, receive, send)
        if scope["method"] in ("GET", "HEAD", "OPTIONS"):
            return await self.app(scope, receive, send)
        # A chunked body: read it here, within the bound, and replay it.
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                return await self._too_large(send)
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        replay = [{"type": "http.request", "body": b"".join(chunks), "more_body": False}]

        async def replay_receive():
            return replay.pop() if replay else await receive()

        await self.app(scope, replay_receive, send)

    def _authorized(self, headers: dict[bytes, bytes]) -> bool:
        offered = headers.get(b"x-api-key") or b""
        auth = headers.get(b"authorization") or b""
        if auth[:7].lower() == b"bearer ":
            offered = auth[7:].strip()
        return hmac.compare_digest(offered, self.api_key or b"")

    async def _too_large(self, send) -> None:
        await _send_json(send, 413, {"error": f"request body larger than {self.max_bytes} bytes; split it "
                                              f"(at most {MAX_BATCH_ROWS} rows per /predict_batch call)"})


def _is_json(content_type: bytes) -> bool:
    media = content_type.split(b";")[0].strip().lower()
    return media == b"application/json" or media.endswith(b"+json")


def _bad_request(ctx: bentoml.Context, loc: list, message: str):
    """A 400 shaped like BentoML's own validation errors (`detail[].loc` names the field)."""
    from starlette.responses import JSONResponse

    ctx.response.status_code = 400  # BentoML applies the context's status to any response of an API with a context
    return JSONResponse({"error": message, "detail": [{"type": "value_error", "loc": loc, "msg": message}]}, 400)


async def _send_json(send, status: int, body: dict[str, Any], extra: list[tuple[bytes, bytes]] = ()) -> None:
    payload = json.dumps(body).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode()), *extra]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if not value:
        return default
    try:
        return max(1, int(value))
    except ValueError:
        log.warning("%s=%r is not an integer; using %d", name, value, default)
        return default


# ---- the prediction log: appended off the request path, one file per worker and hour ----------------


class ArrowLog:
    """Append-only Arrow IPC stream files, written by one background thread.

    Requests only enqueue (no I/O, no encoding on the request path). Each worker process writes its
    own files (`<UTC hour>-<pid>-<random>.arrows`, created exclusively), so several workers never
    share a file; a file is closed and a new one started when the hour changes. Readers read any
    file at any time: an unfinished last batch is simply not read yet.
    """

    def __init__(self, folder: Path, schema, *, flush_seconds: float = 1.0, max_pending_rows: int = 1_000_000,
                 on_drop=None) -> None:
        self.folder, self.schema = folder, schema
        self.flush_seconds, self.max_pending_rows = flush_seconds, max_pending_rows
        self._queue: collections.deque = collections.deque()
        self._pending_rows = 0
        self._lock = threading.Lock()  # the pending count is updated by request threads and the writer
        self._last_error = 0.0
        self._wake = threading.Event()
        self._stop = False
        self._sink = self._writer = None
        self._hour: str | None = None
        self._on_drop = on_drop
        self._token = secrets.token_hex(3)
        self._thread = threading.Thread(target=self._run, name=f"log-{folder.name}", daemon=True)
        self._thread.start()

    def append(self, columns: dict[str, Any], rows: int) -> None:
        """Queue `rows` rows: per schema field a numpy array (or list) of `rows` values, or one value for all.

        Only a reference is queued; arrays are merged and encoded by the writer thread, once per flush.
        """
        with self._lock:
            if self._pending_rows + rows > self.max_pending_rows:
                self._dropped(rows)
                return
            self._pending_rows += rows
            self._queue.append((columns, rows))
            if self._pending_rows >= 50_000:
                self._wake.set()

    def _dropped(self, rows: int) -> None:
        if self._on_drop is not None:
            self._on_drop(rows)

    def close(self) -> None:
        self._stop = True
        self._wake.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        while True:
            self._wake.wait(self.flush_seconds)
            self._wake.clear()
            entries = []
            with self._lock:
                while self._queue:
                    entries.append(self._queue.popleft())
                self._pending_rows -= sum(n for _, n in entries)
            try:
                self._write(entries)
            except Exception:  # the log must never take the service down: count the rows, report (once a minute)
                self._dropped(sum(n for _, n in entries))
                self._close_file()
                if time.monotonic() - self._last_error > 60:
                    self._last_error = time.monotonic()
                    log.exception("prediction log: writing to %s failed; rows are counted as dropped", self.folder)
            if self._stop:
                self._close_file()
                return

    def _write(self, entries: list[tuple[dict[str, Any], int]]) -> None:
        import numpy as np
        import pyarrow as pa

        if not entries:
            return
        arrays = []
        for field in self.schema:
            parts = []
            for columns, n in entries:
                value = columns[field.name]
                if value is None:
                    parts.append(pa.nulls(n, field.type))
                elif np.isscalar(value):  # one value for every row: repeated by Arrow, not built in Python
                    if isinstance(value, np.datetime64):
                        value = value.astype("datetime64[us]").astype(np.int64).item()
                    parts.append(pa.repeat(pa.scalar(value, field.type), n))
                else:
                    parts.append(pa.array(value, type=field.type, from_pandas=True))
            arrays.append(pa.concat_arrays(parts))
        table = pa.Table.from_arrays(arrays, schema=self.schema)
        hour = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H")
        if hour != self._hour:
            self._close_file()
            self.folder.mkdir(parents=True, exist_ok=True)
            self._sink = open(self.folder / f"{hour}-{os.getpid()}-{self._token}.arrows", "xb")  # noqa: SIM115
            self._writer = pa.ipc.new_stream(self._sink, self.schema)
            self._hour = hour
        for batch in table.to_batches():
            self._writer.write_batch(batch)
        self._sink.flush()

    def _close_file(self) -> None:
        writer, sink = self._writer, self._sink
        self._sink = self._writer = self._hour = None
        if writer is not None:
            with contextlib.suppress(Exception):  # a failing disk must not stop the writer thread
                writer.close()
            with contextlib.suppress(Exception):
                sink.close()


# ---- online requests: batch what arrives while the model is busy, never wait when it is idle --------


class MicroBatcher:
    """One model call at a time on a dedicated thread; requests queued meanwhile share the next call.

    Unlike a timer-based batcher there is no waiting window: an idle model starts on the first
    request at once (latency alone = one model call), and under load each call takes everything that
    queued during the previous one (throughput grows with concurrency, nothing is shed).
    """

    def __init__(self, score, executor: ThreadPoolExecutor, max_rows: int = MAX_MODEL_BATCH_ROWS) -> None:
        self._score, self._executor, self.max_rows = score, executor, max_rows
        self._pending: collections.deque = collections.deque()
        self._running = False

    async def submit(self, records: list[dict], meta: tuple) -> Any:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._pending.append((records, meta, future))
        if not self._running:
            self._running = True
            loop.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._pending:
                taken, rows = [], 0
                while self._pending and (not taken or rows + len(self._pending[0][0]) <= self.max_rows):
                    item = self._pending.popleft()
                    taken.append(item)
                    rows += len(item[0])
                try:
                    results = await loop.run_in_executor(self._executor, self._score, [(r, m) for r, m, _ in taken])
                except Exception as exc:
                    for _, _, future in taken:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                for (_, _, future), result in zip(taken, results):
                    if not future.done():
                        future.set_result(result)
        finally:
            self._running = False


class ForestShortcut:
    """A forest's own average over its trees, without sklearn's per-tree call wrapper.

    sklearn's forests call every tree through joblib and a wrapper that sets sklearn's config and warning
    filters per call, even with one job: ~0.2 ms a tree, most of a 60-tree forest's 1-row call (measured
    here: 13 ms through `predict_proba`, 0.8 ms for the trees themselves). This computes the same sum the
    forest computes (each tree's public `predict_proba`/`predict` with `check_input=False` on the float32
    input, in estimator order, then divided by the count), so the numbers are the same. `check` compares it
    with the pipeline's own call on the first frame it sees and switches itself off at any difference.
    """

    def __init__(self, pipeline, task: str) -> None:
        self.pipeline, self.task, self.enabled, self._checked = pipeline, task, False, False
        try:
            from sklearn.ensemble import (
                ExtraTreesClassifier,
                ExtraTreesRegressor,
                RandomForestClassifier,
                RandomForestRegressor,
            )
            from sklearn.pipeline import Pipeline
        except ImportError:
            return
        forests = (RandomForestClassifier, ExtraTreesClassifier, RandomForestRegressor, ExtraTreesRegressor)
        if isinstance(pipeline, Pipeline) and isinstance(pipeline[-1], forests):
            estimator = pipeline[-1]
            self.enabled = getattr(estimator, "n_outputs_", 1) == 1 and len(estimator.estimators_) > 0

    def _average(self, frame):
        import numpy as np

        features = self.pipeline[:-1].transform(frame)
        X = np.ascontiguousarray(features, dtype=np.float32)
        trees = self.pipeline[-1].estimators_
        call = "predict_proba" if self.task == "classification" else "predict"
        total = getattr(trees[0], call)(X, check_input=False).astype(np.float64)
        for tree in trees[1:]:
            total += getattr(tree, call)(X, check_input=False)
        return total / len(trees)

    def __call__(self, frame):
        """The classifier's probabilities (all classes) or the regressor's predictions for `frame`."""
        if not self._checked:
            return self._check(frame)
        return self._average(frame)

    def _check(self, frame):
        import numpy as np

        expected = (self.pipeline.predict_proba(frame) if self.task == "classification"
                    else self.pipeline.predict(frame))
        self._checked = True
        try:
            same = np.array_equal(np.asarray(self._average(frame)).reshape(np.shape(expected)), expected)
        except Exception as exc:  # an estimator this shortcut does not understand: keep sklearn's path
            same = False
            log.warning("forest shortcut off: %s", exc)
        if not same:
            self.enabled = False
            log.warning("forest shortcut off: it differs from the pipeline's own predictions")
        return expected


def model_thread(name: str, threads: int) -> ThreadPoolExecutor:
    """One thread that runs model calls, its native thread pools (OpenMP, BLAS) capped at `threads`.

    A worker gets about one core: an OpenMP team per call on a busy machine waits for cores it does not
    get (a 1-row call measured here under load: 14 ms median, 42 ms p90 with 2 threads; 10 and 14 ms with 1). The cap is set in the
    thread that calls the model, because OpenMP reads it per thread.
    """
    limits: list = []

    def cap() -> None:
        from threadpoolctl import threadpool_limits

        limits.append(threadpool_limits(limits=threads))

    return ThreadPoolExecutor(1, thread_name_prefix=name, initializer=cap)


# ---- metrics (prometheus_client, created once per worker after BentoML set multiprocess mode) -------


@cache
def _metrics() -> dict[str, Any]:
    from prometheus_client import Counter, Histogram

    return {
        "predictions": Counter("mlops_predictions", "Rows predicted, by predicted label and model version.",
                               ["endpoint", "model", "model_version", "label"]),
        "latency": Histogram("mlops_prediction_latency_seconds",
                             "Time from a validated request to its answer (queueing + model), by endpoint.",
                             ["endpoint", "model_version"],
                             buckets=(.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30)),
        "feedback": Counter("mlops_feedback", "Labels received on /feedback.", ["model_version"]),
        "log_dropped": Counter("mlops_prediction_log_dropped_rows",
                               "Rows not logged because the log writer fell too far behind.", ["log"]),
    }


# ---- the service -------------------------------------------------------------------------------------


def no_champion(tag) -> str:
    dataset = (CONTRACT or {}).get("dataset") or "<dataset>"
    return (
        f"no champion to serve: model {tag} is not in the BentoML store at "
        f"{os.environ.get('BENTOML_HOME') or '~/bentoml'}. Make one with `mlops-assets demo` (or materialize "
        f"{dataset}/model then {dataset}/bento in `make dev`), then run `mlops-assets serve {dataset}`"
    )


def checked_contract(stored) -> dict[str, Any]:
    """The model's service contract, refusing a model that this Bento was not built for."""
    if stored is None:
        raise ServiceStartError(
            "no model to serve: start a Bento built by the `<dataset>/bento` asset (`mlops-assets serve "
            "<dataset>`, or `bentoml serve <bento tag>`), or pass `--arg model_tag=<model>:<version>`; "
            "`mlops-assets demo` trains and packages a champion"
        )
    if CONTRACT_PROBLEM:
        raise ServiceStartError(CONTRACT_PROBLEM + "; rebuild the Bento by materializing `<dataset>/bento`")
    if "contract" not in stored.info.metadata:
        raise ServiceStartError(f"model {stored.tag} has no service contract (packaged by an older version): "
                                "materialize `<dataset>/bento` again to repackage it")
    recorded = json.loads(stored.info.metadata["contract"])
    if CONTRACT is not None and recorded != CONTRACT:
        raise ServiceStartError(f"the Bento's contract does not match model {stored.tag}'s: rebuild the Bento "
                                "(materialize `<dataset>/bento`) instead of pointing it at another model")
    return recorded


def serving_home(contract: dict[str, Any]) -> tuple[Path, dict[str, str]]:
    """The platform home the prediction log goes under: MLOPS_HOME when set, else the home the Bento's
    store sits in (the layout recorded at build says where the store is within it), else beside the store."""
    layout = contract["layout"]
    if os.environ.get("MLOPS_HOME"):
        return Path(os.environ["MLOPS_HOME"]).expanduser(), layout
    store = Path(os.environ.get("BENTOML_HOME") or Path.home() / "bentoml").expanduser().resolve()
    recorded = Path(layout["bentoml_home"])
    if not recorded.is_absolute() and store.parts[-len(recorded.parts):] == recorded.parts and len(store.parts) > len(recorded.parts):
        return store.parents[len(recorded.parts) - 1], layout
    # The store is not where the build recorded it within a home (e.g. BENTOML_HOME was outside MLOPS_HOME):
    # serve anyway, logging beside the store, and say how to log into the platform's home instead.
    log.warning("the Bento store %s is not inside a platform home; prediction logs go under %s "
                "(set MLOPS_HOME to log where monitoring reads)", store, store.parent)
    return store.parent, layout


class ChampionModel(bentoml.models.BentoModel):
    """A BentoModel whose absence says which command makes it (BentoML resolves models before any hook runs)."""

    def resolve(self, base_path=None):
        try:
            return super().resolve(base_path)
        except bentoml.exceptions.BentoMLException:
            raise bentoml.exceptions.NotFound(no_champion(self.tag)) from None


MODEL_REF = ChampionModel(MODEL_TAG) if MODEL_TAG else None
_routes = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)  # GET endpoints beside the POST APIs


@bentoml.service(
    name=SERVICE_NAME,
    workers=1,
    traffic={"timeout": 120},
    # Every prediction is in the prediction log (request id, time, version) and in the metrics; an access
    # line and a trace span per prediction cost about a third of a request's CPU at 32 connections
    # (measured: 3.8 -> 2.1-2.9 ms). Other routes keep both. To trace predictions anyway, override
    # `services."<bento name>".tracing.excluded_urls` in BentoML's configuration at serve time.
    tracing={"excluded_urls": ["/predict", "/predict_batch"]},
    logging={"access": {"enabled": True, "skip_paths": ["/metrics", "/livez", "/readyz", "/healthz", "/predict",
                                                          "/predict_batch"]}},
)
@bentoml.asgi_app(_routes, path="/")
class Predictor:
    """Serves the champion pipeline (feature transformer + estimator) packed into this Bento."""

    # Packed into the Bento at build: `bentoml serve <bento tag>` finds exactly this model.
    model_ref = MODEL_REF

    @bentoml.on_deployment
    def refuse_to_start_without_a_sound_model() -> None:
        """Checked once before any worker starts, so a bad start is one line, not a worker respawn loop."""
        checked_contract(MODEL_REF.resolve() if MODEL_REF is not None else None)

    def __init__(self) -> None:
        import numpy as np
        import pandas as pd

        self._np, self._pd = np, pd
        stored = self.model_ref  # resolved by BentoML from its store (or the Bento's own models)
        info = stored.info
        contract = checked_contract(stored)
        self.contract = contract
        self.inputs = contract["inputs"]
        self.columns = [c["name"] for c in self.inputs]
        self.features = [c["name"] for c in self.inputs if c["required"]]
        self.others = [c for c in self.columns if c not in self.features]  # carried to the log (ids, times)
        self.task = contract["task"]
        self.key = contract.get("key") or None
        self.model_name = info.labels["mlflow_model"]
        self.model_version = info.labels["mlflow_version"]
        self.threshold = float(info.metadata.get("decision_threshold", 0.5))
        self.lineage_info = self._read_lineage(info, stored)
        self._validate = None if TYPED else TypeAdapter(_dev_body(self.inputs)).validate_python
        self.pipeline = bentoml.sklearn.load_model(stored)
        self._forest = ForestShortcut(self.pipeline, self.task)
        self.metrics = _metrics()
        home, layout = serving_home(contract)
        self._log_schema = self._arrow_schema()
        drop = self.metrics["log_dropped"]
        self.prediction_log = ArrowLog(home / layout["predictions"], self._log_schema,
                                       on_drop=lambda n: drop.labels("predictions").inc(n))
        self.feedback_log = ArrowLog(home / layout["feedback"], self._feedback_schema(),
                                     on_drop=lambda n: drop.labels("feedback").inc(n))
        threads = _env_int("MLOPS_MODEL_THREADS", 1)
        self._id_prefix, self._ids = secrets.token_hex(8), itertools.count()
        self._children: dict[tuple, Any] = {}
        self.batcher = MicroBatcher(self._score_online, model_thread("model", threads))
        self._bulk = model_thread("bulk", threads)
        # Everything loaded so far (libraries, the model) lives as long as the worker: keep it out of the
        # garbage collector's full passes, which otherwise walk it and show up as latency spikes.
        gc.collect()
        gc.freeze()
        log.info("serving %s v%s (%s); prediction log %s", self.model_name, self.model_version, stored.tag,
                 home / layout["predictions"])

    # -- start-up ------------------------------------------------------------------------------------

    def _read_lineage(self, info, stored) -> dict[str, Any]:
        lineage = json.loads(info.metadata.get("lineage") or "{}")
        return {
            "dataset": info.labels.get("dataset"),
            "model": info.labels["mlflow_model"],
            "version": info.labels["mlflow_version"],
            "mlflow_run_id": info.labels["mlflow_run_id"],
            "bento_model": str(stored.tag),
            "bento": BUILD_ARGS.get("bento_tag"),
            "bento_built_at": BUILD_ARGS.get("built_at"),
            "code_version": lineage.get("code_version"),
            "spec_hash": lineage.get("spec_hash"),
            "trained_at": lineage.get("trained_at"),
            "dagster_run_id": lineage.get("dagster_run_id"),
            "training_partitions": lineage.get("partitions", []),
            "decision_threshold": self.threshold if self.task == "classification" else None,
        }


    def _arrow_schema(self):
        import pyarrow as pa

        types = {"integer": pa.int64(), "float": pa.float64(), "boolean": pa.bool_()}
        fields = [
            pa.field("request_id", pa.string()),
            pa.field("row", pa.int32()),
            pa.field("ts", pa.timestamp("us", tz="UTC")),
            pa.field("endpoint", pa.string()),
            pa.field("model_version", pa.string()),
            *[pa.field(c["name"], types.get(c["type"], pa.string())) for c in self.inputs],
            pa.field("prediction", pa.bool_() if self.task == "classification" else pa.float64()),
            pa.field("probability", pa.float64()),
        ]
        return pa.schema(fields)

    def _feedback_schema(self):
        import pyarrow as pa

        return pa.schema([
            pa.field("request_id", pa.string()),
            pa.field("row", pa.int32()),
            pa.field("ts", pa.timestamp("us", tz="UTC")),
            pa.field("label", pa.bool_() if self.task == "classification" else pa.float64()),
        ])

    @bentoml.on_shutdown
    def _flush_logs(self) -> None:
        self.prediction_log.close()
        self.feedback_log.close()

    # -- scoring -------------------------------------------------------------------------------------

    def _score_frame(self, frame):
        """(predictions, probabilities or None) for a frame of exactly the model's features: its one call.

        The frame is built with the feature columns only: a column selection of a wider frame made the
        same 1-row call measurably slower (3 ms of 13 here), so the other input columns go to the log aside.
        """
        shortcut = self._forest if self._forest.enabled else None
        if self.task == "classification":
            probabilities = (shortcut or self.pipeline.predict_proba)(frame)[:, 1]
            return probabilities >= self.threshold, probabilities
        return (shortcut or self.pipeline.predict)(frame).astype("float64"), None

    def _score_online(self, requests: list[tuple[list[dict], tuple]]) -> list[tuple[Any, Any]]:
        """Runs on the model thread: one frame and one model call for every request taken together."""
        np = self._np
        flat = [r for records, _ in requests for r in records]
        frame = self._pd.DataFrame.from_records(flat, columns=self.features)
        predictions, probabilities = self._score_frame(frame)
        sizes = [len(records) for records, _ in requests]
        request_ids = [m[0] for (_, m), n in zip(requests, sizes) for _ in range(n)]
        rows = np.concatenate([np.arange(n, dtype=np.int32) for n in sizes])
        stamps = np.repeat(np.array([m[1] for _, m in requests], dtype="datetime64[us]"), sizes)
        others = {c: [r.get(c) for r in flat] for c in self.others}
        self._log_predictions(frame, others, request_ids, rows, stamps, "predict", predictions, probabilities)
        bounds = np.cumsum([0, *sizes])
        return [
            (predictions[a:b], None if probabilities is None else probabilities[a:b])
            for a, b in zip(bounds[:-1], bounds[1:])
        ]

    def _score_bulk(self, records: list[dict] | None, columns: dict[str, list] | None, request_id: str, stamp):
        """Runs on the bulk thread: (predictions, probabilities, ids) for records or columns."""
        np, pd = self._np, self._pd
        if records is not None:
            frame = pd.DataFrame.from_records(records, columns=self.features)
            others = {c: [r.get(c) for r in records] for c in self.others}
        else:
            frame = pd.DataFrame({c: columns[c] for c in self.features})
            others = {c: columns.get(c) for c in self.others}
        predictions, probabilities = self._score_frame(frame)
        n = len(frame)
        self._log_predictions(frame, others, request_id, np.arange(n, dtype=np.int32),
                              np.datetime64(stamp, "us"), "predict_batch", predictions, probabilities)
        ids = others.get(self.key) if self.key else None
        return predictions, probabilities, (None if ids is None or all(v is None for v in ids) else list(ids))

    def _log_predictions(self, frame, others, request_ids, rows, stamps, endpoint, predictions, probabilities) -> None:
        """Hand one model call's rows to the log (references only: the writer thread encodes them)."""
        columns = {
            "request_id": request_ids, "row": rows, "ts": stamps, "endpoint": endpoint,
            "model_version": self.model_version, "prediction": predictions, "probability": probabilities,
            **{c: frame[c].to_numpy() for c in self.features},
            **others,
        }
        self.prediction_log.append(columns, len(frame))

    def _child(self, metric: str, *labels: str):
        """A labelled metric, looked up once (prometheus_client's `labels()` locks and hashes on every call)."""
        key = (metric, *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = self.metrics[metric].labels(*labels)
        return child

    def _count(self, endpoint: str, predictions, started: float) -> None:
        np = self._np
        if self.task == "classification":
            positives = int(np.count_nonzero(predictions))
            for label, n in (("true", positives), ("false", len(predictions) - positives)):
                if n:
                    self._child("predictions", endpoint, self.model_name, self.model_version, label).inc(n)
        else:  # regression: the rounded prediction is the label (e.g. a wine's quality score)
            values, counts = np.unique(np.rint(predictions).astype(np.int64), return_counts=True)
            for value, n in zip(values.tolist(), counts.tolist()):
                self._child("predictions", endpoint, self.model_name, self.model_version, str(value)).inc(n)
        self._child("latency", endpoint, self.model_version).observe(time.perf_counter() - started)

    def _answer(self, request_id: str, predictions, probabilities, ids: list | None) -> Prediction:
        return Prediction(
            request_id=request_id,
            model=self.model_name,
            version=self.model_version,
            task=self.task,
            predictions=predictions.tolist(),
            probabilities=None if probabilities is None else probabilities.round(6).tolist(),
            threshold=self.threshold if self.task == "classification" else None,
            ids=ids,
        )

    def _ids_of(self, records: list[dict]) -> list | None:
        """The dataset key of each record (e.g. transaction_id), when the request carries any."""
        return [r.get(self.key) for r in records] if self.key and any(self.key in r for r in records) else None

    def _request_id(self, ctx: bentoml.Context) -> str:
        """The caller's `X-Request-ID` when it is a sane token (tracing across services), else a new one.

        New ids are this worker's random 64-bit prefix and a counter: unique across workers and restarts,
        without a system call per request.
        """
        offered = ctx.request.headers.get("x-request-id")
        request_id = offered if offered and REQUEST_ID.match(offered) else f"{self._id_prefix}{next(self._ids):016x}"
        ctx.response.headers["X-Request-ID"] = request_id
        return request_id

    # -- API -----------------------------------------------------------------------------------------

    @bentoml.api(route="/predict")
    async def predict(
        self,
        records: Annotated[list[Record], Field(min_length=1, max_length=MAX_RECORDS)],
        ctx: bentoml.Context,
    ) -> Prediction:
        """Score up to 1,000 records online; concurrent requests share model calls."""
        started = time.perf_counter()
        request_id = self._request_id(ctx)
        if self._validate is not None:
            records = self._validate({"records": records})["records"]
        stamp = time.time_ns() // 1000
        predictions, probabilities = await self.batcher.submit(records, (request_id, stamp))
        self._count("predict", predictions, started)
        return self._answer(request_id, predictions, probabilities, self._ids_of(records))

    @bentoml.api(route="/predict_batch")
    async def predict_batch(
        self,
        ctx: bentoml.Context,
        records: Annotated[list[Record], Field(min_length=1, max_length=MAX_BATCH_ROWS)] | None = None,
        columns: Columns | None = None,
    ) -> Prediction:
        """Score up to 100,000 rows in one model call (bulk scoring), off the online path.

        Send `records` (as for /predict) or `columns` (`{"amount": [...], ...}`, one list per field, all of
        one length, e.g. pandas' `to_dict(orient="list")`): the columnar form skips a dict per row.
        """
        started = time.perf_counter()
        request_id = self._request_id(ctx)
        if (records is None) == (columns is None):
            return _bad_request(ctx, ["records"], "send either `records` (a list of rows) or `columns` (a list per field)")
        if self._validate is not None:
            checked = self._validate({"records": records} if columns is None else {"columns": columns})
            records, columns = checked.get("records"), checked.get("columns")
        if columns is not None:
            lengths = {name: len(values) for name, values in columns.items()}
            if len(set(lengths.values())) != 1 or 0 in lengths.values():
                usual = collections.Counter(lengths.values()).most_common(1)[0][0]
                odd = next((k for k, v in lengths.items() if v != usual or v == 0), next(iter(lengths)))
                return _bad_request(ctx, ["columns", odd], "every column needs the same number of values, at "
                                                           f"least one: {lengths}")
        stamp = time.time_ns() // 1000
        loop = asyncio.get_running_loop()
        predictions, probabilities, ids = await loop.run_in_executor(
            self._bulk, self._score_bulk, records, columns, request_id, stamp)
        self._count("predict_batch", predictions, started)
        return self._answer(request_id, predictions, probabilities, ids)

    @bentoml.api(route="/feedback")
    async def feedback(
        self,
        request_id: RequestId,
        label: Label,
        ctx: bentoml.Context,
        row: Annotated[int, Field(ge=0, le=MAX_BATCH_ROWS - 1, description="record position in that request")] = 0,
    ) -> FeedbackReceipt:
        """Delayed ground truth for a served prediction; joined to the prediction log by monitoring."""
        stamp = self._np.datetime64(time.time_ns() // 1000, "us")
        label = bool(label) if self.task == "classification" else float(label)
        self.feedback_log.append({"request_id": request_id, "row": row, "ts": stamp, "label": label}, 1)
        self._child("feedback", self.model_version).inc()
        ctx.response.status_code = 202
        return FeedbackReceipt(request_id=request_id, row=row)

    @_routes.get("/lineage", response_model=Lineage, tags=["Service APIs"])
    def lineage(self) -> dict[str, Any]:
        """Which model answers, which files (by content hash) and code trained it, and when the Bento was built."""
        return self.lineage_info


def _dev_body(inputs: list[dict[str, Any]]) -> Any:
    """`{"records": [...]}` or `{"columns": {...}}` checked at run time, for a service started without a
    contract (development only: its /docs cannot show the fields)."""
    return TypedDict("Body", {"records": NotRequired[list[record_type(inputs)]],  # type: ignore[misc]
                              "columns": NotRequired[columns_type(inputs)]})


Predictor.add_asgi_middleware(RequestGate)
