"""What the exercise tests share: the instructor files (loaded by path: they are not part of the package) and
``fails``, the assertion that a checker rejects an answer with a given diagnosis."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from dac4rec_lite import exercises as ex

ROOT = Path(__file__).resolve().parent.parent


def _load(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


S = _load(ROOT / "instructor" / "solutions.py", "instructor_solutions")
FILL = _load(ROOT / "instructor" / "fill_notebooks.py", "instructor_fill_notebooks")


def fails(name: str, fn, reason: str, *phrases: str) -> str:
    """Assert that the check of ``name`` rejects ``fn`` with ``reason`` and a message containing ``phrases``."""
    with pytest.raises(ex.ExerciseFailed) as info:
        getattr(ex, f"check_{name}")(fn, strict=True)
    message = str(info.value)
    assert info.value.reason == reason, f"expected {reason!r}, got {info.value.reason!r}:\n{message}"
    for phrase in phrases:
        assert phrase in message, f"{phrase!r} not in:\n{message}"
    return message
