"""Resilience maps kept in a folder, one file per set-up, shared by the example scripts.

A map depends on the data, the pretrained weights, the array, the grid, the sampling
(constraint and chip budget) and the seed; :func:`map_path` names its file by a digest of all of them, so
scripts that ask for the same map share one file, and :func:`shared_map` loads it when
complete, resumes it when partial (``efat.resilience_map`` saves after every chip) and
measures it otherwise.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from pathlib import Path

__all__ = ["map_path", "shared_map", "resolution_note"]


def map_path(folder, data, model, model_name: str, cfg, rates, epochs, seed: int, constraint=None, trials=None,
             max_trials=None) -> Path:
    """The map's JSON in ``folder``: one file per (data, weights, array, grid, sampling, seed)."""
    from training import model_digest

    sampling = {"constraint": None if constraint is None else constraint.to_json(), "trials": trials,
                "max_trials": max_trials}
    key = json.dumps({"data": data.fingerprint(), "model": model_digest(model), "array": [cfg.rows, cfg.cols],
                      "rates": list(rates), "epochs": list(epochs), "sampling": sampling, "seed": seed})
    digest = hashlib.sha256(key.encode()).hexdigest()[:10]
    return Path(folder) / f"resilience_map_{data.name}_{model_name}_{cfg.rows}x{cfg.cols}_seed{seed}_{digest}.json"


def shared_map(path, model, data, cfg, rates, epochs, seed: int, log=print, constraint=None, trials=None,
               max_trials=None, executor=None):
    """The map at ``path``: loaded if complete, resumed if partial, else measured.

    A file there that belongs to another set-up (a digest collision, or a hand-edited
    file) is moved aside to ``*.stale.json`` and the map measured anew.
    """
    from efat import ResilienceError, ResilienceMap, resilience_map

    path = Path(path)
    state = "measuring"
    if path.exists():
        try:
            state = "reusing" if ResilienceMap.load(path).complete else "resuming"
        except ResilienceError:
            state = "resuming"  # resilience_map decides below whether it fits
    log(f"resilience map ({len(rates)} rates x {len(epochs)} amounts): {state} {path}")
    t = time.perf_counter()
    progress = sys.stderr.isatty() and state != "reusing"
    sampling = dict(trials=trials, seed=seed, out=path, progress=progress, constraint=constraint, max_trials=max_trials,
                    executor=executor)
    try:
        rmap = resilience_map(model, data, cfg, rates, epochs, **sampling)
    except ResilienceError as e:  # a file of this name that does not fit: keep it aside and measure anew
        stale = path.with_suffix(".stale.json")
        os.replace(path, stale)
        log(f"  {e}; moved it to {stale.name} and measuring again")
        rmap = resilience_map(model, data, cfg, rates, epochs, **sampling)
    if state != "reusing":
        log(f"  done in {time.perf_counter() - t:.0f} s")
    return rmap


def resolution_note(rmap, constraint) -> str | None:
    """One line when ``E*`` sits on the grid's smallest retraining amount at some rates
    (``ResilienceMap.unresolved``): there the map only bounds ``E*`` from above."""
    low = rmap.unresolved(constraint)
    if not low.any():
        return None
    rates = ", ".join(f"{100 * r:g}%" for r in rmap.fault_rates[low])
    return (f"note: E* is the grid's smallest amount ({rmap.epochs[1]:g} epochs) at {rates}: the map cannot tell "
            "whether less retraining suffices there; smaller amounts on the grid would resolve it")
