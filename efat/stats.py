"""The statistics of resilience maps: intervals, certified decisions, sample sizes.

A resilience-map cell holds the accuracies of ``n`` random chips at one fault rate after
one retraining amount. Two questions are asked of it:

* **How accurate?** The mean with a Student-t interval (:func:`mean_interval`).
* **Does a chip at this rate pass?** Each chip passes or not (accuracy at least
  ``baseline - max_accuracy_drop``); ``k`` of ``n`` passed. The pass probability ``p``
  gets an exact Clopper-Pearson interval (:func:`pass_interval`), and a cell is
  *certified to pass* when the one-sided lower bound at the stated confidence reaches
  the pass target ``q`` (at least ``q`` of all chips pass, with that confidence),
  *certified to fail* when the one-sided upper bound lies below ``q``, and undecided
  otherwise (:func:`decide`).

Certifying a pass needs enough chips whatever they show: with no failure at all, the
lower bound reaches ``q`` only from :func:`trials_to_certify` ``= ceil(log(1 - c) /
log q)`` chips (22 for ``q = 0.9`` at ``c = 0.9``, 45 for ``q = 0.95``). For a stated
error margin instead, :func:`leveugle_sample_size` is the sample size of statistical
fault injection (Leveugle et al., DATE 2009).
"""

from __future__ import annotations

import math
from numbers import Real

import numpy as np
from scipy import stats as _st

from .errors import ResilienceError

__all__ = ["pass_interval", "lower_bound", "upper_bound", "decide", "mean_interval", "trials_to_certify",
           "leveugle_sample_size", "check_level", "PASS", "FAIL", "UNDECIDED"]

PASS, FAIL, UNDECIDED = 1, -1, 0


def check_level(name: str, value, lo_open: bool = True) -> float:
    """A probability in (0, 1) (``lo_open``) or [0, 1), else :class:`ResilienceError` naming it."""
    ok = isinstance(value, Real) and not isinstance(value, bool) and math.isfinite(value) and value < 1
    ok = ok and (value > 0 if lo_open else value >= 0)
    if not ok:
        raise ResilienceError(f"{name} must be a number in {'(0' if lo_open else '[0'}, 1); got {value!r}.")
    return float(value)


def lower_bound(k, n, confidence: float) -> np.ndarray:
    """One-sided Clopper-Pearson lower bound of a binomial proportion: with probability
    ``confidence`` the true ``p`` is at least this (0 where ``k == 0`` or ``n == 0``)."""
    k, n = np.asarray(k, float), np.asarray(n, float)
    with np.errstate(invalid="ignore", divide="ignore"):
        lo = _st.beta.ppf(1 - confidence, k, n - k + 1)
    return np.where((k > 0) & (n > 0), lo, 0.0)


def upper_bound(k, n, confidence: float) -> np.ndarray:
    """One-sided Clopper-Pearson upper bound (1 where ``k == n``, and for ``n == 0``)."""
    k, n = np.asarray(k, float), np.asarray(n, float)
    with np.errstate(invalid="ignore", divide="ignore"):
        hi = _st.beta.ppf(confidence, k + 1, n - k)
    return np.where((k < n) & (n > 0), hi, 1.0)


def pass_interval(k, n, confidence: float = 0.9) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(estimate k/n, lower, upper)``: the two-sided Clopper-Pearson interval at
    ``confidence`` (each tail ``(1 - confidence) / 2``); ``n == 0`` gives ``(nan, 0, 1)``."""
    k, n = np.asarray(k, float), np.asarray(n, float)
    tail = (1 + confidence) / 2
    with np.errstate(invalid="ignore", divide="ignore"):
        estimate = np.where(n > 0, k / np.where(n > 0, n, 1), np.nan)
    return estimate, lower_bound(k, n, tail), upper_bound(k, n, tail)


def decide(k, n, pass_target: float, confidence: float) -> np.ndarray:
    """Per cell :data:`PASS` (lower bound >= ``pass_target``), :data:`FAIL` (upper bound
    < ``pass_target``) or :data:`UNDECIDED` (int8 array of the broadcast shape)."""
    lo, hi = lower_bound(k, n, confidence), upper_bound(k, n, confidence)
    return np.where(lo >= pass_target, PASS, np.where(hi < pass_target, FAIL, UNDECIDED)).astype(np.int8)


def mean_interval(values, confidence: float = 0.9, axis: int = -1):
    """``(mean, lower, upper)`` over ``axis``, ignoring NaN: the Student-t interval
    ``mean +- t * s / sqrt(n)``; with fewer than 2 values the bounds are NaN."""
    v = np.asarray(values, float)
    n = np.sum(~np.isnan(v), axis=axis)
    with np.errstate(invalid="ignore", divide="ignore"), _quiet():
        mean = np.nanmean(v, axis=axis)
        sd = np.nanstd(v, axis=axis, ddof=1)
        half = _st.t.ppf((1 + confidence) / 2, np.maximum(n - 1, 1)) * sd / np.sqrt(n)
    half = np.where(n >= 2, half, np.nan)
    return mean, mean - half, mean + half


def trials_to_certify(pass_target: float, confidence: float) -> int:
    """The fewest chips with which a cell can be certified to pass (all of them passing)."""
    return math.ceil(math.log(1 - confidence) / math.log(pass_target))


def leveugle_sample_size(margin: float, confidence: float, p: float = 0.5, population: int | None = None) -> int:
    """Sample size of statistical fault injection (Leveugle et al., DATE 2009):
    ``n = N / (1 + e**2 (N - 1) / (t**2 p (1 - p)))`` for a population of ``N``, error
    margin ``e`` and the two-sided normal quantile ``t`` of ``confidence``; ``N = inf``
    gives ``t**2 p (1 - p) / e**2``. ``p = 0.5`` is the worst case."""
    t = float(_st.norm.ppf((1 + confidence) / 2))
    infinite = t * t * p * (1 - p) / (margin * margin)
    if population is None:
        return math.ceil(infinite)
    return math.ceil(population / (1 + margin * margin * (population - 1) / (t * t * p * (1 - p))))


class _quiet:
    """Silence numpy's warnings about empty slices (cells without trials)."""

    def __enter__(self):
        import warnings

        self._w = warnings.catch_warnings()
        self._w.__enter__()
        warnings.simplefilter("ignore", RuntimeWarning)

    def __exit__(self, *exc):
        return self._w.__exit__(*exc)
