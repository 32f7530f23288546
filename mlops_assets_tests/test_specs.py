"""Dataset specs: the two shipped ones load; a broken spec is refused with the file and field named."""

from __future__ import annotations

import re
import textwrap

import pandas as pd
import pytest

from mlops_assets.datasets.spec import DatasetSpec, SpecError, load_spec, load_specs
from mlops_assets.ingest.cleaning import pandera_schema
from mlops_assets.training.features import build_feature_transformer


def test_shipped_specs_describe_both_datasets():
    specs = load_specs()
    assert set(specs) == {"transactions", "wine_quality"}
    assert specs["transactions"].partitioning.kind == "daily" and specs["transactions"].target == "is_fraud"
    assert specs["wine_quality"].partitioning.kind == "files" and specs["wine_quality"].target == "quality"
    assert specs["wine_quality"].column_by_name["ph"].header == "pH"


def test_pandera_schema_follows_the_spec():
    spec = load_specs()["transactions"]
    schema = pandera_schema(spec)
    good = pd.DataFrame({"transaction_id": pd.array(["a"], dtype="string[pyarrow]"), "timestamp": pd.to_datetime(["2026-01-01"]).astype("datetime64[us]"),
                         "amount": [1.5], "merchant_category": pd.array(["gas"], dtype="string[pyarrow]"), "hour_of_day": [3], "distance_from_home": [1.0],
                         "transactions_24h": [2], "card_present": [True], "is_fraud": [False]})
    schema.validate(good)
    with pytest.raises(Exception, match="hour_of_day"):
        schema.validate(good.assign(hour_of_day=[24]))


def test_feature_transformer_is_stateless_given_the_spec():
    """Fitted on different rows, it transforms identically: categories come from the spec, not the data."""
    spec = load_specs()["transactions"]
    rows = pd.DataFrame({"amount": [10.0, 20.0], "merchant_category": ["gas", "online"], "hour_of_day": [1, 2],
                         "distance_from_home": [1.0, 2.0], "transactions_24h": [1, 2], "card_present": [True, False]})
    other = rows.assign(merchant_category=["travel", "travel"])
    a = build_feature_transformer(spec).fit(rows).transform(rows)
    b = build_feature_transformer(spec).fit(other).transform(rows)
    pd.testing.assert_frame_equal(a, b)
    assert "merchant_category_health" in a.columns and a.shape[1] == 4 + 8 + 1


def test_adding_a_dataset_is_a_yaml_file(tmp_path, monkeypatch):
    spec = textwrap.dedent("""
        name: churn
        source: {kind: file_drop}
        partitioning: {kind: files}
        task: classification
        target: churned
        columns:
          - {name: tenure_months, type: integer, min: 0}
          - {name: plan, type: category, values: [basic, pro]}
          - {name: churned, type: boolean, role: target}
        training: {primary_metric: roc_auc}
    """)
    (tmp_path / "churn.yaml").write_text(spec)
    monkeypatch.setenv("MLOPS_DATASET_SPECS", str(tmp_path))
    from mlops_assets.definitions import build_definitions

    defs = build_definitions()
    keys = {k.to_user_string() for k in defs.resolve_asset_graph().get_all_asset_keys()}
    assert {"churn/raw", "churn/cleaned", "churn/features", "churn/model", "churn/drift_report", "churn/bento"} <= keys


