"""What goes wrong: stuck-at faults, per-chip fault maps, chip populations and transient bit flips."""

from .errors import FaultError, FaultFileError
from .fault_map import FaultMap
from .placement import SPATIAL_MODELS
from .population import Chip, ChipStream, Population
from .rates import RATE_FORMS
from .stuck_at import SITES, StuckAt
from .transient import TransientFaults, random_flips, random_output_flips

__all__ = [
    "StuckAt",
    "FaultMap",
    "Population",
    "Chip",
    "ChipStream",
    "TransientFaults",
    "random_flips",
    "random_output_flips",
    "SITES",
    "SPATIAL_MODELS",
    "RATE_FORMS",
    "FaultError",
    "FaultFileError",
]
