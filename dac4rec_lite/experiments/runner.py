"""Run many independent experiment runs — on local processes or a Ray cluster — resumably.

A study is a list of *runs*. Each run has a ``label`` (a dict of scalars such as ``{"method": "DAC4Rec",
"encoder": "gru", "seed": 0}``) that names it, and one picklable top-level function ``work(run)`` turns a
run into one flat row of scalars (its label plus its metrics). ``execute`` does the bookkeeping around that:

* **Resume by default.** If the run table (a CSV at ``table_path``) already holds a row with a run's label,
  the run is skipped and its saved row is returned; nothing is redone. There is no ``--resume`` switch:
  rerunning the same command continues where it stopped. Delete the table to start afresh.
* **Nothing finished is lost.** Each row is appended as soon as its run completes, by rewriting the table
  atomically (``dac4rec_lite.io.atomic_write``: temp file in the same folder, fsync, ``os.replace``), so an
  interrupt, a lost worker or a crash leaves a complete table of the runs finished so far.
* **Failures do not stop the others.** A run that raises is retried ``retries`` times, then reported by name
  (a printed line and the returned list) while the remaining runs go on.
* **Backends.** ``"local"``: a spawn-context process pool (or this process when ``workers == 1``).
  ``"ray"``: each run is one Ray task with ``num_cpus = threads_per_run`` and ``num_gpus``; Ray is imported
  here only, when this backend is chosen (``import dac4rec_lite`` never imports Ray). ``address=None`` starts
  a local Ray instance on this machine; ``"auto"`` joins the cluster started with ``ray start``.
  Every node needs the same environment (``dac4rec_lite`` installed), since workers import ``work``.

The same runs give the same rows with either backend: a row depends only on ``work`` and the run.
"""
from __future__ import annotations

import math
import numbers
import os
import sys
import time
from collections import deque
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from ..io import atomic_write

__all__ = ["execute", "run_name", "label_key"]

BACKENDS = ("local", "ray")


# --------------------------------------------------------------------------------------------------- labels
def _is_scalar(value: Any) -> bool:
    return isinstance(value, (str, bool, numbers.Number, np.generic)) and not isinstance(value, complex)


def _plain(value: Any) -> Any:
    """A numpy scalar as the matching Python scalar (what the CSV writes and reads back)."""
    return value.item() if isinstance(value, np.generic) else value


def _canon(value: Any) -> str | None:
    """One spelling per label value, equal before and after a CSV round trip: ``3``, ``3.0`` and ``"3"`` are
    all ``"3"``; ``True`` and ``"True"`` are ``"True"``; a missing value (NaN, empty) is ``None``."""
    value = _plain(value)
    if value is None:
        return None
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, str):
        if value == "":
            return None
        try:
            number = float(value)
        except ValueError:
            return value
        if not math.isfinite(number):
            return value
        value = number
    number = float(value)
    if math.isnan(number):
        return None
    return str(int(number)) if number.is_integer() and abs(number) < 2**53 else repr(number)


def label_key(label: Mapping[str, Any]) -> tuple[tuple[str, str | None], ...]:
    """The hashable key a label is matched by (keys sorted, values in their canonical spelling)."""
    return tuple(sorted((str(k), _canon(v)) for k, v in label.items()))


def run_name(run: Any) -> str:
    """How a run is reported: its ``name`` attribute if it has one, else ``key=value, …`` of its label."""
    name = getattr(run, "name", None)
    if isinstance(name, str) and name:
        return name
    return ", ".join(f"{k}={_plain(v)}" for k, v in run.label.items())


def _check_label(run: Any) -> dict[str, Any]:
    label = getattr(run, "label", None)
    if not isinstance(label, Mapping) or not label:
        raise TypeError(f"each run needs a .label: a non-empty dict of scalars naming it; got {label!r} "
                        f"from {type(run).__name__}.")
    for key, value in label.items():
        if not isinstance(key, str):
            raise TypeError(f"run label keys must be strings; got {key!r} in {dict(label)}.")
        if not _is_scalar(value):
            raise TypeError(f"run label values must be scalars (str, int, float, bool); {key!r} is "
                            f"{type(value).__name__} in {dict(label)}.")
        if _canon(value) is None:
            raise ValueError(f"run label value {key!r} is missing (NaN or empty) in {dict(label)}; give it a value.")
    return {k: _plain(v) for k, v in label.items()}


