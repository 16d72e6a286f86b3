"""Executors: run independent tasks serially, on local processes or on a Dask cluster.

Population evaluation, resilience-map cells and group retraining are embarrassingly
parallel. :meth:`Executor.run` calls ``fn(shared, task)`` (``fn`` a module-level
function) for every task and returns the results in task order, on :class:`Serial`
(this process), :class:`Processes` (local ``spawn`` processes) or :class:`Dask` (a
``distributed`` cluster). ``shared`` (model, data, configs) reaches each worker once per
run, not once per task. :func:`make_executor` builds an executor from a spec.

Determinism
-----------
Every task runs with torch limited to one intra-op thread (``torch.set_num_threads(1)``
if torch is imported in that process; the serial executor restores the count after the
task) and BLAS to one thread (``threadpoolctl``). In worker processes numba is limited
to one thread too, and ``OMP_NUM_THREADS=1``, so a task that imports torch itself also
starts with one thread. A float reduction can depend on the number of threads sharing
it; with one thread everywhere a task gives the same bits on every executor and any
number of workers. (The serial executor leaves numba's threads alone: the simulator's
numba kernels are integer-exact on any number of threads.)

This module imports neither torch nor dask; :class:`Dask` imports ``distributed``.
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import numbers
import os
import pickle
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures.process import BrokenProcessPool

__all__ = ["Executor", "Serial", "Processes", "Dask", "ExecutorError", "make_executor"]

_FORMS = "executor must be None, 'serial', 'processes:N', 'dask:N' or a scheduler address 'tcp://host:port'"
#: Environment of worker processes: one thread for OpenMP (torch), BLAS and numba.
_WORKER_ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1"}
_MAX_RESCATTERS = 3  # Dask: times per run the scattered shared data may be lost (with all workers holding it)
_WAIT_FOR_WORKERS = 120.0  # Dask: seconds to wait for a worker to (re)join


class ExecutorError(RuntimeError):
    """An executor failed, not a task: a worker process died, no scheduler or no workers."""


class _Pickled:
    """Shared data as one pickle, so Dask ships it as an opaque object: its own serializers
    take torch modules apart and rebuild them without their hook dicts."""

    def __init__(self, obj):
        self.token = uuid.uuid4().hex
        self.data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)


_LOADED: dict = {}  # token -> the unpickled shared data, per worker process (the current run's only)


def _unwrap(shared):
    if isinstance(shared, _Pickled):
        if shared.token not in _LOADED:
            _LOADED.clear()
            _LOADED[shared.token] = pickle.loads(shared.data)
        return _LOADED[shared.token]
    return shared


def _call(fn, shared, task, worker):
    """``fn(shared, task)`` on one torch and one BLAS thread (and one numba thread in a worker)."""
    from threadpoolctl import threadpool_limits

    shared = _unwrap(shared)
    torch = sys.modules.get("torch")
    before = torch.get_num_threads() if torch is not None else None
    if worker and "numba" in sys.modules:
        sys.modules["numba"].set_num_threads(1)
    try:
        if torch is not None:
            torch.set_num_threads(1)
        with threadpool_limits(limits=1, user_api="blas"):
            return fn(shared, task)
    finally:
        if torch is not None and not worker:
            torch.set_num_threads(before)


def _count(n):
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1:
        raise ValueError(f"n_workers must be an int >= 1; got {n!r}.")
    return int(n)


def _workers(n):
    return f"{n} worker{'s' * (n != 1)}"


class Executor:
    """Runs ``fn(shared, task)`` over tasks; the subclasses decide where.

    Attributes
    ----------
    name : str
        What runs the tasks, e.g. ``"serial"``, ``"processes (2 workers)"``.
    n_workers : int
        Workers, one task at a time each (remote Dask: those connected at creation).
    """

    name: str
    n_workers: int

    def run(self, fn, tasks, shared=None, desc="tasks", on_result=None, progress=None) -> list:
        """Call ``fn(shared, task)`` for every task; the results in task order.

        Parameters
        ----------
        fn : callable
            A module-level (picklable) function of ``(shared, task)``.
        tasks : sequence
            Picklable items (except on :class:`Serial`).
        shared : object, optional
            Read-only context of every call, sent to each worker once per run.
        desc : str
            Label of the progress bar.
        on_result : callable, optional
            ``on_result(index, result)``, called here as each result arrives (in
            completion order), e.g. to save progress: an interrupt loses only the tasks
            in flight.
        progress : bool or None
            A tqdm bar over the tasks; ``None``: only when stderr is a terminal.

        Raises
        ------
        Exception
            The first exception of a task (its own type and message), once the results
            that had arrived went through ``on_result`` and the rest was cancelled.
        ExecutorError
            The executor failed (e.g. a worker process died).
        """
        from tqdm.auto import tqdm

        tasks = list(tasks)
        results = [None] * len(tasks)
        if not tasks:
            return results
        with tqdm(total=len(tasks), desc=desc, unit="task", disable=None if progress is None else not progress) as bar:
            def arrived(i, result):
                results[i] = result
                if on_result is not None:
                    on_result(i, result)
                bar.update(1)

            self._run(fn, tasks, shared, arrived)
        return results

    def _run(self, fn, tasks, shared, arrived):  # each result to arrived(index, result)
        raise NotImplementedError

    def close(self):
        """Release the workers this executor started; calling it again does nothing."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class Serial(Executor):
    """Runs the tasks one after the other in this process; ``shared`` is passed as is."""

    name, n_workers = "serial", 1

    def _run(self, fn, tasks, shared, arrived):
        for i, task in enumerate(tasks):
            arrived(i, _call(fn, shared, task, worker=False))


