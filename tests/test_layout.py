"""The package graph: dependencies point one way, and the torch-free parts stay torch-free.

The order, from the bottom: ``fileio`` and ``simulator`` (neither imports the other),
``faults``, ``mapping``, ``protect``, ``training``, ``efat``, ``cli`` (the app; nothing
imports it).
A package may import any package below it, never one above (README, "Layout").
"""

from __future__ import annotations

import ast
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
#: Each package with the project packages it may import.
ALLOWED = {
    "fileio": set(),
    "simulator": set(),
    "faults": {"fileio", "simulator"},
    "mapping": {"fileio", "simulator", "faults"},
    "protect": {"fileio", "simulator", "faults", "mapping"},
    "training": {"fileio", "simulator", "faults", "mapping", "protect"},
    "efat": {"fileio", "simulator", "faults", "mapping", "protect", "training"},
    "cli": {"fileio", "simulator", "faults", "mapping", "protect", "training", "efat"},
}
LIBRARY = {"fileio", "simulator", "faults", "mapping", "protect", "training", "efat"}


def imports(package: str):
    """``(file, imported top-level name)`` of every absolute import in a package."""
    for path in sorted((ROOT / package).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            else:
                continue
            for name in names:
                yield path.relative_to(ROOT), name.split(".")[0]


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_dependencies_point_one_way(package):
    for path, name in imports(package):
        if name in ALLOWED and name != package:
            assert name in ALLOWED[package], f"{path} imports {name}, which sits above {package} (or beside it)"


def test_every_package_is_placed():
    packages = {p.parent.name for p in ROOT.glob("*/__init__.py")} - {"tests"}
    assert packages == set(ALLOWED), "a new package needs its floor in ALLOWED and in README's layout"


@pytest.mark.parametrize("package", sorted(LIBRARY))
def test_library_uses_no_argparse(package):
    assert all(name != "argparse" for _, name in imports(package)), f"{package} uses argparse; that is the app's"


def _without_torch(code: str) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter where importing torch fails."""
    blocker = ("import sys, importlib.abc\n"
               "class NoTorch(importlib.abc.MetaPathFinder):\n"
               "    def find_spec(self, name, path=None, target=None):\n"
               "        if name == 'torch' or name.startswith('torch.'):\n"
               "            raise ImportError('torch is not installed (blocked by the test)')\n"
               "sys.meta_path.insert(0, NoTorch())\n")
    return subprocess.run([sys.executable, "-c", blocker + code], cwd=ROOT, capture_output=True, text=True)


def test_torch_free_parts_import_without_torch():
    code = ("import fileio, simulator, faults, efat, efat.planner, efat.plans, efat.resilience, efat.report\n"
            "from efat import Plan, ResilienceMap, plan\n"
            "assert 'torch' not in sys.modules\n")
    res = _without_torch(code)
    assert res.returncode == 0, res.stderr[-2000:]


def test_the_torch_free_planner_plans_without_torch(tmp_path):
    """A whole plan (population, map, plan file) with torch unavailable."""
    code = f"""
import numpy as np
from efat import Plan, ResilienceMap, plan
from faults import Population
from simulator import ArrayConfig
pop = Population.generate(ArrayConfig(8, 8), 5, rates="uniform:0.02,0.1", seed=0)
rates, epochs = np.array([0.05, 0.1, 0.2]), np.array([0.0, 1.0])
acc = 0.9 - rates[:, None, None] * np.exp(-epochs[None, :, None]) * np.ones((1, 1, 30))
p = plan(pop, ResilienceMap(rates, epochs, acc, 0.9, {{"array": [8, 8]}}), 0.02)
p.save({str(tmp_path / "p.json")!r})
assert Plan.load({str(tmp_path / "p.json")!r}) == p
assert 'torch' not in sys.modules
"""
    res = _without_torch(code)
    assert res.returncode == 0, res.stderr[-2000:]


def test_measuring_without_torch_says_so():
    res = _without_torch("import efat\nefat.resilience_map\n")
    assert res.returncode != 0 and "torch is not installed" in res.stderr
