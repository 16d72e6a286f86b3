"""Per-layer GEMMs, folds, cycles, utilisation and arithmetic intensity of a model."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch

from simulator import ArrayConfig, gemm_timing, memory_timing

from .actgemm import SimMatmul
from .errors import MappingError
from .model import QuantizedModel, quantize

__all__ = ["LayerReport", "layer_report", "format_report"]


@dataclass(frozen=True)
class LayerReport:
    """One lowered layer on one array.

    Without a memory side on the array, ``bytes_moved`` counts activations (M*K) and weights
    (K*N) in, at the precision's operand width (1 byte for int8 and FP8, 2 for FP16/BF16, 4
    for FP32), and 32-bit outputs (4*M*N) out, once each, and the memory fields are None.
    With one (``cfg.memory``), the bytes are those :func:`simulator.memory_timing` moves
    (inputs and partial sums refetched when they do not fit their buffers), and
    ``memory_cycles``, ``total_cycles`` (double-buffered, with the first fill) and
    ``memory_bound`` are set. ``intensity`` is MACs per byte moved.

    An op that runs several GEMMs of one shape (a grouped conv's groups; a product of two
    activations per input and head) is one row with ``gemms`` > 1: M, K, N, folds and
    utilisation are of one GEMM, cycles, MACs and bytes of all of them.
    """

    name: str
    kind: str
    m: int
    k: int
    n: int
    folds: int
    n_cycles: int
    pe_utilisation: float
    mac_utilisation: float
    macs: int
    bytes_moved: int
    intensity: float
    memory_cycles: int | None = None
    total_cycles: int | None = None
    memory_bound: bool | None = None
    gemms: int = 1

    def as_dict(self) -> dict:
        return asdict(self)


def layer_report(model, input_shape, cfg: ArrayConfig, batch: int = 1) -> list[LayerReport]:
    """Report every lowered layer of ``model`` for inputs of ``input_shape`` (without batch).

    Parameters
    ----------
    model : nn.Module or QuantizedModel
    input_shape : tuple
        One input's shape, e.g. ``(1, 28, 28)``.
    cfg : ArrayConfig
    batch : int
        Inputs streamed together (M grows with it; weights load once per fold).
    """
    x = torch.zeros((batch, *input_shape))
    try:
        qm = model if isinstance(model, QuantizedModel) else quantize(model, x, cfg.precision)
        shapes = qm.gemm_shapes(x)
    except (RuntimeError, MappingError) as e:
        raise MappingError(f"input shape {tuple(input_shape)} does not fit the model: {e}") from None
    rows = []
    for name, layer in qm.layers:
        for (m, k, n), count in _runs(shapes[name]):
            rows.append(_row(name, _kind(layer), m, k, n, count, cfg))
    return rows


def _kind(layer) -> str:
    if isinstance(layer, SimMatmul):
        return "Linear(act)" if layer.kind == "linear" else "Matmul(act)"
    return type(layer).__name__.replace("Sim", "")


def _runs(shapes):
    """``((m, k, n), count)`` for each run of equal GEMM shapes, in order."""
    out = []
    for s in shapes:
        if out and out[-1][0] == s:
            out[-1][1] += 1
        else:
            out.append([s, 1])
    return [(s, c) for s, c in out]


def _row(name, kind, m, k, n, count, cfg) -> LayerReport:
    t = gemm_timing(cfg, m, k, n)
    if cfg.memory is not None:
        mt = memory_timing(cfg, m, k, n)
        return LayerReport(name, kind, m, k, n, t.folds, count * t.n_cycles, t.pe_utilisation, t.mac_utilisation,
                           count * t.macs, count * mt.bytes_moved, mt.intensity, count * mt.memory_cycles,
                           count * mt.total_cycles, mt.memory_bound, count)
    a_bytes, w_bytes = (-(-b // 8) for b in cfg.precision.widths()[:2])
    moved = a_bytes * m * k + w_bytes * k * n + 4 * m * n
    return LayerReport(name, kind, m, k, n, t.folds, count * t.n_cycles, t.pe_utilisation, t.mac_utilisation,
                       count * t.macs, count * moved, t.macs / moved, gemms=count)


def format_report(rows: list[LayerReport]) -> str:
    """A plain-text table of a layer report with a total row."""
    mem = bool(rows) and rows[0].memory_cycles is not None
    head = ("layer", "type", "M", "K", "N", "folds", "cycles", "pe_util", "mac_util", "MACs", "MAC/byte")
    head += ("mem_cycles", "total", "bound") if mem else ()
    body = [(r.name if r.gemms == 1 else f"{r.name} (x{r.gemms})", r.kind, r.m, r.k, r.n, r.folds, r.n_cycles, f"{r.pe_utilisation:.3f}",
             f"{r.mac_utilisation:.3f}", r.macs, f"{r.intensity:.2f}")
            + ((r.memory_cycles, r.total_cycles, "memory" if r.memory_bound else "compute") if mem else ())
            for r in rows]
    total = ("TOTAL", "", "", "", "", sum(r.folds for r in rows), sum(r.n_cycles for r in rows), "", "",
             sum(r.macs for r in rows), f"{sum(r.macs for r in rows) / max(1, sum(r.bytes_moved for r in rows)):.2f}")
    total += (sum(r.memory_cycles for r in rows), sum(r.total_cycles for r in rows), "") if mem else ()
    table = [head, *body, total]
    widths = [max(len(str(row[i])) for row in table) for i in range(len(head))]
    lines = ["  ".join(str(v).rjust(w) if i else str(v).ljust(w) for i, (v, w) in enumerate(zip(row, widths)))
             for row in table]
    lines.insert(len(lines) - 1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
