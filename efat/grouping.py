"""Grouping strategies: which chips to retrain share one retraining (``docs/semantics.md``, "eFAT").

Every strategy gets the packed faulty PEs of the chips to retrain, their own amounts
``E*`` and a cost function of a number of faulty PEs, and returns a partition of the
chips (lists of row indices):

``"reward"``
    Start with one group per chip; repeatedly merge the pair with the largest reward
    ``cost(A) + cost(B) - cost(A u B)`` (epochs saved) until no positive reward is left.
    Ties go to the pair with the smallest group indices.
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
from .resilience import amount_at

__all__ = ["GROUPERS", "STRATEGIES", "EXACT_MAX_CHIPS", "Cost"]

STRATEGIES = ("reward", "none", "exact")
EXACT_MAX_CHIPS = 12
_TOL = 1e-9  # rewards at or below this many epochs count as none (float noise of sums)


class Cost:
    """``E*`` of a number of faulty PEs, exactly as ``rmap.required_epochs`` rounds it.

    ``fault_rates`` is the map's grid and ``need`` its ``E*`` on the grid.
    """

    def __init__(self, fault_rates: np.ndarray, need: np.ndarray, n_pes: int):
        self._rates, self._need, self._n_pes = np.asarray(fault_rates, float), np.asarray(need, float), n_pes

    def __call__(self, n_faulty) -> np.ndarray:
        return amount_at(self._rates, self._need, np.asarray(n_faulty) / self._n_pes)


def _rewards(cost_a: float, cost_b: np.ndarray, fused: np.ndarray) -> np.ndarray:
    """Epochs saved by each fusion; ``-inf`` where the fused map is infeasible."""
    with np.errstate(invalid="ignore"):
        return np.where(np.isfinite(fused), cost_a + cost_b - fused, -np.inf)


def _group_none(bits, costs, cost_of) -> list[list[int]]:
    return [[i] for i in range(len(costs))]


def _group_reward(bits, costs, cost_of) -> list[list[int]]:
    """Greedy pairwise merging by largest reward (docs/semantics.md, "eFAT", step 4), smallest indices on ties."""
    m = len(costs)
    bits, cost = bits.copy(), np.asarray(costs, float).copy()
    reward = np.full((m, m), -np.inf)  # upper triangle only: reward[i, j], i < j
    for i in range(m - 1):
        reward[i, i + 1:] = _rewards(cost[i], cost[i + 1:], cost_of(popcount(bits[i] | bits[i + 1:])))
    groups = [[i] for i in range(m)]
    active = np.ones(m, bool)
    while m > 1:
        i, j = divmod(int(np.argmax(reward)), m)  # row-major: smallest i, then smallest j
        if not reward[i, j] > _TOL:
            break
        bits[i] |= bits[j]
        cost[i] = cost_of(popcount(bits[i]))
        groups[i] += groups[j]
        groups[j] = []
        active[j] = False
        reward[j, :] = reward[:, j] = -np.inf
        others = np.flatnonzero(active)
        others = others[others != i]
        new = _rewards(cost[i], cost[others], cost_of(popcount(bits[i] | bits[others])))
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
    subset_cost = cost_of(popcount(unions)).tolist()
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
