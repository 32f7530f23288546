"""Ingestion contracts: what a dataset's files look like, and how a new file differs from it.

A contract is the sniffed dialect of a file (delimiter, encoding, header, columns and their types).
The dataset's established contract is what its spec pins, completed by the first file it accepted;
a new file that differs is stopped before `cleaned` with the differences spelled out.
"""

from __future__ import annotations

from typing import Any

from mlops_assets.datasets.spec import ContractSpec
from mlops_assets.ingest.dialect import normalize_column_name

TYPE_FAMILIES = {
    "integer": "number",
    "float": "number",
    "boolean": "boolean",
    "date": "time",
    "timestamp": "time",
    "string": "text",
}
_SAME_ENCODING = {"utf-8-sig": "utf-8"}


def established_contract(first_file: dict[str, Any] | None, pinned: ContractSpec | None) -> dict[str, Any] | None:
    """The first accepted file's contract with the spec's pinned fields laid over it."""
    if first_file is None and pinned is None:
        return None
    contract = dict(first_file or {})
    if pinned is not None:
        if pinned.delimiter is not None:
            contract["delimiter"] = pinned.delimiter
        if pinned.encoding is not None:
            contract["encoding"] = pinned.encoding
        if pinned.header is not None:
            contract["has_header"] = pinned.header
    return contract


def contract_differences(current: dict[str, Any], established: dict[str, Any]) -> list[str]:
    """Human-readable differences that matter: delimiter, encoding, header, columns, type families.

    Integer vs float is not a difference (a sample of whole numbers is still a float column);
    number vs text is (a column that stopped parsing as numbers). A column with no value in either
    sample (a file whose labels have not arrived yet) has no type to compare.
    """
    differences = []
    show = lambda v: repr(v).replace("'\\t'", "tab")  # noqa: E731
    if "delimiter" in established and current.get("delimiter") != established["delimiter"]:
        differences.append(f"delimiter {show(established['delimiter'])} -> {show(current.get('delimiter'))}")
    if "encoding" in established:
        was = _SAME_ENCODING.get(established["encoding"], established["encoding"])
        now = _SAME_ENCODING.get(current.get("encoding"), current.get("encoding"))
        if was != now:
            differences.append(f"encoding {established['encoding']} -> {current.get('encoding')}")
    if "has_header" in established and current.get("has_header") != established["has_header"]:
        differences.append("header row " + ("missing" if established["has_header"] else "unexpected"))
    if "columns" in established and current.get("has_header", True) and established.get("has_header", True):
        was = {normalize_column_name(c): c for c in established["columns"]}
        now = {normalize_column_name(c): c for c in current.get("columns", [])}
        missing = [c for n, c in was.items() if n not in now]
        extra = [c for n, c in now.items() if n not in was]
        if len(missing) == len(extra) and missing:
            differences.extend(f"column {a!r} renamed to {b!r}?" for a, b in zip(missing, extra, strict=True))
        else:
            if missing:
                differences.append(f"missing columns {missing}")
            if extra:
                differences.append(f"extra columns {extra}")
        old_types, new_types = established.get("types", {}), current.get("types", {})
        empty = set(established.get("empty_columns", [])) | set(current.get("empty_columns", []))
        for norm, original in was.items():
            if norm not in now or original in empty or now[norm] in empty:
                continue
            before = TYPE_FAMILIES.get(old_types.get(original, ""))
            after = TYPE_FAMILIES.get(new_types.get(now[norm], ""))
            if before and after and before != after:
                differences.append(
                    f"column {original!r} type {old_types[original]} -> {new_types[now[norm]]}"
                )
    return differences
