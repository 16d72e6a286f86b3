"""Resilience maps: accuracy over fault rate x retraining amount x chips, as statistics.

A :class:`ResilienceMap` holds, for every fault rate ``f`` on a grid, every retraining
amount ``e`` (epochs, fractions allowed; ``0`` = bypass only) and every trial (a random
chip at rate ``f``), the accuracy **on the simulator, with bypass** of the model after
``e`` epochs of fault-aware retraining for that chip. Rates may hold different numbers
of chips (adaptive sampling); NaN marks a chip not measured.

Against a :class:`efat.Constraint` each cell has a pass count ``k`` of ``n`` chips, a
pass probability with a Clopper-Pearson interval, and a decision (certified pass,
certified fail, undecided; :mod:`efat.stats`). ``E*(f)`` is the least amount certified
to pass at ``f``, made non-decreasing in ``f``, infinite where none is
(``docs/semantics.md``, "eFAT", step 1). Torch-free: measuring a map is
:func:`efat.resilience_map`; reading, querying and plotting one needs only NumPy and
SciPy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from numbers import Integral, Real

import numpy as np

from fileio import FileFormatError, header_problem, read_json, write_json

from . import stats
from .constraint import Constraint
from .errors import ResilienceError, ResilienceFileError

__all__ = ["ResilienceMap", "FORMAT", "check_grid", "rate_index", "amount_at"]

FORMAT = "efat.ResilienceMap"
VERSION = 1
MAX_DIM = 4096  # as simulator.ArrayConfig


def check_grid(name, values, lo=0.0, hi=math.inf):
    """A strictly increasing float array of numbers in [lo, hi], or :class:`ResilienceError`."""
    arr = np.array(values, dtype=float).ravel()
    if arr.size == 0 or not np.isfinite(arr).all() or (arr < lo).any() or (arr > hi).any():
        raise ResilienceError(f"{name} must be a non-empty list of numbers in [{lo}, {hi}]; got {list(values)!r}.")
    if (np.diff(arr) <= 0).any():
        raise ResilienceError(f"{name} must be strictly increasing; got {arr.tolist()}.")
    return arr


@dataclass(frozen=True, eq=False)
class ResilienceMap:
    """Accuracy over (fault rate, retraining epochs, trial), measured on the simulator.

    Attributes
    ----------
    fault_rates : float array (F,)
        Strictly increasing, in [0, 1].
    epochs : float array (E,)
        Strictly increasing retraining amounts, ``epochs[0] == 0`` (bypass only).
    accuracy : float array (F, E, T)
        NaN where a cell has not been measured yet (a run in progress).
    baseline : float
        Fault-free accuracy of the quantized model on the simulator.
    meta : dict
        How it was made (model, data, seeds, ...). ``meta["array"]`` is required:
        ``[R, C]``, the array the map was measured on (a plan checks it against the
        population's).
    """

    fault_rates: np.ndarray
    epochs: np.ndarray
    accuracy: np.ndarray
    baseline: float
    meta: dict = field(default_factory=dict)

    def __post_init__(self):
        rates = check_grid("fault_rates", self.fault_rates, 0.0, 1.0)
        epochs = check_grid("epochs", self.epochs)
        if epochs[0] != 0:
            raise ResilienceError(f"epochs must start with 0 (bypass only); got {epochs.tolist()}.")
        acc = np.array(self.accuracy, dtype=float)
        if acc.ndim != 3 or acc.shape[:2] != (rates.size, epochs.size) or acc.shape[2] < 1:
            raise ResilienceError(
                f"accuracy must have shape ({rates.size}, {epochs.size}, trials); got {acc.shape}."
            )
        ok = np.isnan(acc) | ((acc >= 0) & (acc <= 1))
        if not ok.all():
            raise ResilienceError("accuracy values must lie in [0, 1] (or be NaN for cells not measured).")
        if not isinstance(self.baseline, Real) or not 0 <= float(self.baseline) <= 1:
            raise ResilienceError(f"baseline accuracy must be in [0, 1]; got {self.baseline!r}.")
        for name, value in (("fault_rates", rates), ("epochs", epochs), ("accuracy", acc)):
            value.setflags(write=False)
            object.__setattr__(self, name, value)
        if not isinstance(self.meta, dict):
            raise ResilienceError(f"meta must be a dict; got {type(self.meta).__name__}.")
        array = self.meta.get("array")
        if (not isinstance(array, (list, tuple)) or len(array) != 2
                or not all(isinstance(d, Integral) and not isinstance(d, bool) and 1 <= d <= MAX_DIM for d in array)):
            raise ResilienceError(f"meta['array'] must be [rows, cols] of the array the map was measured on, "
                                  f"each an int in [1, {MAX_DIM}]; got {array!r}.")
        object.__setattr__(self, "baseline", float(self.baseline))
        object.__setattr__(self, "meta", {**self.meta, "array": [int(d) for d in array]})

    @property
    def shape(self) -> tuple[int, int]:
        """``(R, C)`` of the array the map was measured on."""
        return tuple(self.meta["array"])

    @property
    def trials(self) -> int:
        """Chips the map has room for per rate (the most any rate holds)."""
        return self.accuracy.shape[2]

    @property
    def measured(self) -> np.ndarray:
        """Bool ``(F, T)``: trials measured at every amount."""
        return ~np.isnan(self.accuracy).any(axis=1)

    @property
    def n_trials(self) -> np.ndarray:
        """Int ``(F,)``: chips measured per rate."""
        return self.measured.sum(axis=1)

    @property
    def complete(self) -> bool:
        """Every rate has a measured chip, and no chip is measured at only some amounts."""
        partial = ~np.isnan(self.accuracy).all(axis=1) & ~self.measured
        return bool((self.n_trials >= 1).all() and not partial.any())

    # -- statistics against a constraint ------------------------------------------------
    def passes(self, constraint) -> np.ndarray:
        """Bool ``(F, E, T)``: the chip meets the constraint (False where not measured)."""
        c = Constraint.of(constraint)
        with np.errstate(invalid="ignore"):
            return (self.accuracy >= c.threshold(self.baseline)) & self.measured[:, None, :]

    def pass_counts(self, constraint) -> np.ndarray:
        """Int ``(F, E)``: chips that meet the constraint, of :attr:`n_trials`."""
        return self.passes(constraint).sum(axis=2)

    def pass_probability(self, constraint):
        """``(estimate, lower, upper)`` per cell ``(F, E)``: ``k / n`` and its two-sided
        Clopper-Pearson interval at the constraint's confidence."""
        c = Constraint.of(constraint)
        return stats.pass_interval(self.pass_counts(c), self.n_trials[:, None], c.confidence)

    def mean_accuracy(self, confidence: float = 0.9):
        """``(mean, lower, upper)`` per cell ``(F, E)`` over the measured chips (Student t)."""
        acc = np.where(self.measured[:, None, :], self.accuracy, np.nan)
        return stats.mean_interval(acc, confidence, axis=2)

    def decisions(self, constraint) -> np.ndarray:
        """Int8 ``(F, E)``: ``stats.PASS`` where the amount is certified to suffice at the
        rate, ``stats.FAIL`` where it is certified not to, ``stats.UNDECIDED`` otherwise."""
        c = Constraint.of(constraint)
        return stats.decide(self.pass_counts(c), self.n_trials[:, None], c.pass_target, c.confidence)

    def settled(self, constraint) -> np.ndarray:
        """Bool ``(F,)``: more chips cannot change ``E*`` at the rate. Either an amount is
        certified to suffice and every smaller one certified not to, or every amount is
        certified not to suffice."""
        d = self.decisions(constraint)
        first = np.where((d == stats.PASS).any(axis=1), (d == stats.PASS).argmax(axis=1), d.shape[1])
        below = np.arange(d.shape[1])[None, :] < first[:, None]
        return ~((d != stats.FAIL) & below).any(axis=1)

    # -- the questions the planner asks -------------------------------------------------
    def rate_index(self, rates) -> np.ndarray:
        """Index of the grid rate each rate rounds *up* to; ``F`` (past the grid) if above it."""
        return rate_index(self.fault_rates, rates)

    def required_epochs_grid(self, constraint) -> np.ndarray:
        """``E*`` at every grid rate (float ``(F,)``): the least amount certified to suffice
        (an undecided amount does not count), made non-decreasing in the fault rate; ``inf``
        where none is. ``constraint`` is a :class:`efat.Constraint` or a drop (defaults)."""
        ok = self.decisions(constraint) == stats.PASS
        first = np.where(ok.any(axis=1), ok.argmax(axis=1), -1)
        need = np.where(first >= 0, self.epochs[np.maximum(first, 0)], np.inf)
        return np.maximum.accumulate(need)

    def required_epochs(self, rate, constraint):
        """``E*`` of a chip (or an array of chips) with fault rate ``rate``.

        The rate rounds up to the next grid point; a rate above the grid is infinite
        (nothing measured says it can be met). Returns a float (or float array).
        """
        r = np.asarray(rate, dtype=float)
        if ((r < 0) | (r > 1) | np.isnan(r)).any():
            raise ResilienceError(f"fault rates must lie in [0, 1]; got {rate!r}.")
        out = amount_at(self.fault_rates, self.required_epochs_grid(constraint), r)
        return float(out) if out.ndim == 0 else out

    def unresolved(self, constraint) -> np.ndarray:
        """Bool ``(F,)``: rates whose least certified amount is the grid's smallest
        retraining amount ``epochs[1]`` while bypass alone is not certified. There the
        grid cannot tell whether less retraining would do: ``E*`` is only an upper bound,
        and every chip on such rates pays the same amount (smaller amounts resolve it)."""
        ok = self.decisions(constraint) == stats.PASS
        if ok.shape[1] < 2:
            return np.zeros(ok.shape[0], bool)
        return ok[:, 1] & ~ok[:, 0]

    def max_feasible_rate(self, constraint) -> float:
        """The largest grid rate with a finite ``E*`` (``-1`` if none)."""
        need = self.required_epochs_grid(constraint)
        finite = np.nonzero(np.isfinite(need))[0]
        return float(self.fault_rates[finite[-1]]) if finite.size else -1.0

    def stopping_amounts(self, constraint) -> np.ndarray:
        """Float ``(F, E, T)``: for a chip retrained from amount ``e`` on and checked at
        every amount of the grid, the first amount ``>= e`` at which it meets the
        constraint (``inf`` if none; NaN where not measured). A run of ``e`` epochs is the
        start of every longer run, so this is the cost of escalating a retraining."""
        ok = self.passes(constraint)
        amounts = np.where(ok, self.epochs[None, :, None], np.inf)
        first = np.minimum.accumulate(amounts[:, ::-1, :], axis=1)[:, ::-1, :]
        return np.where(self.measured[:, None, :], first, np.nan)

    # -- persistence ----------------------------------------------------------------------
    def to_json(self) -> dict:
        return {
            "format": FORMAT,
            "version": VERSION,
            "fault_rates": self.fault_rates.tolist(),
            "epochs": self.epochs.tolist(),
            "accuracy": [[[None if np.isnan(v) else float(v) for v in cell] for cell in row] for row in self.accuracy],
            "baseline": self.baseline,
            "meta": self.meta,
        }

    @classmethod
    def from_json(cls, obj, source: str = "resilience map") -> ResilienceMap:
        """Inverse of :meth:`to_json`; anything malformed raises :class:`ResilienceFileError`
        naming ``source``."""
        problem = header_problem(obj, FORMAT, VERSION, "a resilience map")
        if problem:
            raise ResilienceFileError(source, problem)
        try:
            acc = np.array([[[np.nan if v is None else v for v in cell] for cell in row] for row in obj["accuracy"]],
                           dtype=float)
            return cls(obj["fault_rates"], obj["epochs"], acc, obj["baseline"], obj["meta"])
        except ResilienceError as e:
            raise ResilienceFileError(source, str(e)) from None
        except (KeyError, TypeError, ValueError) as e:
            raise ResilienceFileError(source, f"malformed ({type(e).__name__}: {e}).") from None

    def save(self, path) -> None:
        """Write JSON atomically (``null`` marks a cell not measured yet)."""
        write_json(path, self.to_json())

    @classmethod
    def load(cls, path) -> ResilienceMap:
        """Read a map written by :meth:`save`; any failure is a :class:`ResilienceFileError`."""
        try:
            obj = read_json(path)
        except FileFormatError as e:
            raise ResilienceFileError(e.path, e.problem) from None
        return cls.from_json(obj, str(path))

    def plot(self, path, constraint=None, title: str | None = None) -> None:
        """Heatmap of the map against a constraint (:func:`efat.resilience_plot.plot_map`)."""
        from .resilience_plot import plot_map

        plot_map(self, path, constraint, title)



def rate_index(fault_rates: np.ndarray, rates) -> np.ndarray:
    """Index of the grid rate each of ``rates`` rounds *up* to (``len(fault_rates)`` above the grid)."""
    return np.searchsorted(fault_rates, np.asarray(rates, dtype=float) - 1e-12, side="left")


def amount_at(fault_rates: np.ndarray, need: np.ndarray, rates) -> np.ndarray:
    """``E*`` of chips at ``rates``, from ``E*`` on the grid (``need``): the rate rounds up
    to the grid, and a rate above the grid is infinite (nothing measured says it can be met)."""
    return np.append(np.asarray(need, dtype=float), np.inf)[rate_index(fault_rates, rates)]
