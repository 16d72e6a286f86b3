"""What goes wrong: stuck-at faults, per-chip fault maps and chip populations."""

from .errors import FaultError, FaultFileError
from .fault_map import FaultMap
from .population import RATE_FORMS, SPATIAL_MODELS, Chip, Population
from .stuck_at import SITES, StuckAt

__all__ = [
    "StuckAt",
    "FaultMap",
    "Population",
    "Chip",
    "SITES",
    "SPATIAL_MODELS",
    "RATE_FORMS",
    "FaultError",
    "FaultFileError",
]
