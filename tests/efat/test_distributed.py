"""Maps, plans and reports are the same on every executor: serial, local processes and a real
2-worker Dask LocalCluster; a worker killed mid-run loses only its task."""

from __future__ import annotations

import json
import os
import signal
import threading
import time

import numpy as np
import pytest

from efat import Constraint, execute, plan, resilience_map
from efat.executors import Dask, ExecutorError, Processes
from faults import Population
from simulator import ArrayConfig
from training import load_dataset, pretrained

CFG = ArrayConfig(16, 16)
C = Constraint(0.03, 0.8, 0.8)
GRID = dict(fault_rates=[0.02, 0.06, 0.1], epochs=[0.5, 1])


@pytest.fixture(scope="module")
def case():
    data = load_dataset("digits", seed=0)
    return pretrained("mlp", data, seed=0), data


@pytest.fixture(scope="module")
def cluster():
    with Dask(n_workers=2) as ex:
        yield ex


def _same(a, b) -> bool:
    return np.array_equal(a, b, equal_nan=True)


def _outcome(report):
    return [(c.id, c.unit_epochs, c.accuracy, c.passed, c.own_epochs) for c in report.chips], \
        report.totals["executed"]["epochs"]


@pytest.fixture(scope="module")
def serial(case, tmp_path_factory):
    model, data = case
    rmap = resilience_map(model, data, CFG, **GRID, constraint=C, max_trials=16, progress=False)
    pop = Population.generate(CFG, 10, rates="uniform:0.005,0.07", seed=2)
    p = plan(pop, rmap, C)
    report = execute(p, model, data, pop, tmp_path_factory.mktemp("serial"), progress=False)
    return rmap, pop, p, report


@pytest.mark.parametrize("which", ["processes", "dask"])
def test_every_executor_gives_the_same_map_plan_and_report(case, serial, cluster, tmp_path, which):
    model, data = case
    rmap, pop, p, report = serial
    ex = cluster if which == "dask" else Processes(2)
    try:
        other = resilience_map(model, data, CFG, **GRID, constraint=C, max_trials=16, progress=False, executor=ex)
        assert _same(other.accuracy, rmap.accuracy) and other.n_trials.tolist() == rmap.n_trials.tolist()
        q = plan(pop, other, C)
        assert json.dumps(q.to_json()) == json.dumps(p.to_json())
        again = execute(q, model, data, pop, tmp_path, progress=False, executor=ex)
        assert _outcome(again) == _outcome(report)
    finally:
        if ex is not cluster:
            ex.close()


def _echo(shared, task):
    return task


def _kill_a_worker_when(path, pids, stop):
    """Kill one worker process (SIGKILL) as soon as ``path`` exists: mid-run."""
    while not stop.is_set():
        if os.path.exists(path):
            os.kill(pids[0], signal.SIGKILL)
            return
        time.sleep(0.005)


def test_a_killed_dask_worker_loses_only_its_task(case, serial, cluster, tmp_path):
    model, data = case
    rmap = serial[0]
    out = tmp_path / "map.json"
    pids = list(cluster._client.run(os.getpid).values())
    stop = threading.Event()
    killer = threading.Thread(target=_kill_a_worker_when, args=(out, pids, stop))
    killer.start()
    try:
        again = resilience_map(model, data, CFG, **GRID, constraint=C, max_trials=16, progress=False,
                               executor=cluster, out=out)
    finally:
        stop.set()
        killer.join()
    assert not killer.is_alive()
    assert _same(again.accuracy, rmap.accuracy)
    cluster._client.wait_for_workers(2, timeout=60)  # the nanny restarted it


def test_a_killed_process_worker_fails_the_run_and_a_rerun_resumes(case, serial, tmp_path):
    model, data = case
    rmap = serial[0]
    out = tmp_path / "map.json"
    with Processes(2) as ex:
        ex.run(_echo, [1, 2, 3, 4], progress=False)  # start the pool, then read its worker pids
        pids = [p.pid for p in ex._pool._processes.values()]
        stop = threading.Event()
        killer = threading.Thread(target=_kill_a_worker_when, args=(out, pids, stop))
        killer.start()
        try:
            with pytest.raises(ExecutorError, match="worker process died"):
                resilience_map(model, data, CFG, **GRID, constraint=C, max_trials=16, progress=False,
                               executor=ex, out=out)
        finally:
            stop.set()
            killer.join()
    part = json.loads(out.read_text())
    measured = sum(v is not None for row in part["accuracy"] for cell in row for v in cell)
    assert 0 < measured < np.isfinite(rmap.accuracy).sum()  # interrupted part-way, what finished was saved
    resumed = resilience_map(model, data, CFG, **GRID, constraint=C, max_trials=16, progress=False,
                             executor="processes:2", out=out)
    assert _same(resumed.accuracy, rmap.accuracy)


def test_fallbacks_are_the_same_on_every_executor(case, serial, tmp_path):
    """Units that fail and chips retrained on their own from one shared group state: the
    state must not be changed by its first use (Adam updates loaded moments in place), or
    the serial executor, which passes it by reference, would differ from the others."""
    from efat import ResilienceMap

    model, data = case
    rmap = serial[0]
    claim = np.where(np.arange(rmap.epochs.size)[None, :, None] == 0, rmap.baseline - 0.1, rmap.baseline)
    liar = ResilienceMap(rmap.fault_rates, rmap.epochs, np.where(np.isnan(rmap.accuracy), np.nan, claim),
                         rmap.baseline, rmap.meta)  # claims the first amount suffices everywhere
    pop = Population.generate(CFG, 6, rates=0.04, seed=9)
    p = plan(pop, liar, Constraint(0.001, 0.8, 0.8))
    assert any(len(g.members) > 1 for g in p.groups)
    one = execute(p, model, data, pop, tmp_path / "serial", progress=False)
    shared = [c for c in one.chips if c.own_epochs > 0 and c.group is not None]
    assert len(shared) >= 2  # several members retrained on their own from one group state
    with Processes(2) as ex:
        other = execute(p, model, data, pop, tmp_path / "processes", progress=False, executor=ex)
    assert _outcome(other) == _outcome(one)
