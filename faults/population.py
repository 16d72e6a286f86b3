"""Populations of faulty chips: one fault map per manufactured chip.

A population is drawn in three steps per chip (DESIGN.md, Fault model):

1. **Fault rate.** ``k``, the number of faulty PEs, comes from the ``rates`` argument:
   a constant, one rate per chip, or a distribution spec string ::

       uniform:LO,HI          rate ~ U(LO, HI)
       normal:MEAN,STD        rate ~ N(MEAN, STD**2), clipped to [0, 1]
       lognormal:MEDIAN,SIGMA rate = MEDIAN * exp(SIGMA * N(0, 1)), clipped to [0, 1]
       negbin:MEAN,ALPHA      k ~ NegBin(mean MEAN*R*C, clustering ALPHA), clipped to R*C

   and ``k = round(rate * R * C)``. ``negbin`` is Stapper's clustered yield model: the
   count is Poisson with a Gamma-distributed mean, variance ``mu * (1 + mu / ALPHA)``;
   small ALPHA means strongly varying chips, ALPHA -> inf tends to Poisson.
2. **Placement** of the ``k`` distinct faulty PEs: ``"uniform"`` over the array, or
   ``"clustered"`` with the center-satellite model (Meyer & Pradhan, 1989):
   ``ceil(k / cluster_size)`` cluster centres uniform over the PEs; each faulty PE
   picks a centre uniformly and is displaced by ``round(N(0, cluster_radius**2))`` PEs
   in each axis, clipped to the array (so edges collect a little extra). A PE already
   taken is redrawn; after 50 rounds of redraws any remainder is placed uniformly over
   the free PEs (only happens when clusters are saturated, e.g. a tiny radius).
3. **Faults** on those PEs: :meth:`FaultMap.from_pes` (site, bit and polarity drawn).

Chip ``i`` gets its own generator, ``SeedSequence(seed, spawn_key=(i,))`` (the i-th
child of ``SeedSequence(seed).spawn``), so its id ``f"{id_prefix}-{i:05d}"``, rate and
fault map do not depend on ``n``: a smaller population is a prefix of a larger one.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from numbers import Integral, Real

import numpy as np

from simulator import SITES, ArrayConfig

from .errors import FaultError, FaultFileError
from .fault_map import FaultMap, _check_rate, _describe, read_npz, write_npz

__all__ = ["Population", "Chip", "SPATIAL_MODELS", "RATE_FORMS"]

FORMAT = "efat.Population"
SPATIAL_MODELS = ("uniform", "clustered")
RATE_FORMS = ("a float in [0, 1]", "a sequence of n floats", "uniform:LO,HI", "normal:MEAN,STD",
              "lognormal:MEDIAN,SIGMA", "negbin:MEAN,ALPHA")
_SPECS = ("uniform", "normal", "lognormal", "negbin")
_MAX_CLUSTER_ROUNDS = 50


@dataclass(frozen=True)
class Chip:
    """One chip of a :class:`Population`: its id, fault map and fault rate."""

    id: str
    fault_map: FaultMap
    rate: float


# -- rate models --------------------------------------------------------------------------

@dataclass(frozen=True)
class _RateModel:
    kind: str  # "const", "list" or one of _SPECS
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


def _rate_model(rates, n: int) -> _RateModel:
    if isinstance(rates, str):
        return _parse_spec(rates)
    if isinstance(rates, Real) and not isinstance(rates, bool):
        return _RateModel("const", (_check_rate(rates),))
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
    return _RateModel("list", tuple(float(r) for r in arr))


def _parse_spec(spec: str) -> _RateModel:
    def fail(why):
        return FaultError(f"bad rates spec {spec!r}: {why}; allowed forms: {', '.join(RATE_FORMS)}.")

    try:
        value = float(spec)
    except ValueError:
        value = None
    if value is not None:
        if not 0.0 <= value <= 1.0:
            raise fail("a constant rate must be in [0, 1]")
        return _RateModel("const", (value,))
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
    return _RateModel(name, (a, b))


# -- spatial placement ----------------------------------------------------------------------

def _place(cfg: ArrayConfig, k: int, rng, spatial: str, cluster_size: float, cluster_radius: float):
    """Bool ``(R, C)`` with exactly ``k`` PEs set."""
    pes = np.zeros(cfg.n_pes, bool)
    if spatial == "uniform" or k in (0, cfg.n_pes):
        pes[rng.choice(cfg.n_pes, size=k, replace=False)] = True
    else:
        pes[_center_satellite(cfg, k, rng, cluster_size, cluster_radius)] = True
    return pes.reshape(cfg.shape)


def _center_satellite(cfg: ArrayConfig, k: int, rng, cluster_size: float, cluster_radius: float):
    n_clusters = math.ceil(k / cluster_size)
    centres = np.stack([rng.integers(cfg.rows, size=n_clusters), rng.integers(cfg.cols, size=n_clusters)], 1)
    taken = np.zeros(cfg.n_pes, bool)
    picked: list[int] = []
    for _ in range(_MAX_CLUSTER_ROUNDS):
        need = k - len(picked)
        if need == 0:
            break
        xy = centres[rng.integers(n_clusters, size=need)]
        xy = xy + np.rint(rng.normal(0.0, cluster_radius, size=(need, 2))).astype(np.int64)
        r = np.clip(xy[:, 0], 0, cfg.rows - 1)
        c = np.clip(xy[:, 1], 0, cfg.cols - 1)
        for idx in (r * cfg.cols + c).tolist():
            if not taken[idx]:
                taken[idx] = True
                picked.append(idx)
    if len(picked) < k:  # saturated clusters: the rest uniformly over the free PEs
        picked.extend(rng.choice(np.flatnonzero(~taken), size=k - len(picked), replace=False).tolist())
    return np.array(picked, dtype=np.int64)


# -- the population ---------------------------------------------------------------------------

class Population:
    """An immutable, ordered collection of chips sharing one :class:`ArrayConfig`.

    Each chip has a stable string id and a :class:`FaultMap`. Faults are held sparsely
    (faulty PEs only), and fault maps are built when a chip is accessed, so large
    populations stay small in memory.

    Sequence behaviour: ``len(pop)``; iterating yields :class:`Chip` ``(id, fault_map,
    rate)``; ``pop[i]`` (int, negative allowed) and ``pop["chip-00003"]`` return a
    :class:`Chip`, ``pop[a:b]`` a smaller :class:`Population`; ``id in pop``. Two
    populations are equal when their configs, ids and fault maps are equal.

    Build one with :meth:`generate`, from fault maps with the constructor, or with
    :meth:`load`.

    Parameters
    ----------
    cfg : ArrayConfig
    fault_maps : sequence of FaultMap
        One per chip, all for ``cfg``.
    ids : sequence of str, optional
        Unique chip ids; default ``chip-00000``, ``chip-00001``, ...
    params : dict, optional
        JSON-serialisable record of how the population was made (kept in saved files).
    """

    def __init__(self, cfg: ArrayConfig, fault_maps: Sequence[FaultMap], ids=None, params=None):
        _check_cfg(cfg)
        fault_maps = list(fault_maps)
        _check_n(len(fault_maps))
        for i, fm in enumerate(fault_maps):
            if not isinstance(fm, FaultMap):
                raise FaultError(f"fault_maps[{i}] must be a FaultMap; got {type(fm).__name__}.")
            if fm.cfg != cfg:
                raise FaultError(f"fault_maps[{i}] is for a {_describe(fm.cfg)} array, not {_describe(cfg)}.")
        ids = _default_ids("chip", len(fault_maps)) if ids is None else list(ids)
        sparse = [fm.to_sparse() for fm in fault_maps]
        self._set(cfg, ids, [s[0] for s in sparse], [s[1] for s in sparse], params or {})

    def _set(self, cfg, ids, rcs, masks, params):
        if len(ids) != len(rcs) or not all(isinstance(i, str) and i for i in ids):
            raise FaultError(f"ids must be {len(rcs)} non-empty strings; got {len(ids)}.")
        if len(set(ids)) != len(ids):
            dup = next(i for i in ids if ids.count(i) > 1)
            raise FaultError(f"chip ids must be unique; {dup!r} appears more than once.")
        counts = np.array([len(r) for r in rcs], dtype=np.int64)
        self._cfg = cfg
        self._ids = tuple(ids)
        self._index = {chip_id: i for i, chip_id in enumerate(self._ids)}
        self._offsets = _frozen(np.concatenate([[0], np.cumsum(counts)]))
        self._pe_rc = _frozen(np.concatenate(rcs).reshape(-1, 2).astype(np.int32))
        self._pe_masks = _frozen(np.concatenate(masks).reshape(-1, len(SITES), 2).astype(np.int32))
        try:
            self._params = json.loads(json.dumps(params))  # a private, JSON-clean copy
        except (TypeError, ValueError) as e:
            raise FaultError(f"params must be JSON-serialisable; {e}.") from None

    # -- construction -----------------------------------------------------------------------
    @classmethod
    def generate(cls, cfg: ArrayConfig, n: int, rates="uniform:0.01,0.05", seed: int = 0,
                 spatial: str = "uniform", sites=SITES, bits=None, value=None, faults_per_pe: int = 1,
                 cluster_size: float = 4.0, cluster_radius: float = 1.0, id_prefix: str = "chip",
                 progress: Callable[[int], object] | None = None) -> Population:
        """Draw ``n`` chips (see the module docstring for the models).

        Parameters
        ----------
        cfg : ArrayConfig
        n : int >= 1
            Number of chips; chip ``i`` is the same whatever ``n`` is.
        rates : float, sequence of n floats, or str
            Per-chip fault rate: a constant in [0, 1], one rate per chip, or a spec
            ``"uniform:LO,HI"``, ``"normal:MEAN,STD"``, ``"lognormal:MEDIAN,SIGMA"``,
            ``"negbin:MEAN,ALPHA"``. Each chip gets exactly ``round(rate * R * C)``
            faulty PEs.
        seed : int >= 0
        spatial : {"uniform", "clustered"}
            Placement of the faulty PEs; ``"clustered"`` is the center-satellite model.
        sites, bits, value, faults_per_pe
            How each faulty PE's stuck-at faults are drawn; see :meth:`FaultMap.from_pes`.
        cluster_size : float >= 1
            Mean faulty PEs per cluster (``"clustered"`` only).
        cluster_radius : float > 0
            Standard deviation, in PEs, of a faulty PE's offset from its cluster centre.
        id_prefix : str
            Chip ids are ``f"{id_prefix}-{i:05d}"``.
        progress : callable, optional
            Called with 1 after each chip (e.g. a tqdm bar's ``update``).

        Returns
        -------
        Population
        """
        _check_cfg(cfg)
        _check_n(n)
        if isinstance(seed, bool) or not isinstance(seed, Integral) or seed < 0:
            raise FaultError(f"seed must be a non-negative int; got {seed!r}.")
        if spatial not in SPATIAL_MODELS:
            raise FaultError(f"spatial must be one of {list(SPATIAL_MODELS)}; got {spatial!r}.")
        _check_real("cluster_size", cluster_size, 1.0, "a number >= 1")
        _check_real("cluster_radius", cluster_radius, 0.0, "a number > 0", strict=True)
        if not isinstance(id_prefix, str) or not id_prefix:
            raise FaultError(f"id_prefix must be a non-empty string; got {id_prefix!r}.")
        model = _rate_model(rates, n)
        rcs, masks = [], []
        for i in range(n):
            rng = np.random.default_rng(np.random.SeedSequence(int(seed), spawn_key=(i,)))
            k = model.n_faulty(i, rng, cfg.n_pes)
            pes = _place(cfg, k, rng, spatial, float(cluster_size), float(cluster_radius))
            rc, m = FaultMap.from_pes(cfg, pes, rng, sites, bits, value, faults_per_pe).to_sparse()
            rcs.append(rc)
            masks.append(m)
            if progress is not None:
                progress(1)
        params = dict(n=n, seed=int(seed), rates=_jsonable(rates), spatial=spatial, sites=_jsonable(sites),
                      bits=_jsonable(bits), value=_jsonable(value), faults_per_pe=int(faults_per_pe),
                      cluster_size=float(cluster_size), cluster_radius=float(cluster_radius), id_prefix=id_prefix)
        pop = cls.__new__(cls)
        pop._set(cfg, _default_ids(id_prefix, n), rcs, masks, params)
        return pop

    # -- sequence behaviour --------------------------------------------------------------------
    @property
    def cfg(self) -> ArrayConfig:
        return self._cfg

    @property
    def ids(self) -> tuple[str, ...]:
        return self._ids

    @property
    def n_faulty(self) -> np.ndarray:
        """Int array ``(n,)``: faulty PEs per chip."""
        return np.diff(self._offsets)

    @property
    def rates(self) -> np.ndarray:
        """Float array ``(n,)``: each chip's fault rate (faulty PEs / (R * C))."""
        return self.n_faulty / self._cfg.n_pes

    @property
    def params(self) -> dict:
        """How the population was generated (a copy; empty if built from fault maps)."""
        return json.loads(json.dumps(self._params))

    def __len__(self) -> int:
        return len(self._ids)

    def __iter__(self) -> Iterator[Chip]:
        return (self._chip(i) for i in range(len(self)))

    def __contains__(self, chip_id) -> bool:
        return chip_id in self._index

    def __getitem__(self, key):
        if isinstance(key, slice):
            idx = range(len(self))[key]
            _check_n(len(idx))
            out = Population.__new__(Population)
            out._set(self._cfg, [self._ids[i] for i in idx], [self._sparse(i)[0] for i in idx],
                     [self._sparse(i)[1] for i in idx], self._params)
            return out
        if isinstance(key, str):
            if key not in self._index:
                raise KeyError(f"no chip with id {key!r} in this population of {len(self)} chips "
                               f"(ids {self._ids[0]!r} .. {self._ids[-1]!r}).")
            return self._chip(self._index[key])
        if isinstance(key, Integral) and not isinstance(key, bool):
            if not -len(self) <= key < len(self):
                raise IndexError(f"chip index {key} out of range for a population of {len(self)} chips.")
            return self._chip(int(key) % len(self))
        raise TypeError(f"index a Population with an int, a chip id or a slice; got {type(key).__name__}.")

    def _sparse(self, i: int):
        a, b = self._offsets[i], self._offsets[i + 1]
        return self._pe_rc[a:b], self._pe_masks[a:b]

    def _chip(self, i: int) -> Chip:
        fm = FaultMap.from_sparse(self._cfg, *self._sparse(i))
        return Chip(self._ids[i], fm, fm.rate)

    def __eq__(self, other):
        if not isinstance(other, Population):
            return NotImplemented
        return (self._cfg == other._cfg and self._ids == other._ids
                and np.array_equal(self._offsets, other._offsets)
                and np.array_equal(self._pe_rc, other._pe_rc)
                and np.array_equal(self._pe_masks, other._pe_masks))

    __hash__ = None

    def __repr__(self):
        r = self.rates
        return (f"Population({len(self)} chips, {_describe(self._cfg)}, "
                f"rate {r.min():.4f}..{r.max():.4f}, mean {r.mean():.4f})")

    # -- persistence ---------------------------------------------------------------------------
    def save(self, path) -> None:
        """Write the population to one ``.npz`` (sparse faults, ids, parameters as JSON)."""
        write_npz(path, kind=FORMAT, cfg=self._cfg, ids=np.array(self._ids, dtype=str),
                  offsets=self._offsets, pe_rc=self._pe_rc.astype(_index_dtype(self._cfg)),
                  pe_masks=self._pe_masks, params=np.array(json.dumps(self._params)))

    @classmethod
    def load(cls, path) -> Population:
        """Read a file written by :meth:`save`.

        Raises
        ------
        FaultFileError
            The file is missing, not a readable ``.npz``, of another kind or version,
            or its contents are inconsistent; the message names the path and problem.
        """
        data, cfg = read_npz(path, FORMAT, ("ids", "offsets", "pe_rc", "pe_masks", "params"))
        pop = cls.__new__(cls)
        try:
            pop._set(cfg, *_decode(cfg, data))
        except FaultError as e:
            raise FaultFileError(f"{path}: {e}") from None
        return pop

    # -- reporting -----------------------------------------------------------------------------
    def summary(self, bins: int = 10) -> dict:
        """Statistics as plain Python types (JSON-serialisable).

        Returns
        -------
        dict
            ``n``, ``shape``, ``precision``, ``rate`` and ``faulty_pes`` (each with
            ``min``, ``mean``, ``median``, ``max``, ``std``), and ``histogram`` of the
            rates (``counts``, ``edges``; ``bins`` bins over the observed range).
        """
        rates, counts = self.rates, self.n_faulty
        lo, hi = float(rates.min()), float(rates.max())
        if lo == hi:
            lo, hi = max(0.0, lo - 0.5 / self._cfg.n_pes), min(1.0, hi + 0.5 / self._cfg.n_pes)
        hist, edges = np.histogram(rates, bins=bins, range=(lo, hi))
        return dict(
            n=len(self),
            shape=list(self._cfg.shape),
            precision=self._cfg.precision.name,
            rate=_stats(rates),
            faulty_pes=_stats(counts),
            histogram=dict(counts=hist.tolist(), edges=edges.tolist()),
        )

    def summary_text(self, bins: int = 10, width: int = 40) -> str:
        """A short human-readable table with a text histogram of the fault rates."""
        s = self.summary(bins)
        r, f = s["rate"], s["faulty_pes"]
        keys = ("min", "mean", "median", "max")
        lines = [
            f"Population: {s['n']} chips on a {_describe(self._cfg)} array",
            f"{'':12}" + "".join(f"{k:>10}" for k in keys),
            f"{'fault rate':12}" + "".join(f"{r[k]:>10.2%}" for k in keys),
            f"{'faulty PEs':12}" + "".join(f"{f[k]:>10.1f}" for k in keys),
            "Fault-rate histogram (chips):",
        ]
        counts, edges = s["histogram"]["counts"], s["histogram"]["edges"]
        top = max(counts) or 1
        for c, a, b in zip(counts, edges[:-1], edges[1:]):
            lines.append(f"  {a:7.2%} - {b:7.2%} |{'#' * round(width * c / top):<{width}} {c}")
        return "\n".join(lines)

    def plot(self, path, example=None) -> None:
        """Save a PNG: rate histogram, per-PE count of faulty chips, and one example chip.

        Parameters
        ----------
        path : str or path-like
        example : int or str, optional
            Chip to draw (index or id); default the chip with the median fault rate.
        """
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        if example is None:
            example = int(np.argsort(self.rates, kind="stable")[(len(self) - 1) // 2])
        chip = self[example]
        heat = np.bincount(self._pe_rc[:, 0].astype(np.int64) * self._cfg.cols + self._pe_rc[:, 1],
                           minlength=self._cfg.n_pes).reshape(self._cfg.shape)
        fig = Figure(figsize=(15, 4.6), layout="constrained")
        FigureCanvasAgg(fig)
        ax1, ax2, ax3 = fig.subplots(1, 3)
        ax1.hist(self.rates * 100, bins=min(30, max(5, len(self) // 5)), color="tab:blue", edgecolor="white")
        ax1.yaxis.get_major_locator().set_params(integer=True)
        ax1.set(title=f"Fault rate of {len(self)} chips", xlabel="fault rate (% of PEs)", ylabel="chips")
        im = ax2.imshow(heat, cmap="viridis", interpolation="nearest")
        ax2.set(title="Chips with this PE faulty", xlabel="PE column", ylabel="PE row")
        fig.colorbar(im, ax=ax2, label="chips")
        ax3.imshow(chip.fault_map.faulty, cmap="Greys", vmin=0, vmax=1, interpolation="nearest")
        ax3.set(title=f"Example chip {chip.id}: {chip.fault_map.n_faulty} faulty PEs ({chip.rate:.2%})",
                xlabel="PE column", ylabel="PE row")
        fig.suptitle(f"Population on a {_describe(self._cfg)} array")
        fig.savefig(path, dpi=100)


# -- helpers ---------------------------------------------------------------------------------

def _decode(cfg: ArrayConfig, data):
    """Validate the arrays of a saved population; returns what :meth:`Population._set` takes."""
    ids, offsets, rc, masks = data["ids"], data["offsets"], data["pe_rc"], data["pe_masks"]
    if ids.dtype.kind != "U" or ids.ndim != 1 or len(ids) == 0:
        raise FaultError(f"ids must be a non-empty 1-d string array; got {ids.dtype} {ids.shape}.")
    n = len(ids)
    if offsets.dtype.kind not in "iu" or offsets.shape != (n + 1,):
        raise FaultError(f"offsets must be {n + 1} integers for {n} chips; got {offsets.dtype} {offsets.shape}.")
    p = len(rc)
    if rc.dtype.kind not in "iu" or rc.shape != (p, 2) or masks.dtype != np.int32 or masks.shape != (p, len(SITES), 2):
        raise FaultError(f"fault arrays have bad types or shapes: pe_rc {rc.dtype} {rc.shape}, "
                         f"pe_masks {masks.dtype} {masks.shape}.")
    offsets = offsets.astype(np.int64)
    if offsets[0] != 0 or offsets[-1] != p or (np.diff(offsets) < 0).any():
        raise FaultError(f"offsets must rise from 0 to {p} (the number of faulty PEs).")
    rc = rc.astype(np.int64)
    if p and (rc.min() < 0 or (rc[:, 0] >= cfg.rows).any() or (rc[:, 1] >= cfg.cols).any()):
        raise FaultError(f"PE indices outside the {_describe(cfg)} array.")
    key = np.repeat(np.arange(n), np.diff(offsets)) * cfg.n_pes + rc[:, 0] * cfg.cols + rc[:, 1]
    order = np.argsort(key, kind="stable")
    if (np.diff(key[order]) == 0).any():
        raise FaultError("a chip lists the same PE twice.")
    rc, masks = rc[order], masks[order].copy()
    for s, width in enumerate(cfg.precision.widths()):
        if width < 32 and not np.array_equal((masks[:, s] << (32 - width)) >> (32 - width), masks[:, s]):
            raise FaultError(f"{SITES[s]} masks are not sign-extended {width}-bit patterns.")
    masks[:, :, 0] &= ~masks[:, :, 1]
    if ((masks[:, :, 0] == -1) & (masks[:, :, 1] == 0)).all(axis=1).any():
        raise FaultError("a PE listed as faulty has no stuck bit.")
    try:
        params = json.loads(str(data["params"]))
    except ValueError:
        params = None
    if not isinstance(params, dict):
        raise FaultError("params is not a JSON object.")
    split = offsets[1:-1]
    return [str(i) for i in ids], np.split(rc, split), np.split(masks, split), params


def _stats(x: np.ndarray) -> dict:
    return dict(min=float(x.min()), mean=float(x.mean()), median=float(np.median(x)),
                max=float(x.max()), std=float(x.std()))


def _index_dtype(cfg: ArrayConfig):
    return np.uint16 if max(cfg.shape) <= np.iinfo(np.uint16).max else np.int32


def _default_ids(prefix: str, n: int) -> list[str]:
    return [f"{prefix}-{i:05d}" for i in range(n)]


def _frozen(a: np.ndarray) -> np.ndarray:
    a = np.ascontiguousarray(a)
    a.setflags(write=False)
    return a


def _jsonable(x):
    if x is None or isinstance(x, (str, bool, int, float)):
        return x
    if isinstance(x, Mapping):
        return {str(k): float(v) for k, v in x.items()}
    return np.asarray(x).tolist()


def _check_cfg(cfg) -> None:
    if not isinstance(cfg, ArrayConfig):
        raise FaultError(f"cfg must be an ArrayConfig; got {type(cfg).__name__}.")


def _check_n(n) -> None:
    if isinstance(n, bool) or not isinstance(n, Integral) or n < 1:
        raise FaultError(f"a population needs n >= 1 chips (an int); got {n!r}.")


def _check_real(name: str, x, lo: float, want: str, strict: bool = False) -> None:
    ok = isinstance(x, Real) and not isinstance(x, bool) and math.isfinite(x) and (x > lo if strict else x >= lo)
    if not ok:
        raise FaultError(f"{name} must be {want}; got {x!r}.")
