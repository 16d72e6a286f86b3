"""Populations of faulty chips: one fault map per manufactured chip.

A population is drawn in three steps per chip (``docs/semantics.md``, "Populations"):

1. **Fault rate**: the number of faulty PEs comes from ``rates`` (:mod:`faults.rates`:
   a constant, one rate per chip, or a distribution such as Stapper's ``negbin``).
2. **Placement** of those distinct faulty PEs, uniform or clustered
   (:mod:`faults.placement`, the center-satellite model).
3. **Faults** on those PEs: :meth:`FaultMap.from_pes` (site, bit and polarity drawn).

Chip ``i`` gets its own generator, ``SeedSequence(seed, spawn_key=(i,))`` (the i-th
child of ``SeedSequence(seed).spawn``), so its id ``f"{id_prefix}-{i:05d}"``, rate and
fault map do not depend on ``n``: a smaller population is a prefix of a larger one.

:meth:`Population.stream` draws the same chips one at a time, as they are iterated (a
:class:`ChipStream`): evaluating ten thousand chips then holds one fault map at a time,
where a :class:`Population` holds every chip's faults (sparsely).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from numbers import Integral, Real

import numpy as np

from simulator import SITES, ArrayConfig

from . import population_report
from .errors import FaultError, FaultFileError
from .fault_map import FaultMap, describe
from .files import decode_population, read_npz, write_npz
from .placement import SPATIAL_MODELS, place
from .rates import rate_model

__all__ = ["Population", "Chip", "ChipStream"]

FORMAT = "efat.Population"


@dataclass(frozen=True)
class Chip:
    """One chip of a :class:`Population`: its id, fault map and fault rate."""

    id: str
    fault_map: FaultMap
    rate: float


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
                raise FaultError(f"fault_maps[{i}] is for a {describe(fm.cfg)} array, not {describe(cfg)}.")
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
        # copy=False: the concatenation is new already (one copy fewer at the peak of a large population)
        self._pe_rc = _frozen(np.concatenate(rcs).reshape(-1, 2).astype(np.int32, copy=False))
        self._pe_masks = _frozen(np.concatenate(masks).reshape(-1, len(SITES), 2).astype(np.int32, copy=False))
        try:
            self._params = json.loads(json.dumps(params, allow_nan=False))  # a private, JSON-clean copy
        except (TypeError, ValueError) as e:
            raise FaultError(f"params must be JSON-serialisable; {e}.") from None
        if not isinstance(self._params, dict):
            raise FaultError(f"params must be a dict; got {type(params).__name__}.")
        if "n" in self._params and self._params["n"] != len(self._ids):
            raise FaultError(f"params say n = {self._params['n']!r} chips, but there are {len(self._ids)}.")

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
        draw, params = _drawer(cfg, n, rates, seed, spatial, sites, bits, value, faults_per_pe, cluster_size,
                               cluster_radius, id_prefix)
        rcs, masks = [], []
        for i in range(n):
            rc, m = draw(i).to_sparse()
            rcs.append(rc)
            masks.append(m)
            if progress is not None:
                progress(1)
        pop = cls.__new__(cls)
        pop._set(cfg, _default_ids(id_prefix, n), rcs, masks, params())
        return pop

    @classmethod
    def stream(cls, cfg: ArrayConfig, n: int, rates="uniform:0.01,0.05", seed: int = 0,
               spatial: str = "uniform", sites=SITES, bits=None, value=None, faults_per_pe: int = 1,
               cluster_size: float = 4.0, cluster_radius: float = 1.0, id_prefix: str = "chip") -> ChipStream:
        """The chips :meth:`generate` draws with the same arguments, drawn one at a time as
        they are iterated and never kept: memory stays flat in ``n``.

        ``list(Population.stream(...)) == list(Population.generate(...))``, chip for chip
        (ids, fault maps, rates). The arguments are checked here, not on first use.

        Returns
        -------
        ChipStream
            Re-iterable (each pass draws the chips again, the same ones), with ``len`` and
            ``cfg``; ``to_population()`` builds the :class:`Population`.
        """
        draw, params = _drawer(cfg, n, rates, seed, spatial, sites, bits, value, faults_per_pe, cluster_size,
                               cluster_radius, id_prefix)
        draw(0)  # the fault arguments (sites, bits, value, ...) are checked where a chip is drawn
        return ChipStream(cfg, n, id_prefix, draw, params())

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
    def offsets(self) -> np.ndarray:
        """Read-only int64 ``(n + 1,)``: chip ``i``'s faulty PEs are
        ``pe_rc[offsets[i]:offsets[i + 1]]``."""
        return self._offsets

    @property
    def pe_rc(self) -> np.ndarray:
        """Read-only int32 ``(P, 2)``: ``(row, col)`` of every faulty PE, chip after chip,
        row-major within a chip (the population's sparse store, without building fault maps)."""
        return self._pe_rc

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
                     [self._sparse(i)[1] for i in idx], self._slice_params(idx))
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

    def _slice_params(self, idx: range) -> dict:
        """A prefix of a generated population is the population generated with that ``n``;
        any other selection records where it came from."""
        if idx.start == 0 and idx.step == 1:
            return {**self._params, "n": len(idx)} if "n" in self._params else dict(self._params)
        return {"selected_from": self._params, "positions": [idx.start, idx.stop, idx.step]}

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
        return (f"Population({len(self)} chips, {describe(self._cfg)}, "
                f"rate {r.min():.4f}..{r.max():.4f}, mean {r.mean():.4f})")


    # -- persistence ---------------------------------------------------------------------------
    def save(self, path) -> None:
        """Write the population to one ``.npz`` (sparse faults, ids, parameters as JSON), atomically."""
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
            pop._set(cfg, *decode_population(cfg, data))
        except FaultError as e:
            raise FaultFileError(path, str(e)) from None
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
        return population_report.summary(self, bins)

    def summary_text(self, bins: int = 10, width: int = 40) -> str:
        """A short human-readable table with a text histogram of the fault rates."""
        return population_report.summary_text(self, bins, width)

    def plot(self, path, example=None) -> None:
        """Save a PNG: rate histogram, per-PE count of faulty chips, and one example chip.

        Parameters
        ----------
        path : str or path-like
        example : int or str, optional
            Chip to draw (index or id); default the chip with the median fault rate.
        """
        population_report.plot(self, path, example)


