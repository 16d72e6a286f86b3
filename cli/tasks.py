"""Resumable study runs: tasks on an executor, finished results kept in a progress file.

A study (the fault-injection study, the approximate-multiplier studies) is a list of
independent tasks, each one model run. :func:`run_resumable` runs the tasks not yet done on
an executor (serial, processes or Dask: the same numbers on each, every task seeding itself)
and writes every result as it arrives to ``NAME.progress.json`` (atomically), so an
interrupted run loses only the tasks in flight; the file is reused only for the same
settings. :func:`write_rows` writes the rows of a study as CSV.
"""

from __future__ import annotations

import csv
import json
import os
import zlib

from fileio import atomic_write, read_json, write_json

__all__ = ["run_resumable", "write_rows", "task_key", "task_seed"]


def task_key(task) -> str:
    return json.dumps(task, sort_keys=True)


def task_seed(*parts) -> int:
    """A seed for a task from JSON-able parts: the same parts, the same seed, on every executor."""
    return zlib.crc32(json.dumps(parts).encode())


def run_resumable(fn, tasks, shared, settings, progress_path, executor=None, desc="tasks", progress=None) -> dict:
    """``{task_key(task): fn(shared, task)}`` for every task, resuming from ``progress_path``."""
    from efat.executors import make_executor

    done = {}
    if os.path.exists(progress_path):
        saved = read_json(progress_path)
        if saved.get("settings") == json.loads(json.dumps(settings)):
            done = dict(saved.get("done", {}))
    todo = [t for t in tasks if task_key(t) not in done]

    def record(i, result):
        done[task_key(todo[i])] = result
        write_json(progress_path, {"settings": settings, "done": done})

    with make_executor(executor) as ex:
        ex.run(fn, todo, shared, desc=desc, on_result=record, progress=progress)
    return done


def write_rows(path, rows) -> None:
    """Rows (dicts) as CSV, the columns in order of first appearance; written atomically."""
    keys = []
    for r in rows:
        keys += [k for k in r if k not in keys]
    with atomic_write(path, newline="") as f:
        w = csv.DictWriter(f, fieldnames=keys)
        w.writeheader()
        w.writerows(rows)
