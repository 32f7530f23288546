"""`spec draft`: a spec drafted from a CSV is right, explained, and ingests the file (and later ones) as is."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from mlops_assets.datasets.draft import (
    DraftError,
    allowed_range,
    column_names,
    dataset_name_from_file,
    draft_spec,
    dry_run,
)
from mlops_assets.datasets.spec import load_specs
from mlops_assets_tests.awkward_export import HEADER, read_rows, write_deliveries


@pytest.fixture(scope="module")
def deliveries(tmp_path_factory) -> list[Path]:
    return write_deliveries(tmp_path_factory.mktemp("deliveries"))


@pytest.fixture(scope="module")
def drafted(deliveries):
    return draft_spec(deliveries[0], target="Had Affair?")


def test_the_draft_names_types_and_roles_every_column(drafted):
    spec = drafted.spec
    assert (spec.name, spec.task, spec.target, spec.key, spec.time_column) == (
        "affairs", "classification", "had_affair", "respondent_id", "survey_date")
    assert [c.header for c in spec.columns] == HEADER  # every messy header kept as `source`
    assert [(c.name, c.type, c.role) for c in spec.columns] == [
        ("respondent_id", "string", "id"),
        ("survey_date", "date", "time"),
        ("marriage_rating", "category", "feature"),
        ("age_years", "float", "feature"),
        ("years_married", "float", "feature"),
        ("children", "float", "feature"),
        ("religiousness", "category", "feature"),
        ("education_years", "integer", "feature"),
        ("occupation", "category", "feature"),
        ("husband_s_occupation", "category", "feature"),
        ("had_affair", "boolean", "target"),
    ]
    assert spec.contract is not None and (spec.contract.delimiter, spec.contract.header, spec.contract.encoding) == (
        ";", True, "utf-8")


def test_categories_list_every_label_and_blanks_make_a_column_optional(drafted, deliveries):
    rows = read_rows(deliveries[0])
    by_name = drafted.spec.column_by_name
    for header, name in (("Occupation", "occupation"), ("Husband's Occupation", "husband_s_occupation"),
                         ("Marriage Rating", "marriage_rating"), ("Religiousness", "religiousness")):
        assert by_name[name].values == tuple(sorted({r[header] for r in rows} - {""})), name
    blanks = {h: sum(1 for r in rows if r[h] == "") for h in HEADER}
    assert blanks["Husband's Occupation"] > 0
    assert {c.header for c in drafted.spec.columns if not c.required} == {h for h, n in blanks.items() if n}


def test_ranges_hold_every_value_with_a_margin(drafted, deliveries):
    rows = read_rows(deliveries[0])
    for column in drafted.spec.columns:
        if column.type not in ("integer", "float"):
            continue
        seen = [float(r[column.header]) for r in rows]
        assert column.min <= min(seen) and max(seen) < column.max, column.name
        assert column.max - max(seen) >= (max(seen) - min(seen)) * 0.9, column.name  # room for a shift


def test_every_guess_is_explained_in_the_yaml(drafted):
    lines = drafted.text.splitlines()
    for column in drafted.spec.columns:
        entry = next(i for i, line in enumerate(lines) if line.startswith(("  - {name: " + column.name + ",",
                                                                           "  - name: " + column.name)))
        assert lines[entry - 1].lstrip().startswith("#"), column.name
        comment = "\n".join(line for line in lines[:entry] if line.lstrip().startswith(f"# {column.name}:"))
        assert comment, column.name
    assert "target -> task classification" in drafted.text
    assert "`values` is the serving contract" in drafted.text


def test_the_draft_cleans_its_own_file_and_the_later_deliveries(drafted, deliveries):
    assert drafted.rows == drafted.rows_cleaned == len(read_rows(deliveries[0]))
    assert f"# Checked: all {drafted.rows} rows of affairs_part1.csv pass this spec" in drafted.text
    for later in deliveries[1:]:  # the last one is gzip-compressed
        cleaned, quarantined, reasons = dry_run(drafted.spec, later)
        assert (cleaned, quarantined) == (len(read_rows(later)), 0), reasons


def test_the_wine_file_drafts_into_the_hand_written_spec(wine_dir):
    shipped = load_specs()["wine_quality"]
    drafted = draft_spec(wine_dir / "winequality-red.csv", target="quality", name="red")
    assert [(c.name, c.header, c.type, c.required) for c in drafted.spec.columns] == [
        (c.name, c.header, c.type, c.required) for c in shipped.columns]
    assert drafted.spec.task == "regression" and drafted.spec.contract.delimiter == ";"
    assert (drafted.rows_cleaned, drafted.rows_quarantined) == (1599, 0)


def test_a_gzip_file_drafts_exactly_like_the_plain_one(wine_dir, tmp_path):
    packed = tmp_path / "winequality-red.csv.gz"
    packed.write_bytes(gzip.compress((wine_dir / "winequality-red.csv").read_bytes()))
    plain = draft_spec(wine_dir / "winequality-red.csv", target="quality", name="red")
    assert draft_spec(packed, target="quality", name="red").spec.columns == plain.spec.columns
    assert "gzip-compressed" in draft_spec(packed, target="quality", name="red").text


def _write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_a_0_1_target_is_a_yes_no_classification(tmp_path):
    lines = ["amount,churned"] + [f"{i * 1.5},{i % 2}" for i in range(40)]
    drafted = draft_spec(_write(tmp_path / "churn.csv", lines), target="churned")
    assert (drafted.spec.task, drafted.spec.target_column.type) == ("classification", "boolean")
    assert drafted.rows_cleaned == 40


@pytest.mark.parametrize(
    ("target", "task", "message"),
    [
        ("colour", None, "no column 'colour' to predict; the columns are ['Amount', 'Plan', 'Score']"),
        ("Plan", None, "target 'Plan' has 3 labels ('basic' 14, 'plus' 13, 'pro' 13); the platform trains binary"),
        ("Score", "classification", "--task classification does not fit target 'Score'"),
    ],
)
def test_a_target_no_task_fits_is_refused_in_one_line(tmp_path, target, task, message):
    plans = ["basic", "pro", "plus"]
    lines = ["Amount,Plan,Score"] + [f"{i},{plans[i % 3]},{i * 0.5}" for i in range(40)]
    with pytest.raises(DraftError) as error:
        draft_spec(_write(tmp_path / "plans.csv", lines), target=target, task=task)
    assert message in str(error.value) and "\n" not in str(error.value)
    assert str(error.value).startswith("plans.csv: ")


def test_a_few_unparsable_numbers_keep_the_type_many_make_it_text(tmp_path):
    """The sniffer types columns from the first 2000 rows; DuckDB then reads every row and has the last word."""
    rows = [f"{i}.5,{i},{'yes' if i % 3 else 'no'}" for i in range(3000)]
    rows[2500] = "n/a?,2500,yes"  # one bad price, after the rows the sniffer typed
    rows[2000:2400] = [f"{i}.5,size {i % 9},yes" for i in range(2000, 2400)]  # 400 sizes are text
    drafted = draft_spec(_write(tmp_path / "goods.csv", ["price,size,label", *rows]), target="label")
    by_name = drafted.spec.column_by_name
    assert by_name["price"].type == "float"
    assert "1 value(s) do not parse as number" in drafted.text
    assert (drafted.rows_cleaned, drafted.rows_quarantined) == (2999, 1)
    assert (by_name["size"].type, by_name["size"].role) == ("string", "id") and "read as text" in drafted.text


@pytest.mark.parametrize(
    ("file", "name"),
    [("bank-full.csv", "bank_full"), ("Affairs_part3.csv.gz", "affairs"), ("sales_2024-03-31.csv", "sales"),
     ("export.csv", "export"), ("2024.csv", "dataset"), ("Churn Export (v2).tsv", "churn_export"), ("fair.csv", "fair")],
)
def test_dataset_name_from_the_file_name(file, name):
    assert dataset_name_from_file(Path(file)) == name


def test_column_names_are_snake_case_unique_and_start_with_a_letter():
    assert column_names(["Age (years)", "pH", "2nd Try", "", "age years", "Résumé"]) == [
        "age_years", "ph", "c_2nd_try", "column_4", "age_years_2", "resume"]


@pytest.mark.parametrize(
    ("low", "high", "integer", "expected"),
    [(17.5, 42, False, (0, 67)), (9, 20, True, (0, 31)), (0.2, 0.9, False, (0, 1)), (0.99007, 1.00369, False,
                                                                                      (0.976, 1.018)),
     (-5, 5, False, (-15, 15)), (3, 3, True, (0, 6))],
)
def test_allowed_range(low, high, integer, expected):
    assert allowed_range(low, high, integer=integer) == pytest.approx(expected)


def _exams(path: Path, start: int, dates: list[str]) -> Path:
    lines = ["Patient #;Exam Date;Visit;Score;Passed"]
    for i in range(60):
        lines.append(f"{start + i};{dates[i % len(dates)]};{['early', 'late'][i % 2]};{i % 7 + 0.5};"
                     f"{'yes' if i % 3 else 'no'}")
    return _write(path, lines)


def test_day_first_dates_are_read_as_dates_and_the_next_file_ingests_with_none_quarantined(tmp_path):
    """dd.mm.yyyy: the draft reads them with a format (not as category labels), so later files with other dates
    clean fully; 'Patient #' becomes the key patient_no."""
    first = _exams(tmp_path / "exams_1.csv", 1, ["03.01.2026", "17.01.2026", "28.01.2026"])
    later = _exams(tmp_path / "exams_2.csv", 101, ["02.02.2026", "14.02.2026", "26.02.2026"])
    drafted = draft_spec(first, target="Passed", name="exams")
    exam_date = drafted.spec.column_by_name["exam_date"]
    assert (exam_date.type, exam_date.role, exam_date.format) == ("date", "time", "%d.%m.%Y")
    assert drafted.spec.time_column == "exam_date" and drafted.spec.key == "patient_no"
    assert "format: '%d.%m.%Y'" in drafted.text or "format: \"%d.%m.%Y\"" in drafted.text
    assert (drafted.rows_cleaned, drafted.rows_quarantined) == (60, 0)
    cleaned, quarantined, reasons = dry_run(drafted.spec, later)
    assert (cleaned, quarantined) == (60, 0), reasons


def test_dates_that_do_not_parse_are_never_a_category_feature(tmp_path):
    lines = ["visit_date,amount,label"] + [f"{['Q1', 'Q2', 'Q3'][i % 3]},{i % 10 + 0.5},{'yes' if i % 2 else 'no'}"
                                          for i in range(40)]
    drafted = draft_spec(_write(tmp_path / "quarters.csv", lines), target="label")
    visit = drafted.spec.column_by_name["visit_date"]
    assert (visit.type, visit.role) == ("string", "id") and "looks like a date or time" in drafted.text


@pytest.mark.parametrize(
    ("values", "expected"),
    [(["2026-01-31"], None), (["31.01.2026", "01.02.2026"], "%d.%m.%Y"), (["01/31/2026", "02/01/2026"], "%m/%d/%Y"),
     (["05.01.2026"], "%d.%m.%Y"), (["05/01/2026"], "%m/%d/%Y"), (["2026/01/31"], "%Y/%m/%d"),
     (["31.01.2026", "01.31.2026"], None), (["31.01.2026", "31/01/2026"], None)],
)
def test_date_format_reads_day_or_month_first_from_the_values(values, expected):
    from mlops_assets.datasets.draft import date_format

    assert date_format(values)[0] == expected


def test_the_draft_writes_current_keys_only(drafted):
    import yaml

    data = yaml.safe_load(drafted.text)
    assert "estimator" not in data["training"] and "params" not in data["training"]
    assert [c["name"] for c in data["training"]["candidates"]] == ["hist_gradient_boosting"]
    from mlops_assets.datasets.spec import DriftSpec

    assert "threshold" not in data["drift"]
    assert data["drift"]["severe_share"] != DriftSpec.model_fields["severe_share"].default  # written: not the default
    assert set(data["drift"]) <= {"warn_share", "severe_share"}
    assert column_names(["Patient #", "#"]) == ["patient_no", "no"]
