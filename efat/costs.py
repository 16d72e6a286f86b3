"""Expected retraining cost of a plan, from the chips a resilience map measured.

A plan is executed unit by unit: a group retrained for its fused map, or a chip that
needs no retraining (amount 0). A unit planned at amount ``e`` is verified on the
simulator; if it fails it is retrained on (warm: the run continues where it stopped) to
the next amount of the grid, and so on. Its cost is the amount at which it first meets
the constraint. The map measured exactly such runs: chip ``t`` at rate ``f`` retrained
and checked at every amount, so its *stopping amount* from ``e``
(:meth:`ResilienceMap.stopping_amounts`) is a draw of the unit's cost at that rate. A
unit whose chips never meet the constraint on the grid costs the whole grid plus one
retraining of every member on its own map at the largest amount (an upper bound of
what execution does then): ``a_max * (1 + members)``.

A unit's cost is ``e`` plus, when it fails at ``e``, the extra cost of escalating. Of the
``n`` chips the map measured at the unit's row, ``f`` failed at ``e``:

* **Expected cost** = ``e + p * extra`` with the failure probability estimated as
  ``p = (f + 1/2) / (n + 1)`` (not ``f / n``: the amounts and the groups were chosen
  because these very chips passed them, and ``f = 0`` says little about a rare failure),
  and ``extra`` the mean extra cost of the chips that failed there (without any: one
  step of the grid, or a retraining of every member at the largest amount after the
  grid's last amount).
* **Interval** at the plan's confidence: ``p`` drawn from the Clopper-Pearson confidence
  distribution (half from ``Beta(f, n - f + 1)``, half from ``Beta(f + 1, n - f)``,
  whose quantiles are the exact binomial bounds; ``f = 0`` allows ``p = 0``), ``extra``
  from a bootstrap of the failed chips, one draw per grid cell shared by all units on it,
  2,000 times (seeded): the percentile range of the expected cost given how few chips
  the map measured. One execution is a single draw around it and can fall outside.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["CostModel", "Unit"]

N_DRAWS = 2000


@dataclass(frozen=True)
class Unit:
    """One verification unit: grid row of its rate, index of its planned amount, members."""

    row: int
    amount: int
    members: int


class CostModel:
    """Per (row, amount) failure counts and escalation costs of a map against a constraint.

    Parameters
    ----------
    rmap : ResilienceMap
    constraint : Constraint
    """

    def __init__(self, rmap, constraint):
        stop = rmap.stopping_amounts(constraint)  # (F, E, T): inf never, NaN unmeasured
        self.epochs = np.asarray(rmap.epochs, float)
        self.a_max = float(self.epochs[-1])
        self._measured = rmap.measured  # (F, T)
        self._n = self._measured.sum(axis=1)  # (F,)
        e = self.epochs[None, :, None]
        failed = (stop > e) & self._measured[:, None, :]  # (F, E, T): failed at the planned amount
        self._failed = failed
        self._fail = failed.sum(axis=2)  # (F, E)
        self._extra = np.where(np.isfinite(stop), stop - e, np.inf)  # extra epochs (inf: never on the grid)
        # expected cost = k0 + k1 * members, per (row, amount)
        p = (self._fail + 0.5) / (self._n[:, None] + 1)
        finite = np.where(failed & np.isfinite(self._extra), self._extra, 0.0).sum(axis=2)
        never = (failed & ~np.isfinite(self._extra)).sum(axis=2)
        f = np.maximum(self._fail, 1)
        step = np.append(np.diff(self.epochs), 0.0)[None, :]
        last = np.arange(self.epochs.size)[None, :] == self.epochs.size - 1
        base = (finite + never * (self.a_max - self.epochs[None, :])) / f  # mean extra, members aside
        self._k0 = self.epochs[None, :] + p * np.where(self._fail > 0, base, np.where(last, 0.0, step))
        self._k1 = p * np.where(self._fail > 0, never * self.a_max / f, np.where(last, self.a_max, 0.0))

    # -- one unit -------------------------------------------------------------------------
    def _extras(self, row: int, amount: int, members: int) -> np.ndarray:
        """Extra cost of each map chip that failed at (row, amount), for a unit of ``members``."""
        extra = self._extra[row, amount][self._failed[row, amount]]
        return np.where(np.isfinite(extra), extra, self.a_max * (1 + members) - self.epochs[amount])

    def _default_extra(self, amount: int, members: int) -> float:
        """Extra cost assumed when no map chip failed there: one more step of the grid."""
        if amount + 1 < self.epochs.size:
            return float(self.epochs[amount + 1] - self.epochs[amount])
        return self.a_max * members

    def _mean_extra(self, row: int, amount: int, members: int) -> float:
        extras = self._extras(row, amount, members)
        return float(extras.mean()) if extras.size else self._default_extra(amount, members)

    def expected(self, row: int, amount: int, members: int) -> float:
        """Expected cost (epochs) of one unit; ``inf`` past the grid or where nothing suffices."""
        if row >= self._n.size or amount < 0:
            return float("inf")
        n, f = self._n[row], self._fail[row, amount]
        p = (f + 0.5) / (n + 1)
        return float(self.epochs[amount] + p * self._mean_extra(row, amount, members))

    def expected_rows(self, amounts, members, rows) -> np.ndarray:
        """:meth:`expected` over arrays of the same shape (vectorised: ``k0 + k1 * members``)."""
        amounts, members, rows = np.broadcast_arrays(np.asarray(amounts), np.asarray(members), np.asarray(rows))
        ok = (amounts >= 0) & (rows < self._n.size)
        r, a = np.where(ok, rows, 0), np.where(ok, amounts, 0)
        return np.where(ok, self._k0[r, a] + self._k1[r, a] * members, np.inf)

    # -- a policy ---------------------------------------------------------------------------
    def total(self, units: list[Unit], confidence: float = 0.9, seed: int = 0):
        """``(expected, lower, upper)`` of the summed cost of ``units`` (module docstring)."""
        if not units:
            return 0.0, 0.0, 0.0
        expected = float(sum(self.expected(u.row, u.amount, u.members) for u in units))
        rng = np.random.default_rng(np.random.SeedSequence([seed, 0x5EED]))
        totals = np.zeros(N_DRAWS)
        cells: dict = {}
        for u in units:
            cells.setdefault((u.row, u.amount), []).append(u.members)
        for (row, amount), members in sorted(cells.items()):
            n, f = int(self._n[row]), int(self._fail[row, amount])
            lo = rng.beta(f, n - f + 1, N_DRAWS) if f > 0 else np.zeros(N_DRAWS)
            hi = rng.beta(f + 1, n - f, N_DRAWS) if f < n else np.ones(N_DRAWS)
            p = np.where(rng.random(N_DRAWS) < 0.5, lo, hi)  # the Clopper-Pearson confidence distribution
            failed = self._failed[row, amount]
            picks = rng.integers(0, max(int(failed.sum()), 1), size=(N_DRAWS, max(int(failed.sum()), 1)))
            for m, count in zip(*np.unique(members, return_counts=True)):
                extras = self._extras(row, amount, int(m))
                extra = extras[picks].mean(axis=1) if extras.size else self._default_extra(amount, int(m))
                totals += count * (self.epochs[amount] + p * extra)
        tail = (1 - confidence) / 2
        lo, hi = np.quantile(totals, [tail, 1 - tail])
        return expected, float(lo), float(hi)