# --- local processes -------------------------------------------------------------------

_worker_shared: dict = {}  # in a worker process: {token: shared} of the current run


def _init_worker():
    os.environ.update(_WORKER_ENV)  # before torch is imported here
    if "numba" in sys.modules:  # imported already (efat imports it), its threads not launched yet:
        sys.modules["numba"].config.reload_config()  # NUMBA_NUM_THREADS=1 now, or its compiler fails later
    threading.Thread(target=_exit_with_parent, args=(os.getppid(),), daemon=True).start()


def _exit_with_parent(parent: int, every: float = 1.0) -> None:
    """End this worker when the process that started it is gone (killed, say): an orphan would
    otherwise finish its task, and compute for nobody, before it notices."""
    while True:
        time.sleep(every)
        if os.getppid() != parent:
            os._exit(1)


def _process_call(fn, token, path, task):
    if path is not None and token not in _worker_shared:
        _worker_shared.clear()  # the previous run's
        with open(path, "rb") as f:
            _worker_shared[token] = pickle.load(f)
    return _call(fn, _worker_shared.get(token), task, worker=True)


def _gather(futures, arrived):
    """Results of ``concurrent.futures`` to ``arrived`` as they complete; on a failure, cancel
    the rest, pass on what had arrived, and raise."""
    delivered = set()
    try:
        for fut in cf.as_completed(futures):
            if fut.exception() is not None:
                raise fut.exception()
            arrived(futures[fut], fut.result())
            delivered.add(fut)
    except BaseException:
        for fut in futures:
            fut.cancel()
        for fut, i in futures.items():
            if fut not in delivered and fut.done() and not fut.cancelled() and fut.exception() is None:
                arrived(i, fut.result())
        raise


class Processes(Executor):
    """Runs the tasks on ``n_workers`` local processes (``spawn``), started by the first
    :meth:`~Executor.run` and reused until :meth:`close`.

    ``shared`` is pickled once per run, to a temporary file; each worker loads it on its
    first task of the run and keeps it for the others.
    """

    def __init__(self, n_workers: int = 2):
        self.n_workers = _count(n_workers)
        self.name = f"processes ({_workers(self.n_workers)})"
        self._pool = None

    def _run(self, fn, tasks, shared, arrived):
        try:
            pickle.dumps(fn)
        except Exception as exc:
            raise ValueError(f"fn must be a module-level function (picklable); got {fn!r}: {exc}") from exc
        if self._pool is None:
            self._pool = cf.ProcessPoolExecutor(self.n_workers, mp_context=multiprocessing.get_context("spawn"),
                                                initializer=_init_worker)
        token, path = uuid.uuid4().hex, None
        try:
            if shared is not None:
                fd, path = tempfile.mkstemp(prefix="efat-shared-", suffix=".pickle")
                with os.fdopen(fd, "wb") as f:
                    pickle.dump(shared, f, protocol=pickle.HIGHEST_PROTOCOL)
            _gather({self._pool.submit(_process_call, fn, token, path, t): i for i, t in enumerate(tasks)}, arrived)
        except BrokenProcessPool as exc:
            self.close()
            raise ExecutorError(f"a worker process died (killed, out of memory or crashed) in '{self.name}'; "
                                "the tasks that completed were passed to on_result; rerunning resumes.") from exc
        finally:
            if path is not None:
                os.remove(path)

    def close(self):
        if self._pool is not None:
            pool, self._pool = self._pool, None
            pool.shutdown(wait=True, cancel_futures=True)


# --- Dask ------------------------------------------------------------------------------

