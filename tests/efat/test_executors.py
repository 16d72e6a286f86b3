"""Executors: the same numbers on every executor, ``shared`` sent once, failing tasks, dying
workers, specs, and an import without torch or dask."""

from __future__ import annotations

import os
import pathlib
import re
import subprocess
import sys
import time

import numpy as np
import pytest

from efat.executors import Dask, ExecutorError, Processes, Serial, make_executor

ROOT = pathlib.Path(__file__).resolve().parents[2]


# --- task functions: module level, so workers import them by reference ---------------------

def torch_task(shared, seed):
    """A few Adam steps of a Linear layer on data drawn for ``seed``; the weights' bytes.

    The loss has dot products over 65,536 values, which torch splits across its threads:
    with 2 threads instead of 1 every result here differs in some bits.
    """
    import torch

    g = torch.Generator().manual_seed(seed)
    x, y = torch.randn(2048, 64, generator=g), torch.randn(2048 * 32, generator=g)
    model = torch.nn.Linear(64, 32)
    with torch.no_grad():
        model.weight.copy_(torch.randn(32, 64, generator=g))
        model.bias.zero_()
    opt = torch.optim.Adam(model.parameters(), lr=shared["lr"])
    for _ in range(5):
        opt.zero_grad()
        p = model(x).flatten()
        (((p - y) ** 2).mean() - (p @ y) / (p @ p).sqrt()).backward()
        opt.step()
    return model.weight.detach().numpy().tobytes() + model.bias.detach().numpy().tobytes()


def numpy_task(shared, seed):
    time.sleep(0.01 * (seed % 3))  # completion order differs from task order
    a = np.random.default_rng(seed).standard_normal((200, 300)) + shared["offset"]
    return (a @ a.T).sum(axis=0).tobytes()


def threads_task(shared, k):
    """The thread counts a task sees, after compiling a numba function (which rereads numba's
    environment settings)."""
    import numba
    import torch

    return int(numba.njit(lambda n: n + 1)(k)), numba.get_num_threads(), torch.get_num_threads()


def failing_task(shared, k):
    time.sleep(shared.get("sleep", {}).get(k, 0))
    if k == shared["bad"]:
        raise ValueError(f"task {k} is bad")
    return k * 10


