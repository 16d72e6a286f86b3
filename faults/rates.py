"""Per-chip fault rates of a population: a constant, a list, or a distribution.

``rates`` takes a number in [0, 1], one rate per chip, or a spec string ::

    uniform:LO,HI          rate ~ U(LO, HI)
    normal:MEAN,STD        rate ~ N(MEAN, STD**2), clipped to [0, 1]
    lognormal:MEDIAN,SIGMA rate = MEDIAN * exp(SIGMA * N(0, 1)), clipped to [0, 1]
    negbin:MEAN,ALPHA      k ~ NegBin(mean MEAN*R*C, clustering ALPHA), clipped to R*C

and a chip gets ``k = round(rate * R * C)`` faulty PEs. ``negbin`` is Stapper's
clustered yield model: the count is Poisson with a Gamma-distributed mean, variance
``mu * (1 + mu / ALPHA)``; small ALPHA means strongly varying chips, ALPHA -> inf tends
to Poisson.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from numbers import Real

import numpy as np

from .errors import FaultError

__all__ = ["RateModel", "rate_model", "check_rate", "RATE_FORMS", "SPEC_FORMS"]

#: What a spec string may be (the forms a command line can pass).
SPEC_FORMS = ("a number in [0, 1]", "uniform:LO,HI", "normal:MEAN,STD", "lognormal:MEDIAN,SIGMA",
              "negbin:MEAN,ALPHA")
#: What ``rates=`` accepts from Python.
RATE_FORMS = (SPEC_FORMS[0], "a sequence of n numbers", *SPEC_FORMS[1:])
_SPECS = ("uniform", "normal", "lognormal", "negbin")


def check_rate(rate) -> float:
    """``rate`` as a float, or :class:`FaultError` unless it is a number in [0, 1]."""
    if isinstance(rate, bool) or not isinstance(rate, Real) or not 0.0 <= float(rate) <= 1.0:
        raise FaultError(f"rate must be a number in [0, 1]; got {rate!r}.")
    return float(rate)


@dataclass(frozen=True)
class RateModel:
    """How many PEs of chip ``i`` are faulty; ``kind`` is "const", "list" or a spec name."""

    kind: str
    params: tuple

    def n_faulty(self, i: int, rng: np.random.Generator, n_pes: int) -> int:
        """Number of faulty PEs of chip ``i``."""
        kind, p = self.kind, self.params
        if kind == "negbin":
            mu, alpha = p[0] * n_pes, p[1]
            return 0 if mu == 0 else min(int(rng.negative_binomial(alpha, alpha / (alpha + mu))), n_pes)
        if kind == "const":
            rate = p[0]
        elif kind == "list":
            rate = p[i]
        elif kind == "uniform":
            rate = rng.uniform(p[0], p[1])
        elif kind == "normal":
            rate = rng.normal(p[0], p[1])
        else:  # lognormal
            rate = p[0] * math.exp(p[1] * rng.standard_normal())
        return int(round(min(max(float(rate), 0.0), 1.0) * n_pes))


def rate_model(rates, n: int) -> RateModel:
    """The :class:`RateModel` of a ``rates`` argument for ``n`` chips (validated)."""
    if isinstance(rates, str):
        return _parse_spec(rates)
    if isinstance(rates, Real) and not isinstance(rates, bool):
        return RateModel("const", (check_rate(rates),))
    try:
        arr = np.asarray(rates, dtype=float)
    except (TypeError, ValueError):
        arr = None
    if arr is None or arr.ndim != 1:
        raise FaultError(f"rates must be one of: {', '.join(RATE_FORMS)}; got {rates!r}.")
    if len(arr) != n:
        raise FaultError(f"rates lists {len(arr)} values but n = {n}; give one rate per chip.")
    bad = np.flatnonzero(~((arr >= 0) & (arr <= 1)))
    if bad.size:
        raise FaultError(f"rates must all be in [0, 1]; got rates[{bad[0]}] = {float(arr[bad[0]])!r}.")
    return RateModel("list", tuple(float(r) for r in arr))


def _parse_spec(spec: str) -> RateModel:
    def fail(why):
        return FaultError(f"bad rates spec {spec!r}: {why}; allowed forms of a spec string: {', '.join(SPEC_FORMS)}.")

    try:
        value = float(spec)
    except ValueError:
        value = None
    if value is not None:
        if not 0.0 <= value <= 1.0:
            raise fail("a constant rate must be in [0, 1]")
        return RateModel("const", (value,))
    name, _, args = spec.partition(":")
    name = name.strip().lower()
    if name not in _SPECS:
        raise fail(f"unknown distribution {name!r}")
    try:
        a, b = (float(x) for x in args.split(","))
    except ValueError:
        raise fail("expected two numbers after the colon") from None
    if not (math.isfinite(a) and math.isfinite(b)):
        raise fail("parameters must be finite")
    ok = {
        "uniform": (0 <= a <= b <= 1, "need 0 <= LO <= HI <= 1"),
        "normal": (0 <= a <= 1 and b >= 0, "need MEAN in [0, 1] and STD >= 0"),
        "lognormal": (0 < a <= 1 and b >= 0, "need MEDIAN in (0, 1] and SIGMA >= 0"),
        "negbin": (0 <= a <= 1 and b > 0, "need MEAN in [0, 1] and ALPHA > 0"),
    }[name]
    if not ok[0]:
        raise fail(ok[1])
    return RateModel(name, (a, b))
