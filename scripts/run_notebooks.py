#!/usr/bin/env python3
"""Execute the course notebooks headless with papermill.

Usage (normally via ``make notebooks``)::

    python scripts/run_notebooks.py --preset quick --out build/notebooks
    python scripts/run_notebooks.py --preset tiny notebooks/01_intro.ipynb

Each notebook is run with its ``parameters`` cell overridden by
``PRESET=<preset>``; ``DAC4REC_PRESET`` is exported to the kernel as well.
Notebooks run with their own folder as working directory.  The executed
copies are written to ``--out``.  The time each notebook took is printed,
and the script exits with status 1 if any notebook failed, naming it.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import traceback
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_NOTEBOOK_DIR = REPO_ROOT / "notebooks"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("notebooks", nargs="*", type=Path,
                   help="notebooks to run (default: every notebooks/*.ipynb)")
    p.add_argument("--preset", default=os.environ.get("DAC4REC_PRESET", "quick"),
                   help="value injected as PRESET (default: $DAC4REC_PRESET or 'quick')")
    p.add_argument("--out", type=Path, default=REPO_ROOT / "build" / "notebooks",
                   help="folder for the executed notebooks (default: build/notebooks)")
    p.add_argument("--timeout", type=int, default=600,
                   help="per-cell execution timeout in seconds (default: 600)")
    p.add_argument("--kernel", default="dac4rec-lite",
                   help="Jupyter kernel name (default: dac4rec-lite)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)

    import papermill as pm  # imported late so --help works without it

    notebooks = [p.resolve() for p in args.notebooks] or sorted(DEFAULT_NOTEBOOK_DIR.glob("*.ipynb"))
    if not notebooks:
        print(f"no notebooks found in {DEFAULT_NOTEBOOK_DIR}", file=sys.stderr)
        return 1
    missing = [p for p in notebooks if not p.is_file()]
    if missing:
        print("notebook(s) not found: " + ", ".join(map(str, missing)), file=sys.stderr)
        return 1

    args.out.mkdir(parents=True, exist_ok=True)
    os.environ["DAC4REC_PRESET"] = args.preset  # inherited by the kernel process

    print(f"Running {len(notebooks)} notebook(s) with PRESET={args.preset!r}, "
          f"kernel={args.kernel!r}, per-cell timeout={args.timeout}s -> {args.out}", flush=True)

    failures: list[tuple[Path, str]] = []
    timings: list[tuple[Path, float, bool]] = []
    t_total = time.perf_counter()
    for nb in notebooks:
        out_path = args.out / nb.name
        print(f"--> {nb.name} ...", flush=True)
        t0 = time.perf_counter()
        ok = True
        try:
            pm.execute_notebook(
                str(nb),
                str(out_path),
                parameters={"PRESET": args.preset},
                kernel_name=args.kernel,
                cwd=str(nb.parent),
                execution_timeout=args.timeout,
                progress_bar=False,
            )
        except Exception as exc:  # PapermillExecutionError, timeouts, missing kernel, ...
            ok = False
            summary = f"{type(exc).__name__}: {str(exc).strip().splitlines()[-1] if str(exc).strip() else ''}"
            failures.append((nb, summary))
            traceback.print_exc()
        dt = time.perf_counter() - t0
        timings.append((nb, dt, ok))
        print(f"    {nb.name}: {'ok' if ok else 'FAILED'} in {dt:.1f}s (output: {out_path})", flush=True)

    print("\nSummary:")
    for nb, dt, ok in timings:
        print(f"  {'ok    ' if ok else 'FAILED'} {dt:8.1f}s  {nb.name}")
    print(f"  total  {time.perf_counter() - t_total:8.1f}s")

    if failures:
        print(f"\n{len(failures)} notebook(s) failed:", file=sys.stderr)
        for nb, summary in failures:
            print(f"  {nb}: {summary}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
