"""Parsing the publishers' file formats, checking every line: each function raises ``ValueError`` naming the
file, the line (and column) and what is wrong, never guessing around a malformed file.

``what`` is the dataset's name, put at the start of every message."""
from __future__ import annotations

import csv
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["read_dense_matrix", "read_delimited", "read_csv", "to_numbers", "check_range", "index_ids", "sorted_log"]


def _separator_hint(line: str, expected: str) -> str:
    found = [name for sep, name in ((",", "commas"), ("\t", "tabs"), (";", "semicolons"), ("::", "'::'"))
             if sep in line and name != expected]
    return f" The line contains {found[0]}: the file must be separated by {expected}." if found else ""


def read_dense_matrix(path: Path, what: str, integer: bool = True, allowed: tuple[float, float] | None = None,
                      shape: tuple[int, int] | None = None) -> np.ndarray:
    """Read a whitespace-separated dense matrix (Coat's ``.ascii`` format), checking every row.

    Raises ``ValueError`` naming the line and column of the first token that is not a number, a row of the
    wrong length, a comma/tab separator, a value outside ``allowed``, or a shape other than ``shape``."""
    rows = []
    with open(path, encoding="utf-8", errors="replace") as f:
        for line_no, line in enumerate(f, start=1):
            if not line.strip():
                continue
            if "," in line or ";" in line:
                raise ValueError(f"{what}: {path.name} line {line_no} is not whitespace-separated "
                                 f"({line.strip()[:60]!r}); the published file separates values by spaces.")
            tokens = line.split()
            if rows and len(tokens) != len(rows[0]):
                raise ValueError(f"{what}: {path.name} line {line_no} has {len(tokens)} values but line 1 has "
                                 f"{len(rows[0])}; every row of the matrix must have one value per column.")
            try:
                values = [float(t) for t in tokens]
            except ValueError:
                bad = next(k for k, t in enumerate(tokens) if not _is_number(t))
                raise ValueError(f"{what}: {path.name} line {line_no}, column {bad + 1}: {tokens[bad]!r} is not a "
                                 f"number.") from None
            rows.append(values)
    if not rows:
        raise ValueError(f"{what}: {path.name} is empty.")
    matrix = np.asarray(rows, dtype=np.float64)
    if not np.isfinite(matrix).all():
        line, col = np.argwhere(~np.isfinite(matrix))[0]
        raise ValueError(f"{what}: {path.name} line {line + 1}, column {col + 1} is {matrix[line, col]}; "
                         f"the matrix must hold finite numbers.")
    if integer and not np.all(matrix == np.round(matrix)):
        line, col = np.argwhere(matrix != np.round(matrix))[0]
        raise ValueError(f"{what}: {path.name} line {line + 1}, column {col + 1} is {matrix[line, col]}; "
                         f"ratings must be whole numbers.")
    if allowed is not None:
        lo, hi = allowed
        bad = (matrix < lo) | (matrix > hi)
        if bad.any():
            line, col = np.argwhere(bad)[0]
            raise ValueError(f"{what}: {path.name} line {line + 1}, column {col + 1} is {matrix[line, col]:g}, outside "
                             f"{lo:g}..{hi:g} ({int(bad.sum())} such value(s)).")
    if shape is not None and matrix.shape != shape:
        raise ValueError(f"{what}: {path.name} is {matrix.shape[0]}×{matrix.shape[1]} but it must be "
                         f"{shape[0]}×{shape[1]} (the shape of train.ascii: users × items).")
    return matrix


