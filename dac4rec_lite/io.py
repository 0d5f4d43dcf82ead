"""Atomic file writes: every file the kit writes goes through here.

A plain ``open(path, "wb")`` truncates the old file first, so an interrupt, a full disk or a file-size
limit leaves neither the old file nor a complete new one. ``atomic_write`` instead writes to a temporary
file in the *same folder* (so the final rename stays on one file system), flushes and fsyncs it, then
``os.replace``-s it over the target: a reader sees either the previous complete file or the new complete
file, never a fragment. On any failure the temporary file is removed and the previous file is untouched.

Usage::

    atomic_write(path, lambda f: torch.save(obj, f))      # f is a binary file object
    atomic_write_bytes(path, data)
    atomic_write_text(path, "a,b\\n1,2\\n")
    atomic_write(path, lambda f: frame.to_csv(f, index=False), mode="w")   # text mode
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import IO, Any, Callable

__all__ = ["atomic_write", "atomic_write_bytes", "atomic_write_text"]


def _fsync_folder(folder: str) -> None:
    """Make the rename itself durable (POSIX); a no-op where folders cannot be opened (Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(path: str | os.PathLike, write_fn: Callable[[IO[Any]], object], mode: str = "wb",
                 encoding: str | None = None) -> Path:
    """Call ``write_fn(f)`` on a temporary file beside ``path``, fsync it, then rename it onto ``path``.

    ``mode`` is ``"wb"`` (binary, the default) or ``"w"`` (text; ``encoding`` defaults to UTF-8). The parent
    folder must exist; a clear ``FileNotFoundError`` / ``NotADirectoryError`` says so otherwise. Returns the
    target as a ``Path``. If ``write_fn`` raises (or the process is interrupted before the rename), the previous
    file at ``path`` is left exactly as it was.
    """
    if mode not in ("wb", "w"):
        raise ValueError(f"atomic_write mode must be 'wb' or 'w', got {mode!r}.")
    target = Path(os.fspath(path))
    folder = target.parent if str(target.parent) else Path(".")
    if not folder.exists():
        raise FileNotFoundError(f"cannot write {target}: the folder {folder} does not exist; create it first.")
    if not folder.is_dir():
        raise NotADirectoryError(f"cannot write {target}: {folder} is a file, not a folder.")
    if target.is_dir():
        raise IsADirectoryError(f"cannot write {target}: it is a folder; give a file name.")
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=folder)
    try:
        kwargs = {"encoding": encoding or "utf-8", "newline": ""} if mode == "w" else {}
        with os.fdopen(fd, mode, **kwargs) as f:
            write_fn(f)
            f.flush()
            os.fsync(f.fileno())
        if target.exists():  # keep the previous file's permission bits (mkstemp makes 0600)
            os.chmod(tmp, target.stat().st_mode & 0o7777)
        else:
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    _fsync_folder(str(folder))
    return target


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (see ``atomic_write``)."""
    return atomic_write(path, lambda f: f.write(data), mode="wb")


def atomic_write_text(path: str | os.PathLike, text: str, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` atomically (see ``atomic_write``); newlines are written as given."""
    return atomic_write(path, lambda f: f.write(text), mode="w", encoding=encoding)