class ChipStream:
    """The chips of :meth:`Population.stream`: drawn one at a time as they are iterated.

    Nothing but the drawing parameters is kept, so iterating over a million chips holds one
    chip's fault map at a time. Each iteration draws the chips again, the same ones, in
    order (chip ``i`` from ``SeedSequence(seed, spawn_key=(i,))``, as in a
    :class:`Population`).
    """

    def __init__(self, cfg: ArrayConfig, n: int, id_prefix: str, draw: Callable[[int], FaultMap], params: dict):
        self._cfg, self._n, self._prefix, self._draw, self._params = cfg, n, id_prefix, draw, params

    @property
    def cfg(self) -> ArrayConfig:
        return self._cfg

    @property
    def params(self) -> dict:
        """How the chips are drawn (a copy; what the equivalent Population records)."""
        return json.loads(json.dumps(self._params))

    def __len__(self) -> int:
        return self._n

    def __iter__(self) -> Iterator[Chip]:
        for i in range(self._n):
            fm = self._draw(i)
            yield Chip(f"{self._prefix}-{i:05d}", fm, fm.rate)

    def to_population(self) -> Population:
        """The :class:`Population` of these chips (all of them in memory, sparsely)."""
        rcs, masks = zip(*(self._draw(i).to_sparse() for i in range(self._n)))
        pop = Population.__new__(Population)
        pop._set(self._cfg, _default_ids(self._prefix, self._n), list(rcs), list(masks), self._params)
        return pop

    def __repr__(self):
        return f"ChipStream({self._n} chips, {describe(self._cfg)}, seed {self._params['seed']})"


def _drawer(cfg, n, rates, seed, spatial, sites, bits, value, faults_per_pe, cluster_size, cluster_radius,
            id_prefix) -> tuple[Callable[[int], FaultMap], Callable[[], dict]]:
    """Check the arguments of :meth:`Population.generate`; ``(draw, params)`` where
    ``draw(i)`` is chip ``i``'s fault map and ``params()`` the record of the arguments."""
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
    model = rate_model(rates, n)
    seed, size, radius = int(seed), float(cluster_size), float(cluster_radius)

    def draw(i: int) -> FaultMap:
        rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(i,)))
        k = model.n_faulty(i, rng, cfg.n_pes)
        pes = place(cfg, k, rng, spatial, size, radius)
        return FaultMap.from_pes(cfg, pes, rng, sites, bits, value, faults_per_pe)

    def params() -> dict:  # after drawing: a bad ``sites`` is the FaultError of from_pes
        return dict(n=n, seed=seed, rates=_jsonable(rates), spatial=spatial, sites=_jsonable(sites),
                    bits=_jsonable(bits), value=_jsonable(value), faults_per_pe=int(faults_per_pe),
                    cluster_size=size, cluster_radius=radius, id_prefix=id_prefix)

    return draw, params


# -- helpers ---------------------------------------------------------------------------------

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