def _flat_row(row: Any) -> dict[str, Any]:
    """Check that ``work`` returned a flat dict of scalars; numpy scalars become Python ones."""
    if not isinstance(row, Mapping):
        raise TypeError(f"work(run) must return a flat dict of scalars (label + metrics); got {type(row).__name__}.")
    flat = {}
    for key, value in row.items():
        if not isinstance(key, str):
            raise TypeError(f"work(run) returned a non-string column name {key!r}.")
        if value is not None and not _is_scalar(value):
            raise TypeError(f"work(run) must return a flat dict of scalars; column {key!r} holds a "
                            f"{type(value).__name__}. Save nested results elsewhere, or flatten them into columns.")
        flat[key] = _plain(value)
    return flat


def _merge_label(label: dict[str, Any], row: dict[str, Any]) -> dict[str, Any]:
    """The table row: the run's label first, then the metrics. A label column that ``work`` returned with
    another value is an error (the row would be saved under the wrong run)."""
    for key, value in label.items():
        if key in row and _canon(row[key]) != _canon(value):
            raise ValueError(f"work(run) returned {key}={row[key]!r} for the run labelled {key}={value!r}; a row "
                             "must keep its run's label.")
    return {**label, **{k: v for k, v in row.items() if k not in label}}


# ---------------------------------------------------------------------------------------------- run table
def _read_table(path: Path) -> pd.DataFrame:
    try:
        # Only the empty field is missing: labels such as "None" or "NA" stay strings.
        return pd.read_csv(path, keep_default_na=False, na_values=[""])
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as error:
        raise ValueError(f"could not read the run table {path} ({error}); it is not a CSV written by execute(). "
                         "Move it away or give another table_path.") from None


def _existing_rows(table: pd.DataFrame, path: Path, label_keys: list[str],
                   common_keys: set[str]) -> dict[tuple, dict[str, Any]]:
    """The table's rows by label key (over the runs' label columns)."""
    if table.empty:
        return {}
    missing = sorted(common_keys - set(table.columns))
    if missing:
        raise ValueError(f"the run table {path} has no column {', '.join(map(repr, missing))}, which every run's "
                         f"label has (its columns: {', '.join(map(str, table.columns))}): it holds other runs. "
                         "Give another table_path, or delete the table to start afresh.")
    columns = [k for k in label_keys if k in table.columns]
    rows: dict[tuple, dict[str, Any]] = {}
    for record in table.to_dict("records"):
        key = tuple(sorted((k, _canon(record[k])) for k in columns if _canon(record[k]) is not None))
        if key in rows:
            raise ValueError(f"the run table {path} has two rows labelled {dict(key)}: its runs are told apart by "
                             f"columns these runs' labels lack ({', '.join(label_keys)} are not enough). Give "
                             "another table_path.")
        rows[key] = record
    return rows


def _write_table(path: Path, rows: list[dict[str, Any]]) -> None:
    columns: dict[str, None] = {}
    for row in rows:
        columns.update(dict.fromkeys(row))
    frame = pd.DataFrame(rows, columns=list(columns))
    atomic_write(path, lambda f: frame.to_csv(f, index=False), mode="w")


# ------------------------------------------------------------------------------------------------- workers
def _timed_call(work: Callable[[Any], Mapping[str, Any]], run: Any, threads: int) -> tuple[dict[str, Any], float]:
    """Run ``work(run)`` in a worker with ``threads`` torch threads; return its flat row and wall seconds."""
    torch = sys.modules.get("torch")  # imported by unpickling ``work`` if it uses torch
    if torch is not None:
        torch.set_num_threads(threads)
    start = time.perf_counter()
    row = _flat_row(work(run))
    return row, time.perf_counter() - start


def _in_process(work, runs, todo, threads, on_result, on_failure):
    torch = sys.modules.get("torch")
    saved = torch.get_num_threads() if torch is not None else None
    try:
        for i in todo:
            for attempt in range(on_failure.attempts):
                try:
                    result = _timed_call(work, runs[i], threads)
                except Exception as error:  # noqa: BLE001 — reported by name, the other runs go on
                    if on_failure(i, attempt, error):
                        continue
                    break
                on_result(i, *result)
                break
    finally:
        if saved is not None:
            sys.modules["torch"].set_num_threads(saved)


