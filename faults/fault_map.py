"""Fault maps: the stuck-at masks of every PE of one chip."""

from __future__ import annotations

from collections.abc import Mapping
from numbers import Integral

import numpy as np

from simulator import SITES, ArrayConfig, FaultMaskError, check_masks, faulty_pes, identity_masks

from .errors import FaultError, FaultFileError
from .files import read_npz, write_npz
from .rates import check_rate
from .stuck_at import StuckAt

__all__ = ["FaultMap", "sext", "describe"]

FORMAT = "efat.FaultMap"


def sext(pattern: int, bits: int) -> int:
    """Sign-extend the low ``bits`` bits of ``pattern`` to a Python int (int32 range)."""
    pattern &= (1 << bits) - 1
    return pattern - (1 << bits) if pattern >> (bits - 1) else pattern


class FaultMap:
    """Per-PE stuck-at faults of one chip (immutable).

    Per site it holds an AND and an OR mask of shape ``(R, C)``; a register value
    ``v`` becomes ``(v & and) | or``. A stuck bit has its AND bit cleared and its OR
    bit equal to the stuck value, so several stuck bits in one register compose and a
    fault-free register has ``and = -1, or = 0``. Masks are sign-extended from the
    site's width (``docs/semantics.md``, "Fault model").

    Build one with :meth:`empty`, :meth:`random`, :meth:`from_pes` or
    :meth:`with_fault`; pass it to :class:`simulator.SystolicArray` as ``faults``.

    Examples
    --------
    >>> cfg = ArrayConfig(4, 4)
    >>> fm = FaultMap.empty(cfg).with_fault(1, 2, StuckAt("psum", 30, 1))
    >>> fm.n_faulty, fm.rate
    (1, 0.0625)
    """

    def __init__(self, cfg: ArrayConfig, masks: np.ndarray):
        if not isinstance(cfg, ArrayConfig):
            raise FaultError(f"cfg must be an ArrayConfig; got {type(cfg).__name__}.")
        if not isinstance(masks, np.ndarray):
            raise FaultError(f"masks must be a numpy array; got {type(masks).__name__}.")
        try:
            check_masks(cfg, masks)
        except FaultMaskError as e:
            raise FaultError(str(e)) from None
        masks = masks.copy()
        masks[:, 0] &= ~masks[:, 1]  # canonical: a bit stuck at 1 is also cleared by AND
        masks.setflags(write=False)
        self.cfg = cfg
        self._masks = masks

    # -- construction -------------------------------------------------------------------
    @classmethod
    def empty(cls, cfg: ArrayConfig) -> FaultMap:
        """A fault-free chip."""
        return cls(cfg, identity_masks(cfg))

    @classmethod
    def random(cls, cfg: ArrayConfig, rate: float, seed=0, sites=SITES, bits=None, value=None,
               faults_per_pe: int = 1) -> FaultMap:
        """A chip with ``round(rate * R * C)`` faulty PEs chosen uniformly at random.

        Parameters
        ----------
        rate : float in [0, 1]
            Fraction of faulty PEs; the map's :attr:`rate` is the nearest achievable.
        seed : int or numpy Generator
        sites, bits, value, faults_per_pe
            How each faulty PE's faults are drawn; see :meth:`from_pes`.
        """
        rng = _rng(seed)
        rate = check_rate(rate)
        n = int(round(rate * cfg.n_pes))
        pes = np.zeros(cfg.n_pes, bool)
        pes[rng.choice(cfg.n_pes, size=n, replace=False)] = True
        return cls.from_pes(cfg, pes.reshape(cfg.shape), rng, sites, bits, value, faults_per_pe)

    @classmethod
    def from_pes(cls, cfg: ArrayConfig, pes, seed=0, sites=SITES, bits=None, value=None,
                 faults_per_pe: int = 1) -> FaultMap:
        """Put stuck-at faults on exactly the PEs where ``pes`` (bool ``(R, C)``) is true.

        Each faulty PE gets ``faults_per_pe`` faults, each drawn independently:

        * **site**: uniform over ``sites`` (a sequence of site names), or with the given
          probabilities when ``sites`` is a mapping ``{site: weight}``;
        * **bit**: uniform over the site's width (act/weight 8, product 16, psum 32 for
          int8), or uniform over ``bits`` (the indices that fit the site's width);
        * **value**: 0 or 1 with equal probability, or always ``value``.

        A later fault on a bit already stuck replaces the earlier one, so a PE can end
        up with fewer distinct stuck bits than ``faults_per_pe`` (never with none).
        """
        rng = _rng(seed)
        pes = np.asarray(pes)
        if pes.shape != cfg.shape or pes.dtype != bool:
            raise FaultError(f"pes must be a bool array of shape {cfg.shape}; got {pes.dtype} {pes.shape}.")
        names, probs = _site_distribution(sites)
        if isinstance(faults_per_pe, bool) or not isinstance(faults_per_pe, Integral) or faults_per_pe < 1:
            raise FaultError(f"faults_per_pe must be an int >= 1; got {faults_per_pe!r}.")
        if value is not None and value not in (0, 1):
            raise FaultError(f"value must be 0, 1 or None (random); got {value!r}.")
        widths = [cfg.precision.site_bits(s) for s in names]
        bit_choices = [_bit_choices(s, w, bits) for s, w in zip(names, widths)]
        rows, cols = np.nonzero(pes)
        n = rows.size * faults_per_pe
        which = rng.choice(len(names), size=n, p=probs)  # PE-major: PE 0's faults first
        n_choices = np.array([len(b) for b in bit_choices])
        table = np.zeros((len(names), n_choices.max()), np.int64)
        for i, choices in enumerate(bit_choices):
            table[i, : len(choices)] = choices
        bit = table[which, (rng.random(n) * n_choices[which]).astype(np.int64)]
        val = rng.integers(0, 2, size=n) if value is None else np.full(n, int(value))
        site = np.array([SITES.index(s) for s in names])[which]
        r, c = np.repeat(rows, faults_per_pe), np.repeat(cols, faults_per_pe)
        return cls(cfg, _masks_from_faults(cfg, site, r, c, bit, val))

    def with_fault(self, row: int, col: int, fault: StuckAt) -> FaultMap:
        """A copy with ``fault`` added at PE ``(row, col)`` (replacing one on the same bit)."""
        if not isinstance(fault, StuckAt):
            raise FaultError(f"fault must be a StuckAt; got {type(fault).__name__}.")
        for name, v, hi in (("row", row, self.cfg.rows), ("col", col, self.cfg.cols)):
            if isinstance(v, bool) or not isinstance(v, Integral) or not 0 <= v < hi:
                raise FaultError(f"{name} must be an int in [0, {hi - 1}]; got {v!r}.")
        width = self.cfg.precision.site_bits(fault.site)
        if fault.bit >= width:
            raise FaultError(
                f"bit {fault.bit} does not exist in the {width}-bit {fault.site} register; allowed: [0, {width - 1}]."
            )
        masks = self._masks.copy()
        _set_bit(masks, SITES.index(fault.site), width, int(row), int(col), fault.bit, fault.value)
        return FaultMap(self.cfg, masks)

    # -- queries -----------------------------------------------------------------------
    @property
    def masks(self) -> np.ndarray:
        """Read-only int32 ``(4, 2, R, C)``: AND and OR masks per site (``SITES`` order)."""
        return self._masks

    @property
    def faulty(self) -> np.ndarray:
        """Bool ``(R, C)``: PEs with at least one stuck bit."""
        return faulty_pes(self._masks)

    @property
    def n_faulty(self) -> int:
        return int(self.faulty.sum())

    @property
    def rate(self) -> float:
        """Fault rate: faulty PEs / (R * C)."""
        return self.n_faulty / self.cfg.n_pes

    def faults(self) -> list[tuple[int, int, StuckAt]]:
        """Every stuck bit as ``(row, col, StuckAt)``, by PE, site, then bit."""
        out = []
        for r, c in zip(*np.nonzero(self.faulty)):
            for s, site in enumerate(SITES):
                width = self.cfg.precision.site_bits(site)
                and_p = int(self._masks[s, 0, r, c])
                or_p = int(self._masks[s, 1, r, c])
                for bit in range(width):
                    if not (and_p >> bit) & 1:
                        out.append((int(r), int(c), StuckAt(site, bit, (or_p >> bit) & 1)))
        return out

    def union(self, *others: FaultMap) -> FaultMap:
        """The fused map: faulty wherever any input is faulty (the OR used by eFAT fusion).

        A bit stuck in several maps keeps the value of the first map that has it.
        """
        masks = self._masks.copy()
        for other in others:
            if not isinstance(other, FaultMap):
                raise FaultError(f"union takes FaultMaps; got {type(other).__name__}.")
            if other.cfg != self.cfg:
                raise FaultError(f"cannot fuse a {describe(other.cfg)} map into a {describe(self.cfg)} map.")
            new = ~other._masks[:, 0] & masks[:, 0]  # stuck there, free here (canonical masks)
            masks[:, 0] &= ~new
            masks[:, 1] |= other._masks[:, 1] & new
        return FaultMap(self.cfg, masks)

    def __or__(self, other: FaultMap) -> FaultMap:
        return self.union(other)

    def __eq__(self, other):
        if not isinstance(other, FaultMap):
            return NotImplemented
        return self.cfg == other.cfg and np.array_equal(self._masks, other._masks)

    def __hash__(self):
        return hash((self.cfg, self._masks.tobytes()))

    def __repr__(self):
        return f"FaultMap({describe(self.cfg)}, {self.n_faulty} faulty PEs, rate={self.rate:.4f})"

    # -- persistence ---------------------------------------------------------------------
    def to_sparse(self) -> tuple[np.ndarray, np.ndarray]:
        """``(pe_rc (P, 2) int32, pe_masks (P, 4, 2) int32)`` for the faulty PEs only."""
        r, c = np.nonzero(self.faulty)
        return np.stack([r, c], axis=1).astype(np.int32), np.moveaxis(self._masks[:, :, r, c], 2, 0).copy()

    @classmethod
    def from_sparse(cls, cfg: ArrayConfig, pe_rc, pe_masks) -> FaultMap:
        """Inverse of :meth:`to_sparse`; validates indices and masks.

        ``pe_rc`` must hold integers and ``pe_masks`` int32 bit patterns, as
        :meth:`to_sparse` returns them: masks of another type would be truncated into
        other bits (a float -0.5 would become an AND mask of 0: every bit stuck).
        """
        pe_rc = np.asarray(pe_rc)
        pe_masks = np.asarray(pe_masks)
        if pe_rc.ndim != 2 or pe_rc.shape[1] != 2 or pe_masks.shape != (len(pe_rc), len(SITES), 2):
            raise FaultError(f"sparse fault map has inconsistent shapes {pe_rc.shape} and {pe_masks.shape}.")
        if pe_rc.dtype.kind not in "iu":
            raise FaultError(f"sparse fault map: PE indices must be integers; got {pe_rc.dtype}.")
        if pe_masks.dtype != np.int32:
            raise FaultError(f"sparse fault map: masks must be int32 bit patterns; got {pe_masks.dtype}.")
        if len(pe_rc) and (pe_rc.min() < 0 or (pe_rc[:, 0] >= cfg.rows).any() or (pe_rc[:, 1] >= cfg.cols).any()):
            raise FaultError(f"sparse fault map has PE indices outside the {describe(cfg)} array.")
        if len({(int(r), int(c)) for r, c in pe_rc}) != len(pe_rc):
            raise FaultError("sparse fault map lists a PE twice.")
        masks = identity_masks(cfg)
        masks[:, :, pe_rc[:, 0], pe_rc[:, 1]] = np.moveaxis(pe_masks, 0, 2)
        return cls(cfg, masks)

    def save(self, path) -> None:
        """Write the map to ``path`` (``.npz``, versioned; written atomically)."""
        pe_rc, pe_masks = self.to_sparse()
        write_npz(path, kind=FORMAT, cfg=self.cfg, pe_rc=pe_rc, pe_masks=pe_masks)

    @classmethod
    def load(cls, path) -> FaultMap:
        """Read a map written by :meth:`save`; a missing, corrupt or foreign file raises
        :class:`faults.FaultFileError`."""
        data, cfg = read_npz(path, FORMAT, ("pe_rc", "pe_masks"))
        try:
            fm = cls.from_sparse(cfg, data["pe_rc"], data["pe_masks"])
        except FaultError as e:
            raise FaultFileError(path, str(e)) from None
        if fm.n_faulty != len(data["pe_rc"]):
            raise FaultFileError(path, "a PE listed as faulty has no stuck bit.")
        return fm


