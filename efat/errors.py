"""Exceptions of the eFAT method: bad input, and bad plan or resilience-map files."""

from fileio import FileFormatError

__all__ = ["PlanError", "PlanFileError", "ResilienceError", "ResilienceFileError"]


class PlanError(ValueError):
    """Bad input to :func:`efat.plan`, or a plan that does not fit a population."""


class ResilienceError(ValueError):
    """A resilience map is malformed, or a query on it is out of range."""


class PlanFileError(PlanError, FileFormatError):
    """A plan file is missing, not JSON, of another kind, or inconsistent.
    Built as ``PlanFileError(path, problem)``; the message starts with the path."""


class ResilienceFileError(ResilienceError, FileFormatError):
    """A resilience-map file is missing, not JSON, of another kind, or inconsistent.
    Built as ``ResilienceFileError(path, problem)``; the message starts with the path."""
