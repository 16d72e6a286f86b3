"""Soft errors: random transient bit flips in a GEMM's registers and in its outputs.

A transient fault flips one bit of one register of one PE in one cycle (docs/semantics.md,
"Transient faults"). :func:`random_flips` draws them for one GEMM at a *bit-error rate*
(BER): the probability that a given register bit is flipped in a given cycle. The count is
Poisson with mean ``BER x cycles x PEs x bits per PE`` (the sites' widths summed), and each
flip lands uniformly on a (cycle, PE, register bit): a 32-bit psum register takes four
times the flips of an 8-bit act latch. Drawn once, in Python, from a seed, so every engine
sees the same list.

:class:`TransientFaults` is the source a model run draws from: one independent stream per
GEMM (its seed mixes the source's seed, the layer's name and the GEMM's index within the
layer), so the flips of a GEMM do not depend on what other layers drew.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass, field
from numbers import Integral, Real

import numpy as np

from simulator import FLIP_DTYPE, SITES, ArrayConfig, gemm_timing

from .errors import FaultError
from .fault_map import _rng

__all__ = ["random_flips", "random_output_flips", "TransientFaults"]


def _check_ber(ber, name="ber", unit="flips per register bit per cycle") -> float:
    if isinstance(ber, bool) or not isinstance(ber, Real) or not 0 <= float(ber) <= 1:
        raise FaultError(f"{name} must be a number in [0, 1] ({unit}); got {ber!r}.")
    return float(ber)


def _check_sites(sites) -> tuple[str, ...]:
    sites = (sites,) if isinstance(sites, str) else tuple(sites)
    if not sites or any(s not in SITES for s in sites):
        raise FaultError(f"sites must be a non-empty selection of {list(SITES)}; got {list(sites)!r}.")
    return sites


def random_flips(cfg: ArrayConfig, m: int, k: int, n: int, ber: float | None, seed=0, sites=SITES, bits=None,
                 count: int | None = None) -> np.ndarray:
    """Transient flips of one ``(m, k, n)`` GEMM on ``cfg`` at bit-error rate ``ber``.

    Parameters
    ----------
    cfg : ArrayConfig
    m, k, n : int
        The GEMM's shape (its cycles come from :func:`simulator.gemm_timing`).
    ber : float in [0, 1]
        Probability that a register bit flips in a cycle.
    seed : int or numpy Generator
    sites : sequence of site names
        Registers that can flip (all four by default).
    bits : sequence of int, optional
        Only these bit positions (of each site, where they exist): a bit-position study.
    count : int, optional
        Exactly this many flips instead of a Poisson count (then ``ber`` must be None).

    Returns
    -------
    structured array of :data:`simulator.FLIP_DTYPE`, sorted by cycle; pass it as
    ``SystolicArray.matmul(..., flips=...)``.
    """
    if (ber is None) == (count is None):
        raise FaultError(f"give one of ber and count; got ber={ber!r}, count={count!r}.")
    if count is not None and (isinstance(count, bool) or not isinstance(count, Integral) or count < 0):
        raise FaultError(f"count must be an int >= 0; got {count!r}.")
    ber = None if ber is None else _check_ber(ber)
    sites = _check_sites(sites)
    rng = _rng(seed)
    n_cycles = gemm_timing(cfg, m, k, n).n_cycles
    choices = []  # (site index, bit) of every register bit that can flip in one PE
    for s in sites:
        width = cfg.precision.site_bits(s)
        for b in (range(width) if bits is None else sorted({int(b) for b in bits if 0 <= int(b) < width})):
            choices.append((SITES.index(s), b))
    if not choices:
        raise FaultError(f"none of bits {list(bits)} exists in the {', '.join(sites)} registers of {cfg.precision.name}.")
    if count is None:
        count = rng.poisson(ber * n_cycles * cfg.n_pes * len(choices))
    out = np.zeros(count, FLIP_DTYPE)
    out["cycle"] = rng.integers(0, n_cycles, count)
    out["r"] = rng.integers(0, cfg.rows, count)
    out["c"] = rng.integers(0, cfg.cols, count)
    pick = np.array(choices, np.int64)[rng.integers(0, len(choices), count)]
    out["site"], out["bit"] = pick[:, 0], pick[:, 1]
    return np.sort(out, order=["cycle", "r", "c", "site", "bit"])


def random_output_flips(m: int, n: int, rate: float, seed=0, bits=range(32)) -> list[tuple[int, int, int]]:
    """Flips ``(m, n, bit)`` of the results of an ``(m, n)`` GEMM as they leave the array (what
    MPGemmFI injects): each result is hit with probability ``rate`` (a Poisson count of mean
    ``rate x m x n``), on a bit drawn uniformly from ``bits``."""
    rng = _rng(seed)
    bits = np.array(sorted({int(b) for b in bits}), np.int64)
    rate = _check_ber(rate, "rate", "flips per GEMM result")
    count = rng.poisson(rate * m * n)
    if bits.size == 0 or bits.min() < 0 or bits.max() > 31:
        raise FaultError(f"bits must be a non-empty set of bit positions in [0, 31]; got {bits.tolist()}.")
    return [(int(a), int(b), int(c)) for a, b, c in
            zip(rng.integers(0, m, count), rng.integers(0, n, count), bits[rng.integers(0, bits.size, count)])]


def _check_rate(value, name, unit) -> float:
    if isinstance(value, bool) or not isinstance(value, Real) or not 0 <= float(value) < math.inf:
        raise FaultError(f"{name} must be a number >= 0 ({unit}); got {value!r}.")
    return float(value)


@dataclass(frozen=True)
class TransientFaults:
    """A source of soft errors for model runs (``run_model(..., flips=TransientFaults(...))``).

    Register flips come at a rate per register bit and cycle (``ber``) or per input image
    (``per_image``: each GEMM gets a Poisson number of flips with mean ``per_image`` times the
    images in its batch, placed as :func:`random_flips` places them), at most one of the two.
    Output flips likewise: ``out_rate`` per result or ``out_per_image`` per image.

    Parameters
    ----------
    ber : float in [0, 1]
        Register bit-error rate per cycle (see :func:`random_flips`); 0 for none.
    per_image : float >= 0
        Register flips per image and GEMM (a rate that means the same on every layer size).
    seed : int
    sites : sequence of site names
        Registers that flip (default: all four).
    bits : sequence of int, optional
        Only these bit positions.
    out_rate : float in [0, 1]
        Flip GEMM results as they leave the array: each with this probability, on one random
        bit of ``out_bits`` (see :func:`random_output_flips`).
    out_per_image : float >= 0
        Output flips per image and GEMM.
    out_bits : sequence of int
        Bit positions output flips choose from (default: all 32).
    """

    ber: float = 0.0
    seed: int = 0
    sites: tuple = SITES
    bits: tuple | None = None
    out_rate: float = 0.0
    out_bits: tuple = field(default=tuple(range(32)))
    per_image: float = 0.0
    out_per_image: float = 0.0

    def __post_init__(self):
        _check_ber(self.ber)
        object.__setattr__(self, "sites", _check_sites(self.sites))
        if self.bits is not None:
            object.__setattr__(self, "bits", tuple(int(b) for b in self.bits))
        object.__setattr__(self, "out_bits", tuple(int(b) for b in self.out_bits))
        if isinstance(self.seed, bool) or not isinstance(self.seed, Integral) or self.seed < 0:
            raise FaultError(f"seed must be a non-negative int; got {self.seed!r}.")
        _check_ber(self.out_rate, "out_rate", "flips per GEMM result")
        _check_rate(self.per_image, "per_image", "register flips per image and GEMM")
        _check_rate(self.out_per_image, "out_per_image", "output flips per image and GEMM")
        if self.ber > 0 and self.per_image > 0:
            raise FaultError("give ber or per_image for register flips, not both.")
        if self.out_rate > 0 and self.out_per_image > 0:
            raise FaultError("give out_rate or out_per_image for output flips, not both.")

    def session(self):
        """A callable ``(layer name, cfg, m, k, n, batch) -> (flips, out_flips)`` with fresh
        GEMM counters (``batch``: images in the GEMM's batch)."""
        counts: dict[str, int] = {}

        def draw(name, cfg, m, k, n, batch=1):
            i = counts.get(name, 0)
            counts[name] = i + 1
            rng = np.random.default_rng([self.seed, zlib.crc32(name.encode()), i])
            flips = outs = None
            if self.ber > 0:
                flips = random_flips(cfg, m, k, n, self.ber, rng, self.sites, self.bits)
            elif self.per_image > 0:
                count = int(rng.poisson(self.per_image * batch))
                flips = random_flips(cfg, m, k, n, None, rng, self.sites, self.bits, count=count)
            if self.out_rate > 0:
                outs = random_output_flips(m, n, self.out_rate, rng, self.out_bits)
            elif self.out_per_image > 0:
                outs = random_output_flips(m, n, self.out_per_image * batch / (m * n), rng, self.out_bits)
            return flips, outs

        return draw
