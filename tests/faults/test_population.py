"""Population: rate models, placement models, determinism, persistence, reporting."""

import json
import zipfile

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from faults import Chip, ChipStream, FaultError, FaultFileError, FaultMap, Population
from simulator import ArrayConfig, IntPrecision

CFG = ArrayConfig(16, 16)


def _mean_nn_distance(faulty: np.ndarray) -> float:
    """Mean Euclidean distance from each faulty PE to its nearest faulty neighbour."""
    xy = np.argwhere(faulty).astype(float)
    d = np.sqrt(((xy[:, None] - xy[None]) ** 2).sum(-1))
    np.fill_diagonal(d, np.inf)
    return float(d.min(axis=1).mean())


# -- determinism ----------------------------------------------------------------------------

@pytest.mark.parametrize("spatial", ["uniform", "clustered"])
def test_same_seed_same_population_other_seed_differs(spatial):
    a = Population.generate(CFG, 8, rates="uniform:0.02,0.1", seed=5, spatial=spatial)
    assert a == Population.generate(CFG, 8, rates="uniform:0.02,0.1", seed=5, spatial=spatial)
    assert a != Population.generate(CFG, 8, rates="uniform:0.02,0.1", seed=6, spatial=spatial)


@settings(max_examples=15, deadline=None)
@given(n=st.integers(1, 6), extra=st.integers(1, 6), seed=st.integers(0, 2**32),
       spatial=st.sampled_from(["uniform", "clustered"]),
       rates=st.sampled_from(["uniform:0,0.2", "negbin:0.05,0.7", "lognormal:0.03,0.5", 0.05]))
def test_smaller_population_is_a_prefix(n, extra, seed, spatial, rates):
    small = Population.generate(CFG, n, rates=rates, seed=seed, spatial=spatial)
    big = Population.generate(CFG, n + extra, rates=rates, seed=seed, spatial=spatial)
    assert big[:n] == small
    assert big.ids[:n] == small.ids == tuple(f"chip-{i:05d}" for i in range(n))


@settings(max_examples=15, deadline=None)
@given(n=st.integers(1, 8), seed=st.integers(0, 2**32), spatial=st.sampled_from(["uniform", "clustered"]),
       rates=st.sampled_from(["uniform:0,0.2", "negbin:0.05,0.7", "lognormal:0.03,0.5", 0.05]),
       faults_per_pe=st.integers(1, 3))
def test_a_stream_draws_the_chips_of_the_population(n, seed, spatial, rates, faults_per_pe):
    kw = dict(rates=rates, seed=seed, spatial=spatial, faults_per_pe=faults_per_pe)
    pop = Population.generate(CFG, n, **kw)
    stream = Population.stream(CFG, n, **kw)
    assert isinstance(stream, ChipStream) and len(stream) == n and stream.cfg == CFG
    chips = list(stream)
    assert chips == list(pop) == list(stream)  # the same chips, and again on a second pass
    assert [c.id for c in chips] == list(pop.ids) and [c.rate for c in chips] == pop.rates.tolist()
    assert all(c.fault_map.masks.dtype == np.int32 for c in chips)
    assert stream.to_population() == pop and stream.params == pop.params


def test_a_stream_keeps_no_chip():
    import weakref

    stream = Population.stream(CFG, 50, rates=0.05, seed=0)
    refs = []
    for chip in stream:
        assert all(r() is None for r in refs)  # the chips before this one are gone
        refs.append(weakref.ref(chip.fault_map))
    assert vars(stream).keys() == {"_cfg", "_n", "_prefix", "_draw", "_params"}  # and no list of them is kept


# -- exact counts and rate models ------------------------------------------------------------

@settings(max_examples=25, deadline=None)
@given(rate=st.floats(0, 1), spatial=st.sampled_from(["uniform", "clustered"]),
       size=st.floats(1, 10), radius=st.floats(0.1, 5), seed=st.integers(0, 1000))
