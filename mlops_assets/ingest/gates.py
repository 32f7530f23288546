"""Ingestion gates read from the warehouse: the one definition of "this partition's data is too noisy to use".

`<dataset>/cleaned` reports the rule as its blocking check `quarantine_share_within_limit` (the data is
kept, downstream stops), and the training window leaves out the partitions that fail it. Both compute
it here, from the stored tables (rows the reader produced, in `ingestion_contracts`, against rows held in
`quarantine`), so a partition the check failed can never slip into a model through another path
(`mlops-assets train`, the UI, a retrain sensor).
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from mlops_assets.datasets.spec import DatasetSpec
from mlops_assets.tables import table, table_exists

QUARANTINE_CHECK = "quarantine_share_within_limit"
"""The name of the gate as `<dataset>/cleaned`'s blocking asset check."""


@dataclass(frozen=True)
class QuarantineGate:
    """One partition's quarantined share against the spec's `quality.max_quarantine_share`."""

    partition: str
    rows_read: int
    rows_quarantined: int
    limit: float

    @property
    def share(self) -> float:
        return self.rows_quarantined / self.rows_read if self.rows_read else 0.0

    @property
    def passed(self) -> bool:
        return self.share <= self.limit

    @property
    def problem(self) -> str | None:
        """Why the gate failed, in words a user can act on (None when it passed)."""
        if self.passed:
            return None
        return (f"{self.rows_quarantined} of {self.rows_read} rows quarantined ({self.share:.1%}, over the "
                f"quality.max_quarantine_share limit of {self.limit:.0%})")


def quarantine_gates(con: duckdb.DuckDBPyConnection, spec: DatasetSpec, partitions: list[str]) -> dict[str, QuarantineGate]:
    """The quarantine gate of each of `partitions`, counted from the warehouse tables in one query."""
    limit = spec.quality.max_quarantine_share
    gates = {p: QuarantineGate(p, 0, 0, limit) for p in partitions}
    if not partitions or not table_exists(con, spec, "ingestion_contracts"):  # created with `quarantine`
        return gates
    placeholders = ", ".join("?" for _ in partitions)
    rows = con.execute(
        f"""SELECT r._partition, r.n_read, coalesce(h.n, 0)
            FROM (SELECT _partition, coalesce(sum(rows_read), 0) AS n_read FROM {table(spec, 'ingestion_contracts')}
                  WHERE _partition IN ({placeholders}) GROUP BY _partition) r
            LEFT JOIN (SELECT _partition, count(*) AS n FROM {table(spec, 'quarantine')}
                       WHERE _partition IN ({placeholders}) GROUP BY _partition) h USING (_partition)""",
        partitions + partitions,
    ).fetchall()
    for partition, rows_read, rows_quarantined in rows:
        gates[partition] = QuarantineGate(partition, int(rows_read), int(rows_quarantined), limit)
    return gates


def failed_gates(con: duckdb.DuckDBPyConnection, spec: DatasetSpec, partitions: list[str]) -> dict[str, str]:
    """{partition: why} for those of `partitions` that failed a blocking ingestion gate."""
    return {p: f"check {spec.name}/cleaned {QUARANTINE_CHECK} failed: {gate.problem}"
            for p, gate in quarantine_gates(con, spec, partitions).items() if not gate.passed}

