"""A plan: per-chip amounts, groups with fused maps, and the costs of three policies.

A :class:`Plan` is checked when it is built (and so when it is loaded): every number in
it must follow from the others, as :func:`efat.plan` makes them. Each chip's amount is
``E*`` at its rate on the plan's own grid (``fault_rates``, ``required_epochs_grid``);
its status follows from that amount; a group's fused rate is its number of fused PEs
over ``R*C`` and its amount ``E*`` at that rate (finite, on the map's grid of amounts);
the costs are the sums they claim to be. :meth:`Plan.check_population` then checks the
plan against the population it is run on: the same chips, the same rates, and every
group's fused PEs exactly the union of its members' faulty PEs. A plan file that fails
any of this never runs.

File format (JSON, ``docs/semantics.md``, "Files"): ``format`` ``"efat.Plan"``,
``version`` 1; an infinite amount (a chip no amount on the grid can fix) is written as
``null``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from numbers import Integral

import numpy as np

from fileio import FileFormatError, header_problem, json_clean, read_json, write_json

from .bitsets import faulty_pe_lists, pack, population_fingerprint, unpack
from .errors import PlanError, PlanFileError
from .grouping import STRATEGIES
from .plan_checks import check_plan

__all__ = ["Plan", "ChipPlan", "GroupPlan", "PolicyCost", "Costs", "STATUSES", "FORMAT"]

FORMAT = "efat.Plan"
VERSION = 1
STATUSES = ("retrain", "no_retraining", "infeasible")


@dataclass(frozen=True)
class ChipPlan:
    """One chip in a plan: ``epochs`` is its ``E*`` (``inf`` if infeasible)."""

    id: str
    rate: float
    epochs: float
    status: str
    group: int | None


@dataclass(frozen=True)
class GroupPlan:
    """One retraining run: its members, fused map (as faulty PEs ``(r, c)``) and amount."""

    index: int
    members: tuple[str, ...]
    fused_rate: float
    fused_pes: tuple[tuple[int, int], ...]
    epochs: float


@dataclass(frozen=True)
class PolicyCost:
    """Total retraining of one policy: ``epochs`` summed over ``runs`` retraining runs."""

    epochs: float
    runs: int


@dataclass(frozen=True)
class Costs:
    """The three policies side by side; ``fixed_amount`` = epochs per chip under ``fixed``."""

    fixed: PolicyCost
    reduce: PolicyCost
    efat: PolicyCost
    fixed_amount: float


@dataclass(frozen=True)
class Plan:
    """The result of :func:`efat.plan`: per-chip amounts, groups with fused maps, and costs.

    Attributes
    ----------
    max_accuracy_drop, quantile, strategy
        The constraint and strategy it was planned for.
    shape : (int, int)
        The array, ``(R, C)``.
    chips : tuple of ChipPlan
        In population order; ``group`` is the index into ``groups`` (``None`` unless
        the status is ``"retrain"``).
    groups : tuple of GroupPlan
        ``groups[i].index == i``; ordered by their first member's population position.
    costs : Costs
    fault_rates, required_epochs_grid : tuple of float
        The map's rate grid and ``E*`` on it for the planning constraint
        (``max_accuracy_drop - margin``; ``inf`` = none).
    baseline : float
        The map's fault-free accuracy.
    fingerprint : str
        :func:`efat.bitsets.population_fingerprint` of the population planned for.
    margin : float
        Safety margin: amounts were chosen to meet ``max_accuracy_drop - margin`` on the
        map, chips are verified against ``max_accuracy_drop``.
    epochs : tuple of float
        The map's grid of retraining amounts, starting at 0 (what execution escalates
        through when a chip fails its check).

    Raises
    ------
    PlanError
        When any of it is inconsistent (see the module docstring).
    """

    max_accuracy_drop: float
    quantile: float | None
    strategy: str
    shape: tuple[int, int]
    chips: tuple[ChipPlan, ...]
    groups: tuple[GroupPlan, ...]
    costs: Costs
    fault_rates: tuple[float, ...]
    required_epochs_grid: tuple[float, ...]
    baseline: float
    fingerprint: str
    margin: float
    epochs: tuple[float, ...]

    def __post_init__(self):
        ids = [c.id for c in self.chips]
        if len(set(ids)) != len(ids):
            raise PlanError(f"chip ids must be unique; {next(i for i in ids if ids.count(i) > 1)!r} appears "
                            "more than once.")
        if self.strategy not in STRATEGIES:
            raise PlanError(f"strategy must be one of {list(STRATEGIES)}; got {self.strategy!r}.")
        for c in self.chips:
            if c.status not in STATUSES:
                raise PlanError(f"chip {c.id!r}: status must be one of {list(STATUSES)}; got {c.status!r}.")
            if (c.group is not None) != (c.status == "retrain"):
                raise PlanError(f"chip {c.id!r}: status {c.status!r} does not fit group {c.group!r}.")
        listed = {m: g.index for g in self.groups for m in g.members}
        for i, g in enumerate(self.groups):
            if g.index != i:
                raise PlanError(f"groups[{i}] has index {g.index}.")
        grouped = {c.id: c.group for c in self.chips if c.group is not None}
        if listed != grouped or sum(len(g.members) for g in self.groups) != len(listed):
            raise PlanError("the groups' members do not match the chips' group indices.")
        check_plan(self)

    # -- queries ---------------------------------------------------------------------------
    @property
    def n_pes(self) -> int:
        return self.shape[0] * self.shape[1]

    def status_counts(self) -> dict:
        """``{status: number of chips}`` for every status."""
        return {s: sum(c.status == s for c in self.chips) for s in STATUSES}

    def check_population(self, population) -> None:
        """Raise :class:`PlanError` unless ``population`` is the one this plan was made for:
        same array, chips, fault maps (fingerprint) and rates, and every group's fused PEs
        the union of its members' faulty PEs."""
        shape = tuple(population.cfg.shape)
        if shape != self.shape:
            raise PlanError(f"this plan is for a {self.shape[0]}x{self.shape[1]} array; "
                            f"the population is {shape[0]}x{shape[1]}.")
        if len(population) != len(self.chips):
            raise PlanError(f"this plan is for {len(self.chips)} chips; the population has {len(population)}.")
        if population_fingerprint(population) != self.fingerprint:
            ids = tuple(c.id for c in self.chips)
            why = "its chip ids differ" if tuple(population.ids) != ids else "its fault maps differ"
            raise PlanError(f"the population is not the one this plan was made for ({why}; "
                            f"fingerprint {self.fingerprint[:12]}...).")
        rates = np.asarray(population.rates, float)
        for c, rate in zip(self.chips, rates.tolist()):
            if abs(c.rate - rate) > 1e-12:
                raise PlanError(f"chip {c.id!r}: the plan says fault rate {c.rate!r}; in the population it is "
                                f"{rate!r}.")
        offsets, flat = faulty_pe_lists(population)
        position = {chip_id: i for i, chip_id in enumerate(population.ids)}
        for g in self.groups:
            members = np.array([position[m] for m in g.members])
            union = unpack(np.bitwise_or.reduce(pack(offsets, flat, members, self.n_pes), axis=0), self.n_pes)
            _same_pes(g, union, self.shape[1])

    def fused_map(self, group_index: int, population):
        """The fused :class:`faults.FaultMap` of a group, rebuilt from ``population`` with
        ``FaultMap.union``.

        Raises :class:`PlanError` if the index is out of range or the rebuilt faulty PEs
        differ from the stored ones (call :meth:`check_population` first to check the
        whole plan against the population).
        """
        if (isinstance(group_index, bool) or not isinstance(group_index, Integral)
                or not 0 <= group_index < len(self.groups)):
            raise PlanError(f"group_index must be an int in [0, {len(self.groups) - 1}]; got {group_index!r}.")
        group = self.groups[int(group_index)]
        first, *rest = (population[m].fault_map for m in group.members)
        fused = first.union(*rest)
        _same_pes(group, np.flatnonzero(fused.faulty.ravel()), self.shape[1])
        return fused

    # -- reporting ---------------------------------------------------------------------------
    def summary_text(self) -> str:
        """A short plain-text table: chips per status, groups, and the three policy costs."""
        counts = self.status_counts()
        sizes = sorted(len(g.members) for g in self.groups)
        size_text = (f"sizes min {sizes[0]}, median {sizes[len(sizes) // 2]}, max {sizes[-1]}"
                     if sizes else "none")
        trials = "every trial" if self.quantile is None else f"quantile {self.quantile:g} of trials"
        c = self.costs
        lines = [
            f"eFAT plan ({self.strategy}): {len(self.chips)} chips on a {self.shape[0]}x{self.shape[1]} array, "
            f"max accuracy drop {100 * self.max_accuracy_drop:g} points ({trials}"
            + (f"; amounts chosen for {100 * (self.max_accuracy_drop - self.margin):g} points)" if self.margin else ")"),
            *(f"  {s:<14} {counts[s]:>6} chips" for s in STATUSES),
            f"  groups         {len(self.groups):>6} ({size_text})",
            "",
            f"  {'policy':<30} {'runs':>6} {'epochs':>10}",
            f"  {f'fixed ({c.fixed_amount:g} epochs per chip)':<30} {c.fixed.runs:>6} {c.fixed.epochs:>10.4g}",
            f"  {'reduce (E* per chip)':<30} {c.reduce.runs:>6} {c.reduce.epochs:>10.4g}",
            f"  {'efat (E* per group)':<30} {c.efat.runs:>6} {c.efat.epochs:>10.4g}",
            f"  eFAT = {_percent(c.efat.epochs, c.fixed.epochs)} of fixed, "
            f"{_percent(c.efat.epochs, c.reduce.epochs)} of Reduce",
        ]
        return "\n".join(lines)

    # -- persistence ---------------------------------------------------------------------------
    def to_json(self) -> dict:
        """A JSON-clean dict (``inf`` written as ``null``)."""
        return json_clean({
            "format": FORMAT,
            "version": VERSION,
            "max_accuracy_drop": self.max_accuracy_drop,
            "quantile": self.quantile,
            "strategy": self.strategy,
            "shape": list(self.shape),
            "fingerprint": self.fingerprint,
            "margin": self.margin,
            "epochs": list(self.epochs),
            "baseline": self.baseline,
            "fault_rates": list(self.fault_rates),
            "required_epochs_grid": list(self.required_epochs_grid),
            "costs": {
                **{name: {"epochs": p.epochs, "runs": p.runs}
                   for name, p in (("fixed", self.costs.fixed), ("reduce", self.costs.reduce),
                                   ("efat", self.costs.efat))},
                "fixed_amount": self.costs.fixed_amount,
            },
            "chips": [{"id": c.id, "rate": c.rate, "epochs": c.epochs, "status": c.status,
                       "group": c.group} for c in self.chips],
            "groups": [{"index": g.index, "members": list(g.members), "fused_rate": g.fused_rate,
                        "fused_pes": [list(pe) for pe in g.fused_pes], "epochs": g.epochs} for g in self.groups],
        })

    @classmethod
    def from_json(cls, obj, source: str = "plan") -> Plan:
        """Inverse of :meth:`to_json`; anything malformed or inconsistent raises
        :class:`PlanFileError` naming ``source``."""
        problem = header_problem(obj, FORMAT, VERSION, "an eFAT plan")
        if problem:
            raise PlanFileError(source, problem)
        try:
            return cls(
                max_accuracy_drop=float(obj["max_accuracy_drop"]),
                quantile=None if obj["quantile"] is None else float(obj["quantile"]),
                strategy=str(obj["strategy"]),
                shape=_pair(obj["shape"]),
                chips=tuple(ChipPlan(str(c["id"]), float(c["rate"]), _load_float(c["epochs"]), str(c["status"]),
                                     None if c["group"] is None else _int(c["group"])) for c in obj["chips"]),
                groups=tuple(GroupPlan(_int(g["index"]), tuple(str(m) for m in g["members"]),
                                       float(g["fused_rate"]), tuple(_pair(pe) for pe in g["fused_pes"]),
                                       float(g["epochs"])) for g in obj["groups"]),
                costs=_load_costs(obj["costs"]),
                fault_rates=tuple(float(r) for r in obj["fault_rates"]),
                required_epochs_grid=tuple(_load_float(e) for e in obj["required_epochs_grid"]),
                baseline=float(obj["baseline"]),
                fingerprint=str(obj["fingerprint"]),
                margin=float(obj["margin"]),
                epochs=tuple(float(e) for e in obj["epochs"]),
            )
        except PlanError as e:
            raise PlanFileError(source, str(e)) from None
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise PlanFileError(source, f"malformed plan ({type(e).__name__}: {e}).") from None

    def save(self, path) -> None:
        """Write the plan as JSON (format ``efat.Plan``, version 1), atomically."""
        write_json(path, self.to_json())

    @classmethod
    def load(cls, path) -> Plan:
        """Read a plan written by :meth:`save`; a missing, corrupt, truncated, foreign or
        inconsistent file raises :class:`PlanFileError` naming the path."""
        try:
            obj = read_json(path)
        except FileFormatError as e:
            raise PlanFileError(e.path, e.problem) from None
        return cls.from_json(obj, str(path))


