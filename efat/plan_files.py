"""Plans as JSON files (format ``"efat.Plan"``, version 2).

Fields (``docs/semantics.md``, "Files"): ``constraint`` (``max_accuracy_drop``,
``pass_target``, ``confidence``), ``strategy``, ``shape``, ``fingerprint``,
``provenance``, ``epochs``, ``baseline``, ``fault_rates``, ``required_epochs_grid``,
``costs`` (``fixed``, ``reduce``, ``efat``: ``epochs``, ``runs``, ``expected``,
``lower``, ``upper``; and ``fixed_amount``), ``chips`` and ``groups`` (with
``pass_probability`` ``[estimate, lower, upper]`` and ``expected_epochs``). JSON has no
infinity: an infinite amount (a chip no amount on the grid can fix) is ``null``.
Version 1 plans (a hand-tuned margin and a worst-trial criterion) are refused with the
way out: plan again.
"""

from __future__ import annotations

import math

from fileio import FileFormatError, header_problem, json_clean, read_json

from .constraint import Constraint
from .errors import PlanError, PlanFileError, ResilienceError
from .plan_records import ChipPlan, Costs, GroupPlan, PolicyCost

__all__ = ["plan_to_json", "plan_from_json", "read_plan", "FORMAT", "VERSION"]

FORMAT = "efat.Plan"
VERSION = 2


def plan_to_json(p) -> dict:
    c = p.costs
    return json_clean({
        "format": FORMAT,
        "version": VERSION,
        "constraint": p.constraint.to_json(),
        "strategy": p.strategy,
        "shape": list(p.shape),
        "fingerprint": p.fingerprint,
        "provenance": dict(p.provenance),
        "epochs": list(p.epochs),
        "baseline": p.baseline,
        "fault_rates": list(p.fault_rates),
        "required_epochs_grid": list(p.required_epochs_grid),
        "costs": {**{name: vars(getattr(c, name)) for name in ("fixed", "reduce", "efat")},
                  "fixed_amount": c.fixed_amount},
        "chips": [{"id": ch.id, "rate": ch.rate, "epochs": ch.epochs, "status": ch.status, "group": ch.group}
                  for ch in p.chips],
        "groups": [{"index": g.index, "members": list(g.members), "fused_rate": g.fused_rate,
                    "fused_pes": [list(pe) for pe in g.fused_pes], "epochs": g.epochs,
                    "pass_probability": list(g.pass_probability), "expected_epochs": g.expected_epochs}
                   for g in p.groups],
    })


def plan_from_json(cls, obj, source: str = "plan"):

    problem = header_problem(obj, FORMAT, VERSION, "an eFAT plan")
    if problem and isinstance(obj, dict) and obj.get("version") == 1 and obj.get("format") == FORMAT:
        problem = ("a version 1 plan (a hand-tuned margin, worst-trial amounts); this release plans with pass "
                   "probabilities: run efat plan again.")
    if problem:
        raise PlanFileError(source, problem)
    try:
        return cls(
            constraint=Constraint.from_json(obj["constraint"]),
            strategy=str(obj["strategy"]),
            shape=_pair(obj["shape"]),
            chips=tuple(ChipPlan(str(c["id"]), float(c["rate"]), _load_float(c["epochs"]), str(c["status"]),
                                 None if c["group"] is None else _int(c["group"])) for c in obj["chips"]),
            groups=tuple(GroupPlan(_int(g["index"]), tuple(str(m) for m in g["members"]), float(g["fused_rate"]),
                                   tuple(_pair(pe) for pe in g["fused_pes"]), float(g["epochs"]),
                                   _triple(g["pass_probability"]), float(g["expected_epochs"]))
                         for g in obj["groups"]),
            costs=_load_costs(obj["costs"]),
            fault_rates=tuple(float(r) for r in obj["fault_rates"]),
            required_epochs_grid=tuple(_load_float(e) for e in obj["required_epochs_grid"]),
            baseline=float(obj["baseline"]),
            fingerprint=str(obj["fingerprint"]),
            epochs=tuple(float(e) for e in obj["epochs"]),
            provenance=_provenance(obj["provenance"]),
        )
    except (PlanError, ResilienceError) as e:
        raise PlanFileError(source, str(e)) from None
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise PlanFileError(source, f"malformed plan ({type(e).__name__}: {e}).") from None


def read_plan(cls, path):
    try:
        obj = read_json(path)
    except FileFormatError as e:
        raise PlanFileError(e.path, e.problem) from None
    return plan_from_json(cls, obj, str(path))


def _load_float(x) -> float:
    return math.inf if x is None else float(x)


def _int(x) -> int:
    if isinstance(x, bool) or not isinstance(x, (int, float)) or x != int(x):
        raise ValueError(f"expected an integer; got {x!r}")
    return int(x)


def _pair(v) -> tuple[int, int]:
    a, b = v
    return _int(a), _int(b)


def _triple(v) -> tuple[float, float, float]:
    a, b, c = v
    return float(a), float(b), float(c)


def _provenance(obj) -> dict:
    if not isinstance(obj, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in obj.items()):
        raise ValueError(f"provenance must map names to strings; got {obj!r}")
    return dict(obj)


def _load_costs(obj):

    def policy(name):
        p = obj[name]
        return PolicyCost(float(p["epochs"]), _int(p["runs"]), float(p["expected"]), float(p["lower"]),
                          float(p["upper"]))

    return Costs(policy("fixed"), policy("reduce"), policy("efat"), float(obj["fixed_amount"]))
