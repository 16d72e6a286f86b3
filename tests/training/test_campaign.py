"""population_accuracy: the numbers of a run_model loop over the chips, streamed (one chip at a time)."""

from __future__ import annotations

import weakref

import numpy as np
import pytest

from faults import Population
from mapping import quantize, run_model
from simulator import ArrayConfig, SystolicArray
from training import chip_accuracy, load_dataset, population_accuracy, pretrained

CFG = ArrayConfig(16, 16)
CHIPS = dict(rates="uniform:0.01,0.1", seed=4)


@pytest.fixture(scope="module")
def case():
    data = load_dataset("digits", seed=0)
    model = pretrained("mlp", data, seed=0)
    return model, quantize(model, data.x_train[:512]), data


@pytest.mark.parametrize("mitigation", ["bypass", None])
def test_streaming_gives_the_numbers_of_the_loop_over_a_population(case, mitigation):
    model, qm, data = case
    pop = Population.generate(CFG, 6, **CHIPS)
    loop = [run_model(qm, data, SystolicArray(CFG, c.fault_map, mitigation)).accuracy for c in pop]
    assert len(set(loop)) > 1  # the chips differ
    streamed = population_accuracy(qm, data, Population.stream(CFG, 6, **CHIPS), mitigation=mitigation)
    assert streamed.dtype == np.float64 and streamed.tolist() == loop
    assert population_accuracy(qm, data, pop, mitigation=mitigation).tolist() == loop
    maps = [c.fault_map for c in pop]
    assert population_accuracy(qm, data, iter(maps), mitigation=mitigation, batch_size=37).tolist() == loop
    if mitigation == "bypass":  # a float model is quantized once, as chip_accuracy does for every chip
        assert [chip_accuracy(model, data, CFG, fm) for fm in maps] == loop
        assert population_accuracy(model, data, pop).tolist() == loop


def test_each_result_is_reported_as_it_arrives(case):
    _, qm, data = case
    seen = []
    acc = population_accuracy(qm, data, Population.stream(CFG, 3, **CHIPS),
                              on_result=lambda i, chip, a: seen.append((i, chip.id, a)))
    assert seen == [(i, f"chip-{i:05d}", a) for i, a in enumerate(acc.tolist())]


def test_bad_chips_and_unlabelled_data_are_refused(case):
    _, qm, data = case
    with pytest.raises(TypeError, match="item 1 is a str"):
        population_accuracy(qm, data, [Population.generate(CFG, 1)[0], "chip"])
    with pytest.raises(ValueError, match="no labels"):
        population_accuracy(qm, data.x_test[:8], Population.stream(CFG, 1))


def test_no_chip_outlives_its_turn(case):
    """Streamed: when chip i is reported, every earlier chip (its fault map, its array) is gone."""
    _, qm, data = case
    refs = []

    def chips():
        for chip in Population.stream(CFG, 6, **CHIPS):
            refs.append(weakref.ref(chip.fault_map))
            yield chip

    def check(i, chip, accuracy):
        assert len(refs) == i + 1 and refs[i]() is chip.fault_map
        assert all(r() is None for r in refs[:i])

    assert len(population_accuracy(qm, data, chips(), on_result=check)) == 6