def test_each_chip_has_exactly_round_rate_faulty_pes(rate, spatial, size, radius, seed):
    cfg = ArrayConfig(8, 6)
    pop = Population.generate(cfg, 2, rates=rate, seed=seed, spatial=spatial,
                              cluster_size=size, cluster_radius=radius)
    for chip in pop:
        assert chip.fault_map.n_faulty == round(rate * cfg.n_pes)
        assert chip.rate == chip.fault_map.rate


def test_rate_list_gives_each_chip_its_rate():
    rates = [0.0, 0.25, 0.5, 1.0]
    pop = Population.generate(CFG, 4, rates=rates, spatial="clustered")
    np.testing.assert_allclose(pop.rates, rates)
    assert pop.n_faulty.tolist() == [0, 64, 128, 256]


@pytest.mark.parametrize("spec, mean, std", [
    ("uniform:0.02,0.08", 0.05, 0.06 / 12**0.5),
    ("normal:0.05,0.01", 0.05, 0.01),
    ("lognormal:0.04,0.3", 0.04 * np.exp(0.3**2 / 2), None),
    ("negbin:0.05,2", 0.05, np.sqrt(0.05 * 1024 * (1 + 0.05 * 1024 / 2)) / 1024),
])
def test_rate_distributions_have_the_right_moments(spec, mean, std):
    pop = Population.generate(ArrayConfig(32, 32), 400, rates=spec, seed=1, sites=("psum",))
    assert pop.rates.mean() == pytest.approx(mean, rel=0.06)
    if std is not None:
        assert pop.rates.std() == pytest.approx(std, rel=0.15)
    if spec.startswith("lognormal"):
        assert np.median(pop.rates) == pytest.approx(0.04, rel=0.06)


def test_negbin_is_overdispersed_compared_with_poisson():
    pop = Population.generate(ArrayConfig(32, 32), 400, rates="negbin:0.02,0.5", seed=2, sites=("psum",))
    mu = 0.02 * 1024
    assert pop.n_faulty.var() > 5 * mu  # Poisson would give var == mu; here mu * (1 + mu / 0.5)


def test_clustered_placement_is_more_clustered_than_uniform():
    cfg = ArrayConfig(32, 32)
    kw = dict(rates=0.04, seed=3, sites=("weight",))
    uni = Population.generate(cfg, 20, spatial="uniform", **kw)
    clu = Population.generate(cfg, 20, spatial="clustered", cluster_size=5, cluster_radius=1.0, **kw)
    d_uni = np.mean([_mean_nn_distance(c.fault_map.faulty) for c in uni])
    d_clu = np.mean([_mean_nn_distance(c.fault_map.faulty) for c in clu])
    assert d_clu < 0.6 * d_uni


def test_saturated_clusters_fall_back_to_uniform_and_stay_exact():
    pop = Population.generate(ArrayConfig(8, 8), 3, rates=0.9, spatial="clustered",
                              cluster_size=50, cluster_radius=0.1)
    assert pop.n_faulty.tolist() == [58, 58, 58]


def test_fault_options_are_passed_to_from_pes():
    pop = Population.generate(CFG, 3, rates=0.1, sites=("psum",), bits=[30], value=1)
    for chip in pop:
        assert {(f.site, f.bit, f.value) for _, _, f in chip.fault_map.faults()} == {("psum", 30, 1)}


# -- sequence behaviour ----------------------------------------------------------------------

def test_indexing_iteration_and_ids():
    pop = Population.generate(CFG, 5, rates=0.05, seed=1, id_prefix="wafer7")
    assert len(pop) == 5 and pop.cfg == CFG
    assert pop.ids[2] == "wafer7-00002" and "wafer7-00002" in pop
    chip = pop["wafer7-00002"]
    assert isinstance(chip, Chip) and chip == pop[2] == pop[-3] == list(pop)[2]
    assert isinstance(chip.fault_map, FaultMap) and chip.rate == pop.rates[2]
    with pytest.raises(KeyError, match="no chip with id 'chip-00002'"):
        pop["chip-00002"]
    with pytest.raises(IndexError, match="out of range"):
        pop[5]
    with pytest.raises(TypeError):
        pop[1.0]


