"""Ingestion that never trusts a CSV: sniff its dialect from a bounded sample, then stream it into DuckDB."""

from mlops_assets.ingest.dialect import (
    CsvDialect,
    UnreadableFile,
    explain_header_mismatch,
    normalize_column_name,
    sniff_csv,
)
from mlops_assets.ingest.loader import LoadResult, Reject, load_csv

__all__ = [
    "CsvDialect",
    "LoadResult",
    "Reject",
    "UnreadableFile",
    "explain_header_mismatch",
    "load_csv",
    "normalize_column_name",
    "sniff_csv",
]
