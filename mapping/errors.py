"""Exceptions raised when a model cannot be mapped onto the array."""

__all__ = ["MappingError", "UnsupportedLayerError"]


class MappingError(ValueError):
    """A model, its input or its data does not fit the array or the mapping."""


class UnsupportedLayerError(MappingError):
    """A layer that holds weights has no lowering onto the array."""