class Dask(Executor):
    """Runs the tasks on a Dask ``distributed`` cluster, one future per task.

    ``shared`` is scattered to every worker once per run. A worker that dies loses only
    its tasks: the scheduler reruns them and the nanny restarts it; if ``shared`` is lost
    with it (no other worker held it), it is scattered again and those tasks resubmitted.

    Parameters
    ----------
    address : str, optional
        A running scheduler, ``"tcp://host:port"``; :meth:`close` leaves it running.
    n_workers : int >= 1, optional
        Instead: start a ``LocalCluster`` of that many single-threaded worker
        processes, closed by :meth:`close`.
    """

    def __init__(self, address: str | None = None, n_workers: int | None = None):
        from distributed import Client, LocalCluster

        if (address is None) == (n_workers is None):
            raise ValueError(f"Dask needs a scheduler address or n_workers (one of them); "
                             f"got address={address!r}, n_workers={n_workers!r}.")
        self._cluster = None
        if address is None:
            n_workers, environ = _count(n_workers), dict(os.environ)
            try:  # no dashboard; the scheduler's HTTP server on a free port, so 8787 may be in use
                self._cluster = LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                                             dashboard_address=None, env=dict(_WORKER_ENV),
                                             scheduler_kwargs={"dashboard_address": "127.0.0.1:0"})
            finally:  # the nannies set OMP_NUM_THREADS=1 etc. in *this* process too: undone (not on restarts)
                for key in set(os.environ) - set(environ):
                    del os.environ[key]
                os.environ.update(environ)
            self._client = Client(self._cluster, set_as_default=False)
        else:
            try:
                self._client = Client(address, set_as_default=False, timeout=30)
            except (OSError, TimeoutError) as exc:
                raise ExecutorError(f"cannot connect to the Dask scheduler at {address!r}: {exc}") from exc
        self.n_workers = len(self._client.nthreads())
        self.name = f"dask ({self._client.scheduler.address}, {_workers(self.n_workers)})"

    def _scatter(self, shared):
        try:
            self._client.wait_for_workers(1, timeout=_WAIT_FOR_WORKERS)
        except TimeoutError as exc:
            raise ExecutorError(f"'{self.name}' has no workers (waited {_WAIT_FOR_WORKERS:g} s)") from exc
        # a list of one: scatter would send a dict's or a list's items separately
        return None if shared is None else self._client.scatter([_Pickled(shared)], broadcast=True, hash=False)[0]

    def _run(self, fn, tasks, shared, arrived):
        from distributed import CancelledError, KilledWorker, as_completed

        client, lost = self._client, 0
        data = self._scatter(shared)
        pending = {}  # future -> (task index, the scattered data it uses)

        def submit(i):
            fut = client.submit(_call, fn, data, tasks[i], True, pure=False)
            pending[fut] = (i, data)
            return fut

        queue = as_completed([submit(i) for i in range(len(tasks))], loop=client.loop)
        try:
            for fut in queue:
                i, used = pending.pop(fut)
                try:
                    result = fut.result()  # the task's own exception if it failed
                except CancelledError:
                    if shared is None:
                        raise
                    if used is data:  # lost with the last worker holding it: scatter it again
                        lost += 1
                        if lost > _MAX_RESCATTERS:
                            raise ExecutorError(f"'{self.name}' lost the shared data {lost} times in one run") from None
                        data = self._scatter(shared)
                    queue.add(submit(i))
                    continue
                except KilledWorker as exc:
                    raise ExecutorError(f"task {i} killed every worker that ran it; Dask gave up on it "
                                        "(distributed.scheduler.allowed-failures)") from exc
                arrived(i, result)
        except BaseException:
            queue.clear()
            for fut, (i, _) in list(pending.items()):
                if fut.status == "finished":
                    try:
                        arrived(i, fut.result())
                    except CancelledError:
                        pass
            client.cancel(list(pending))
            raise
        finally:
            pending.clear()
            if data is not None:
                client.cancel([data])

    def close(self):
        if self._client is not None:
            self._client.close()
            self._client = None
        if self._cluster is not None:
            self._cluster.close()
            self._cluster = None


def make_executor(spec=None) -> Executor:
    """The executor a spec names.

    Parameters
    ----------
    spec : None, str, int or Executor
        ``None``, ``"serial"``: :class:`Serial`. ``N`` or ``"processes:N"``:
        :class:`Processes`. ``"dask:N"``: :class:`Dask` on a new local cluster of ``N``
        workers. ``"tcp://host:port"`` or ``"dask:tcp://host:port"``: :class:`Dask` on
        that scheduler. An :class:`Executor`: itself.

    Raises
    ------
    ValueError
        Any other spec, or ``N`` not an int >= 1.
    """
    if isinstance(spec, Executor):
        return spec
    if spec is None or spec == "serial":
        return Serial()
    if isinstance(spec, str) and spec.startswith(("tcp://", "dask:tcp://")):
        return Dask(spec.removeprefix("dask:"))
    if isinstance(spec, numbers.Integral) and not isinstance(spec, bool):
        kind, n = "processes", int(spec)
    elif isinstance(spec, str) and ":" in spec and spec.partition(":")[0] in ("processes", "dask"):
        kind, n = spec.split(":", 1)
        n = int(n) if n.isdigit() else n
    else:
        raise ValueError(f"{_FORMS}; got {spec!r}.")
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"{_FORMS}; got {spec!r}: N must be an int >= 1.")
    return Processes(n) if kind == "processes" else Dask(n_workers=n)