def _same_pes(group: GroupPlan, flat: np.ndarray, cols: int) -> None:
    """Raise unless the group's stored fused PEs are exactly ``flat`` (``r*C + c``)."""
    stored = {r * cols + c for r, c in group.fused_pes}
    actual = set(flat.tolist())
    if stored != actual:
        extra, missing = sorted(stored - actual), sorted(actual - stored)
        example = (f"PE {divmod(missing[0], cols)} is faulty on a member but not in the plan" if missing
                   else f"PE {divmod(extra[0], cols)} is in the plan but faulty on no member")
        raise PlanError(f"group {group.index}: its fused PEs in the plan ({len(stored)}) are not the union of its "
                        f"members' faulty PEs ({len(actual)}): {example}.")


def _percent(part: float, whole: float) -> str:
    return f"{100 * part / whole:.1f}%" if whole > 0 else "n/a"


def _load_float(x) -> float:
    return math.inf if x is None else float(x)


def _int(x) -> int:
    if isinstance(x, bool) or not isinstance(x, (int, float)) or x != int(x):
        raise ValueError(f"expected an integer; got {x!r}")
    return int(x)


def _pair(v) -> tuple[int, int]:
    a, b = v
    return _int(a), _int(b)


def _load_costs(obj) -> Costs:
    def policy(name):
        return PolicyCost(float(obj[name]["epochs"]), _int(obj[name]["runs"]))

    return Costs(policy("fixed"), policy("reduce"), policy("efat"), float(obj["fixed_amount"]))
