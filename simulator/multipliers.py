"""A library of approximate 8-bit multipliers, as product tables for :class:`LutPrecision`.

Each is written from its published definition for unsigned ``n``-bit operands (``n = 8``)
and used in sign-magnitude on the array's int8 operands (``|-128| = 128``):

* ``trunc:K`` -- truncated array multiplier: the partial-product bits of the ``K`` least
  significant columns are dropped (a_i b_j with ``i + j < K``), no correction
  (e.g. Kidambi, El-Guibaly, Antoniou, "Area-efficient multipliers for digital signal
  processing applications", IEEE TCAS-II 43(2), 1996, without their correction constant).
* ``bam:V,H`` -- broken-array multiplier (Mahdiani, Ahmadi, Fakhraie, Lucas, "Bio-inspired
  imprecise computational blocks for efficient VLSI implementation of soft-computing
  applications", IEEE TCAS-I 57(4), 2010): the carry-save cells below the vertical break
  level ``V`` (columns ``i + j < V``) and above the horizontal break level ``H``
  (partial-product rows ``j < H``) are omitted.
* ``drum:K`` -- DRUM, the dynamic range unbiased multiplier (Hashemi, Bahar, Reda, ICCAD
  2015): each operand of ``2**K`` or more keeps the ``K`` bits from its leading one, the
  lowest of them forced to 1 (unbiasing), the ``K x K`` product is shifted back.
* ``mitchell`` -- Mitchell's logarithmic multiplier (J. N. Mitchell, "Computer
  multiplication and division using binary logarithms", IRE Trans. Electronic Computers,
  1962): ``log2 x ~ k + f`` (``k`` the leading one's position, ``f = x / 2**k - 1``), the
  logarithms added, the antilogarithm approximated the same way; results truncated to
  integers.
* ``ilm:I`` -- the iterative logarithmic multiplier (Babic, Avramovic, Bulic, "An iterative
  logarithmic multiplier", Microprocessors and Microsystems 35(1), 2011):
  ``x y = 2**(k1+k2) + (x - 2**k1) 2**k2 + (y - 2**k2) 2**k1 + (x - 2**k1)(y - 2**k2)``; the
  last term is computed again the same way ``I - 1`` times and then dropped (``I = 1``: the
  basic block alone).
* ``exact`` -- ``w * a``.

:func:`error_metrics` computes, over all 65,536 int8 x int8 pairs as the array forms the
products, what EvoApprox reports: mean absolute error (MAE), worst-case error (WCE), mean
relative error (MRE, ``|err| / |exact|`` over the pairs whose exact product is not 0), error
probability (EP) and bias (mean signed error; in sign-magnitude use it cancels over the
signs, so the mean error of the magnitude is given too); MAE% and WCE% relative to the
output range ``2**16``. :func:`load_table` reads tables users have.
"""

from __future__ import annotations

import os
from functools import lru_cache

import numpy as np

from .errors import ConfigError
from .precision import LutPrecision
from .precision.lut import lookup

__all__ = ["multiplier", "multiplier_table", "MULTIPLIERS", "error_metrics", "load_table", "cell_share"]

N_BITS = 8
#: The library's default set, by name (parameterised forms accept other values).
MULTIPLIERS = ("exact", "trunc:4", "trunc:6", "bam:6,2", "bam:8,3", "drum:4", "drum:6", "mitchell", "ilm:1", "ilm:2")


# Each design as a function of unsigned operand grids ``x``, ``y`` (int64 NumPy arrays).

def _lead(x):
    """Position of the leading one (0 for x = 0)."""
    out = np.zeros_like(x)
    for b in range(1, 2 * N_BITS + 2):
        out = np.where(x >> b > 0, b, out)
    return out


def _array_product(x, y, keep):
    """Sum of the kept partial-product bits ``x_i y_j 2**(i+j)`` (``keep(i, j)``)."""
    out = np.zeros_like(x)
    for i in range(N_BITS + 1):
        for j in range(N_BITS + 1):
            if keep(i, j):
                out += ((x >> i) & 1) * ((y >> j) & 1) << (i + j)
    return out


