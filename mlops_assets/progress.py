"""Progress lines for long CLI work: counts, rates and time left, on stderr (so `--json` stays clean).

Two shapes: `Progress` counts units of work the command does itself (days generated, files, repeats);
`RunProgress` follows a Dagster run the command executes in-process, reading the run's own events from
the instance (step started, asset materialized with its row count, step finished) on a background thread.
Lines, not a redrawn bar: they read the same in a terminal, a CI log and a file.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    import dagster as dg

# Materialization metadata that counts rows, most telling first (see the stage modules).
ROW_COUNT_KEYS = ("rows_read", "rows_cleaned", "rows", "rows_scored", "rows_train", "current_rows")


def _rate(count: float, seconds: float, unit: str) -> str:
    return f"{count / seconds:,.0f} {unit}/s" if seconds > 0 else ""


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


class Progress:
    """`what: 6/12 days (50%), 60,000 rows, 31,000 rows/s, about 4 s left`, at most every `every` seconds
    and always for the last unit."""

    def __init__(self, what: str, total: int, unit: str, *, every: float = 2.0, stream: TextIO | None = None):
        self.what, self.total, self.unit, self.every = what, total, unit, every
        self.stream = stream or sys.stderr
        self.done = 0
        self.rows = 0
        self.started = time.monotonic()
        self._last_line = float("-inf")

    def advance(self, units: int = 1, *, rows: int = 0) -> None:
        self.done += units
        self.rows += rows
        now = time.monotonic()
        if self.done >= self.total or now - self._last_line >= self.every:
            self._last_line = now
            print(self.line(now - self.started), file=self.stream, flush=True)

    def line(self, elapsed: float) -> str:
        parts = [f"{self.done:,}/{self.total:,} {self.unit} ({self.done / self.total:.0%})" if self.total else ""]
        if self.rows:
            parts += [f"{self.rows:,} rows", _rate(self.rows, elapsed, "rows")]
        else:
            parts.append(_rate(self.done, elapsed, self.unit))
        if 0 < self.done < self.total:
            parts.append(f"about {_duration(elapsed / self.done * (self.total - self.done))} left")
        else:
            parts.append(f"done in {_duration(elapsed)}")
        return f"{self.what}: " + ", ".join(p for p in parts if p)


class RunProgress:
    """Follow one in-process run: a line when each step ends (its rows and rate), and a heartbeat while a
    step runs long. Use as a context manager around `execute_in_process(run_id=...)`."""

    def __init__(self, instance: dg.DagsterInstance, run_id: str, label: str, *, poll: float = 1.0,
                 heartbeat: float = 10.0, stream: TextIO | None = None):
        import dagster as dg  # here, not at the top: `Progress` alone stays light (the benchmarks use it)

        self._types = dg.DagsterEventType
        self._watched = {self._types.STEP_START, self._types.STEP_SUCCESS, self._types.STEP_FAILURE,
                         self._types.ASSET_MATERIALIZATION}
        self.instance, self.run_id, self.label = instance, run_id, label
        self.poll, self.heartbeat = poll, heartbeat
        self.stream = stream or sys.stderr
        self._seen = 0
        self._started: dict[str, float] = {}  # step key -> when it started (the event's own timestamp)
        self._rows: dict[str, int] = {}
        self._bytes: dict[str, int] = {}
        self._last_line = time.monotonic()
        self._began = time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._follow, name=f"progress-{run_id[:8]}", daemon=True)

    def __enter__(self) -> RunProgress:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._report()  # the steps that ended since the last poll
        self._say(f"finished in {_duration(time.monotonic() - self._began)}")

    def _say(self, text: str) -> None:
        self._last_line = time.monotonic()
        print(f"{self.label}: {text}", file=self.stream, flush=True)

    def _follow(self) -> None:
        while not self._stop.wait(self.poll):
            try:
                self._report()
            except Exception:  # progress is a courtesy: never let it disturb the run it follows
                continue
            if self._started and time.monotonic() - self._last_line >= self.heartbeat:
                now = time.time()
                running = ", ".join(f"{step.replace('__', '/')} for {_duration(now - t)}"
                                    for step, t in self._started.items())
                self._say(f"running {running}")

    def _report(self) -> None:
        records = self.instance.all_logs(self.run_id, of_type=self._watched)
        for record in records[self._seen:]:
            event = record.dagster_event
            if event is None or event.step_key is None:
                continue
            step = event.step_key
            if event.event_type == self._types.STEP_START:
                self._started[step] = record.timestamp
            elif event.event_type == self._types.ASSET_MATERIALIZATION:
                metadata = record.asset_materialization.metadata
                size = getattr(metadata.get("size_bytes"), "value", None)
                if isinstance(size, int):
                    self._bytes[step] = size
                for key in ROW_COUNT_KEYS:
                    value = getattr(metadata.get(key), "value", None)
                    if isinstance(value, int) and not isinstance(value, bool):
                        self._rows[step] = value
                        break
            else:
                began = self._started.pop(step, None)
                seconds = record.timestamp - began if began is not None else 0.0
                outcome = "done" if event.event_type == self._types.STEP_SUCCESS else "FAILED"
                parts = []
                if (rows := self._rows.get(step)) is not None:
                    parts += [f"{rows:,} rows", _rate(rows, seconds, "rows")]
                if (size := self._bytes.get(step)) is not None:
                    parts += [f"{size / 2**20:,.1f} MiB", _rate(size / 2**20, seconds, "MiB")]
                detail = ": " + ", ".join(p for p in parts if p) if parts else ""
                self._say(f"{step.replace('__', '/')} {outcome} in {seconds:.1f} s{detail}")
        self._seen = len(records)
