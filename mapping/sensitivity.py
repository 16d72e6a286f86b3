"""Per-op sensitivity: how much accuracy a chip's faults cost when only one op sees them.

For each op of a :class:`~mapping.QuantizedModel` (in execution order), the model runs
with that op on the faulty chip and every other op on a fault-free array of the same
shape and precision (:func:`mapping.run_model` with ``faulty_layers=[op]``); its drop is
the fault-free accuracy minus that accuracy. The drops of single ops need not add up to
the whole chip's: faults in one layer change what the next one sees.
"""

from __future__ import annotations

from dataclasses import dataclass

from simulator import SystolicArray

from .model import QuantizedModel, run_model

__all__ = ["LayerSensitivity", "layer_sensitivity"]


@dataclass(frozen=True)
class LayerSensitivity:
    """One op with the chip's faults on it alone."""

    name: str
    kind: str
    accuracy: float
    drop: float  # fault-free accuracy minus ``accuracy`` (points as a fraction)

    def as_dict(self) -> dict:
        return {"name": self.name, "kind": self.kind, "accuracy": self.accuracy, "drop": self.drop}


def layer_sensitivity(qm: QuantizedModel, data, array: SystolicArray, engine: str = "fast",
                      batch_size: int = 256) -> tuple[float, list[LayerSensitivity]]:
    """``(fault-free accuracy, per-op sensitivities)`` of ``qm`` on the faulty chip ``array``
    (labelled ``data``: an ``(inputs, labels)`` pair or a Dataset)."""
    base = run_model(qm, data, SystolicArray(array.cfg), engine, batch_size).accuracy
    if base is None:
        from .errors import MappingError

        raise MappingError("layer_sensitivity needs labelled data: an (inputs, labels) pair or a Dataset.")
    rows = []
    for name, op in qm.layers:
        acc = run_model(qm, data, array, engine, batch_size, faulty_layers=[name]).accuracy
        kind = type(op).__name__.replace("Sim", "")
        rows.append(LayerSensitivity(name, kind, acc, base - acc))
    return base, rows
