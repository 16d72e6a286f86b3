"""Quantize a torch model for the array and run it on a simulated chip."""

from __future__ import annotations

import contextlib
import copy
import sys
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from simulator import INT8, SystolicArray

from .actgemm import SimMatmul
from .errors import MappingError, UnsupportedLayerError
from .graph import HOST_LAYERS, SIM_OPS, trace_model
from .layers import check_finite_input, make_sim_layer
from .numerics import numpy_blas_one_thread, one_thread
from .lowering import LOWERED, check_lowerable
from .outputs import accuracy_of, concat_outputs, first_tensor, predictions_of

__all__ = ["QuantizedModel", "quantize", "run_model", "RunResult", "HOST_LAYERS", "lowered_layers"]

#: Calibration inputs used when none are given (the first ones of the training split).
N_CALIB = 512


def lowered_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """``(qualified name, module)`` of every layer that runs on the array, in model order.

    Raises :class:`UnsupportedLayerError` for a layer that holds weights and is neither
    lowered nor a host layer, naming it and the supported lists.
    """
    out = []
    for name, module in model.named_modules():
        if isinstance(module, LOWERED):
            check_lowerable(name, module)
            out.append((name, module))
        elif any(True for _ in module.parameters(recurse=False)) and not isinstance(module, HOST_LAYERS):
            supported = ", ".join(t.__name__ for t in LOWERED)
            host = ", ".join(t.__name__ for t in HOST_LAYERS)
            raise UnsupportedLayerError(
                f"layer {name!r} ({type(module).__name__}) holds weights but has no lowering onto the array; "
                f"supported on the array: {supported}; with weights on the host: {host}."
            )
    if not out:
        raise MappingError("the model has no Linear or Conv2d layer to run on the array.")
    return out


