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

from .errors import MappingError, UnsupportedLayerError
from .layers import SIM_LAYERS, check_finite_input, make_sim_layer
from .numerics import one_thread
from .lowering import LOWERED, check_lowerable

__all__ = ["QuantizedModel", "quantize", "run_model", "RunResult", "HOST_LAYERS", "lowered_layers"]

#: Layers with parameters that run on the host in float (as an accelerator's post-processing unit).
HOST_LAYERS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.LayerNorm, nn.GroupNorm, nn.PReLU)
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
    """A model with every Linear/Conv2d replaced by its simulated twin (int8, or a float format).

    Build it with :func:`quantize`; run it with :func:`run_model` or, for one batch,
    ``with qm.on(array): logits = qm.module(x)``.

    Attributes
    ----------
    module : nn.Module
        The converted copy (the original model is untouched).
    precision : simulator.Precision
    act_amax : dict[str, float]
        Calibrated ``max|input|`` of each lowered layer, by qualified name.
    """

    def __init__(self, module: nn.Module, precision, act_amax: dict[str, float]):
        self.module = module
        self.precision = precision
        self.act_amax = act_amax

    @property
    def layers(self) -> list[tuple[str, nn.Module]]:
        return [(n, m) for n, m in self.module.named_modules() if isinstance(m, tuple(SIM_LAYERS.values()))]

    @contextlib.contextmanager
    def on(self, array: SystolicArray, engine: str = "fast", flips=None, guard=None):
        """Attach every simulated layer to ``array`` for the duration of the block.

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
        for _, layer in self.layers:
            sim = layer.sim
            sim.array, sim.engine, sim.n_cycles, sim.flips, sim.guard = array, engine, 0, flips, guard
        try:
            yield self.module
        finally:
            for _, layer in self.layers:
                layer.sim.array, layer.sim.flips, layer.sim.guard = None, None, None

    def with_masks(self, masks: dict[str, torch.Tensor]) -> QuantizedModel:
        """A copy whose int8 weights are zero where ``masks`` (from
        :func:`mapping.bypass_masks`) is True; scales stay as calibrated. On a fault-free
        array it computes exactly what this model computes on the chip with bypass."""
        new = QuantizedModel(copy.deepcopy(self.module), self.precision, dict(self.act_amax))
        layers = dict(new.layers)
        for name, mask in masks.items():
            if name not in layers:
                raise MappingError(f"mask for {name!r}, which is not a lowered layer of this model.")
            sim = layers[name].sim
            m = np.asarray(mask, bool).reshape(mask.shape[0], -1).T
            if m.shape != sim.w_q.shape:
                raise MappingError(f"mask for {name!r} does not match its weight {tuple(layers[name].weight.shape)}.")
            sim.w_q = np.where(m, 0, sim.w_q).astype(sim.w_q.dtype)
        return new

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


def quantize(model: nn.Module, calib: torch.Tensor, precision=INT8, batch_size: int = 256) -> QuantizedModel:
    """Calibrate activation scales on ``calib`` and convert ``model`` for the array.

    Parameters
    ----------
    model : nn.Module
        A float model of Linear, Conv2d (groups=1) and host layers (ReLU, pooling,
        flatten, batch norm, softmax, ...).
    calib : Tensor
        Calibration inputs (a few hundred are plenty); every lowered layer's input scale
        is ``max|input| / (2**(act_bits - 1) - 1)`` over them (``/ 127`` for int8), fixed
        from then on. Float formats take values unscaled (FP32, FP16, BF16) or scaled to their
        range (FP8), see :mod:`mapping.codecs`.
    precision : simulator.Precision
    """
    targets = lowered_layers(model)
    if not isinstance(calib, torch.Tensor) or len(calib) == 0:
        raise MappingError("calib must be a non-empty tensor of model inputs.")
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
    predictions : int64 array (n,)
    accuracy : float or None
        Fraction correct when labels were given.
    logits : float32 array (n, classes) or None
        When ``return_logits=True``.
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
              return_logits: bool = False, progress: bool | None = None, flips=None, protect=None) -> RunResult:
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
    with model.on(array, engine, source, guard) as module, torch.no_grad():
        for i in tqdm(range(0, len(x), batch_size), total=n_batches, disable=not progress, desc="chip", unit="batch"):
            try:
                outs.append(module(x[i : i + batch_size].float()))
            except RuntimeError as e:
                raise MappingError(f"inputs of shape {tuple(x.shape[1:])} do not fit the model: {e}") from None
        cycles = model.cycles()
    logits = torch.cat(outs).numpy()
    pred = logits.argmax(axis=1)
    acc = None if y is None else float((pred == np.asarray(y)).mean())
    return RunResult(pred, acc, logits if return_logits else None, cycles, getattr(guard, "stats", None))
