"""Trained models on simulated chips: int8 accuracy, single faults, bypass, efat simulate."""

from __future__ import annotations

import os

import numpy as np
import pytest

from faults import FaultMap, Population, StuckAt
from mapping import quantize, run_model
from simulator import ArrayConfig, SystolicArray
from training.baseline import evaluate, pretrained
from cli.main import main
from training.data import load_dataset


@pytest.fixture(scope="module")
def cache():
    """The session's temporary model cache (tests/conftest.py)."""
    return os.environ["EFAT_CACHE_DIR"]


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", seed=0)


@pytest.fixture(scope="module")
def lenet(cache, digits):
    return pretrained("lenet5", digits, seed=0)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["mlp", "lenet5", "vgg"])
def test_int8_accuracy_within_one_point_of_float(cache, digits, name):
    model = pretrained(name, digits, seed=0)
    res = run_model(model, digits, SystolicArray(ArrayConfig(32, 32)))
    assert abs(res.accuracy - evaluate(model, digits.x_test, digits.y_test)) <= 0.01


def test_single_high_bit_psum_fault_hurts_and_bypass_restores(lenet, digits):
    """Zhang et al. (VTS 2018): one stuck high-order psum bit in a used PE wrecks accuracy."""
    cfg = ArrayConfig(32, 32)
    qm = quantize(lenet, digits.x_train[:512])
    fm = FaultMap.empty(cfg).with_fault(0, 0, StuckAt("psum", 30, 1))  # PE (0, 0) is used by every layer
    clean = run_model(qm, digits, SystolicArray(cfg)).accuracy
    faulty = run_model(qm, digits, SystolicArray(cfg, fm)).accuracy
    bypass = run_model(qm, digits, SystolicArray(cfg, fm, "bypass")).accuracy
    assert clean > 0.9
    assert faulty < clean - 0.3, (clean, faulty)
    assert bypass - faulty >= 0.9 * (clean - faulty), (clean, faulty, bypass)


def test_simulate_cli(cache, tmp_path, capsys):
    png = tmp_path / "acc.png"
    assert main(["simulate", "--model", "mlp", "--rows", "16", "--cols", "16", "--rate", "0.05",
                 "--plot", str(png), "--sweep-rates", "0,0.05", "--trials", "1"]) == 0
    out = capsys.readouterr().out
    assert "int8, faulty chip + bypass" in out and "TOTAL" in out
    assert png.stat().st_size > 10_000 and (tmp_path / "acc.csv").read_text().count("\n") == 1 + 2 * 2


def test_simulate_cli_chip_sources(cache, tmp_path, capsys):
    cfg = ArrayConfig(16, 16)
    FaultMap.random(cfg, 0.1, seed=1).save(tmp_path / "chip.npz")
    Population.generate(cfg, 3, rates=0.05, seed=0).save(tmp_path / "pop.npz")
    assert main(["simulate", "--model", "mlp", "--rows", "16", "--cols", "16", "--fault-map",
                 str(tmp_path / "chip.npz"), "--json"]) == 0
    assert main(["simulate", "--model", "mlp", "--rows", "16", "--cols", "16", "--population",
                 str(tmp_path / "pop.npz"), "--chip", "chip-00002"]) == 0
    assert "chip-00002" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--rate", "0.1", "--fault-map", "x.npz"], "give one of --rate, --fault-map, --population"),
        (["--fault-map", "missing.npz"], "missing.npz: no such file"),
        (["--rows", "8", "--cols", "8", "--fault-map", "CHIP"], "is for a 16x16 array; this run uses 8x8"),
        (["--data", "mnist:/no/such/folder"], "/no/such/folder"),
        (["--model", "resnet"], "resnet"),
        (["--rate", "2"], "rate must be a number in [0, 1]; got 2.0"),
    ],
)
def test_simulate_cli_errors(cache, tmp_path, capsys, argv, message):
    FaultMap.random(ArrayConfig(16, 16), 0.1, seed=1).save(tmp_path / "chip.npz")
    argv = [str(tmp_path / "chip.npz") if a == "CHIP" else a for a in argv]
    assert main(["simulate", "--model", "mlp", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1 and "Traceback" not in err


def test_population_accuracy_is_deterministic(lenet, digits):
    cfg = ArrayConfig(16, 16)
    qm = quantize(lenet, digits.x_train[:512])
    pop = Population.generate(cfg, 3, rates="uniform:0.01,0.1", seed=4)
    a = [run_model(qm, digits, SystolicArray(cfg, c.fault_map, "bypass")).accuracy for c in pop]
    b = [run_model(qm, digits, SystolicArray(cfg, c.fault_map, "bypass")).accuracy for c in pop]
    assert a == b and np.isfinite(a).all()


def test_simulate_reads_the_array_from_a_population_and_names_a_bad_chip(cache, tmp_path, capsys):
    Population.generate(ArrayConfig(8, 12), 3, rates=0.05, seed=0).save(tmp_path / "pop.npz")
    assert main(["simulate", "--model", "mlp", "--population", str(tmp_path / "pop.npz"), "--chip", "2"]) == 0
    out = capsys.readouterr().out
    assert "8x12 array" in out and "chip-00002" in out
    for bad in ("chip-00099", "7"):
        assert main(["simulate", "--model", "mlp", "--population", str(tmp_path / "pop.npz"), "--chip", bad]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "Traceback" not in err and f"--chip {bad}" in err