def test_constructor_from_fault_maps_and_rates_are_read_only():
    maps = [FaultMap.random(CFG, r, seed=i) for i, r in enumerate([0.0, 0.1, 0.2])]
    pop = Population(CFG, maps, ids=["a", "b", "c"])
    assert [c.fault_map for c in pop] == maps and pop["b"].fault_map == maps[1]
    assert pop.rates.tolist() == [m.rate for m in maps]
    with pytest.raises(ValueError):
        pop._pe_rc[0, 0] = 1
    with pytest.raises(FaultError, match="unique"):
        Population(CFG, maps, ids=["a", "a", "c"])
    with pytest.raises(FaultError, match="4x4"):
        Population(CFG, [FaultMap.empty(ArrayConfig(4, 4))])


# -- validation --------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, match", [
    (dict(n=0), "n >= 1.*got 0"),
    (dict(n=2.5), "got 2.5"),
    (dict(rates=1.5), "1.5"),
    (dict(rates=-0.1), "-0.1"),
    (dict(rates=[0.1, 0.2]), "2 values but n = 3"),
    (dict(rates=[0.1, 0.2, 7.0]), "rates\\[2\\] = 7.0"),
    (dict(rates="banana"), "'banana'.*allowed forms.*negbin:MEAN,ALPHA"),
    (dict(rates="uniform:0.2"), "'uniform:0.2'.*two numbers"),
    (dict(rates="uniform:0.3,0.1"), "LO <= HI"),
    (dict(rates="normal:0.1,-1"), "STD >= 0"),
    (dict(rates="lognormal:0,0.5"), "MEDIAN in \\(0, 1\\]"),
    (dict(rates="negbin:0.1,0"), "ALPHA > 0"),
    (dict(rates="2.0"), "'2.0'"),
    (dict(spatial="gaussian"), "spatial.*'gaussian'"),
    (dict(spatial="clustered", cluster_size=0.5), "cluster_size.*0.5"),
    (dict(spatial="clustered", cluster_radius=0), "cluster_radius.*got 0"),
    (dict(seed=-1), "seed.*-1"),
    (dict(sites=("psum", "alu")), "'alu'"),
    (dict(faults_per_pe=0), "faults_per_pe"),
])
def test_bad_inputs_raise_fault_error_naming_the_value(kwargs, match):
    args = dict(cfg=CFG, n=3, rates=0.05) | kwargs
    for make in (Population.generate, Population.stream):  # a stream checks them when made, not when iterated
        with pytest.raises(FaultError, match=match):
            make(**args)


def test_cfg_must_be_an_array_config():
    with pytest.raises(FaultError, match="ArrayConfig; got tuple"):
        Population.generate((16, 16), 2)


# -- persistence --------------------------------------------------------------------------------

def test_save_load_round_trip(tmp_path):
    cfg = ArrayConfig(12, 20, IntPrecision(4, 6, 12, 24))
    pop = Population.generate(cfg, 6, rates="normal:0.1,0.05", spatial="clustered", seed=9, faults_per_pe=3)
    path = tmp_path / "pop.npz"
    pop.save(path)
    back = Population.load(path)
    assert back == pop and back.cfg == cfg and back.ids == pop.ids
    assert [c.fault_map for c in back] == [c.fault_map for c in pop]
    assert back.params["rates"] == "normal:0.1,0.05" and back.params["spatial"] == "clustered"


def test_large_population_file_is_small(tmp_path):
    pop = Population.generate(ArrayConfig(64, 64), 50, rates="uniform:0.01,0.05", seed=0)
    path = tmp_path / "big.npz"
    pop.save(path)
    per_faulty_pe = path.stat().st_size / pop.n_faulty.sum()
    assert per_faulty_pe < 8  # bytes: ~3 MB for 1000 chips of 128x128 at 3%
    assert Population.load(path) == pop


def _rewrite(src, dst, **changes):
    with np.load(src) as f:
        data = {k: f[k] for k in f.files}
    data.update(changes)
    np.savez(dst, **data)


@pytest.fixture
def saved(tmp_path):
    pop = Population.generate(CFG, 4, rates=0.1, seed=0)
    path = tmp_path / "pop.npz"
    pop.save(path)
    return pop, path


