"""What goes wrong: stuck-at faults, per-chip fault maps and chip populations."""

from .errors import FaultError, FaultFileError
from .fault_map import FaultMap
from .stuck_at import SITES, StuckAt

__all__ = ["StuckAt", "FaultMap", "SITES", "FaultError", "FaultFileError"]