def killing_task(shared, k):
    """Kills its worker process the first time task ``kill_at`` runs (the marker file says so)."""
    if k == shared["kill_at"]:
        try:
            fd = os.open(shared["marker"], os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            pass
        else:
            os.close(fd)
            os._exit(1)
    time.sleep(0.05)
    return numpy_task(shared, k)


class Counted:
    """Shared data that logs, in a file, every pickling and unpickling with the process id."""

    def __init__(self, log, payload):
        self.log, self.payload = log, payload

    def __reduce__(self):
        _log(self.log, "dump")
        return _revive, (self.log, self.payload)


def _revive(log, payload):
    _log(log, "load")
    return Counted(log, payload)


def _log(path, what):
    with open(path, "a") as f:
        f.write(f"{what} {os.getpid()}\n")


def size_task(shared, k):
    return k + len(shared.payload)


# --- fixtures ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def processes():
    with Processes(2) as ex:
        yield ex


@pytest.fixture(scope="module")
def dask():
    with Dask(n_workers=2) as ex:
        yield ex


def run_recording(ex, fn, tasks, shared):
    """``(results, {index: result})`` with the second built by on_result (each index once)."""
    got = {}

    def on_result(i, r):
        assert i not in got, f"on_result saw index {i} twice"
        got[i] = r

    return ex.run(fn, tasks, shared, on_result=on_result, progress=False), got


# --- tests -------------------------------------------------------------------------------

def test_every_executor_gives_the_same_bits_in_task_order(processes, dask):
    import torch

    seeds = list(range(8))
    shared = {"lr": 0.05, "offset": 0.25}
    threads = torch.get_num_threads()
    torch.set_num_threads(2)  # here; the serial executor still runs each task on one thread
    try:
        expected = {"torch": Serial().run(torch_task, seeds, shared, progress=False),
                    "numpy": Serial().run(numpy_task, seeds, shared, progress=False)}
        assert torch.get_num_threads() == 2, "the serial executor did not restore torch's thread count"
    finally:
        torch.set_num_threads(threads)
    assert len(set(expected["torch"])) == len(seeds)  # distinct results, so order is checked
    for ex in (processes, dask):
        for fn in (torch_task, numpy_task):
            results, got = run_recording(ex, fn, seeds, shared)
            kind = fn.__name__.split("_")[0]
            assert results == expected[kind], f"{ex.name}, {kind}: results differ from the serial ones"
            assert sorted(got) == seeds and all(got[i] == results[i] for i in seeds), ex.name
        assert ex.run(threads_task, [0, 1, 2], progress=False) == [(1, 1, 1), (2, 1, 1), (3, 1, 1)], ex.name


def test_shared_is_sent_once_not_per_task(tmp_path, processes, dask):
    tasks = list(range(10))
    for ex in (Serial(), processes, dask):
        log = tmp_path / f"{ex.name.split()[0]}.log"
        shared = Counted(str(log), b"x" * 1_000_000)
        assert ex.run(size_task, tasks, shared, progress=False) == [k + 1_000_000 for k in tasks]
        lines = [line.split() for line in log.read_text().splitlines()] if log.exists() else []
        dumps_here = [p for what, p in lines if what == "dump" and int(p) == os.getpid()]
        loads = [p for what, p in lines if what == "load"]
        if isinstance(ex, Serial):
            assert lines == []
        elif isinstance(ex, Processes):
            assert 1 <= len(dumps_here) <= ex.n_workers, lines
        else:  # one scatter from the client; workers copy it between themselves
            assert len(dumps_here) == 1, lines
        assert len(loads) <= ex.n_workers and len(set(loads)) == len(loads), f"{ex.name}: {lines}"


def test_a_failing_task_raises_its_own_exception(processes, dask):
    got = {}
    with pytest.raises(ValueError, match="^task 3 is bad$"):
        Serial().run(failing_task, range(6), {"bad": 3}, on_result=got.__setitem__, progress=False)
    assert got == {0: 0, 1: 10, 2: 20}
    # task 1 fails while on_result still handles task 0; tasks 2-5 complete meanwhile
    shared = {"bad": 1, "sleep": {1: 0.2, 2: 0.3, 3: 0.3, 4: 0.3, 5: 0.3}}
    for ex in (processes, dask):
        got = {}

        def on_result(i, r):
            if not got:
                time.sleep(2.0)
            got[i] = r

        with pytest.raises(ValueError, match="^task 1 is bad$"):
            ex.run(failing_task, range(6), shared, on_result=on_result, progress=False)
        assert got == {k: k * 10 for k in (0, 2, 3, 4, 5)}, ex.name
        assert ex.run(failing_task, [1, 2], {"bad": -1}, progress=False) == [10, 20], ex.name  # still usable
    with pytest.raises(ValueError, match="fn must be a module-level function"):
        processes.run(lambda shared, k: k, [1], progress=False)


def test_dask_survives_a_killed_worker(tmp_path, dask):
    tasks = list(range(8))
    shared = {"kill_at": 2, "marker": str(tmp_path / "killed"), "offset": 0.0}
    before = set(dask._client.nthreads())
    results, got = run_recording(dask, killing_task, tasks, shared)
    assert os.path.exists(shared["marker"])  # a worker did die
    assert results == Serial().run(numpy_task, tasks, shared, progress=False)
    assert sorted(got) == tasks
    dask._client.wait_for_workers(2, timeout=30)  # the nanny restarted it
    assert set(dask._client.nthreads()) != before


def test_dask_single_worker_death_scatters_shared_again(tmp_path):
    """With one worker, the scattered shared data dies with it; the run scatters it again."""
    tasks = list(range(4))
    shared = {"kill_at": 1, "marker": str(tmp_path / "killed"), "offset": 0.5}
    with make_executor("dask:1") as ex:
        assert type(ex) is Dask and ex.n_workers == 1
        results, got = run_recording(ex, killing_task, tasks, shared)
    assert os.path.exists(shared["marker"])
    assert results == Serial().run(numpy_task, tasks, shared, progress=False) and sorted(got) == tasks


def test_processes_worker_death_raises_and_a_rerun_resumes(tmp_path):
    tasks = list(range(8))
    shared = {"kill_at": 3, "marker": str(tmp_path / "killed"), "offset": 0.0}
    got = {}
    with Processes(2) as ex, pytest.raises(ExecutorError, match="worker process died.*on_result.*rerunning resumes"):
        ex.run(killing_task, tasks, shared, on_result=got.__setitem__, progress=False)
    assert os.path.exists(shared["marker"]) and len(got) < len(tasks)
    missing = [k for k in tasks if k not in got]
    with Processes(2) as ex:  # the marker is there now: no kill
        rerun = ex.run(killing_task, missing, shared, on_result=lambda i, r: got.setdefault(missing[i], r),
                       progress=False)
    assert dict(zip(missing, rerun)).items() <= got.items()
    assert [got[k] for k in tasks] == Serial().run(numpy_task, tasks, shared, progress=False)


def test_make_executor_specs(dask):
    assert isinstance(make_executor(), Serial) and isinstance(make_executor("serial"), Serial)
    for spec, n in ((3, 3), ("processes:2", 2), (np.int64(1), 1)):
        with make_executor(spec) as ex:
            assert type(ex) is Processes and ex.n_workers == n and ex.name == f"processes ({n} worker{'s' * (n > 1)})"
    assert make_executor(dask) is dask
    address = dask._client.scheduler.address
    for spec in (address, "dask:" + address):
        with make_executor(spec) as ex:
            assert type(ex) is Dask and ex.n_workers == 2 and address in ex.name
    # closing a client of a cluster it did not start leaves the cluster running
    assert dask.run(failing_task, [1, 2], {"bad": -1}, progress=False) == [10, 20]
    for bad in ("bogus", "processes:0", "processes:x", "dask:0", "dask:", "processes", 1.5, -2, 0, True, ""):
        with pytest.raises(ValueError, match=r"'serial', 'processes:N', 'dask:N'.*got " + re.escape(repr(bad))) as e:
            make_executor(bad)
        assert ("N must be an int >= 1" in str(e.value)) == (bad in ("processes:0", "processes:x", "dask:0", "dask:",
                                                                      -2, 0))
    with pytest.raises(ValueError, match="n_workers must be an int >= 1; got 0"):
        Processes(0)


def test_progress_bar_on_request(capfd):
    for progress, shown in ((True, True), (False, False), (None, False)):  # None: stderr is no terminal here
        assert Serial().run(failing_task, [1, 2, 3], {"bad": -1}, desc="cells", progress=progress) == [10, 20, 30]
        err = capfd.readouterr().err
        assert ("cells: 100%" in err and "3/3" in err) == shown, err


def test_imports_without_torch_and_dask():
    code = (
        "import sys, importlib.abc\n"
        "class Block(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('torch', 'dask', 'distributed'):\n"
        "            raise ImportError(name + ' is blocked by the test')\n"
        "sys.meta_path.insert(0, Block())\n"
        "import numpy as np\n"
        "import efat.executors as ex\n"
        "def f(shared, k):\n"
        "    return float(np.arange(k + 1).sum()) + shared\n"
        "with ex.make_executor('serial') as s:\n"
        "    out = s.run(f, range(4), shared=0.5, progress=False)\n"
        "assert out == [0.5, 1.5, 3.5, 6.5], out\n"
        "assert not {'torch', 'dask', 'distributed'} & set(sys.modules)\n"
    )
    res = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-2000:]


