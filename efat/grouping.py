"""Grouping strategies: which chips to retrain share one retraining (``docs/semantics.md``, "eFAT").

Every strategy gets the packed faulty PEs of the chips to retrain, their own amounts
``E*`` and a cost function of a number of faulty PEs, and returns a partition of the
chips (lists of row indices):

``"reward"``
    Repeatedly merge the pair of groups with the largest reward ``cost(A) + cost(B) -
    cost(A u B)`` (expected epochs saved) until no positive reward is left; ties go to the
    pair with the smallest group indices. Merging starts twice, and the cheaper partition
    is kept (ties: the first): from one group per chip, and from **bins**. Pairs alone
    miss fusions that pay only from three chips on (two chips of 2% fused to 4% can cost
    as much as both; three, fused to 6%, save a third), so bins are filled first: for
    each step of ``E*``, the chips (largest first) whose faulty PEs add up to at most
    the step's largest count (fused: shared faulty PEs count once); the bin that saves the most expected epochs against its
    chips' own retrainings is kept, and so on while one saves any (measured on the
    demo's map: 1-6% fewer expected epochs than pairs alone). Bins are filled within
    runs of ``BIN_BLOCK`` chips of similar counts. With more than
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
from numba import njit

from .bitsets import popcount
from .errors import PlanError
from .resilience import rate_index

__all__ = ["GROUPERS", "STRATEGIES", "EXACT_MAX_CHIPS", "REWARD_BLOCK", "BIN_BLOCK", "Cost"]

STRATEGIES = ("reward", "none", "exact")
EXACT_MAX_CHIPS = 12
REWARD_BLOCK = 1000
BIN_BLOCK = 250
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
    """Greedy pairwise merging by largest reward from single chips and from bins, the cheaper
    (docs/semantics.md, "eFAT", step 4); in blocks of chips of similar fault counts above
    ``REWARD_BLOCK``."""
    m = len(costs)
    if m > REWARD_BLOCK:
        order = np.lexsort((np.arange(m), popcount(bits)))
        out = []
        for start in range(0, m, REWARD_BLOCK):
            block = np.sort(order[start:start + REWARD_BLOCK])
            out += [block[g].tolist() for g in _cheaper(bits[block], np.asarray(costs, float)[block], cost_of)]
        return [sorted(g) for g in out]
    return _cheaper(bits, costs, cost_of)


def _cheaper(bits, costs, cost_of) -> list[list[int]]:
    pairs = _merge(bits, costs, cost_of, [[i] for i in range(len(costs))])
    binned = _merge(bits, costs, cost_of, _bins(bits, costs, cost_of))
    total = lambda groups: math.fsum(float(cost_of(popcount(np.bitwise_or.reduce(bits[g], axis=0)), len(g)))  # noqa: E731
                                     for g in groups)
    return binned if total(binned) < total(pairs) - _TOL else pairs


def _bins(bits, costs, cost_of) -> list[list[int]]:
    """Groups filled per step of ``E*`` (module docstring), the rest one group per chip."""
    m = len(costs)
    own = np.asarray(costs, float)
    count = popcount(bits)
    n = np.arange(bits.shape[1] * 64 + 1)
    step_cost = cost_of(n, 1)
    caps = n[:-1][np.isfinite(step_cost[:-1]) & (step_cost[:-1] != step_cost[1:])]  # each step's largest count
    order = np.lexsort((np.arange(m), -count))  # largest first
    groups = []
    for start in range(0, m, BIN_BLOCK):
        block = order[start:start + BIN_BLOCK]
        block_bits = bits[block]
        alive = np.ones(len(block), np.bool_)
        while True:
            best, best_saving = None, _TOL
            for cap in caps:
                members = block[_fill(block_bits, alive, int(cap))]
                if len(members) < 2:
                    continue
                fused = cost_of(popcount(np.bitwise_or.reduce(bits[members], axis=0)), len(members))
                saving = float(own[members].sum() - fused)
                if saving > best_saving:
                    best, best_saving = members, saving
            if best is None:
                break
            groups.append(sorted(best.tolist()))
            alive[np.isin(block, best)] = False
        groups += [[int(i)] for i in block[alive]]
    return groups


@njit(cache=True)
def _fill(bits, alive, cap):
    """Positions of the alive chips taken in order while their fused faulty PEs stay at most
    ``cap``."""
    taken = np.empty(bits.shape[0], np.int64)
    union = np.zeros(bits.shape[1], np.uint64)
    k, total = 0, 0
    for i in range(bits.shape[0]):
        if not alive[i]:
            continue
        extra = 0
        for w in range(bits.shape[1]):
            extra += _popcount64(bits[i, w] & ~union[w])
        if total + extra <= cap:
            total += extra
            union |= bits[i]
            taken[k] = i
            k += 1
    return taken[:k]


@njit(cache=True, inline="always")
def _popcount64(x):
    x = x - ((x >> np.uint64(1)) & np.uint64(0x5555555555555555))
    x = (x & np.uint64(0x3333333333333333)) + ((x >> np.uint64(2)) & np.uint64(0x3333333333333333))
    x = (x + (x >> np.uint64(4))) & np.uint64(0x0F0F0F0F0F0F0F0F)
    return (x * np.uint64(0x0101010101010101)) >> np.uint64(56)


def _merge(bits, costs, cost_of, groups) -> list[list[int]]:
    """Pairwise merging by largest reward, starting from the partition ``groups``."""
    groups = [list(g) for g in groups]
    m = len(groups)
    if m < 2:
        return [sorted(g) for g in groups]
    bits = np.array([np.bitwise_or.reduce(bits[g], axis=0) for g in groups]).reshape(m, bits.shape[1])
    size = np.array([len(g) for g in groups], np.int64)  # members per group
    costs = np.asarray(costs, float)
    cost = np.array([costs[g[0]] if len(g) == 1 else float(cost_of(popcount(bits[k]), len(g)))
                     for k, g in enumerate(groups)])
    reward = np.full((m, m), -np.inf)  # upper triangle only: reward[i, j], i < j
    for i in range(m - 1):
        reward[i, i + 1:] = _rewards(cost[i], cost[i + 1:], cost_of(popcount(bits[i] | bits[i + 1:]),
                                                                    size[i] + size[i + 1:]))
    best, at = reward.max(axis=1), reward.argmax(axis=1)  # each row's largest reward, its first column
    active = np.ones(m, bool)
    while True:
        i = int(np.argmax(best))  # row-major: smallest i, then smallest j
        j = int(at[i])
        if not reward[i, j] > _TOL:
            break
        bits[i] |= bits[j]
        size[i] += size[j]
        cost[i] = cost_of(popcount(bits[i]), size[i])
        groups[i] += groups[j]
        groups[j] = []
        active[j] = False
        reward[j, :] = reward[:, j] = -np.inf
        best[j] = -np.inf
        others = np.flatnonzero(active)
        others = others[others != i]
        new = _rewards(cost[i], cost[others], cost_of(popcount(bits[i] | bits[others]), size[i] + size[others]))
        before = others < i
        reward[others[before], i] = new[before]
        reward[i, others[~before]] = new[~before]
        best[i], at[i] = reward[i].max(), reward[i].argmax()
        # rows above i: column i changed, column j is gone; redo a row only if its best was there
        rows = others[before]
        lost = rows[(at[rows] == i) | (at[rows] == j)]
        best[lost], at[lost] = reward[lost].max(axis=1), reward[lost].argmax(axis=1)
        rows = np.setdiff1d(rows, lost, assume_unique=True)
        value = reward[rows, i]
        gain = (value > best[rows]) | ((value == best[rows]) & (i < at[rows]))
        best[rows[gain]], at[rows[gain]] = value[gain], i
        stale = np.flatnonzero(active & (at == j))  # rows below i whose best was column j
        stale = stale[stale != i]
        best[stale], at[stale] = reward[stale].max(axis=1), reward[stale].argmax(axis=1)
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
