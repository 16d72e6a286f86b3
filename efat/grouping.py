"""Grouping strategies: which chips to retrain share one retraining (``docs/semantics.md``, "eFAT").

Every strategy gets the packed faulty PEs of the chips to retrain, their own amounts
``E*`` and a cost function of a number of faulty PEs, and returns a partition of the
chips (lists of row indices):

``"reward"``
    Start with one group per chip; repeatedly merge the pair with the largest reward
    ``cost(A) + cost(B) - cost(A u B)`` (expected epochs saved) until no positive reward is
    left. Ties go to the pair with the smallest group indices. With more than
    ``REWARD_BLOCK`` chips, the chips are sorted by their number of faulty PEs (ties: by
    position) and merged within consecutive blocks of ``REWARD_BLOCK``: time and memory
    then grow linearly with the population, not quadratically (10,000 chips of a 128x128
    array in seconds; ``bench/bench_plan.py``), at the price of never fusing chips of
    far-apart rates, which rarely pays anyway.
``"none"``
    Every chip its own group: the per-chip resilience-driven "Reduce" policy.
``"exact"``
    The cheapest partition, by dynamic programming over subsets (``O(3^m)``); only for
    ``m <= EXACT_MAX_CHIPS`` chips.

A fusion whose cost is infinite (its fused rate has no finite ``E*``) is never made.
"""

from __future__ import annotations

import math

import numpy as np

from .bitsets import popcount
from .errors import PlanError
from .resilience import rate_index

__all__ = ["GROUPERS", "STRATEGIES", "EXACT_MAX_CHIPS", "REWARD_BLOCK", "Cost"]

STRATEGIES = ("reward", "none", "exact")
EXACT_MAX_CHIPS = 12
REWARD_BLOCK = 1000
_TOL = 1e-9  # rewards at or below this many epochs count as none (float noise of sums)


class Cost:
    """Expected cost of a group with ``n_faulty`` fused faulty PEs and ``members`` chips:
    planned at ``E*`` of its fused rate (rounded up to the grid as ``rmap.required_epochs``
    does), the cost of :class:`efat.costs.CostModel`; ``inf`` where ``E*`` is.

    ``fault_rates`` is the map's grid, ``need`` its ``E*`` on the grid, ``epochs`` the
    grid of amounts.
    """

    def __init__(self, fault_rates, need, epochs, n_pes: int, model):
        self._rates, self._n_pes, self._model = np.asarray(fault_rates, float), n_pes, model
        self.epochs = np.asarray(epochs, float)
        need = np.asarray(need, float)
        index = np.searchsorted(self.epochs, need)
        self._amount = np.append(np.where(np.isfinite(need), index, -1), -1)  # past the grid: none

    def amount_index(self, n_faulty) -> tuple[np.ndarray, np.ndarray]:
        """``(row, amount index)`` of fused maps with ``n_faulty`` faulty PEs (index -1: none)."""
        rows = rate_index(self._rates, np.asarray(n_faulty) / self._n_pes)
        return rows, self._amount[rows]

    def __call__(self, n_faulty, members=1) -> np.ndarray:
        rows, amounts = self.amount_index(n_faulty)
        return self._model.expected_rows(amounts, np.broadcast_to(members, np.shape(rows)), rows)


def _rewards(cost_a: float, cost_b: np.ndarray, fused: np.ndarray) -> np.ndarray:
    """Epochs saved by each fusion; ``-inf`` where the fused map is infeasible."""
    with np.errstate(invalid="ignore"):
        return np.where(np.isfinite(fused), cost_a + cost_b - fused, -np.inf)


def _group_none(bits, costs, cost_of) -> list[list[int]]:
    return [[i] for i in range(len(costs))]


def _group_reward(bits, costs, cost_of) -> list[list[int]]:
    """Greedy pairwise merging by largest reward (docs/semantics.md, "eFAT", step 4), smallest
    indices on ties; in blocks of chips of similar fault counts above ``REWARD_BLOCK``."""
    m = len(costs)
    if m > REWARD_BLOCK:
        order = np.lexsort((np.arange(m), popcount(bits)))
        out = []
        for start in range(0, m, REWARD_BLOCK):
            block = np.sort(order[start:start + REWARD_BLOCK])
            out += [block[g].tolist() for g in _merge(bits[block], np.asarray(costs, float)[block], cost_of)]
        return [sorted(g) for g in out]
    return _merge(bits, costs, cost_of)


def _merge(bits, costs, cost_of) -> list[list[int]]:
    m = len(costs)
    bits, cost = bits.copy(), np.asarray(costs, float).copy()
    size = np.ones(m, np.int64)  # members per group
    reward = np.full((m, m), -np.inf)  # upper triangle only: reward[i, j], i < j
    for i in range(m - 1):
        reward[i, i + 1:] = _rewards(cost[i], cost[i + 1:], cost_of(popcount(bits[i] | bits[i + 1:]), 2))
    groups = [[i] for i in range(m)]
    active = np.ones(m, bool)
    while m > 1:
        i, j = divmod(int(np.argmax(reward)), m)  # row-major: smallest i, then smallest j
        if not reward[i, j] > _TOL:
            break
        bits[i] |= bits[j]
        size[i] += size[j]
        cost[i] = cost_of(popcount(bits[i]), size[i])
        groups[i] += groups[j]
        groups[j] = []
        active[j] = False
        reward[j, :] = reward[:, j] = -np.inf
        others = np.flatnonzero(active)
        others = others[others != i]
        new = _rewards(cost[i], cost[others], cost_of(popcount(bits[i] | bits[others]), size[i] + size[others]))
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
    members = popcount(np.arange(1 << m, dtype=np.uint64)[:, None])
    subset_cost = cost_of(popcount(unions), members).tolist()
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


GROUPERS = {"reward": _group_reward, "none": _group_none, "exact": _group_exact}