def sleeping_task(shared, k):
    """Writes its worker's pid, then sleeps far longer than the test waits."""
    pathlib.Path(shared).write_text(str(os.getpid()))
    time.sleep(120)
    return k


PARENT = """
import sys
from efat.executors import Processes
from tests.efat.test_executors import sleeping_task
Processes(1).run(sleeping_task, [0], sys.argv[1], progress=False)
"""


def test_a_worker_ends_when_its_parent_is_killed(tmp_path):
    """A killed parent (kill -9, an out-of-memory kill) must not leave its workers computing."""
    import signal
    import subprocess

    pidfile = tmp_path / "worker.pid"
    root = pathlib.Path(__file__).resolve().parents[2]
    parent = subprocess.Popen([sys.executable, "-c", PARENT, str(pidfile)], cwd=root,
                              env=dict(os.environ, PYTHONPATH=str(root)))
    try:
        deadline = time.time() + 120
        while not pidfile.exists() or not pidfile.read_text():
            assert time.time() < deadline and parent.poll() is None, "the worker never started"
            time.sleep(0.2)
        worker = int(pidfile.read_text())
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait()
        deadline = time.time() + 15
        while time.time() < deadline:
            if not _alive(worker):
                return
            time.sleep(0.2)
        os.kill(worker, signal.SIGKILL)
        raise AssertionError("the worker outlived its killed parent by 15 s")
    finally:
        if parent.poll() is None:
            parent.kill()


def _alive(pid) -> bool:
    """Running (a zombie waiting for init to reap it has ended)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
