"""Exceptions raised by the simulator for bad user input."""

__all__ = ["ConfigError", "OperandError", "FaultMaskError"]


class ConfigError(ValueError):
    """An array configuration or precision parameter is out of range."""


class OperandError(ValueError):
    """A GEMM operand has the wrong dtype, rank, shape or value range."""


class FaultMaskError(ValueError):
    """Fault masks handed to the simulator do not fit the array or precision."""