def _truncated(k):
    return lambda x, y: _array_product(x, y, lambda i, j: i + j >= k)


def _bam(vbl, hbl):
    return lambda x, y: _array_product(x, y, lambda i, j: i + j >= vbl and j >= hbl)


def _drum(k):
    def reduce(x):
        shift = np.maximum(_lead(x) - k + 1, 0)
        small = x < (1 << k)
        return np.where(small, x, (x >> shift) | 1), np.where(small, 0, shift)

    def mul(x, y):
        (a, sa), (b, sb) = reduce(x), reduce(y)
        return (a * b) << (sa + sb)

    return mul


def _mitchell(x, y):
    k1, k2 = _lead(x), _lead(y)
    # fractions as fixed point with k1 + k2 fraction bits: f1 * 2**(k1+k2) = (x - 2**k1) 2**k2
    f = ((x - (1 << k1)) << k2) + ((y - (1 << k2)) << k1)
    one = 1 << (k1 + k2)
    out = np.where(f < one, one + f, 2 * f)  # 2**(k1+k2) (1 + f1 + f2), or 2**(k1+k2+1) (f1 + f2)
    return np.where((x == 0) | (y == 0), 0, out)


def _ilm(iterations):
    def mul(x, y, it=iterations):
        if it == 0:
            return np.zeros_like(x)
        k1, k2 = _lead(x), _lead(y)
        rx, ry = x - (1 << k1), y - (1 << k2)
        out = (1 << (k1 + k2)) + (rx << k2) + (ry << k1) + mul(np.maximum(rx, 0), np.maximum(ry, 0), it - 1)
        return np.where((x == 0) | (y == 0), 0, out)

    return mul


def _parse(name: str):
    """``(kind, parameters, magnitude function)`` of a multiplier name."""
    if not isinstance(name, str):
        raise ConfigError(f"a multiplier name must be a str; got {name!r}.")
    kind, _, rest = name.partition(":")
    try:
        params = [int(v) for v in rest.split(",")] if rest else []
    except ValueError:
        params = None
    forms = {"exact": (0, lambda: (lambda x, y: x * y)), "mitchell": (0, lambda: _mitchell),
             "trunc": (1, lambda k: _truncated(k)), "bam": (2, lambda v, h: _bam(v, h)),
             "drum": (1, lambda k: _drum(k)), "ilm": (1, lambda i: _ilm(i))}
    if kind not in forms or params is None or len(params) != forms[kind][0]:
        raise ConfigError(f"unknown multiplier {name!r}; use exact, mitchell, trunc:K, bam:V,H, drum:K or ilm:I "
                          f"(e.g. {', '.join(MULTIPLIERS)}).")
    ranges = {"trunc": [(0, 16)], "bam": [(0, 16), (0, 8)], "drum": [(2, 8)], "ilm": [(1, 8)]}
    for v, (lo, hi) in zip(params, ranges.get(kind, [])):
        if not lo <= v <= hi:
            raise ConfigError(f"multiplier {name!r}: parameter {v} is out of range [{lo}, {hi}].")
    return kind, params, forms[kind][1](*params)


@lru_cache(maxsize=None)
def multiplier_table(name: str) -> np.ndarray:
    """The unsigned 256x256 magnitude table (uint32) of a library multiplier, read-only."""
    _, _, fn = _parse(name)
    x, y = np.meshgrid(np.arange(256, dtype=np.int64), np.arange(256, dtype=np.int64), indexing="ij")
    t = fn(x, y).astype(np.uint32)
    t.setflags(write=False)
    return t


@lru_cache(maxsize=None)
def multiplier(name: str) -> LutPrecision:
    """A library multiplier as an array precision (sign-magnitude use of its table).

    Its table is stored as uint16 (product register 16 bits) when every product the int8
    operands can form (magnitudes up to 128) fits 15 bits, else as uint32.
    """
    t = multiplier_table(name)
    dtype = np.uint16 if t[:129, :129].max() <= (1 << 15) - 1 else np.uint32
    table = np.where(np.add.outer(np.arange(256) > 128, np.arange(256) > 128), 0, t)  # unreachable entries: 0
    return LutPrecision(table.astype(dtype), signed=False, name=name)


