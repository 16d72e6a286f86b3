"""Strict JSON files: no ``NaN`` or ``Infinity`` (not JSON) is ever written."""

from __future__ import annotations

import json
import math
import os

from .atomic import atomic_write
from .errors import FileFormatError

__all__ = ["write_json", "read_json", "json_clean", "header_problem"]


def json_clean(obj):
    """A copy of ``obj`` with every non-finite float (inf, -inf, NaN) replaced by ``None``.

    JSON has no infinity: the project's files write ``null`` where a number is
    infinite (an amount no grid point meets) or undefined, and document which.
    """
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: json_clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_clean(v) for v in obj]
    return obj


def write_json(path, obj) -> None:
    """Write ``obj`` as JSON, atomically; raises ``ValueError`` on a non-finite float."""
    text = json.dumps(obj, indent=1, allow_nan=False)
    with atomic_write(path) as f:
        f.write(text + "\n")


def read_json(path):
    """Parse a JSON file; a missing or malformed file raises :class:`FileFormatError`."""
    path = os.fspath(path)
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f, parse_constant=_reject_constant)
    except FileNotFoundError:
        raise FileFormatError(path, "no such file.") from None
    except IsADirectoryError:
        raise FileFormatError(path, "is a folder, not a file.") from None
    except (ValueError, UnicodeDecodeError, RecursionError) as e:
        raise FileFormatError(path, f"not valid JSON ({e}).") from None


def header_problem(obj, fmt: str, version: int, what: str) -> str | None:
    """``None`` if ``obj`` is a JSON object of format ``fmt`` and version ``version``; else
    what is wrong with it (``what`` names the kind, e.g. ``"an eFAT plan"``), for the
    caller's file error."""
    if not isinstance(obj, dict) or obj.get("format") != fmt:
        found = obj.get("format") if isinstance(obj, dict) else type(obj).__name__
        return f"not {what} (format {found!r}, expected {fmt!r})."
    if obj.get("version") != version:
        return f"format version {obj.get('version')!r}; this release reads {version}."
    return None


def _reject_constant(name: str):
    raise ValueError(f"{name} is not JSON")