def _is_number(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True


def read_delimited(path: Path, sep: str, names: list[str], what: str, sep_name: str) -> pd.DataFrame:
    """Read a header-less delimited file as strings, checking the number of fields on every line."""
    with open(path, encoding="latin-1") as f:
        lines = f.read().splitlines()
    rows, width = [], len(names)
    for line_no, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        fields = line.split(sep) if sep != "whitespace" else line.split()
        if len(fields) != width:
            raise ValueError(
                f"{what}: {path.name} line {line_no} has {len(fields)} field(s) separated by {sep_name}, expected "
                f"{width} ({' '.join(names)}): {line[:60]!r}.{_separator_hint(line, sep_name)}"
            )
        rows.append(fields)
    if not rows:
        raise ValueError(f"{what}: {path.name} is empty.")
    return pd.DataFrame(rows, columns=names)


def to_numbers(table: pd.DataFrame, column: str, what: str, file: str, integer: bool, first_line: int = 1) -> np.ndarray:
    """A column as numbers; ``ValueError`` naming the line of the first value that is not one."""
    values = pd.to_numeric(table[column], errors="coerce")
    bad = values.isna() & table[column].notna() if not integer else values.isna()
    if integer:
        bad |= values.notna() & (values != np.round(values))
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise ValueError(f"{what}: {file} line {row + first_line}: {column} is {table[column].iloc[row]!r}, not "
                         f"{'a whole number' if integer else 'a number'}.")
    return values.to_numpy(dtype=np.int64 if integer else np.float64)


def check_range(values: np.ndarray, column: str, what: str, file: str, lo: float, hi: float | None = None,
                 first_line: int = 1) -> None:
    bad = (values < lo) | (values > hi) if hi is not None else values < lo
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        span = f"{lo:g}..{hi:g}" if hi is not None else f">= {lo:g}"
        raise ValueError(f"{what}: {file} line {row + first_line}: {column} = {values[row]:g} is out of range "
                         f"(must be {span}; {int(bad.sum())} such row(s)).")


def _field_count_error(path: Path, what: str) -> str:
    """The first line whose number of fields differs from the header's (only read when parsing failed)."""
    with open(path, newline="", encoding="utf-8", errors="replace") as f:
        reader = csv.reader(f)
        header = next(reader, [])
        for record in reader:
            if record and len(record) != len(header):
                return (f"{what}: {path.name} line {reader.line_num} has {len(record)} fields but the header has "
                        f"{len(header)} ({','.join(header)[:120]}); every row must have one value per column, as "
                        f"published (a value holding a comma must be quoted).")
    return f"{what}: {path.name}: its rows do not have as many fields as its header."


def read_csv(path: Path, required: list[str], what: str) -> pd.DataFrame:
    """A CSV with a header, columns read by header name; ``ValueError`` if it is not comma-separated, lacks a
    required column, or has a row whose number of fields differs from the header's (pandas would otherwise
    take extra fields as an index and shift every column by one)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", pd.errors.ParserWarning)
        try:
            table = pd.read_csv(path, low_memory=False, index_col=False)
        except pd.errors.ParserWarning:
            raise ValueError(_field_count_error(path, what)) from None
        except pd.errors.ParserError as err:
            if "Expected" in str(err) and "fields" in str(err):
                raise ValueError(_field_count_error(path, what)) from None
            raise ValueError(f"{what}: {path.name} is not a well-formed CSV ({err}).") from err
        except pd.errors.EmptyDataError as err:
            raise ValueError(f"{what}: {path.name} is empty.") from err
    missing = [c for c in required if c not in table.columns]
    if missing:
        header = ",".join(map(str, table.columns))[:120]
        hint = ""
        if len(table.columns) == 1 and any(s in str(table.columns[0]) for s in ("\t", ";", " ", "|")):
            hint = " The header is a single field: the file must be comma-separated, as published."
        raise ValueError(f"{what}: {path.name} lacks column(s) {missing} (its header: {header!r}).{hint}")
    return table


def index_ids(*columns: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    """Map the publisher's ids to 0-based contiguous indices (sorted), for several columns at once."""
    ids = np.unique(np.concatenate([np.asarray(c) for c in columns]))
    return ids, [np.searchsorted(ids, c) for c in columns]


def sorted_log(users: np.ndarray, items: np.ndarray, rewards: np.ndarray, times: np.ndarray | None) -> pd.DataFrame:
    """The log table, grouped by user, each user's rows by time (stable: ties and missing times keep file order)."""
    table = pd.DataFrame({"user": users.astype(np.int64), "item": items.astype(np.int64),
                          "reward": rewards.astype(np.float64),
                          "time": np.full(len(users), np.nan) if times is None else times.astype(np.float64)})
    order = ["user"] if times is None else ["user", "time"]
    return table.sort_values(order, kind="stable", na_position="last").reset_index(drop=True)
