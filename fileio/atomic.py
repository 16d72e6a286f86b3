"""Atomic writes: a temporary file in the target's folder, then a rename."""

from __future__ import annotations

import contextlib
import os
import secrets

__all__ = ["atomic_write"]


@contextlib.contextmanager
def atomic_write(path, binary: bool = False, newline: str | None = None):
    """Open a temporary file for writing; on success it replaces ``path``.

    The temporary file lives in the target's folder (created if missing), so the
    rename is atomic; on any exception it is removed and ``path`` is left as it was.
    New files get mode ``0o666`` less the umask, like any file a program creates.

    Parameters
    ----------
    path : str or path-like
    binary : bool
        Yield a binary file object (default: text, UTF-8).
    newline : str, optional
        Passed to ``open`` for text files (``""`` for the ``csv`` module).

    Examples
    --------
    >>> with atomic_write("/tmp/x.txt") as f:  # doctest: +SKIP
    ...     f.write("hello")
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    tmp = os.path.join(folder, f".{os.path.basename(path)}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with (os.fdopen(fd, "wb") if binary else os.fdopen(fd, "w", encoding="utf-8", newline=newline)) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