def error_metrics(precision: LutPrecision) -> dict:
    """EvoApprox-style error metrics of a LUT precision over all int8 x int8 pairs."""
    v = np.arange(-128, 128)
    w, a = np.meshgrid(v, v, indexing="ij")
    exact = (w * a).astype(np.int64)
    got = lookup(precision.table, precision.signed, w, a)
    err = got - exact
    nz = exact != 0
    return {
        "name": precision.name,
        "mae": float(np.abs(err).mean()),
        "mae_pct": 100 * float(np.abs(err).mean()) / 2 ** 16,
        "wce": int(np.abs(err).max()),
        "wce_pct": 100 * float(np.abs(err).max()) / 2 ** 16,
        "mre_pct": 100 * float((np.abs(err[nz]) / np.abs(exact[nz])).mean()),
        "ep_pct": 100 * float((err != 0).mean()),
        "bias": float(err.mean()),
        "bias_magnitude": float((np.abs(got) - np.abs(exact)).mean()),
    }


def cell_share(name: str) -> float:
    """A rough energy proxy: the share of the exact 8x8 array's 64 partial-product cells the
    design keeps (truncation and BAM); DRUM ``K``: ``(K/8)**2``; the logarithmic designs: the
    adders of their ``2 log n``-bit paths, estimated as 0.25 (Mitchell) and 0.25 per
    iteration (ILM). Not a gate-level estimate: for ranking only."""
    kind, params, _ = _parse(name)
    if kind == "exact":
        return 1.0
    if kind in ("trunc", "bam"):
        vbl, hbl = (params[0], 0) if kind == "trunc" else params
        kept = sum(1 for i in range(N_BITS) for j in range(N_BITS) if i + j >= vbl and j >= hbl)
        return kept / N_BITS ** 2
    if kind == "drum":
        return (params[0] / N_BITS) ** 2
    return 0.25 if kind == "mitchell" else min(1.0, 0.25 * params[0])


def load_table(path, signed: bool | None = None) -> np.ndarray:
    """A 256x256 product table from a file users have.

    * ``.bin`` (TFApprox / EvoApprox LUT files): 131,072 bytes, 65,536 little-endian 16-bit
      entries, entry ``256 * w + a`` the product of ``w`` and ``a``; read as uint16 (an
      unsigned multiplier, for sign-magnitude use) unless ``signed=True`` (int16, entries
      indexed by value + 128);
    * ``.npy``: a (256, 256) integer array (its own type);
    * ``.csv``: 256 lines of 256 comma-separated integers (int32, or uint32 with
      ``signed=False``).
    """
    path = os.fspath(path)
    ext = os.path.splitext(path)[1].lower()
    try:
        if ext == ".bin":
            raw = np.fromfile(path, dtype="<i2" if signed else "<u2")
            if raw.size != 65536:
                raise ConfigError(f"{path}: a .bin LUT holds 65,536 16-bit entries; found {raw.size} "
                                  f"({os.path.getsize(path)} bytes).")
            table = raw.reshape(256, 256).astype(np.int16 if signed else np.uint16)
        elif ext == ".npy":
            table = np.load(path, allow_pickle=False)
        elif ext == ".csv":
            table = np.loadtxt(path, delimiter=",", dtype=np.int64, ndmin=2)
            if table.shape == (256, 256):
                table = table.astype(np.uint32 if signed is False else np.int32)
        else:
            raise ConfigError(f"{path}: unknown LUT file type {ext!r}; use .bin, .npy or .csv.")
    except (OSError, ValueError) as e:
        if isinstance(e, ConfigError):
            raise
        raise ConfigError(f"{path}: not a readable LUT ({type(e).__name__}: {e}).") from None
    if table.shape != (256, 256):
        raise ConfigError(f"{path}: a LUT must have shape (256, 256); got {table.shape}.")
    return table
