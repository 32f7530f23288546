"""What the service served, read back without Dagster: the prediction log and the feedback under MLOPS_HOME.

The Bento (bento/service.py) appends Arrow IPC stream files, one per worker process and UTC hour, to
`MlopsHome.predictions(dataset)` and `MlopsHome.feedback(dataset)`. Files are never rewritten, so
reading needs no lock: a file still being written is read up to its last complete batch.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from mlops_assets.datasets.spec import DatasetSpec

log = logging.getLogger(__name__)

LOG_SUFFIX = ".arrows"
SAMPLE_SEED = 17


def log_files(folder: Path, since: dt.datetime | None = None) -> list[Path]:
    """The folder's log files, oldest first; with `since`, only files written to at or after it.

    A row is written after its prediction, so a file last modified before `since` holds no row from then on.
    """
    if not folder.is_dir():
        return []
    files = sorted(folder.glob(f"*{LOG_SUFFIX}"))
    if since is not None:
        files = [f for f in files if f.stat().st_mtime >= since.timestamp()]
    return files


def read_stream(path: Path):
    """Every complete batch of one Arrow stream file (a pyarrow Table), or None when no schema is written yet."""
    import pyarrow as pa

    batches = []
    with pa.OSFile(str(path), "rb") as source:
        try:
            reader = pa.ipc.open_stream(source)
        except (pa.ArrowInvalid, OSError):
            return None  # created by a worker that has not written its first batch yet
        while True:
            try:
                batches.append(reader.read_next_batch())
            except StopIteration:
                break
            except (pa.ArrowInvalid, OSError):
                log.debug("%s: stopping at a batch still being written", path)
                break
        return pa.Table.from_batches(batches, schema=reader.schema)


def read_log(folder: Path, since: dt.datetime | None = None, until: dt.datetime | None = None) -> pd.DataFrame:
    """Rows of a prediction or feedback log with `since <= ts < until`, oldest file first."""
    import pyarrow as pa

    tables = [t for t in (read_stream(f) for f in log_files(folder, since)) if t is not None and t.num_rows]
    if not tables:
        return pd.DataFrame()
    frame = pa.concat_tables(tables, promote_options="permissive").to_pandas()
    if since is not None:
        frame = frame[frame["ts"] >= pd.Timestamp(since)]
    if until is not None:
        frame = frame[frame["ts"] < pd.Timestamp(until)]
    return frame.reset_index(drop=True)


@dataclass
class ServedWindow:
    """The inputs the service saw in a time window, sampled for drift."""

    frame: pd.DataFrame
    rows: int
    start: dt.datetime
    end: dt.datetime
    model_versions: dict[str, int] = field(default_factory=dict)


def served_inputs(folder: Path, spec: DatasetSpec, *, hours: float = 1.0, sample_rows: int | None = None,
                  now: dt.datetime | None = None) -> ServedWindow:
    """The feature columns of every prediction of the last `hours` (a seeded sample beyond `sample_rows`)."""
    end = now or dt.datetime.now(dt.UTC)
    start = end - dt.timedelta(hours=hours)
    frame = read_log(folder, since=start, until=end)
    columns = spec.feature_names
    if frame.empty:
        return ServedWindow(pd.DataFrame(columns=columns), 0, start, end)
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{folder}: the prediction log has no column(s) {missing} of the {spec.name} spec; "
                         "the served model was packaged from another spec: rebuild the Bento")
    versions = frame["model_version"].value_counts().sort_index().to_dict()
    rows = len(frame)
    if sample_rows is not None and rows > sample_rows:
        frame = frame.sample(n=sample_rows, random_state=SAMPLE_SEED)
    return ServedWindow(frame[columns].reset_index(drop=True), rows, start, end, {str(k): int(v) for k, v in versions.items()})


@dataclass
class LogSummary:
    """What a person checks about the prediction log: how much, since when, served by which versions."""

    rows: int
    requests: int
    files: int
    first: str | None
    last: str | None
    rows_last_hour: int
    model_versions: dict[str, int]
    endpoints: dict[str, int]
    feedback_rows: int
    labeled_rows: int


def _iso(value) -> str | None:
    return None if value is None or pd.isna(value) else pd.Timestamp(value).isoformat()


def summarize(predictions: Path, feedback: Path, *, now: dt.datetime | None = None) -> LogSummary:
    """Counts over the whole prediction log, and how many predictions have a label from `/feedback`."""
    now = now or dt.datetime.now(dt.UTC)
    served = read_log(predictions)
    labels = read_log(feedback)
    if served.empty:
        return LogSummary(0, 0, len(log_files(predictions)), None, None, 0, {}, {}, len(labels), 0)
    labeled = labeled_predictions(served, labels)
    return LogSummary(
        rows=len(served),
        requests=int(served["request_id"].nunique()),
        files=len(log_files(predictions)),
        first=_iso(served["ts"].min()),
        last=_iso(served["ts"].max()),
        rows_last_hour=int((served["ts"] >= pd.Timestamp(now - dt.timedelta(hours=1))).sum()),
        model_versions={str(k): int(v) for k, v in served["model_version"].value_counts().sort_index().items()},
        endpoints={str(k): int(v) for k, v in served["endpoint"].value_counts().sort_index().items()},
        feedback_rows=len(labels),
        labeled_rows=len(labeled),
    )


def labeled_predictions(served: pd.DataFrame, labels: pd.DataFrame) -> pd.DataFrame:
    """Predictions joined to their delayed ground truth on (request_id, row); the latest label wins."""
    if served.empty or labels.empty:
        return pd.DataFrame(columns=[*served.columns, "label", "labeled_at"])
    latest = (labels.sort_values("ts").drop_duplicates(["request_id", "row"], keep="last")
              .rename(columns={"ts": "labeled_at"}))
    return served.merge(latest, on=["request_id", "row"], how="inner")
