"""Lowering any model by tracing: ``torch.fx`` finds every GEMM-like op, whatever code calls it.

The tracer keeps as leaves the standard ``nn.Linear``, ``nn.Conv1d`` and ``nn.Conv2d`` (and
subclasses that keep their forward) and torch's own host layers; every other module is traced
through, so a subclass with its own forward is lowered op by op, never swapped for a layer
that ignores its code. Then, in the graph:

* a leaf ``Linear``/``Conv1d``/``Conv2d`` becomes its simulated twin (same qualified name);
* ``F.linear`` / ``F.conv1d`` / ``F.conv2d`` on a parameter becomes a simulated layer built
  from that parameter (named after the op's module and node);
* ``@`` / ``torch.matmul`` / ``torch.bmm`` / ``F.linear`` between activations becomes a
  :class:`~mapping.actgemm.SimMatmul`;
* ``F.scaled_dot_product_attention`` becomes a :class:`~mapping.actgemm.SimAttention`;
  ``nn.MultiheadAttention`` is replaced before tracing by
  :class:`~mapping.actgemm.AttentionHeads`, which is traced through.

Everything else runs on the host in float. A module that cannot be traced is named in the
error, with the way out: list it in ``leaves`` to run it, unlowered, on the host.
"""

from __future__ import annotations

import copy
import operator

import torch
import torch.fx as fx
import torch.nn.functional as F
from torch import nn

from .actgemm import AttentionHeads, SimAttention, SimMatmul
from .errors import MappingError, UnsupportedLayerError
from .layers import SIM_LAYERS, make_sim_layer
from .lowering import LOWERED, check_lowerable

__all__ = ["trace_model", "HOST_LAYERS", "SIM_OPS"]

#: Layers with parameters that run on the host in float (as an accelerator's post-processing unit).
HOST_LAYERS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.LayerNorm, nn.GroupNorm, nn.PReLU, nn.Embedding)
#: Every simulated op type (what :attr:`QuantizedModel.layers` lists).
SIM_OPS = (*SIM_LAYERS.values(), SimMatmul)

_MATMULS = {operator.matmul, torch.matmul, torch.bmm}
_METHOD_MATMULS = {"matmul", "bmm", "__matmul__"}
_FUNCTIONAL = {F.linear: nn.Linear, F.conv1d: nn.Conv1d, F.conv2d: nn.Conv2d}


class _Tracer(fx.Tracer):
    def __init__(self, leaves=()):  # a default: unpickling a GraphModule builds its tracer class bare
        super().__init__()
        self.leaves = set(leaves)

    def is_leaf_module(self, m: nn.Module, name: str) -> bool:
        if name in self.leaves or type(m) in self.leaves:
            return True
        if isinstance(m, LOWERED):  # lowered whole unless its class brings its own forward
            return any(type(m).forward is k.forward for k in SIM_LAYERS)
        return super().is_leaf_module(m, name)


def _scope(node: fx.Node) -> str:
    stack = node.meta.get("nn_module_stack") or {}
    return next(reversed(stack.values()))[0] if stack else ""


def _op_name(node: fx.Node) -> str:
    scope = _scope(node)
    return f"{scope}.{node.name}" if scope else node.name


def _replace_mha(model: nn.Module, leaves) -> None:
    for name, m in list(model.named_modules()):
        for child_name, child in list(m.named_children()):
            full = f"{name}.{child_name}" if name else child_name
            if isinstance(child, nn.MultiheadAttention) and full not in leaves and type(child) not in leaves:
                setattr(m, child_name, AttentionHeads(child, full))


def _param(gm: fx.GraphModule, node) -> torch.Tensor | None:
    """The tensor a ``get_attr`` node names, or None for anything else."""
    if isinstance(node, fx.Node) and node.op == "get_attr":
        obj = gm
        for part in node.target.split("."):
            obj = getattr(obj, part)
        return obj if isinstance(obj, torch.Tensor) else None
    return None


def _functional_layer(kind, weight, bias, args, kwargs):
    """An ``nn.Linear`` / ``nn.Conv1d`` / ``nn.Conv2d`` holding ``weight`` and ``bias``."""
    if kind is nn.Linear:
        layer = nn.Linear(weight.shape[1], weight.shape[0], bias=bias is not None)
    else:
        names = ("stride", "padding", "dilation", "groups")
        conf = {n: kwargs.get(n, args[3 + i] if len(args) > 3 + i else None) for i, n in enumerate(names)}
        conf = {n: v for n, v in conf.items() if v is not None}
        groups = conf.get("groups", 1)
        layer = kind(weight.shape[1] * groups, weight.shape[0], tuple(weight.shape[2:]), bias=bias is not None, **conf)
    with torch.no_grad():
        layer.weight.copy_(weight)
        if bias is not None:
            layer.bias.copy_(bias)
    return layer


