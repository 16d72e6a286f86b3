"""Expected retraining cost of a plan, from the chips a resilience map measured.

A plan is executed unit by unit: a group retrained for its fused map, or a chip that
needs no retraining (amount 0). A unit planned at amount ``e`` is verified on the
simulator; if it fails it is retrained on (warm: the run continues where it stopped) to
the next amount of the grid, and so on. Its cost is the amount at which it first meets
the constraint. The map measured exactly such runs: chip ``t`` at rate ``f`` retrained
and checked at every amount, so its *stopping amount* from ``e``
(:meth:`ResilienceMap.stopping_amounts`) is a draw of the unit's cost at that rate. A
unit whose chips never meet the constraint on the grid costs the whole grid plus one
retraining of every member on its own map at the largest amount (what execution does
then): ``a_max * (1 + members)``.

The **expected cost** of a unit at grid row ``i`` planned at amount ``j`` is the mean of
that cost over the chips measured at the row; a plan's expected cost is the sum over
its units. Its **interval** is a percentile bootstrap over those chips (rows resampled
independently, ``n_boot`` times, seeded): the range in which the expected cost lies at
the stated confidence, given how few chips the map measured. One execution's real cost
is a single draw around it and can fall outside.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["CostModel", "Unit"]


@dataclass(frozen=True)
class Unit:
    """One verification unit: grid row of its rate, index of its planned amount, members."""

    row: int
    amount: int
    members: int


class CostModel:
    """Per-row cost statistics of a map against a constraint.

    Parameters
    ----------
    rmap : ResilienceMap
    constraint : Constraint
    """

    def __init__(self, rmap, constraint):
        stop = rmap.stopping_amounts(constraint)  # (F, E, T), inf never, NaN unmeasured
        self.a_max = float(rmap.epochs[-1])
        self._measured = rmap.measured  # (F, T)
        self._n = np.maximum(self._measured.sum(axis=1), 1)  # (F,)
        self._stop = np.where(np.isfinite(stop), stop, 0.0)  # finite stopping amounts, else 0
        self._never = (np.isinf(stop) & self._measured[:, None, :]).astype(float)

    def expected(self, row: int, amount: int, members: int) -> float:
        """Expected cost (epochs) of one unit; ``inf`` past the grid (``row == F``)."""
        if row >= len(self._n):
            return float("inf")
        s = self._stop[row, amount].sum() / self._n[row]
        never = self._never[row, amount].sum() / self._n[row]
        return float(s + never * self.a_max * (1 + members))

    def expected_rows(self, amounts: np.ndarray, members: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """Vectorised :meth:`expected` over arrays of the same length (``inf`` where the
        amount index is negative, i.e. nothing suffices)."""
        rows, amounts, members = (np.asarray(a) for a in (rows, amounts, members))
        ok = (amounts >= 0) & (rows < len(self._n))
        r, a = np.where(ok, rows, 0), np.where(ok, amounts, 0)
        s = self._stop[r, a].sum(axis=-1) / self._n[r]
        never = self._never[r, a].sum(axis=-1) / self._n[r]
        return np.where(ok, s + never * self.a_max * (1 + members), np.inf)

    def total(self, units: list[Unit], confidence: float = 0.9, n_boot: int = 1000, seed: int = 0):
        """``(expected, lower, upper)`` of the summed cost of ``units``: the mean, and the
        percentile-bootstrap interval at ``confidence`` (see the module docstring)."""
        if not units:
            return 0.0, 0.0, 0.0
        rows = np.array([u.row for u in units])
        amounts = np.array([u.amount for u in units])
        weight = 1.0 + np.array([u.members for u in units], float)
        expected = float(self.expected_rows(amounts, weight - 1, rows).sum())
        rng = np.random.default_rng(np.random.SeedSequence([seed, 0x5EED]))
        totals = np.zeros(n_boot)
        for row in np.unique(rows):
            chips = np.flatnonzero(self._measured[row])
            if chips.size == 0:
                continue
            here = rows == row
            picks = chips[rng.integers(0, chips.size, size=(n_boot, chips.size))]  # (B, n)
            stop = self._stop[row][:, picks].mean(axis=2)  # (E, B)
            never = self._never[row][:, picks].mean(axis=2)
            totals += (stop[amounts[here]] + never[amounts[here]] * self.a_max * weight[here, None]).sum(axis=0)
        tail = (1 - confidence) / 2
        lo, hi = np.quantile(totals, [tail, 1 - tail])
        return expected, float(lo), float(hi)
