"""The instructor's answer key (docs/answer_key.md) answers every end-of-notebook question, one numbered answer per
numbered question, in each notebook's own section; a question added to a notebook without its answer fails here."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
ITEM = re.compile(r"^\d+\. ", re.MULTILINE)


def _key_sections() -> dict[str, str]:
    text = (ROOT / "docs" / "answer_key.md").read_text(encoding="utf-8")
    sections = {}
    for section in re.split(r"^## ", text, flags=re.MULTILINE)[1:]:
        title = section.splitlines()[0]
        match = re.match(r"(\d\d|Appendix)\b", title)
        if match:
            sections[match.group(1)] = section
    return sections


def _questions(notebook: Path) -> str | None:
    """The text after the notebook's last '## Exercises' / '## Questions' heading (in its markdown cell)."""
    found = None
    for cell in json.loads(notebook.read_text(encoding="utf-8"))["cells"]:
        if cell["cell_type"] == "markdown":
            match = re.search(r"^## (?:Exercises|Questions)\s*$(.*)", "".join(cell["source"]), re.MULTILINE | re.DOTALL)
            if match:
                found = match.group(1)
    return found


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_every_end_of_notebook_question_has_an_answer(notebook):
    questions = _questions(notebook)
    assert questions is not None, f"{notebook.name} has no '## Exercises' or '## Questions' section"
    n_questions = len(ITEM.findall(questions))
    assert n_questions >= 2, f"{notebook.name}: {n_questions} numbered questions"
    label = "Appendix" if notebook.stem.startswith("appendix") else notebook.stem[:2]
    sections = _key_sections()
    assert label in sections, f"docs/answer_key.md has no section for {notebook.name}"
    n_answers = len(ITEM.findall(sections[label]))
    assert n_answers == n_questions, (
        f"{notebook.name} asks {n_questions} questions, docs/answer_key.md answers {n_answers}: add or remove answers")