def trace_model(model: nn.Module, precision, leaves=()) -> tuple[fx.GraphModule, list[str]]:
    """A traced copy of ``model`` with every GEMM-like op replaced by a simulated op (in float
    mode, uncalibrated), and the simulated ops' names in execution order.

    ``leaves``: qualified module names or module types not to trace into (run on the host).
    """
    leaves = set(leaves)
    model = copy.deepcopy(model).eval()
    _replace_mha(model, leaves)
    tracer = _Tracer(leaves)
    try:
        graph = tracer.trace(model)
    except Exception as e:  # torch.fx raises TraceError, TypeError, RuntimeError, ...
        where = ".".join(k for k in tracer.module_stack if k) if getattr(tracer, "module_stack", None) else ""
        at = f"in module {where!r} " if where else ""
        raise MappingError(f"torch.fx cannot trace the model {at}({type(e).__name__}: {e}); mark that module as a "
                           f"leaf to run it on the host, unlowered: quantize(..., leaves=[{where or 'NAME'!r}]).") from None
    gm = fx.GraphModule(model, graph)
    order = []
    for node in list(gm.graph.nodes):
        sim = _lower_node(gm, node, precision)
        if sim is None:
            continue
        name, module = sim
        order.extend([f"{name}.qk", f"{name}.av"] if isinstance(module, SimAttention) else [name])
    gm.graph.eliminate_dead_code()  # the get_attr of weights now held by simulated layers
    gm.graph.lint()
    gm.recompile()
    for name, module in gm.named_modules():
        if isinstance(module, SIM_OPS) or isinstance(module, SimAttention):
            continue
        if any(True for _ in module.parameters(recurse=False)) and not isinstance(module, HOST_LAYERS) \
                and name and name not in leaves and type(module) not in leaves and _used(gm, name):
            supported = ", ".join(t.__name__ for t in LOWERED)
            host = ", ".join(t.__name__ for t in HOST_LAYERS)
            raise UnsupportedLayerError(
                f"layer {name!r} ({type(module).__name__}) holds weights but has no lowering onto the array; "
                f"supported on the array: {supported}, matrix products and attention; with weights on the host: "
                f"{host}; or mark it as a leaf (quantize(..., leaves=[{name!r}])) to run it on the host.")
    if not order:
        raise MappingError("the model has no Linear, Conv or matrix product to run on the array.")
    return gm, order


def _used(gm: fx.GraphModule, name: str) -> bool:
    return any(n.op == "call_module" and n.target == name for n in gm.graph.nodes)


def _swap(gm: fx.GraphModule, node: fx.Node, name: str, module: nn.Module, args, kwargs=None):
    gm.add_submodule(name, module)
    with gm.graph.inserting_before(node):
        new = gm.graph.call_module(name, tuple(args), kwargs or {})
    new.meta = dict(node.meta)
    node.replace_all_uses_with(new)
    gm.graph.erase_node(node)


def _lower_node(gm: fx.GraphModule, node: fx.Node, precision):
    """Replace ``node`` by a simulated op if it is a GEMM; ``(name, module)`` or None."""
    if node.op == "call_module":
        m = gm.get_submodule(node.target)
        if isinstance(m, LOWERED) and not isinstance(m, SIM_OPS):
            check_lowerable(node.target, m)
            sim = make_sim_layer(m, 0.0, precision, node.target)
            parent, _, attr = node.target.rpartition(".")
            setattr(gm.get_submodule(parent) if parent else gm, attr, sim)
            return node.target, sim
        return None
    if node.op not in ("call_function", "call_method"):
        return None
    target, args, kwargs = node.target, list(node.args), dict(node.kwargs)
    name = _op_name(node)
    if node.op == "call_function" and target in _FUNCTIONAL:
        weight = _param(gm, args[1] if len(args) > 1 else kwargs.get("weight"))
        bias_node = args[2] if len(args) > 2 else kwargs.get("bias")
        bias = _param(gm, bias_node)
        if weight is not None and (bias_node is None or bias is not None):
            layer = _functional_layer(_FUNCTIONAL[target], weight.detach(), None if bias is None else bias.detach(),
                                      args, kwargs)
            check_lowerable(name, layer)
            sim = make_sim_layer(layer, 0.0, precision, name)
            _swap(gm, node, name, sim, args[:1])
            return name, sim
        if target is not F.linear:
            raise UnsupportedLayerError(f"op {name!r}: {target.__name__} with a computed weight has no lowering; "
                                        "only convolutions by parameters run on the array.")
        sim = SimMatmul(precision, name, kind="linear")
        _swap(gm, node, name, sim, [args[0], args[1] if len(args) > 1 else kwargs["weight"]],
              {"bias": bias_node} if bias_node is not None else {})
        return name, sim
    is_mm = (node.op == "call_function" and target in _MATMULS) or \
        (node.op == "call_method" and target in _METHOD_MATMULS)
    if is_mm:
        if all(_param(gm, a) is not None for a in args[:2]):
            return None  # a product of constants: computed on the host
        sim = SimMatmul(precision, name)
        _swap(gm, node, name, sim, args[:2])
        return name, sim
    if node.op == "call_function" and target is F.scaled_dot_product_attention:
        sim = SimAttention(precision, name)
        _swap(gm, node, name, sim, args, kwargs)
        return name, sim
    return None