# -- helpers ----------------------------------------------------------------------------

def describe(cfg: ArrayConfig) -> str:
    """``"32x32 int8x8->int32"``: an array's shape and precision, for messages."""
    return f"{cfg.rows}x{cfg.cols} {cfg.precision.name}"


def _rng(seed):
    if isinstance(seed, np.random.Generator):
        return seed
    if isinstance(seed, bool) or not isinstance(seed, Integral) or seed < 0:
        raise FaultError(f"seed must be a non-negative int or a numpy Generator; got {seed!r}.")
    return np.random.default_rng(int(seed))


def _site_distribution(sites):
    if isinstance(sites, str):
        sites = (sites,)
    if isinstance(sites, Mapping):
        names = list(sites)
        weights = np.array([float(sites[s]) for s in names])
    else:
        names = list(sites)
        weights = np.ones(len(names))
    if not names:
        raise FaultError(f"sites must name at least one of {list(SITES)}.")
    for s in names:
        if s not in SITES:
            raise FaultError(f"site must be one of {list(SITES)}; got {s!r}.")
    if (weights < 0).any() or weights.sum() <= 0:
        raise FaultError(f"site weights must be >= 0 with a positive sum; got {dict(zip(names, weights))}.")
    return names, weights / weights.sum()


def _bit_choices(site: str, width: int, bits):
    if bits is None:
        return np.arange(width)
    chosen = np.unique(np.asarray(bits, dtype=np.int64).ravel())
    if chosen.size == 0 or chosen.min() < 0:
        raise FaultError(f"bits must be a non-empty set of bit indices >= 0; got {bits!r}.")
    ok = chosen[chosen < width]
    if ok.size == 0:
        raise FaultError(f"none of bits {chosen.tolist()} exists in the {width}-bit {site} register.")
    return ok