def _process_pool(work, runs, todo, workers, threads, on_result, on_failure):
    pending = deque((i, 0) for i in todo)
    running: dict[Any, tuple[int, int]] = {}
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn"))
    try:
        while pending or running:
            while pending and len(running) < workers:
                i, attempt = pending.popleft()
                running[pool.submit(_timed_call, work, runs[i], threads)] = (i, attempt)
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            broken = False
            for future in done:
                i, attempt = running.pop(future)
                try:
                    result = future.result()
                except Exception as error:  # noqa: BLE001 — reported by name, the other runs go on
                    broken = broken or isinstance(error, BrokenProcessPool)  # a worker died: start a new pool
                    if on_failure(i, attempt, error):
                        pending.append((i, attempt + 1))
                    continue
                on_result(i, *result)
            if broken:
                for future, (i, attempt) in running.items():
                    pending.append((i, attempt))
                running.clear()
                pool.shutdown(wait=False, cancel_futures=True)
                pool = ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn"))
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


def _ray_tasks(work, runs, todo, address, workers, threads, num_gpus, on_result, on_failure):
    try:
        import ray
    except ImportError:
        raise ImportError("the ray backend needs Ray: pip install -r requirements.txt (it pins ray), or use "
                          "backend='local'.") from None
    started = not ray.is_initialized()
    if started:
        if address is None:  # a fresh instance on this machine, never someone else's cluster by accident
            ray.init(address="local", num_cpus=workers, include_dashboard=False)
        else:
            ray.init(address=address)
    remote = ray.remote(_timed_call).options(num_cpus=threads, num_gpus=num_gpus, max_retries=0)
    work_ref = ray.put(work)
    running: dict[Any, tuple[int, int]] = {}

    def submit(i: int, attempt: int) -> None:
        running[remote.remote(work_ref, runs[i], threads)] = (i, attempt)

    try:
        for i in todo:
            submit(i, 0)
        while running:
            done, _ = ray.wait(list(running), num_returns=1)
            for ref in done:
                i, attempt = running.pop(ref)
                try:
                    result = ray.get(ref)
                except Exception as error:  # noqa: BLE001 — task error, lost worker or node
                    if on_failure(i, attempt, error):
                        submit(i, attempt + 1)
                    continue
                on_result(i, *result)
    finally:
        for ref in running:
            ray.cancel(ref, force=True)
        if started:
            ray.shutdown()


# ------------------------------------------------------------------------------------------------- execute
class _Failures:
    """Decides retries and records runs that failed every attempt."""

    def __init__(self, runs: Sequence[Any], retries: int, bar: tqdm):
        self.runs, self.attempts, self.bar, self.names = runs, retries + 1, bar, {}

    def __call__(self, i: int, attempt: int, error: BaseException, final: bool = False) -> bool:
        """Record a failed attempt; True if the run should be tried again (never when ``final``)."""
        message = f"{type(error).__name__}: {error}".strip().splitlines()[0][:300]
        if attempt + 1 < self.attempts and not final:
            tqdm.write(f"run {run_name(self.runs[i])} failed ({message}); retrying.")
            return True
        self.names[i] = run_name(self.runs[i])
        tqdm.write(f"run {self.names[i]} FAILED after {attempt + 1} attempt(s) ({message}); the other runs go on.")
        self.bar.update()
        return False


