"""A plan: per-chip amounts, groups with fused maps, and the costs of three policies.

A :class:`Plan` is checked when it is built (and so when it is loaded): every number in
it must follow from the others, as :func:`efat.plan` makes them. Each chip's amount is
``E*`` at its rate on the plan's own grid (``fault_rates``, ``required_epochs_grid``);
its status follows from that amount; a group's fused rate is its number of fused PEs
over ``R*C`` and its amount ``E*`` at that rate (finite, on the map's grid of amounts);
the costs on paper are the sums they claim to be (the expected costs and intervals come
from the map's chips and are stored as computed). :meth:`Plan.check_population` then
checks the plan against the population it is run on: the same chips, the same rates,
and every group's fused PEs exactly the union of its members' faulty PEs; and
:meth:`Plan.check_provenance` that a model and data set are the ones it was made for.
A plan file that fails any of this never runs. File format: :mod:`efat.plan_files`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from numbers import Integral

import numpy as np

from .bitsets import faulty_pe_lists, pack, population_fingerprint, unpack
from .constraint import Constraint
from .errors import PlanError
from .grouping import STRATEGIES
from .plan_checks import check_plan
from .plan_records import STATUSES, ChipPlan, Costs, GroupPlan, PolicyCost
from .resilience import amount_at

__all__ = ["Plan", "ChipPlan", "GroupPlan", "PolicyCost", "Costs", "STATUSES"]

@dataclass(frozen=True)
class Plan:
    """The result of :func:`efat.plan`: per-chip amounts, groups with fused maps, and costs.

    Attributes
    ----------
    constraint : Constraint
        What every chip is verified against, and at what pass target and confidence the
        amounts were certified.
    strategy : str
    shape : (int, int)
        The array, ``(R, C)``.
    chips : tuple of ChipPlan
        In population order; ``group`` is the index into ``groups`` (``None`` unless
        the status is ``"retrain"``).
    groups : tuple of GroupPlan
        ``groups[i].index == i``; ordered by their first member's population position.
    costs : Costs
    fault_rates, required_epochs_grid : tuple of float
        The map's rate grid and ``E*`` on it for the constraint (``inf`` = none).
    baseline : float
        The map's fault-free accuracy.
    fingerprint : str
        :func:`efat.bitsets.population_fingerprint` of the population planned for.
    epochs : tuple of float
        The map's grid of retraining amounts, starting at 0 (what execution escalates
        through when a unit fails its check).
    provenance : dict
        What the plan was made from: ``model_digest`` (:func:`training.model_digest`),
        ``data_fingerprint`` and ``map_digest`` (sha256 of the map's JSON); empty for a
        map that does not record its model and data.

    Raises
    ------
    PlanError
        When any of it is inconsistent (see the module docstring).
    """

    constraint: Constraint
    strategy: str
    shape: tuple[int, int]
    chips: tuple[ChipPlan, ...]
    groups: tuple[GroupPlan, ...]
    costs: Costs
    fault_rates: tuple[float, ...]
    required_epochs_grid: tuple[float, ...]
    baseline: float
    fingerprint: str
    epochs: tuple[float, ...]
    provenance: dict

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
    def max_accuracy_drop(self) -> float:
        return self.constraint.max_accuracy_drop

    @property
    def n_pes(self) -> int:
        return self.shape[0] * self.shape[1]

    def status_counts(self) -> dict:
        """``{status: number of chips}`` for every status."""
        return {s: sum(c.status == s for c in self.chips) for s in STATUSES}

    def grouping_floor(self) -> float:
        """Fewest epochs on paper that *any* grouping of this plan's chips to retrain can cost,
        if no two chips of a group share a faulty PE (random maps share few).

        A group of ``u`` fused faulty PEs costs ``E*`` of its step, at least ``rho * u``
        where ``rho`` is the fewest epochs per faulty PE of any step of ``E*`` (with a chip
        to retrain in it, a group's step costs more than nothing); and the groups' fused
        counts add up to the chips' counts. So the floor is ``rho`` times the chips' faulty
        PEs. Where ``E*`` grows in proportion to the rate, it is close to what eFAT can
        reach, and fusing chips saves only the slack of each chip's step.
        """
        counts = [round(c.rate * self.n_pes) for c in self.chips if c.status == "retrain"]
        if not counts:
            return 0.0
        amounts, caps = self.steps()
        return float(np.min(amounts / caps)) * math.fsum(counts)

    def steps(self) -> tuple[np.ndarray, np.ndarray]:
        """``(amounts, caps)``: each positive, finite amount of ``E*`` on this plan's grid, in
        rising order, and the most faulty PEs a fused map may have to be planned at it."""
        n = np.arange(1, self.n_pes + 1)
        amount = amount_at(np.asarray(self.fault_rates), np.asarray(self.required_epochs_grid), n / self.n_pes)
        useful = np.isfinite(amount) & (amount > 0)
        amounts = np.unique(amount[useful])
        caps = np.array([n[amount == a].max() for a in amounts], np.int64)
        return amounts, caps

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

    def check_provenance(self, model=None, data=None) -> None:
        """Raise :class:`PlanError` unless ``model`` and ``data`` are the ones the plan was
        made for (when the plan records them)."""
        want = self.provenance
        if model is not None and "model_digest" in want:
            from training import model_digest  # torch: only when a model is checked

            if model_digest(model) != want["model_digest"]:
                raise PlanError(f"the plan was made for another model (weights {want['model_digest'][:12]}..., these "
                                f"are {model_digest(model)[:12]}...): use the model its resilience map was measured "
                                "with.")
        if data is not None and "data_fingerprint" in want and data.fingerprint() != want["data_fingerprint"]:
            raise PlanError(f"the plan was made for another data set (fingerprint {want['data_fingerprint'][:12]}..., "
                            f"this is {data.name}, {data.fingerprint()[:12]}...).")

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
        c = self.costs
        level = f"{100 * self.constraint.confidence:g}%"
        lines = [
            f"eFAT plan ({self.strategy}): {len(self.chips)} chips on a {self.shape[0]}x{self.shape[1]} array, "
            f"{self.constraint.text()}",
            *(f"  {s:<14} {counts[s]:>6} chips" for s in STATUSES),
            f"  groups         {len(self.groups):>6} ({size_text})",
            "",
            f"  {'policy':<30} {'runs':>6} {'on paper':>9} {'expected (' + level + ' interval)':>28}",
            *(f"  {label:<30} {p.runs:>6} {p.epochs:>9.4g} {p.expected:>10.4g} [{p.lower:.4g}, {p.upper:.4g}]"
              for label, p in ((f"fixed ({c.fixed_amount:g} epochs per chip)", c.fixed),
                               ("reduce (E* per chip)", c.reduce), ("efat (E* per group)", c.efat))),
            f"  eFAT = {_percent(c.efat.expected, c.fixed.expected)} of fixed, "
            f"{_percent(c.efat.expected, c.reduce.expected)} of Reduce (expected epochs)",
        ]
        return "\n".join(lines)

    # -- persistence ---------------------------------------------------------------------------
    def to_json(self) -> dict:
        """A JSON-clean dict (``inf`` written as ``null``); see :mod:`efat.plan_files`."""
        from .plan_files import plan_to_json

        return plan_to_json(self)

    @classmethod
    def from_json(cls, obj, source: str = "plan") -> Plan:
        """Inverse of :meth:`to_json`; anything malformed or inconsistent raises
        :class:`PlanFileError` naming ``source``."""
        from .plan_files import plan_from_json

        return plan_from_json(cls, obj, source)

    def save(self, path) -> None:
        """Write the plan as JSON (format ``efat.Plan``), atomically."""
        from fileio import write_json

        write_json(path, self.to_json())

    @classmethod
    def load(cls, path) -> Plan:
        """Read a plan written by :meth:`save`; a missing, corrupt, truncated, foreign or
        inconsistent file raises :class:`PlanFileError` naming the path."""
        from .plan_files import read_plan

        return read_plan(cls, path)


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
