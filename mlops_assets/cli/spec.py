"""`mlops-assets spec draft FILE --target COL`: write an ingest-ready dataset spec from a CSV, guesses explained.

The draft goes to `$MLOPS_HOME/specs/<name>.yaml`, where every command (and `make dev`) finds it, so
the next step is `mlops-assets ingest <name> FILE` with no edit in between. `--out` writes elsewhere
(`-` prints it).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from mlops_assets.home import MlopsHome


def add_parser(sub) -> argparse.ArgumentParser:
    parser = sub.add_parser("spec", help="dataset specs: draft one from a CSV file")
    verbs = parser.add_subparsers(dest="spec_command", required=True)
    draft = verbs.add_parser(
        "draft", help="write a dataset spec from a CSV (types, categories, ranges, ids, times, task), explained",
        description="Sniff the file (plain or .csv.gz), profile every row with DuckDB, and write a spec that "
        "ingests it as is: snake_case names with `source:` for the original headers, types, booleans from "
        "yes/no-style words, category values, ranges with a margin, id and time columns, the task from the "
        "target. Each guess is explained in a comment. The draft is checked by cleaning the file with it. "
        "Exit 0 when written, 2 when the file or the target cannot make a spec.",
    )
    draft.add_argument("file", help="a CSV file (or .csv.gz) representative of the dataset")
    draft.add_argument("--target", required=True, help="the column to predict (its header or its snake_case name)")
    draft.add_argument("--name", default=None, help="dataset name (snake_case; default: from the file name)")
    draft.add_argument("--task", choices=("classification", "regression"), default=None,
                       help="default: from the target (yes/no -> classification, numbers -> regression)")
    draft.add_argument("--out", default=None,
                       help="where to write the spec (a .yaml file or a directory; `-` prints it); "
                       "default: $MLOPS_HOME/specs/<name>.yaml, where every command finds it")
    draft.add_argument("--force", action="store_true", help="replace an existing spec file")
    draft.add_argument("--json", action="store_true", help="print a summary as one JSON object (spec text included)")
    return parser


def target_path(out: str | None, home: MlopsHome, name: str) -> Path | None:
    """Where the draft goes: None for stdout."""
    if out == "-":
        return None
    if out is None:
        return home.specs_dir / f"{name}.yaml"
    path = Path(out).expanduser()
    return path / f"{name}.yaml" if path.is_dir() or out.endswith(("/", "\\")) else path


def summarize(draft, path: Path | None) -> dict[str, Any]:
    spec = draft.spec
    return {
        "ok": True,
        "dataset": spec.name,
        "spec_path": str(path) if path else None,
        "task": spec.task,
        "target": spec.target,
        "key": spec.key,
        "time_column": spec.time_column,
        "rows": draft.rows,
        "rows_cleaned": draft.rows_cleaned,
        "rows_quarantined": draft.rows_quarantined,
        "quarantine_reasons": draft.quarantine_reasons,
        "columns": [c.entry() | {"notes": c.notes} for c in draft.columns],
        "seconds": round(draft.seconds, 2),
        "spec": draft.text,
    }


def format_summary(summary: dict[str, Any]) -> str:
    by_role: dict[str, list[str]] = {}
    for column in summary["columns"]:
        kind = column["type"] + ("" if column.get("role", "feature") == "feature" else f", {column['role']}")
        by_role.setdefault(column.get("role", "feature"), []).append(f"{column['name']} ({kind})")
    lines = [
        f"wrote {summary['spec_path']}: dataset {summary['dataset']}, {len(summary['columns'])} columns, "
        f"task {summary['task']} of {summary['target']} ({summary['seconds']:.1f} s)",
        f"  checked     {summary['rows_cleaned']} of {summary['rows']} rows pass it"
        + (f"; {summary['rows_quarantined']} would be quarantined: {summary['quarantine_reasons']}"
           if summary["rows_quarantined"] else ""),
    ]
    for role in ("feature", "target", "id", "time"):
        if role in by_role:
            lines.append(f"  {role + 's' if role != 'target' else role:<11} {', '.join(by_role[role])}")
    lines.append("  review      every guess is explained in a comment above its line")
    if summary.get("warning"):
        lines.append(f"  warning     {summary['warning']}")
    lines.append(f"next: mlops-assets ingest {summary['dataset']} FILE [FILE ...]")
    return "\n".join(lines)


def run(args: argparse.Namespace, home: MlopsHome) -> int:
    import json

    from mlops_assets.cli.errors import refuse
    from mlops_assets.datasets.draft import DraftError, dataset_name_from_file, draft_spec
    from mlops_assets.datasets.spec import load_specs, spec_dirs
    from mlops_assets.ingest.dialect import UnreadableFile

    source = Path(args.file)
    if not source.is_file():
        refuse(f"{source}: no such file", as_json=args.json, file=args.file)
    name = args.name or dataset_name_from_file(source)
    path = target_path(args.out, home, name)
    existing = load_specs().get(name)
    if existing is not None and not (args.force and path and existing.spec_path
                                     and Path(existing.spec_path).resolve() == path.resolve()):
        refuse(f"dataset {name!r} already exists ({existing.spec_path}); pass --name for a new dataset"
               + (", or --force to redraft this one" if path and existing.spec_path
                  and Path(existing.spec_path).resolve() == path.resolve() else ""),
               as_json=args.json, file=args.file)
    if path is not None and path.exists() and not args.force:
        refuse(f"{path} exists; pass --force to replace it, or --out elsewhere", as_json=args.json, file=args.file)
    try:
        draft = draft_spec(source, target=args.target, name=name, task=args.task)
    except (DraftError, UnreadableFile) as exc:
        refuse(str(exc), as_json=args.json, file=args.file)
    if path is None:
        sys.stdout.write(draft.text)
        return 0
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.part")
    tmp.write_text(draft.text, encoding="utf-8")
    tmp.replace(path)
    summary = summarize(draft, path)
    if path.parent.resolve() not in spec_dirs():
        summary["warning"] = (f"{path.parent} is not a spec directory: move the file to {home.specs_dir}, or set "
                              f"MLOPS_DATASET_SPECS={path.parent.resolve()}, before ingesting")
    print(json.dumps(summary, indent=2, default=str) if args.json else format_summary(summary))
    return 0
