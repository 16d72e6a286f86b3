"""The error every failed load raises."""

from __future__ import annotations

import os

__all__ = ["FileFormatError"]


class FileFormatError(ValueError):
    """A file is missing, unreadable, corrupt, of another kind or inconsistent.

    The message is ``"{path}: {problem}"``; ``.path`` and ``.problem`` hold the parts.
    """

    def __init__(self, path, problem: str):
        self.path = os.fspath(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")
