"""What goes wrong: stuck-at faults, per-chip fault maps and chip populations."""

from .errors import FaultError, FaultFileError
from .fault_map import FaultMap
from .placement import SPATIAL_MODELS
from .population import Chip, Population
from .rates import RATE_FORMS
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
