"""Resilience maps: accuracy over fault rate x retraining amount, and what they imply.

A :class:`ResilienceMap` holds, for every fault rate ``f`` on a grid, every retraining
amount ``e`` (epochs, fractions allowed; ``0`` = bypass only) and every trial (a random
chip at rate ``f``), the accuracy **on the simulator, with bypass** of the model after
``e`` epochs of fault-aware retraining for that chip. With the fault-free quantized
accuracy as the baseline and a user's ``max_accuracy_drop`` it answers ``E*(f)``: the
least amount that meets the constraint for every trial (or a given quantile of trials),
non-decreasing in ``f``, infinite where nothing on the grid meets it
(``docs/semantics.md``, "eFAT", step 1). Torch-free: measuring a map is
:func:`efat.resilience_map`; reading, querying and plotting one needs only NumPy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from numbers import Integral, Real

import numpy as np

from fileio import FileFormatError, header_problem, read_json, write_json

from .errors import ResilienceError, ResilienceFileError

__all__ = ["ResilienceMap", "FORMAT", "check_grid", "format_drop", "rate_index", "amount_at"]

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
        return self.accuracy.shape[2]

    @property
    def complete(self) -> bool:
        return not np.isnan(self.accuracy).any()

    # -- the questions the planner asks -------------------------------------------------
    def rate_index(self, rates) -> np.ndarray:
        """Index of the grid rate each rate rounds *up* to; ``F`` (past the grid) if above it."""
        return rate_index(self.fault_rates, rates)

    def required_epochs_grid(self, max_accuracy_drop: float, quantile: float | None = None) -> np.ndarray:
        """``E*`` at every grid rate (float array (F,), ``inf`` where nothing meets the drop).

        A cell meets the constraint when its accuracy is at least
        ``baseline - max_accuracy_drop`` for every trial, or, with ``quantile`` q in
        (0, 1], for the q-quantile of trials from the bottom (q = 1 means every trial
        ... q = 0.5 the median). The result is made non-decreasing in the fault rate
        (a higher rate never needs less retraining).
        """
        drop = _check_drop(max_accuracy_drop)
        acc = self.accuracy
        if quantile is None:
            worst = np.min(acc, axis=2)
        else:
            if not isinstance(quantile, Real) or not 0 < quantile <= 1:
                raise ResilienceError(f"quantile must be in (0, 1]; got {quantile!r}.")
            worst = np.quantile(acc, 1 - quantile, axis=2, method="lower")
        ok = worst >= self.baseline - drop - 1e-12  # NaN (unmeasured) never meets it
        first = np.where(ok.any(axis=1), ok.argmax(axis=1), -1)
        need = np.where(first >= 0, self.epochs[np.maximum(first, 0)], np.inf)
        return np.maximum.accumulate(need)

    def required_epochs(self, rate, max_accuracy_drop: float, quantile: float | None = None):
        """``E*`` of a chip (or an array of chips) with fault rate ``rate``.

        The rate rounds up to the next grid point; a rate above the grid is infinite
        (nothing measured says it can be met). Returns a float (or float array).
        """
        r = np.asarray(rate, dtype=float)
        if ((r < 0) | (r > 1) | np.isnan(r)).any():
            raise ResilienceError(f"fault rates must lie in [0, 1]; got {rate!r}.")
        out = amount_at(self.fault_rates, self.required_epochs_grid(max_accuracy_drop, quantile), r)
        return float(out) if out.ndim == 0 else out

    def max_feasible_rate(self, max_accuracy_drop: float, quantile: float | None = None) -> float:
        """The largest grid rate with a finite ``E*`` (``-1`` if none)."""
        need = self.required_epochs_grid(max_accuracy_drop, quantile)
        finite = np.nonzero(np.isfinite(need))[0]
        return float(self.fault_rates[finite[-1]]) if finite.size else -1.0

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

    # -- picture -------------------------------------------------------------------------
    def plot(self, path, max_accuracy_drop: float | None = None, title: str | None = None,
             margin: float = 0.0) -> None:
        """Heatmap of the worst-trial accuracy drop, with the ``E*`` boundary for a constraint.

        The boundary (boxed cells) is drawn for ``max_accuracy_drop - margin``: what a plan
        made with that margin reads off the map. Each cell's number is printed with as
        many decimals as it takes to show on which side of that limit it lies (2.037
        beside a 2-point limit reads "2.04", never "2.0").
        """
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        limit = None if max_accuracy_drop is None else _check_drop(max_accuracy_drop) - float(margin)
        drop = 100 * (self.baseline - np.min(self.accuracy, axis=2))  # (F, E), points
        fig, ax = plt.subplots(figsize=(1.1 * self.epochs.size + 3, 0.5 * self.fault_rates.size + 2.5),
                               constrained_layout=True)
        # colours resolve the region around the constraint; larger drops saturate (numbers tell)
        top = 3 * 100 * limit if limit else float(np.nanmax(drop))
        im = ax.imshow(drop, cmap="RdYlGn_r", vmin=0, vmax=max(1.0, top), aspect="auto",
                       origin="lower")
        fig.colorbar(im, ax=ax, label="accuracy drop, worst trial (points)")
        for i in range(drop.shape[0]):
            for j in range(drop.shape[1]):
                if not np.isnan(drop[i, j]):
                    text = f"{drop[i, j]:.1f}" if limit is None else format_drop(drop[i, j], 100 * limit)
                    ax.text(j, i, text, ha="center", va="center", fontsize=8)
        ax.set_xticks(range(self.epochs.size), [f"{e:g}" for e in self.epochs])
        ax.set_yticks(range(self.fault_rates.size), [f"{100 * r:g}%" for r in self.fault_rates])
        ax.set(xlabel="retraining amount (epochs of FAT; 0 = bypass only)", ylabel="fault rate")
        fig.suptitle(title or f"Resilience map ({self.trials} chips per rate; baseline {100 * self.baseline:.1f}%)",
                     fontsize=10)
        if limit is not None:
            need = self.required_epochs_grid(limit)
            xs = [int(np.searchsorted(self.epochs, e)) if np.isfinite(e) else None for e in need]
            for i, j in enumerate(xs):
                if j is None:
                    ax.add_patch(plt.Rectangle((-0.5, i - 0.5), self.epochs.size, 1, fill=False, hatch="//",
                                               edgecolor="black", lw=0))
                else:
                    ax.add_patch(plt.Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, edgecolor="black", lw=2.5))
            ax.plot([], [], "s", mfc="none", mec="black", mew=2.5, label=_boundary_label(max_accuracy_drop, margin))
            ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), fontsize=8, frameon=False)
        fig.savefig(path, dpi=120)
        plt.close(fig)


def rate_index(fault_rates: np.ndarray, rates) -> np.ndarray:
    """Index of the grid rate each of ``rates`` rounds *up* to (``len(fault_rates)`` above the grid)."""
    return np.searchsorted(fault_rates, np.asarray(rates, dtype=float) - 1e-12, side="left")


def amount_at(fault_rates: np.ndarray, need: np.ndarray, rates) -> np.ndarray:
    """``E*`` of chips at ``rates``, from ``E*`` on the grid (``need``): the rate rounds up
    to the grid, and a rate above the grid is infinite (nothing measured says it can be met)."""
    return np.append(np.asarray(need, dtype=float), np.inf)[rate_index(fault_rates, rates)]


def format_drop(value: float, limit: float) -> str:
    """``value`` (points) with the fewest decimals (at least 1) that keep it on its side of
    ``limit``: a cell that misses the constraint never prints as one that meets it."""
    meets = value <= limit + 1e-10  # the tolerance of required_epochs_grid, in points
    for decimals in range(1, 7):
        text = f"{value:.{decimals}f}"
        if (float(text) <= limit + 1e-10) == meets:
            return text
    return repr(float(value))


def _boundary_label(drop: float, margin: float) -> str:
    limit = 100 * (drop - margin)
    points = f"{limit:g} point{'' if limit == 1 else 's'}"
    if margin:
        return (f"E*: least amount with every chip within {points}\n"
                f"({100 * drop:g}-point constraint less a {100 * margin:g}-point planning margin; hatched: none)")
    return f"E*: least amount with every chip within {points} (hatched: none)"


def _check_drop(drop) -> float:
    if isinstance(drop, bool) or not isinstance(drop, Real) or not 0 <= float(drop) <= 1:
        raise ResilienceError(f"max_accuracy_drop must be a number in [0, 1] (0.01 = one point); got {drop!r}.")
    return float(drop)