def execute(runs: Sequence[Any], work: Callable[[Any], Mapping[str, Any]], *,
            table_path: str | os.PathLike[str] | None = None, backend: str = "local", address: str | None = None,
            workers: int | None = None, threads_per_run: int = 1, num_gpus: float = 0.0, progress: bool = True,
            retries: int = 1) -> tuple[pd.DataFrame, list[str]]:
    """Execute ``work(run)`` for every run not already in the run table; return their rows and the failures.

    ``runs`` are objects with a ``label`` (a non-empty dict of scalars, unique per run); ``work`` is a
    picklable top-level function returning a flat dict of scalars (the label and the metrics). With
    ``table_path`` (a CSV), runs whose label is already a row there are skipped (resume is the default) and
    each finished row is appended atomically as it completes. ``backend="local"`` uses ``workers`` spawned
    processes (default ``min(2, cpu_count)``; ``1`` runs in this process); ``backend="ray"`` runs each run as a
    Ray task with ``num_cpus=threads_per_run`` and ``num_gpus`` on the cluster at ``address`` (``None``: a new
    local instance with ``workers`` CPUs, default all; ``"auto"``: the running cluster). Each run uses
    ``threads_per_run`` torch threads. A run that raises is tried ``retries`` more times, then its name goes
    to the returned list. Returns the rows of the requested runs that have one, in run order (saved rows
    included), and the names of the runs that failed.
    """
    runs = list(runs)
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}; got {backend!r}.")
    if address is not None and backend != "ray":
        raise ValueError(f"address={address!r} is for the ray backend; pass backend='ray' or drop the address.")
    for name, value, low in (("threads_per_run", threads_per_run, 1), ("retries", retries, 0)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
            raise ValueError(f"{name} must be an integer ≥ {low}; got {value!r}.")
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, numbers.Integral) or workers < 1):
        raise ValueError(f"workers must be an integer ≥ 1 (or None for the default); got {workers!r}.")
    if isinstance(num_gpus, bool) or not isinstance(num_gpus, numbers.Real) or not (num_gpus >= 0):
        raise ValueError(f"num_gpus must be a number ≥ 0; got {num_gpus!r}.")
    if num_gpus and backend != "ray":
        raise ValueError("num_gpus is a Ray resource request; use backend='ray' (local runs see every GPU anyway).")
    if not callable(work):
        raise TypeError(f"work must be a function of one run; got {type(work).__name__}.")

    labels = [_check_label(run) for run in runs]
    keys = [label_key(label) for label in labels]
    seen: dict[tuple, int] = {}
    for i, key in enumerate(keys):
        if key in seen:
            raise ValueError(f"runs {seen[key]} and {i} have the same label {labels[i]}; each run needs its own.")
        seen[key] = i
    label_keys = list(dict.fromkeys(k for label in labels for k in label))
    common = set(label_keys).intersection(*(set(label) for label in labels)) if labels else set()

    path = Path(os.fspath(table_path)) if table_path is not None else None
    table_rows: list[dict[str, Any]] = []
    saved: dict[tuple, dict[str, Any]] = {}
    if path is not None and path.exists():
        table = _read_table(path)
        saved = _existing_rows(table, path, label_keys, common)
        table_rows = table.to_dict("records")
    rows: dict[int, dict[str, Any]] = {i: saved[k] for i, k in enumerate(keys) if k in saved}
    todo = [i for i in range(len(runs)) if i not in rows]
    if rows and progress:
        print(f"resuming: {len(rows)} of {len(runs)} runs are already in {path}; running the other {len(todo)} "
              "(delete the table to start afresh).")

    bar = tqdm(total=len(runs), initial=len(rows), desc="runs", unit="run", disable=not progress)
    failures = _Failures(runs, retries, bar)
    slowest = [0.0]

    def on_result(i: int, row: dict[str, Any], seconds: float) -> None:
        try:
            row = _merge_label(labels[i], row)
        except ValueError as error:  # a bug in work: retrying cannot fix it
            failures(i, 0, error, final=True)
            return
        rows[i] = row
        if path is not None:
            table_rows.append(row)
            path.parent.mkdir(parents=True, exist_ok=True)
            _write_table(path, table_rows)
        if seconds > slowest[0]:
            slowest[0] = seconds
            bar.set_postfix_str(f"slowest {run_name(runs[i])}: {seconds:.1f} s")
        bar.update()

    count = workers if workers is not None else max(1, min(2, os.cpu_count() or 1))
    try:
        if todo and backend == "ray":
            _ray_tasks(work, runs, todo, address, workers, threads_per_run, num_gpus, on_result, failures)
        elif todo and count == 1:
            _in_process(work, runs, todo, threads_per_run, on_result, failures)
        elif todo:
            _process_pool(work, runs, todo, min(count, len(todo)), threads_per_run, on_result, failures)
    except KeyboardInterrupt:
        bar.close()
        where = f" and saved in {path}; rerun the same command to resume" if path is not None else ""
        print(f"interrupted: {len(rows)} of {len(runs)} runs finished{where}.")
        raise
    bar.close()
    frame = pd.DataFrame([rows[i] for i in range(len(runs)) if i in rows])
    return frame, [failures.names[i] for i in sorted(failures.names)]
