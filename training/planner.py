"""eFAT planning: which chips of a population retrain, in which groups, for how long.

This is our precise version of eFAT's planning (DESIGN.md, "eFAT, as this project
implements it", steps 2-4 and 6). Given a population, a :class:`ResilienceMap` and a
user's ``max_accuracy_drop``:

1. **Per chip.** ``E* = rmap.required_epochs(rate, drop, quantile)`` (the rate rounds up
   to the map's grid). ``E* == 0``: bypass alone meets the constraint, status
   ``"no_retraining"``. ``E* == inf``: nothing on the map meets it, status
   ``"infeasible"`` (reported, never grouped). Otherwise ``"retrain"``.
2. **Fusion.** A group's fused map is the OR of its members' faulty PEs; its fused rate
   is (faulty PEs of the OR) / (R*C) and its cost ``E*(fused rate)``. A fusion is
   allowed only while that cost is finite.
3. **Grouping** (``strategy``):

   ``"reward"`` (default)
       Start with one group per chip to retrain; repeatedly merge the pair with the
       largest reward ``cost(A) + cost(B) - cost(A u B)`` (epochs saved) until no
       positive reward is left. Ties go to the pair with the smallest group indices
       (a group's index is the population position of its first member).
   ``"none"``
       Every chip its own group: the per-chip resilience-driven "Reduce" policy.
   ``"exact"``
       The cheapest partition of the chips to retrain, by dynamic programming over
       subsets (``O(3^m)``); only for ``m <= EXACT_MAX_CHIPS`` chips to retrain.

4. **Costs** of three policies, in epochs and retraining runs:

   * ``fixed``: every feasible chip (``"retrain"`` and ``"no_retraining"`` alike, since
     this policy does not consult the map per chip) retrained once with one amount:
     ``fixed_epochs`` if given (it must be at least the largest finite ``E*``, so the
     policy meets the constraint on every feasible chip), else the largest finite
     ``E*`` among the chips, the one amount that suits them all;
   * ``reduce``: the sum of ``E*`` over the chips to retrain, one run each;
   * ``efat``: the sum over groups of the group's ``E*``, one run per group.

   By construction ``efat <= reduce <= fixed``.

Grouping is fast: each chip's faulty PEs are bit-packed into 64-bit words, union sizes
are popcounts of ORs, and the reward matrix is updated only in the merged group's row
and column (under 1 s for 1,000 chips of a 128x128 array; ``bench/bench_plan.py``).
"""

from __future__ import annotations

import hashlib
import math
from numbers import Real
from dataclasses import dataclass
from numbers import Integral

import numpy as np

from .resilience import ResilienceError, ResilienceMap, read_json, write_json_atomic

__all__ = [
    "plan", "Plan", "PlanError", "ChipPlan", "GroupPlan", "PolicyCost", "Costs",
    "population_fingerprint", "STRATEGIES", "STATUSES", "EXACT_MAX_CHIPS", "FORMAT",
]

FORMAT = "efat.Plan"
VERSION = 1
STRATEGIES = ("reward", "none", "exact")
STATUSES = ("retrain", "no_retraining", "infeasible")
EXACT_MAX_CHIPS = 12
_TOL = 1e-9  # rewards at or below this many epochs count as none (float noise of sums)


class PlanError(ValueError):
    """Bad input to :func:`plan`, a plan that does not fit a population, or a bad plan file."""