class QuantizedModel:
    """A model with every GEMM-like op replaced by its simulated twin (int8, or a float format).

    Build it with :func:`quantize`; run it with :func:`run_model` or, for one batch,
    ``with qm.on(array): logits = qm.module(x)``.

    Attributes
    ----------
    module : nn.Module
        The converted copy (the original model is untouched): a ``torch.fx.GraphModule``
        when traced.
    precision : simulator.Precision
    act_amax : dict[str, float]
        Calibrated ``max|input|`` of each lowered op, by name (for a product of two
        activations, of its left operand; its right one is under ``name + ":b"``).
    """

    def __init__(self, module: nn.Module, precision, act_amax: dict[str, float], order=None):
        self.module = module
        self.precision = precision
        self.act_amax = act_amax
        self.order = order

    @property
    def layers(self) -> list[tuple[str, nn.Module]]:
        """``(name, simulated op)`` of every op that runs on the array, in execution order."""
        if self.order is not None:
            return [(n, self.module.get_submodule(n)) for n in self.order]
        return [(n, m) for n, m in self.module.named_modules() if isinstance(m, SIM_OPS)]

    @property
    def weight_layers(self) -> list[tuple[str, nn.Module]]:
        """The layers whose stationary operand is a trained weight (not a product of two activations)."""
        return [(n, m) for n, m in self.layers if not isinstance(m, SimMatmul)]

    @contextlib.contextmanager
    def on(self, array: SystolicArray, engine: str = "fast", flips=None, guard=None, faulty_layers=None):
        """Attach every simulated layer to ``array`` for the duration of the block.

        ``faulty_layers`` (optional): names of the ops that run on ``array``; all others run
        on a fault-free array of the same shape and precision (per-op fault targeting).

        ``flips`` (optional) is a transient fault source: a callable ``(layer name, cfg, M,
        K, N, batch) -> (flips, out_flips)`` called for every GEMM (``batch``: the images in
        it), e.g. a
        :class:`faults.TransientFaults`' :meth:`~faults.TransientFaults.session`.
        ``guard`` (optional) checks every GEMM result on the host: a callable ``(layer name,
        array, x, w, out) -> out`` (e.g. a :class:`protect.RangeCheck` session), or an object
        with ``run_gemm(layer name, array, x, w, matmul) -> out`` that runs the GEMM itself
        through ``matmul(x, w)`` (e.g. an :class:`protect.Abft` session: checksums computed by
        the same array).
        """
        if not isinstance(array, SystolicArray):
            raise MappingError(f"array must be a simulator.SystolicArray; got {type(array).__name__}.")
        if array.cfg.precision != self.precision:
            raise MappingError(
                f"the model was quantized for {self.precision.name}; the array computes {array.cfg.precision.name}."
            )
        names = [n for n, _ in self.layers]
        if faulty_layers is not None:
            unknown = sorted(set(faulty_layers) - set(names))
            if unknown:
                raise MappingError(f"faulty_layers: {', '.join(map(repr, unknown))} are not ops of this model; "
                                   f"its ops: {', '.join(names)}.")
            clean = SystolicArray(array.cfg)
        for name, layer in self.layers:
            sim = layer.sim
            chip = array if faulty_layers is None or name in faulty_layers else clean
            sim.array, sim.engine, sim.n_cycles, sim.flips, sim.guard = chip, engine, 0, flips, guard
            sim.gemms = []
        try:
            yield self.module
        finally:
            for _, layer in self.layers:
                layer.sim.array, layer.sim.flips, layer.sim.guard = None, None, None

    def with_masks(self, masks: dict[str, torch.Tensor]) -> QuantizedModel:
        """A copy whose int8 weights are zero where ``masks`` (from
        :func:`mapping.bypass_masks`) is True; scales stay as calibrated. On a fault-free
        array it computes exactly what this model computes on the chip with bypass. For a
        product of two activations the mask is the chip's faulty-PE map ``(R, C)``: its
        stationary operand is zeroed there at every forward."""
        new = QuantizedModel(copy.deepcopy(self.module), self.precision, dict(self.act_amax), self.order)
        layers = dict(new.layers)
        for name, mask in masks.items():
            if name not in layers:
                raise MappingError(f"mask for {name!r}, which is not a lowered layer of this model.")
            sim = layers[name].sim
            if isinstance(layers[name], SimMatmul):
                sim.pe_mask = np.asarray(mask, bool)
                continue
            m = np.asarray(mask, bool).reshape(mask.shape[0], -1).T
            if m.shape != sim.w_q.shape:
                raise MappingError(f"mask for {name!r} does not match its weight {tuple(layers[name].weight.shape)}.")
            sim.w_q = np.where(m, 0, sim.w_q).astype(sim.w_q.dtype)
        return new

    def gemm_shapes(self, x: torch.Tensor) -> dict[str, list[tuple[int, int, int]]]:
        """The ``(M, K, N)`` of every GEMM each op runs for the inputs ``x``, computed in
        float (nothing runs on an array)."""
        ops = [m for _, m in self.layers]
        for op in ops:
            op.sim.mode, op.sim.gemms = "float", []
        try:
            with one_thread(), torch.no_grad():
                self.module.eval()(x.float())
            return {name: list(op.sim.gemms) for name, op in self.layers}
        finally:
            for op in ops:
                op.sim.mode, op.sim.gemms = "array", []

    def cycles(self) -> dict[str, int]:
        """Cycles each lowered layer has run since the last :meth:`on`."""
        return {name: layer.sim.n_cycles for name, layer in self.layers}


@contextlib.contextmanager
def watch_inputs(model: nn.Module, targets, record):
    """Call ``record(name, input)`` on every forward of each ``(name, layer)`` in ``targets``,
    with the model in eval mode and gradients off; hooks and mode are restored on exit."""
    handles = [m.register_forward_hook(lambda _m, inp, _out, n=n: record(n, inp[0].detach())) for n, m in targets]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)


