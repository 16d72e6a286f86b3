"""Exceptions raised by the fault layer for bad user input and bad files."""

from fileio import FileFormatError

__all__ = ["FaultError", "FaultFileError"]


class FaultError(ValueError):
    """A fault, fault map or population parameter is invalid."""


class FaultFileError(FileFormatError):
    """A saved fault map or population file is missing, corrupt, of another kind or
    inconsistent. Built as ``FaultFileError(path, problem)``; the message starts with the path."""