def test_missing_truncated_and_garbage_files(saved, tmp_path):
    _, path = saved
    with pytest.raises(FaultFileError, match="nope.npz: no such file"):
        Population.load(tmp_path / "nope.npz")
    cut = tmp_path / "cut.npz"
    cut.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(FaultFileError, match="cut.npz"):
        Population.load(cut)
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip at all" * 10)
    with pytest.raises(FaultFileError, match="junk.npz: not a readable"):
        Population.load(junk)


def test_flipped_bytes_are_reported(saved, tmp_path):
    _, path = saved
    raw = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as z:
        info = z.getinfo("pe_masks.npy")
    start = info.header_offset + 30 + len(info.filename) + len(info.extra) + 5
    raw[start:start + 20] = bytes(20)
    bad = tmp_path / "flipped.npz"
    bad.write_bytes(bytes(raw))
    with pytest.raises(FaultFileError, match="flipped.npz"):
        Population.load(bad)


def test_foreign_kind_is_rejected(tmp_path):
    path = tmp_path / "map.npz"
    FaultMap.random(CFG, 0.1).save(path)
    with pytest.raises(FaultFileError, match="map.npz: not a efat.Population file"):
        Population.load(path)


@pytest.mark.parametrize("change, match", [
    (lambda d: dict(offsets=d["offsets"][:-1]), "offsets"),
    (lambda d: dict(offsets=d["offsets"][::-1].copy()), "offsets must rise"),
    (lambda d: dict(pe_rc=d["pe_rc"] + 100), "outside the 16x16"),
    (lambda d: dict(pe_rc=np.repeat(d["pe_rc"][:1], len(d["pe_rc"]), 0)), "same PE twice"),
    (lambda d: dict(pe_masks=np.full_like(d["pe_masks"], 0x7FFF)), "sign-extended"),
    (lambda d: dict(ids=np.array(["x"] * len(d["ids"]))), "unique"),
    (lambda d: dict(params=np.array("{not json")), "params"),
    (lambda d: dict(shape=np.array([0, 16])), "bad array header"),
    (lambda d: dict(version=np.array(99)), "version 99"),
    (lambda d: dict(kind=np.array("efat.Other")), "holds a efat.Other, expected a efat.Population"),
])
def test_inconsistent_contents_are_rejected(saved, tmp_path, change, match):
    _, path = saved
    with np.load(path) as f:
        data = {k: f[k] for k in f.files}
    bad = tmp_path / "bad.npz"
    _rewrite(path, bad, **change(data))
    with pytest.raises(FaultFileError, match=f"bad.npz: .*{match}"):
        Population.load(bad)


# -- reporting ------------------------------------------------------------------------------------

def test_summary_numbers():
    pop = Population.generate(ArrayConfig(10, 10), 4, rates=[0.1, 0.12, 0.35, 0.6])
    s = pop.summary(bins=5)
    assert s["n"] == 4 and s["shape"] == [10, 10] and s["precision"] == "int8x8->int32"
    assert s["rate"] == pytest.approx(dict(min=0.1, mean=0.2925, median=0.235, max=0.6, std=np.std([.1, .12, .35, .6])))
    assert s["faulty_pes"]["median"] == 23.5 and s["faulty_pes"]["max"] == 60
    assert s["histogram"]["counts"] == [2, 0, 1, 0, 1]
    np.testing.assert_allclose(s["histogram"]["edges"], [0.1, 0.2, 0.3, 0.4, 0.5, 0.6])
    json.dumps(s)
    text = pop.summary_text(bins=5)
    assert "4 chips" in text and "10x10" in text and "29.25%" in text and "#" in text


def test_summary_of_identical_rates_has_a_sane_histogram():
    s = Population.generate(CFG, 3, rates=0.0).summary()
    assert s["histogram"]["edges"][0] >= 0 and sum(s["histogram"]["counts"]) == 3


def test_plot_writes_a_png(tmp_path):
    pop = Population.generate(CFG, 6, rates="uniform:0.02,0.2", spatial="clustered")
    path = tmp_path / "pop.png"
    pop.plot(path, example="chip-00001")
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