def quantize(model: nn.Module, calib: torch.Tensor, precision=INT8, batch_size: int = 256, leaves=(),
             lowering: str = "trace") -> QuantizedModel:
    """Calibrate activation scales on ``calib`` and convert ``model`` for the array.

    Parameters
    ----------
    model : nn.Module
        A float model: anything ``torch.fx`` traces, whose GEMMs (Linear, Conv1d/Conv2d
        incl. grouped and depthwise, matrix products, attention) run on the array and whose
        other ops (ReLU, pooling, norms, softmax, residual adds, ...) run on the host
        (:mod:`mapping.graph`).
    calib : Tensor
        Calibration inputs (a few hundred are plenty); every lowered op's input scale
        is ``max|input| / (2**(act_bits - 1) - 1)`` over them (``/ 127`` for int8), fixed
        from then on. Float formats take values unscaled (FP32, FP16, BF16) or scaled to their
        range (FP8), see :mod:`mapping.codecs`.
    precision : simulator.Precision
    leaves : names or module types
        Modules not to trace into: they run on the host, unlowered (the way out for a
        module torch.fx cannot trace).
    lowering : {"trace", "modules"}
        ``"modules"`` swaps the Linear/Conv layers of the module tree instead of tracing
        (the model's own forward runs; functional GEMMs stay on the host in float).
    """
    if not isinstance(calib, torch.Tensor) or len(calib) == 0:
        raise MappingError("calib must be a non-empty tensor of model inputs.")
    if lowering == "modules":
        return _quantize_modules(model, calib, precision, batch_size)
    if lowering != "trace":
        raise MappingError(f"lowering must be 'trace' or 'modules'; got {lowering!r}.")
    gm, order = trace_model(model, precision, leaves)
    qm = QuantizedModel(gm, precision, {}, order)
    ops = [m for _, m in qm.layers]
    for op in ops:
        op.sim.mode = "float"
    try:
        with one_thread(), torch.no_grad():
            for i in range(0, len(calib), batch_size):
                gm(calib[i : i + batch_size].float())
    except (RuntimeError, MappingError) as e:
        raise MappingError(f"calibration inputs of shape {tuple(calib.shape)} do not fit the model: {e}") from None
    for name, op in qm.layers:
        st = op.sim
        st.mode, st.gemms = "array", []
        if isinstance(op, SimMatmul):
            op.calibrate()
            qm.act_amax[name], qm.act_amax[name + ":b"] = st.amax
        else:
            st.a_scale = st.codec.act_scale(st.amax[0])
            qm.act_amax[name] = st.amax[0]
    return qm


def _quantize_modules(model: nn.Module, calib: torch.Tensor, precision, batch_size: int) -> QuantizedModel:
    """The module-tree lowering: every Linear/Conv layer swapped for its simulated twin."""
    targets = lowered_layers(model)
    amax = {name: 0.0 for name, _ in targets}

    def record(name, x):
        check_finite_input(name, x)
        amax[name] = max(amax[name], float(x.abs().max()))

    try:
        with one_thread(), watch_inputs(model, targets, record):
            for i in range(0, len(calib), batch_size):
                model(calib[i : i + batch_size].float())
    except RuntimeError as e:
        raise MappingError(f"calibration inputs of shape {tuple(calib.shape)} do not fit the model: {e}") from None
    sim = copy.deepcopy(model).eval()
    for name, layer in targets:
        parent, _, attr = name.rpartition(".")
        setattr(sim.get_submodule(parent) if parent else sim, attr, make_sim_layer(layer, amax[name], precision, name))
    return QuantizedModel(sim, precision, amax)


@dataclass(frozen=True)
class RunResult:
    """Outcome of :func:`run_model`.

    Attributes
    ----------
    predictions : int64 array (n,) or (n, ...)
        The argmax over the last dimension of the model's (first) output: per input, or
        per token for per-token outputs (:mod:`mapping.outputs`).
    accuracy : float or None
        Fraction correct when labels were given (labels shaped like the predictions).
    logits : float32 array or None
        The model's (first) output tensor, when ``return_logits=True``.
    layer_cycles : dict[str, int]
        Cycles each lowered layer ran on the array, over all inputs.
    protection : object or None
        What the run-time check (``protect=``) recorded, e.g. a :class:`protect.CheckStats`.
    """

    predictions: np.ndarray
    accuracy: float | None
    logits: np.ndarray | None = field(default=None, repr=False)
    layer_cycles: dict = field(default_factory=dict)
    protection: object = field(default=None, repr=False)
    outputs: object = field(default=None, repr=False)  # the whole output structure, when return_logits=True

    @property
    def n_cycles(self) -> int:
        return sum(self.layer_cycles.values())


