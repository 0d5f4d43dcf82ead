"""Every numbered notebook has the same frame a learner can rely on (issue 16): cell 0 opens with learning goals,
prerequisites and the measured time; the notebook closes with a summary and exercises (or questions); at least two
predict-then-run checkpoints hide their answers in ``<details>`` blocks; and no placeholder is left in its prose."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

NB_DIR = Path(__file__).resolve().parent.parent / "notebooks"
NUMBERED = sorted(NB_DIR.glob("0?_*.ipynb"))
PLACEHOLDER = "TIME_TBD"


def _markdown(path: Path) -> list[str]:
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    return ["".join(cell["source"]) for cell in cells if cell["cell_type"] == "markdown"]


def _has_heading(cells: list[str], *titles: str) -> bool:
    pattern = re.compile(r"^## (?:" + "|".join(map(re.escape, titles)) + r")\s*$", re.MULTILINE)
    return any(pattern.search(text) for text in cells)


def test_the_numbered_notebooks_are_found():
    assert len(NUMBERED) >= 10, [p.name for p in NUMBERED]


@pytest.mark.parametrize("path", NUMBERED, ids=lambda p: p.stem)
def test_numbered_notebook_has_the_common_frame(path: Path):
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    assert cells and cells[0]["cell_type"] == "markdown", f"{path.name}: cell 0 is not a markdown cell"
    first = "".join(cells[0]["source"])
    markdown = _markdown(path)
    problems = [f"cell 0 lacks {text!r}" for text in ("## Learning goals", "**Prerequisites:**", "**Time**")
                if text not in first]
    if not _has_heading(markdown, "Summary"):
        problems.append("no '## Summary' heading")
    if not _has_heading(markdown, "Exercises", "Questions"):
        problems.append("no '## Exercises' or '## Questions' heading")
    details = sum("<details>" in text for text in markdown)
    if details < 2:
        problems.append(f"{details} markdown cell(s) with <details> (at least 2 predict-then-run answers)")
    placeholders = [i for i, cell in enumerate(cells)
                    if cell["cell_type"] == "markdown" and PLACEHOLDER in "".join(cell["source"])]
    if placeholders:
        problems.append(f"{PLACEHOLDER} left in markdown cells {placeholders}")
    assert not problems, f"{path.name}: " + "; ".join(problems)


TIMED = NUMBERED + [NB_DIR / "appendix_fast_sampling.ipynb"]
TIME_LINE = re.compile(r'about (\d+(?:\.\d)? (?:s|min)) at `PRESET = "tiny"` and about (\d+(?:\.\d)? (?:s|min)) at `"quick"`')


def _measured(seconds: float) -> str:
    """A wall time as cell 0 states it: whole seconds below 90 s, else minutes to one decimal."""
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.1f} min"


@pytest.mark.parametrize("path", TIMED, ids=lambda p: p.stem)
def test_the_time_in_cell_0_is_the_measured_one(path: Path):
    """Cell 0's times are not written by hand: they are results/notebook_times.csv's wall times (re-measure with
    `make notebooks`, update the table, then these lines and docs/instructor_guide.md's table)."""
    rows = {}
    with open(NB_DIR.parent / "results" / "notebook_times.csv", encoding="utf-8") as table:
        header = table.readline().strip().split(",")
        for line in table:
            row = dict(zip(header, line.strip().split(",")))
            if not row.get("variant"):
                rows[(row["notebook"], row["preset"])] = float(row["wall_s"])
    first = "".join(json.loads(path.read_text(encoding="utf-8"))["cells"][0]["source"])
    match = TIME_LINE.search(first)
    assert match, f"{path.name}: cell 0's **Time** line does not state 'about … at `PRESET = \"tiny\"` and about … at `\"quick\"`'"
    assert match.groups() == (_measured(rows[(path.stem, "tiny")]), _measured(rows[(path.stem, "quick")])), (
        f"{path.name}: cell 0 says {match.groups()}, results/notebook_times.csv measured "
        f"{rows[(path.stem, 'tiny')]} s / {rows[(path.stem, 'quick')]} s")
