#!/usr/bin/env python3
"""Fill the exercise notebooks with the reference solutions (instructors and CI only).

Each exercise cell of a student notebook (a code cell with ``# YOUR CODE HERE`` that defines one of the
exercise functions) is replaced by the reference solution from ``instructor/solutions.py``; nothing else
changes, so the filled notebook runs every check and "use it" cell exactly as a student's finished one would.

    python instructor/fill_notebooks.py notebooks/exercises/ex01_diffusion.ipynb --out /tmp/solved
    python instructor/fill_notebooks.py --out /tmp/solved        # every notebook in notebooks/exercises/

Then run a filled notebook as usual (``papermill /tmp/solved/ex01_diffusion.ipynb out.ipynb -p PRESET tiny``):
every check should print ✓.
"""
from __future__ import annotations

import argparse
import importlib.util
import inspect
import re
import sys
from pathlib import Path
from types import ModuleType

import nbformat

from dac4rec_lite.io import atomic_write_text

HERE = Path(__file__).resolve().parent
NOTEBOOKS = HERE.parent / "notebooks" / "exercises"
_DEF = re.compile(r"^def (\w+)\(", re.MULTILINE)


def load_solutions() -> ModuleType:
    """``instructor/solutions.py`` as a module (it is not part of the installed package)."""
    spec = importlib.util.spec_from_file_location("dac4rec_lite_instructor_solutions", HERE / "solutions.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def fill(nb: nbformat.NotebookNode, solutions: ModuleType | None = None) -> tuple[nbformat.NotebookNode, list[str]]:
    """A copy of ``nb`` with every exercise cell replaced by its solution; returns (notebook, names filled)."""
    solutions = solutions or load_solutions()
    nb = nbformat.from_dict(nb)
    filled = []
    for cell in nb.cells:
        if cell.cell_type != "code" or "# YOUR CODE HERE" not in cell.source:
            continue
        match = _DEF.search(cell.source)
        if match is None or not hasattr(solutions, match.group(1)):
            raise ValueError(f"an exercise cell defines no known exercise function:\n{cell.source}")
        cell.source = inspect.getsource(getattr(solutions, match.group(1))).rstrip("\n")
        filled.append(match.group(1))
    return nb, filled


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path, help="exercise notebooks (default: all of notebooks/exercises)")
    parser.add_argument("--out", type=Path, required=True, help="folder for the filled copies")
    args = parser.parse_args(argv)
    paths = args.notebooks or sorted(NOTEBOOKS.glob("*.ipynb"))
    args.out.mkdir(parents=True, exist_ok=True)
    solutions = load_solutions()
    for path in paths:
        nb, filled = fill(nbformat.read(path, 4), solutions)
        atomic_write_text(args.out / path.name, nbformat.writes(nb))
        print(f"{path.name}: filled {', '.join(filled)} -> {args.out / path.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
