"""A real dataset the project has never seen, written the way exports arrive: awkwardly, in several files.

Fair's extramarital affairs survey (6,366 respondents; Fair 1978, J. Political Economy), as shipped
inside statsmodels (a dependency of evidently, pinned in constraints.txt): nothing is downloaded.
Written with semicolons, quoted strings (labels containing `;` and `,`), a messy header, yes/no
booleans, an optional column with blanks, a respondent id and a survey date, split into files that
arrive in order. Codes become the labels the dataset's documentation gives them.
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import io
from pathlib import Path

RATING = {1: "very poor", 2: "poor", 3: "fair", 4: "good", 5: "very good"}
RELIGIOUS = {1: "not", 2: "mildly", 3: "fairly", 4: "strongly"}
OCCUPATION = {
    1: "student",
    2: "farming, agriculture; semi-skilled or unskilled",
    3: "white-collar",
    4: "teacher, nurse, artist; technician or skilled",
    5: "managerial, administrative, business",
    6: "professional with advanced degree",
}
HEADER = ["Respondent ID", "Survey Date", "Marriage Rating", "Age (years)", "Years Married", "Children",
          "Religiousness", "Education (years)", "Occupation", "Husband's Occupation", "Had Affair?"]
BLANK_EVERY = 13  # every 13th respondent did not give her husband's occupation


def fair_frame():
    """The survey rows in a fixed shuffled order (the shipped file is sorted by the outcome)."""
    from statsmodels.datasets import fair

    frame = fair.load_pandas().data
    return frame.sample(frac=1.0, random_state=20260101).reset_index(drop=True)


def awkward_rows(frame) -> list[list]:
    start = dt.date(2026, 1, 5)
    rows = []
    for i, r in enumerate(frame.itertuples(index=False)):
        rows.append([
            f"R{i + 1:05d}",
            (start + dt.timedelta(days=i // 300)).isoformat(),
            RATING[int(r.rate_marriage)],
            f"{r.age:g}",
            f"{r.yrs_married:g}",
            f"{r.children:g}",
            RELIGIOUS[int(r.religious)],
            f"{r.educ:g}",
            OCCUPATION[int(r.occupation)],
            "" if i % BLANK_EVERY == BLANK_EVERY - 1 else OCCUPATION[int(r.occupation_husb)],
            "Yes" if r.affairs > 0 else "No",
        ])
    return rows


def render(rows: list[list]) -> bytes:
    """Semicolon-separated, every text field quoted, CRLF line ends (as spreadsheet exports write them)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=";", quoting=csv.QUOTE_NONNUMERIC, lineterminator="\r\n")
    writer.writerow(HEADER)
    for row in rows:
        writer.writerow([_number(v) for v in row])
    return buffer.getvalue().encode("utf-8")


def _number(value: str) -> int | float | str:
    """Numbers as numbers, so only text is quoted."""
    try:
        number = float(value)
    except ValueError:
        return value
    return int(number) if number.is_integer() else number


def read_rows(path: Path) -> list[dict[str, str]]:
    """A delivery as Python's csv module reads it: an independent view to check the platform against."""
    data = path.read_bytes()
    text = (gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data).decode("utf-8")
    return list(csv.DictReader(io.StringIO(text, newline=""), delimiter=";"))


def write_deliveries(directory: Path, parts: int = 3) -> list[Path]:
    """`affairs_part1.csv`, `affairs_part2.csv`, ... the last one gzip-compressed; oldest first."""
    rows = awkward_rows(fair_frame())
    size = -(-len(rows) // parts)
    paths = []
    for n in range(parts):
        content = render(rows[n * size:(n + 1) * size])
        last = n == parts - 1
        path = directory / (f"affairs_part{n + 1}.csv" + (".gz" if last else ""))
        path.write_bytes(gzip.compress(content, mtime=0) if last else content)
        paths.append(path)
    return paths