# -- the plan -------------------------------------------------------------------------------

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
    """The result of :func:`plan`: per-chip amounts, groups with fused maps, and costs.

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
        The map's rate grid and ``E*`` on it for this constraint (``inf`` = none).
    baseline : float
        The map's fault-free accuracy.
    fingerprint : str
        :func:`population_fingerprint` of the population planned for.
    margin : float
        Safety margin: amounts were chosen to meet ``max_accuracy_drop - margin`` on the
        map, chips are verified against ``max_accuracy_drop``.
    epochs : tuple of float
        The map's grid of retraining amounts (what execution escalates through when a
        chip fails its check).
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
    margin: float = 0.0
    epochs: tuple[float, ...] = ()

    def __post_init__(self):
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

    # -- queries ---------------------------------------------------------------------------
    def status_counts(self) -> dict:
        """``{status: number of chips}`` for every status."""
        return {s: sum(c.status == s for c in self.chips) for s in STATUSES}

    def check_population(self, population) -> None:
        """Raise :class:`PlanError` unless ``population`` is the one this plan was made for."""
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

    def fused_map(self, group_index: int, population):
        """The fused :class:`FaultMap` of a group, rebuilt from ``population`` with ``FaultMap.union``.

        Raises :class:`PlanError` if the population is not the planned one, the index is
        out of range, or the rebuilt faulty PEs differ from the stored ones.
        """
        self.check_population(population)
        if (isinstance(group_index, bool) or not isinstance(group_index, Integral)
                or not 0 <= group_index < len(self.groups)):
            raise PlanError(f"group_index must be an int in [0, {len(self.groups) - 1}]; got {group_index!r}.")
        group = self.groups[int(group_index)]
        first, *rest = (population[m].fault_map for m in group.members)
        fused = first.union(*rest)
        pes = tuple((int(r), int(c)) for r, c in zip(*np.nonzero(fused.faulty)))
        if pes != group.fused_pes:
            raise PlanError(f"group {group_index}: the union of its members' fault maps has {len(pes)} "
                            f"faulty PEs, not the {len(group.fused_pes)} stored in the plan.")
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
        return {
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
            "required_epochs_grid": [_dump_float(e) for e in self.required_epochs_grid],
            "costs": {
                **{name: {"epochs": p.epochs, "runs": p.runs}
                   for name, p in (("fixed", self.costs.fixed), ("reduce", self.costs.reduce),
                                   ("efat", self.costs.efat))},
                "fixed_amount": self.costs.fixed_amount,
            },
            "chips": [{"id": c.id, "rate": c.rate, "epochs": _dump_float(c.epochs), "status": c.status,
                       "group": c.group} for c in self.chips],
            "groups": [{"index": g.index, "members": list(g.members), "fused_rate": g.fused_rate,
                        "fused_pes": [list(pe) for pe in g.fused_pes], "epochs": g.epochs} for g in self.groups],
        }

    @classmethod
    def from_json(cls, obj, source: str = "plan") -> Plan:
        """Inverse of :meth:`to_json`; anything malformed raises :class:`PlanError` naming ``source``."""
        if not isinstance(obj, dict) or obj.get("format") != FORMAT:
            found = obj.get("format") if isinstance(obj, dict) else type(obj).__name__
            raise PlanError(f"{source}: not an eFAT plan (format {found!r}, expected {FORMAT!r}).")
        if obj.get("version") != VERSION:
            raise PlanError(f"{source}: plan format version {obj.get('version')!r}; this release reads {VERSION}.")
        try:
            return cls(
                max_accuracy_drop=float(obj["max_accuracy_drop"]),
                quantile=None if obj["quantile"] is None else float(obj["quantile"]),
                strategy=str(obj["strategy"]),
                shape=_pair(obj["shape"]),
                chips=tuple(ChipPlan(str(c["id"]), float(c["rate"]), _load_float(c["epochs"]), str(c["status"]),
                                     None if c["group"] is None else int(c["group"])) for c in obj["chips"]),
                groups=tuple(GroupPlan(int(g["index"]), tuple(str(m) for m in g["members"]),
                                       float(g["fused_rate"]), tuple(_pair(pe) for pe in g["fused_pes"]),
                                       float(g["epochs"])) for g in obj["groups"]),
                costs=_load_costs(obj["costs"]),
                fault_rates=tuple(float(r) for r in obj["fault_rates"]),
                required_epochs_grid=tuple(_load_float(e) for e in obj["required_epochs_grid"]),
                baseline=float(obj["baseline"]),
                fingerprint=str(obj["fingerprint"]),
                margin=float(obj.get("margin", 0.0)),
                epochs=tuple(float(e) for e in obj.get("epochs", ())),
            )
        except PlanError as e:
            raise PlanError(f"{source}: {e}") from None
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise PlanError(f"{source}: malformed plan ({type(e).__name__}: {e}).") from None

    def save(self, path) -> None:
        """Write the plan as JSON (format ``efat.Plan``, version 1), atomically."""
        write_json_atomic(path, self.to_json())

    @classmethod
    def load(cls, path) -> Plan:
        """Read a plan written by :meth:`save`; a missing, corrupt, truncated or foreign
        file raises :class:`PlanError` naming the path."""
        try:
            obj = read_json(path)
        except ResilienceError as e:
            raise PlanError(str(e)) from None
        return cls.from_json(obj, str(path))


def _percent(part: float, whole: float) -> str:
    return f"{100 * part / whole:.1f}%" if whole > 0 else "n/a"


def _dump_float(x: float):
    return None if math.isinf(x) else x


def _load_float(x) -> float:
    return math.inf if x is None else float(x)


def _pair(v) -> tuple[int, int]:
    a, b = v
    return int(a), int(b)


def _load_costs(obj) -> Costs:
    def policy(name):
        return PolicyCost(float(obj[name]["epochs"]), int(obj[name]["runs"]))

    return Costs(policy("fixed"), policy("reduce"), policy("efat"), float(obj["fixed_amount"]))


# -- faulty PEs as bits -----------------------------------------------------------------------

_POPCOUNT8 = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)


def _popcount(words: np.ndarray) -> np.ndarray:
    """Set bits per row of a uint64 array ``(..., W)`` -> int64 ``(...)``."""
    if hasattr(np, "bitwise_count"):  # numpy >= 2
        return np.bitwise_count(words).sum(axis=-1, dtype=np.int64)
    return _POPCOUNT8[words.view(np.uint8)].sum(axis=-1, dtype=np.int64)


def _faulty_pes(population) -> tuple[np.ndarray, np.ndarray]:
    """``(offsets (n+1,), flat)``: chip ``i``'s faulty PEs ``r*C + c``, sorted, in
    ``flat[offsets[i]:offsets[i+1]]``. Reads the population's sparse store directly."""
    cols = population.cfg.cols
    if hasattr(population, "_offsets") and hasattr(population, "_pe_rc"):
        offsets = np.asarray(population._offsets, dtype=np.int64)
        rc = np.asarray(population._pe_rc, dtype=np.int64).reshape(-1, 2)
        flat = rc[:, 0] * cols + rc[:, 1]
    else:  # any sequence of chips
        per_chip = [np.flatnonzero(chip.fault_map.faulty.ravel()) for chip in population]
        offsets = np.concatenate([[0], np.cumsum([len(p) for p in per_chip])]).astype(np.int64)
        flat = np.concatenate(per_chip).astype(np.int64) if per_chip else np.zeros(0, np.int64)
    chip = np.repeat(np.arange(len(offsets) - 1), np.diff(offsets))
    return offsets, flat[np.lexsort((flat, chip))]