def _masks_from_faults(cfg: ArrayConfig, site, r, c, bit, val) -> np.ndarray:
    """Masks with the given stuck bits; of several faults on one bit the last one wins."""
    R, C = cfg.shape
    key = ((site * R + r) * C + c) * 32 + bit
    _, last = np.unique(key[::-1], return_index=True)
    keep = len(key) - 1 - last
    site, r, c, bit, val = site[keep], r[keep], c[keep], bit[keep], val[keep]
    stuck = np.zeros((len(SITES), R, C), np.int64)
    ones = np.zeros((len(SITES), R, C), np.int64)
    np.bitwise_or.at(stuck, (site, r, c), np.left_shift(1, bit))
    np.bitwise_or.at(ones, (site, r, c), np.left_shift(val.astype(np.int64), bit))
    masks = identity_masks(cfg)
    for s, width in enumerate(cfg.precision.widths()):
        full = (1 << width) - 1
        and_p = ~stuck[s] & full
        sign = 1 << (width - 1)
        masks[s, 0] = ((and_p ^ sign) - sign).astype(np.int32)
        masks[s, 1] = ((ones[s] ^ sign) - sign).astype(np.int32)
    return masks


def _set_bit(masks, s: int, width: int, r: int, c: int, bit: int, value: int) -> None:
    m = (1 << width) - 1
    and_p = int(masks[s, 0, r, c]) & m & ~(1 << bit)
    or_p = (int(masks[s, 1, r, c]) & m & ~(1 << bit)) | (value << bit)
    masks[s, 0, r, c] = sext(and_p, width)
    masks[s, 1, r, c] = sext(or_p, width)