def _split_data(data):
    if isinstance(data, torch.Tensor):
        return data, None, None
    if isinstance(data, (tuple, list)) and len(data) == 2:
        return data[0], data[1], None
    if hasattr(data, "x_test") and hasattr(data, "y_test"):
        return data.x_test, data.y_test, getattr(data, "x_train", None)
    raise MappingError(f"data must be a tensor of inputs, an (inputs, labels) pair or a Dataset; got {type(data).__name__}.")


def run_model(model, data, array: SystolicArray, engine: str = "fast", batch_size: int = 256, calib=None,
              return_logits: bool = False, progress: bool | None = None, flips=None, protect=None,
              faulty_layers=None) -> RunResult:
    """Inference of ``model`` on the chip ``array``, every lowered layer's GEMM in the array's
    precision (int8 quantized, or float operands with FP32 accumulation).

    Parameters
    ----------
    model : nn.Module or QuantizedModel
        A float model is quantized first (:func:`quantize`), calibrated on ``calib``, or
        else on the first :data:`N_CALIB` (512) training inputs of a Dataset, or else on
        the first :data:`N_CALIB` inputs of ``data``. Quantize once and pass the :class:`QuantizedModel` when you
        run many chips.
    data : Tensor, (inputs, labels) or Dataset
        A Dataset (``x_train``, ``x_test``, ``y_test``) is evaluated on its test split.
    array : simulator.SystolicArray
        The chip, with its faults and mitigation.
    engine : {"fast", "cycle"}
    batch_size : int
        Inputs per simulated batch; results do not depend on it.
    progress : bool or None
        Show a progress bar; ``None`` shows one for long runs on a terminal.
    flips : transient fault source, optional
        Soft errors during the run: e.g. ``faults.TransientFaults(ber=1e-9, seed=0)``; each
        GEMM gets the flips it draws. Unlike the rest of the run, which flips land where
        depends on ``batch_size`` (a GEMM's cycles do).
    protect : run-time check, optional
        Checks and corrects every GEMM result on the host, e.g. a calibrated
        :class:`protect.RangeCheck`; what it saw is in ``RunResult.protection``.
    faulty_layers : list of str, optional
        Run only these ops (names of :attr:`QuantizedModel.layers`) on ``array``, the others
        on a fault-free array (per-op fault targeting).
    """
    if not isinstance(array, SystolicArray):
        raise MappingError(f"array must be a simulator.SystolicArray; got {type(array).__name__}.")
    x, y, x_train = _split_data(data)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise MappingError(f"batch_size must be a positive int; got {batch_size!r}.")
    if not isinstance(model, QuantizedModel):
        if not isinstance(model, nn.Module):
            raise MappingError(f"model must be a torch nn.Module or a QuantizedModel; got {type(model).__name__}.")
        if calib is None:
            calib = (x_train if x_train is not None else x)[:N_CALIB]
        model = quantize(model, calib, array.cfg.precision)
    if y is not None and len(y) != len(x):
        raise MappingError(f"{len(x)} inputs but {len(y)} labels.")
    n_batches = -(-len(x) // batch_size)
    if progress is None:
        progress = n_batches > 4 and sys.stderr.isatty()
    from tqdm.auto import tqdm

    outs = []
    source = flips.session() if hasattr(flips, "session") else flips
    guard = protect.session() if hasattr(protect, "session") else protect
    with model.on(array, engine, source, guard, faulty_layers) as module, torch.no_grad(), numpy_blas_one_thread():
        for i in tqdm(range(0, len(x), batch_size), total=n_batches, disable=not progress, desc="chip", unit="batch"):
            try:
                outs.append(module(x[i : i + batch_size].float()))
            except RuntimeError as e:
                raise MappingError(f"inputs of shape {tuple(x.shape[1:])} do not fit the model: {e}") from None
        cycles = model.cycles()
    out = concat_outputs(outs)
    pred = predictions_of(out)
    acc = None if y is None else accuracy_of(pred, y)
    logits = first_tensor(out).numpy() if return_logits else None
    return RunResult(pred, acc, logits, cycles, getattr(guard, "stats", None), out if return_logits else None)
