"""Exceptions raised by the fault layer for bad user input."""

__all__ = ["FaultError", "FaultFileError"]


class FaultError(ValueError):
    """A fault, fault map or population parameter is invalid."""


class FaultFileError(ValueError):
    """A saved fault map or population file is missing, corrupt or of another kind."""