def _pack(offsets: np.ndarray, flat: np.ndarray, chips: np.ndarray, n_pes: int) -> np.ndarray:
    """uint64 ``(len(chips), ceil(n_pes / 64))``: bit ``p`` set where PE ``p`` is faulty."""
    n_words = -(-n_pes // 64)
    out = np.zeros((len(chips), n_words * 8), np.uint8)
    row_of = np.full(len(offsets) - 1, -1)
    row_of[chips] = np.arange(len(chips))
    rows = np.repeat(row_of, np.diff(offsets))
    keep = rows >= 0
    pes = flat[keep]
    np.bitwise_or.at(out, (rows[keep], pes >> 3), np.left_shift(1, pes & 7).astype(np.uint8))
    return out.view(np.uint64)


def _unpack(words: np.ndarray, n_pes: int) -> np.ndarray:
    """Flat indices of the set bits of one packed row."""
    return np.flatnonzero(np.unpackbits(words.view(np.uint8), bitorder="little")[:n_pes])


def population_fingerprint(population) -> str:
    """sha256 over the array shape, the chip ids and each chip's faulty PEs.

    Only what a plan depends on is hashed: which PEs are faulty, not which bits are stuck.
    """
    offsets, flat = _faulty_pes(population)
    h = hashlib.sha256()
    h.update("{}x{}\n".format(*population.cfg.shape).encode())
    h.update("\n".join(population.ids).encode() + b"\0")
    h.update(offsets.astype("<i8").tobytes())
    h.update(flat.astype("<i8").tobytes())
    return h.hexdigest()


# -- grouping strategies ------------------------------------------------------------------------

class _Cost:
    """``E*`` of a number of faulty PEs, exactly as ``rmap.required_epochs`` rounds it."""

    def __init__(self, rmap: ResilienceMap, grid: np.ndarray, n_pes: int):
        self._rmap, self._need, self._n_pes = rmap, np.append(grid, np.inf), n_pes

    def __call__(self, n_faulty) -> np.ndarray:
        return self._need[self._rmap.rate_index(np.asarray(n_faulty) / self._n_pes)]


def _rewards(cost_a: float, cost_b: np.ndarray, fused: np.ndarray) -> np.ndarray:
    """Epochs saved by each fusion; ``-inf`` where the fused map is infeasible."""
    with np.errstate(invalid="ignore"):
        return np.where(np.isfinite(fused), cost_a + cost_b - fused, -np.inf)


def _group_none(bits, costs, cost_of) -> list[list[int]]:
    return [[i] for i in range(len(costs))]


def _group_reward(bits, costs, cost_of) -> list[list[int]]:
    """Greedy pairwise merging by largest reward (DESIGN.md step 4), smallest indices on ties."""
    m = len(costs)
    bits, cost = bits.copy(), np.asarray(costs, float).copy()
    reward = np.full((m, m), -np.inf)  # upper triangle only: reward[i, j], i < j
    for i in range(m - 1):
        reward[i, i + 1:] = _rewards(cost[i], cost[i + 1:], cost_of(_popcount(bits[i] | bits[i + 1:])))
    groups = [[i] for i in range(m)]
    active = np.ones(m, bool)
    while m > 1:
        i, j = divmod(int(np.argmax(reward)), m)  # row-major: smallest i, then smallest j
        if not reward[i, j] > _TOL:
            break
        bits[i] |= bits[j]
        cost[i] = cost_of(_popcount(bits[i]))
        groups[i] += groups[j]
        groups[j] = []
        active[j] = False
        reward[j, :] = reward[:, j] = -np.inf
        others = np.flatnonzero(active)
        others = others[others != i]
        new = _rewards(cost[i], cost[others], cost_of(_popcount(bits[i] | bits[others])))
        before = others < i
        reward[others[before], i] = new[before]
        reward[i, others[~before]] = new[~before]
    return [sorted(g) for g in groups if g]


def _group_exact(bits, costs, cost_of) -> list[list[int]]:
    """The cheapest partition, by dynamic programming over the ``2^m`` subsets."""
    m = len(costs)
    if m > EXACT_MAX_CHIPS:
        raise PlanError(f"strategy 'exact' handles at most {EXACT_MAX_CHIPS} chips to retrain; this "
                        f"population has {m}. Use strategy 'reward'.")
    bits = bits[:, (bits != 0).any(axis=0)]  # words no chip uses add nothing to a union
    unions = np.zeros((1 << m, bits.shape[1]), np.uint64)
    for b in range(m):  # subsets with highest bit b = subsets below | chip b
        unions[1 << b: 2 << b] = unions[: 1 << b] | bits[b]
    subset_cost = cost_of(_popcount(unions)).tolist()
    best, choice = [0.0] * (1 << m), [0] * (1 << m)
    for s in range(1, 1 << m):
        low = s & -s
        rest = s ^ low
        sub, best[s] = rest, math.inf
        while True:  # every subset holding s's lowest chip, largest first
            value = subset_cost[sub | low] + best[s ^ (sub | low)]
            if value < best[s] - _TOL:
                best[s], choice[s] = value, sub | low
            if sub == 0:
                break
            sub = (sub - 1) & rest
    groups, s = [], (1 << m) - 1
    while s:
        groups.append([b for b in range(m) if choice[s] >> b & 1])
        s ^= choice[s]
    return groups


_GROUPERS = {"reward": _group_reward, "none": _group_none, "exact": _group_exact}


# -- planning -------------------------------------------------------------------------------------

def _check_inputs(population, rmap, drop, strategy, quantile) -> float:
    if not isinstance(rmap, ResilienceMap):
        raise PlanError(f"rmap must be a ResilienceMap; got {type(rmap).__name__}.")
    if strategy not in STRATEGIES:
        raise PlanError(f"strategy must be one of {list(STRATEGIES)}; got {strategy!r}.")
    if isinstance(drop, bool) or not isinstance(drop, Real) or not 0 <= float(drop) <= 1:
        raise PlanError(f"max_accuracy_drop must be a number in [0, 1] (0.01 = one point); got {drop!r}.")
    if quantile is not None and (isinstance(quantile, bool) or not isinstance(quantile, Real)
                                 or not 0 < float(quantile) <= 1):
        raise PlanError(f"quantile must be None (every trial) or a number in (0, 1]; got {quantile!r}.")
    if len(population) == 0:
        raise PlanError("the population is empty; there is nothing to plan.")
    if not rmap.complete:
        missing = int(np.isnan(rmap.accuracy).sum())
        raise PlanError(f"the resilience map is incomplete ({missing} of {rmap.accuracy.size} cells not "
                        "measured); finish it before planning.")
    array = rmap.meta.get("array")
    if array is not None and list(array) != list(population.cfg.shape):
        raise PlanError(f"the resilience map was measured on a {'x'.join(map(str, array))} array; the population "
                        f"is {population.cfg.rows}x{population.cfg.cols}.")
    return float(drop)


def _fixed_amount(fixed_epochs, chip_epochs: np.ndarray) -> float:
    largest = float(np.max(chip_epochs[np.isfinite(chip_epochs)]))
    if fixed_epochs is None:
        return largest
    if isinstance(fixed_epochs, bool) or not isinstance(fixed_epochs, Real) or not math.isfinite(fixed_epochs):
        raise PlanError(f"fixed_epochs must be None or a finite number; got {fixed_epochs!r}.")
    if fixed_epochs < largest:
        raise PlanError(f"fixed_epochs must be >= {largest:g}, the largest E* among the feasible chips, so the "
                        f"fixed policy meets the constraint on every one of them; got {fixed_epochs!r}.")
    return float(fixed_epochs)


def _impossible(rmap, drop, quantile, rates) -> PlanError:
    best = rmap.max_feasible_rate(drop, quantile)
    where = ("no fault rate on the map meets it, not even the lowest" if best < 0
             else f"the largest feasible rate on the map is {best:g}")
    return PlanError(f"no chip can meet max_accuracy_drop = {drop:g}: {where}, and the chips' fault rates are "
                     f"{float(np.min(rates)):g} .. {float(np.max(rates)):g}.")


def plan(population, rmap: ResilienceMap, max_accuracy_drop: float, strategy: str = "reward",
         fixed_epochs: float | None = None, quantile: float | None = None, margin: float = 0.0) -> Plan:
    """Decide how much each chip retrains, and which chips share one retraining.

    Pure and deterministic: the same inputs give the same plan.

    Parameters
    ----------
    population : faults.Population
    rmap : ResilienceMap
        Complete (no unmeasured cells); if its ``meta["array"]`` is set it must equal
        the population's ``[R, C]``.
    max_accuracy_drop : float in [0, 1]
        Allowed drop below the map's baseline accuracy (0.01 = one point).
    strategy : {"reward", "none", "exact"}
        Grouping strategy (see the module docstring); ``"none"`` is the Reduce policy.
    fixed_epochs : float, optional
        Per-chip amount of the fixed-amount policy in the cost comparison; at least the
        largest finite ``E*``, which is the default.
    quantile : float in (0, 1], optional
        Meet the constraint for this quantile of the map's trials instead of every trial.
    margin : float in [0, max_accuracy_drop]
        Choose amounts that meet ``max_accuracy_drop - margin`` on the map. A map
        measures a few random chips per rate; a margin buys confidence that unseen
        chips (and fused maps) also pass verification at ``max_accuracy_drop``.

    Returns
    -------
    Plan

    Raises
    ------
    PlanError
        Empty population, array mismatch, drop or quantile out of range, unknown
        strategy, incomplete map, or no chip able to meet the constraint.
    """
    drop = _check_inputs(population, rmap, max_accuracy_drop, strategy, quantile)
    if isinstance(margin, bool) or not isinstance(margin, Real) or not 0 <= margin <= drop:
        raise PlanError(f"margin must be a number in [0, max_accuracy_drop = {drop:g}]; got {margin!r}.")
    verify_drop, drop = drop, drop - float(margin)
    grid = rmap.required_epochs_grid(drop, quantile)
    rates = np.asarray(population.rates, float)
    chip_epochs = np.atleast_1d(rmap.required_epochs(rates, drop, quantile))
    if not np.isfinite(chip_epochs).any():
        raise _impossible(rmap, drop, quantile, rates)
    fixed_amount = _fixed_amount(fixed_epochs, chip_epochs)
    n_pes = population.cfg.n_pes
    offsets, flat = _faulty_pes(population)
    todo = np.flatnonzero(np.isfinite(chip_epochs) & (chip_epochs > 0))
    bits = _pack(offsets, flat, todo, n_pes)
    cost_of = _Cost(rmap, grid, n_pes)
    local_groups = sorted(_GROUPERS[strategy](bits, chip_epochs[todo], cost_of), key=min)
    groups = tuple(_group_plan(k, todo[g], bits[g], population, cost_of) for k, g in enumerate(local_groups))
    chips = _chip_plans(population, rates, chip_epochs, todo, local_groups)
    feasible = int(np.isfinite(chip_epochs).sum())
    costs = Costs(
        fixed=PolicyCost(fixed_amount * feasible, feasible),
        reduce=PolicyCost(math.fsum(chip_epochs[todo].tolist()), len(todo)),  # fsum: order-free
        efat=PolicyCost(math.fsum(g.epochs for g in groups), len(groups)),
        fixed_amount=fixed_amount,
    )
    return Plan(verify_drop, None if quantile is None else float(quantile), strategy, tuple(population.cfg.shape),
                chips, groups, costs, tuple(rmap.fault_rates.tolist()), tuple(grid.tolist()), rmap.baseline,
                population_fingerprint(population), float(margin), tuple(rmap.epochs.tolist()))


def _group_plan(index: int, positions: np.ndarray, bits: np.ndarray, population, cost_of) -> GroupPlan:
    fused_bits = np.bitwise_or.reduce(bits, axis=0)
    flat = _unpack(fused_bits, population.cfg.n_pes)
    epochs = float(cost_of(len(flat)))
    assert math.isfinite(epochs), "a group's fused map must stay feasible"
    rows, cols = np.divmod(flat, population.cfg.cols)
    return GroupPlan(index, tuple(population.ids[p] for p in sorted(positions.tolist())),
                     len(flat) / population.cfg.n_pes,
                     tuple(zip(rows.tolist(), cols.tolist())), epochs)


def _chip_plans(population, rates, chip_epochs, todo, local_groups) -> tuple[ChipPlan, ...]:
    group_of = {int(todo[i]): k for k, g in enumerate(local_groups) for i in g}
    out = []
    for p, (chip_id, rate, epochs) in enumerate(zip(population.ids, rates.tolist(), chip_epochs.tolist())):
        status = "infeasible" if math.isinf(epochs) else "no_retraining" if epochs == 0 else "retrain"
        out.append(ChipPlan(chip_id, rate, epochs, status, group_of.get(p)))
    return tuple(out)