def test_a_broken_spec_names_the_file_and_the_field(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text(textwrap.dedent("""
        name: broken
        source: {kind: generator}
        partitioning: {kind: daily}
        task: classification
        target: label
        columns:
          - {name: x, type: float}
          - {name: label, type: boolean, role: target}
        training: {primary_metric: roc_auc}
    """))
    with pytest.raises(SpecError) as error:
        load_spec(path)
    assert "broken.yaml" in str(error.value) and "start_date" in str(error.value)


def test_spec_errors_name_the_column_by_its_name(tmp_path):
    path = tmp_path / "bank.yaml"
    path.write_text(textwrap.dedent("""
        name: bank
        source: {kind: file_drop}
        partitioning: {kind: files}
        task: classification
        target: subscribed
        columns:
          - {name: age, type: integer}
          - {name: balance, type: money}
          - {name: job, type: category}
          - {type: float}
          - {name: subscribed, type: boolean, role: target}
        training: {primary_metric: roc_auc}
    """))
    with pytest.raises(SpecError) as error:
        load_spec(path)
    message = str(error.value)
    assert "columns[balance].type: Input should be" in message and "not 'money'" in message
    assert "columns[job]: a category column needs `values`" in message and "spec draft" in message
    assert "columns[#4].name: Field required" in message  # no name to show: its position, counted from 1
    assert "columns.1" not in message and "Value error" not in message


def test_specs_written_to_mlops_home_are_loaded_after_the_built_in_ones(tmp_path, monkeypatch):
    from mlops_assets.home import MlopsHome

    home = MlopsHome(tmp_path / "home")
    home.specs_dir.mkdir(parents=True)
    from pathlib import Path

    shipped = Path(load_specs()["wine_quality"].spec_path).read_text(encoding="utf-8")
    (home.specs_dir / "red_wine.yaml").write_text(shipped.replace("name: wine_quality", "name: red_wine"))
    monkeypatch.setenv("MLOPS_HOME", str(home.root))
    specs = load_specs()
    assert list(specs)[-1] == "red_wine" and {"transactions", "wine_quality"} <= set(specs)
    (home.specs_dir / "wine_quality.yaml").write_text(shipped)
    with pytest.raises(SpecError, match="wine_quality.yaml: dataset 'wine_quality' is already defined"):
        load_specs()


_SMALL = """
name: small
source: {{kind: file_drop}}
partitioning: {{kind: files}}
task: {task}
target: label
columns:
  - {x}
  - {label}
training: {{primary_metric: {metric}}}
"""


@pytest.mark.parametrize(
    ("x", "label", "task", "message"),
    [
        ("{name: x, type: float}", "{name: label, type: boolean}", "classification",
         "column 'label' is the target but has role feature"),
        ("{name: x, type: float}", "{name: label, type: float, role: target}", "classification",
         "task classification needs a yes/no target, but column 'label' is float"),
        ("{name: x, type: float, min: 10, max: 1}", "{name: label, type: boolean, role: target}", "classification",
         "columns[x]: column 'x': min 10 is greater than max 1"),
        ("{name: x, type: boolean, values: ['yes', 'no']}", "{name: label, type: boolean, role: target}",
         "classification", "columns[x]: column 'x': `values` lists the labels of a category column, but this one is boolean"),
    ],
)
def test_specs_that_cannot_mean_what_they_say_are_refused_naming_the_column(tmp_path, x, label, task, message):
    path = tmp_path / "small.yaml"
    metric = "roc_auc" if task == "classification" else "rmse"
    path.write_text(_SMALL.format(x=x, label=label, task=task, metric=metric))
    with pytest.raises(SpecError) as error:
        load_spec(path)
    assert message in str(error.value) and str(error.value).startswith(f"{path}: ") and "\n" not in str(error.value)


def test_a_yaml_syntax_error_is_one_line_with_file_line_and_column(tmp_path):
    path = tmp_path / "small.yaml"
    path.write_text("name: small\ncolumns:\n  - {name: x, type: float\n  - {name: y}\n")
    with pytest.raises(SpecError) as error:
        load_spec(path)
    message = str(error.value)
    assert message.startswith(f"{path}:4:") and "\n" not in message and "expected ',' or '}'" in message


def _spec_keys(model, parent: str = ""):
    """(parent path, field) for every field of the spec models, nested models walked (columns as `columns[]`)."""
    import typing

    from pydantic import BaseModel

    for name, info in model.model_fields.items():
        if model is DatasetSpec and name == "spec_path":
            continue  # set by the loader (where the spec was read from), not written by a user
        nested = [t for t in (info.annotation, *typing.get_args(info.annotation))
                  for t in (t, *typing.get_args(t)) if isinstance(t, type) and issubclass(t, BaseModel)]
        path = f"{parent}.{name}" if parent else name
        if nested:
            yield from _spec_keys(nested[0], path + ("[]" if name == "columns" else ""))
        else:
            yield parent, name


def test_the_readme_spec_reference_lists_every_key_of_the_spec_models():
    from mlops_assets.home import REPO_DIR

    readme = (REPO_DIR / "README.md").read_text(encoding="utf-8")
    section = readme.split("### Spec reference", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    missing = []
    for parent, name in _spec_keys(DatasetSpec):
        key = f"{parent}.{name}" if parent else name
        # `drift.num_method`, `.cat_method` in one row; candidates' fields spelled out in their parent's row
        cells = [row.split(" | ")[0] for row in rows]
        listed = any(f"`{key}`" in cell or parent and cell.startswith(f"| `{parent}.") and f"`.{name}`" in cell
                     for cell in cells) or any(  # a list's items spelled out in its own row: `{name, estimator, ...}`
            cell == f"| `{parent}`" and re.search(rf"[{{,] ?{name}\b", row) for cell, row in zip(cells, rows))
        if not listed:
            missing.append(key)
    assert missing == [], f"add these keys to README 'Spec reference': {missing}"
    from mlops_assets.datasets.spec import ESTIMATORS_FOR_TASK, METRICS_FOR_TASK

    def row(key: str) -> str:
        return next(r for r in rows if r.startswith(f"| `{key}` |"))

    for metric in sorted({m for metrics in METRICS_FOR_TASK.values() for m in metrics}):
        assert f"`{metric}`" in row("training.primary_metric"), metric
    for kind in sorted({k for kinds in ESTIMATORS_FOR_TASK.values() for k in kinds}):
        assert f"`{kind}`" in row("training.candidates"), kind
