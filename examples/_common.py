"""Shared set-up of the eFAT figure examples (``fig1_*.py`` ... ``fig5_*.py``).

Every example takes the same core options (``--data``, ``--model``, ``--rows``/``--cols``,
``--seed``, ``--max-drop``, ``--out``, ``--quick``) and builds the same three things:

* the data set (scikit-learn digits by default; ``--data mnist`` reads the MNIST test files
  at ``../shared/data/mnist`` next to the repository, or ``$EFAT_MNIST``);
* the pretrained model (trained once, then loaded from the cache of
  :func:`training.baseline.pretrained`);
* ONE resilience map per (data, model weights, array, grid, trials, seed), stored as JSON in
  the output folder and resumed by every example that needs it, so running fig1 ... fig5 one
  after another measures the map once.

The map's chips are the ones :func:`training.fat.resilience_map` draws; :func:`map_chip`
rebuilds chip ``(rate, trial)`` so fig1 can add the unmitigated accuracy of exactly those
chips (and checks that its bypass accuracy matches the map's).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO / "examples" / "out"
DEFAULT_MNIST = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"

#: Resilience-map grid of the default runs (LeNet-5 on digits, 32x32: about a minute on 2 cores).
MAP_RATES = (0.01, 0.02, 0.03, 0.04, 0.05, 0.06, 0.08, 0.10, 0.12, 0.15)
MAP_EPOCHS = (0.25, 0.5, 1.0, 2.0, 3.0)
MAP_TRIALS = 3
#: ... and of ``--quick`` (tests: seconds, not meaningful).
QUICK_RATES = (0.02, 0.06)
QUICK_EPOCHS = (0.5,)
QUICK_TRIALS = 1
QUICK_PRETRAIN_EPOCHS = 5

#: Per-chip fault rates of the populations of fig3 ... fig5.
CHIP_RATES = "uniform:0.005,0.06"


def floats(text: str) -> list[float]:
    """``"0.1,0.2"`` -> ``[0.1, 0.2]`` (argparse type)."""
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers; got {text!r}") from None
    if not values:
        raise argparse.ArgumentTypeError("expected at least one number")
    return values


def ints(text: str) -> list[int]:
    """``"10,25"`` -> ``[10, 25]`` (argparse type)."""
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers; got {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive integers; got {text!r}")
    return values


def parser(doc: str, population: bool = False) -> argparse.ArgumentParser:
    """An argument parser with the options every example shares (and, with ``population``,
    the population options of fig3 ... fig5)."""
    p = argparse.ArgumentParser(description=doc.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--data", default="digits",
                   help="'digits', 'mnist' (MNIST test files at ../shared/data/mnist or $EFAT_MNIST), "
                        "'mnist:PATH' or 'fashion:PATH'")
    p.add_argument("--model", default="lenet5", help="mlp, lenet5 or vgg")
    p.add_argument("--rows", type=int, default=32, help="array rows")
    p.add_argument("--cols", type=int, default=32, help="array columns")
    p.add_argument("--seed", type=int, default=0, help="seed of data split, training, chips and populations")
    p.add_argument("--max-drop", type=float, default=0.02,
                   help="accuracy constraint: max drop below the fault-free int8 accuracy (0.02 = 2 points)")
    p.add_argument("--out", default=str(DEFAULT_OUT), help="output folder (the shared resilience map lives here too)")
    p.add_argument("--quick", action="store_true",
                   help="tiny grids and populations, a briefly pretrained model (for tests; not meaningful)")
    p.add_argument("--pretrain-epochs", type=float, default=None,
                   help="epochs of the baseline training (default: the model zoo's; 5 with --quick)")
    g = p.add_argument_group("resilience map (shared by all examples; defaults depend on --quick)")
    g.add_argument("--map-rates", type=floats, default=None,
                   help=f"fault-rate grid (default {','.join(f'{r:g}' for r in MAP_RATES)})")
    g.add_argument("--map-epochs", type=floats, default=None,
                   help=f"retraining amounts in epochs, 0 added (default {','.join(f'{e:g}' for e in MAP_EPOCHS)})")
    g.add_argument("--trials", type=int, default=None, help=f"random chips per rate (default {MAP_TRIALS})")
    if population:
        q = p.add_argument_group("population")
        q.add_argument("--chip-rates", default=CHIP_RATES,
                       help="per-chip fault rates: a number or uniform:LO,HI, normal:..., lognormal:..., negbin:...")
        q.add_argument("--spatial", default="uniform", choices=("uniform", "clustered"),
                       help="placement of faulty PEs on a chip")
    return p


def resolve_data(spec: str) -> str:
    """Turn ``--data`` into a :func:`training.data.load_dataset` spec; exit with one line if
    ``mnist`` is asked for and the default folder is absent."""
    if spec == "mnist":
        folder = Path(os.environ.get("EFAT_MNIST") or DEFAULT_MNIST)
        if not folder.is_dir():
            raise SystemExit(f"error: --data mnist: no MNIST folder at {folder} "
                             "(set EFAT_MNIST or pass --data mnist:PATH).")
        return f"mnist:{folder}"
    return spec


@dataclass
class Setup:
    """What every example needs: parsed args, array, data, pretrained model, output folder, grid."""

    args: argparse.Namespace
    cfg: object
    data: object
    model: object
    out: Path
    rates: tuple
    epochs: tuple
    trials: int

    def path(self, name: str) -> Path:
        return self.out / name

    def tag(self) -> str:
        """Short description for titles: model, data, array."""
        return f"{self.args.model} on {self.data.name}, {self.cfg.rows}x{self.cfg.cols} array"


def setup(args) -> Setup:
    """Load data and the pretrained model; fix the map grid (``--quick`` shrinks it)."""
    from simulator import ArrayConfig
    from training.baseline import pretrained
    from training.data import DataError, load_dataset

    limit_threads()
    if args.rows < 1 or args.cols < 1:
        raise SystemExit(f"error: --rows and --cols must be >= 1; got {args.rows}x{args.cols}.")
    if not 0 <= args.max_drop <= 1:
        raise SystemExit(f"error: --max-drop must be in [0, 1] (0.02 = 2 points); got {args.max_drop}.")
    try:
        data = load_dataset(resolve_data(args.data), seed=args.seed)
    except DataError as e:
        raise SystemExit(f"error: --data {args.data}: {e}") from None
    t = time.perf_counter()
    epochs = args.pretrain_epochs if args.pretrain_epochs is not None else (QUICK_PRETRAIN_EPOCHS if args.quick else None)
    model = pretrained(args.model, data, seed=args.seed, epochs=epochs, progress=sys.stderr.isatty())
    if time.perf_counter() - t > 2:
        log(f"trained {args.model} on {data.name} in {time.perf_counter() - t:.0f} s (cached from now on)")
    rates = tuple(args.map_rates or (QUICK_RATES if args.quick else MAP_RATES))
    epochs = tuple(args.map_epochs or (QUICK_EPOCHS if args.quick else MAP_EPOCHS))
    trials = args.trials or (QUICK_TRIALS if args.quick else MAP_TRIALS)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    return Setup(args, ArrayConfig(args.rows, args.cols), data, model, out, rates, epochs, trials)


def limit_threads() -> None:
    """One torch thread unless ``OMP_NUM_THREADS`` says otherwise.

    The models here are tiny: extra intra-op threads buy nothing and, on a busy 2-core
    machine, cost a lot (pretraining the MLP took 68 s with 2 threads, 15 s with 1).
    """
    if not os.environ.get("OMP_NUM_THREADS"):
        import torch

        torch.set_num_threads(1)


def log(msg: str) -> None:
    print(msg, flush=True)


def _model_digest(model) -> str:
    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().cpu().numpy().tobytes())
    return h.hexdigest()


def map_path(s: Setup) -> Path:
    """The shared map's JSON: one file per (data, model weights, array, grid, trials, seed)."""
    key = json.dumps({"data": s.data.fingerprint(), "model": _model_digest(s.model), "array": [s.cfg.rows, s.cfg.cols],
                      "rates": list(s.rates), "epochs": list(s.epochs), "trials": s.trials, "seed": s.args.seed})
    digest = hashlib.sha256(key.encode()).hexdigest()[:10]
    return s.path(f"resilience_map_{s.data.name}_{s.args.model}_{s.cfg.rows}x{s.cfg.cols}_seed{s.args.seed}_{digest}.json")


def shared_map(s: Setup):
    """The resilience map for this set-up: loaded if complete, resumed if partial, else measured."""
    from training.fat import resilience_map
    from training.resilience import ResilienceError

    path = map_path(s)
    state = "measuring"
    if path.exists():
        state = "reusing" if _complete(path) else "resuming"
    log(f"resilience map ({len(s.rates)} rates x {len(s.epochs)} amounts x {s.trials} chips): {state} {path}")
    t = time.perf_counter()
    try:
        rmap = resilience_map(s.model, s.data, s.cfg, s.rates, s.epochs, trials=s.trials, seed=s.args.seed,
                              out=path, progress=sys.stderr.isatty() and state != "reusing")
    except ResilienceError as e:  # a file of this name that does not fit: keep it aside and measure anew
        stale = path.with_suffix(".stale.json")
        os.replace(path, stale)
        log(f"  {e}; moved it to {stale.name} and measuring again")
        rmap = resilience_map(s.model, s.data, s.cfg, s.rates, s.epochs, trials=s.trials, seed=s.args.seed,
                              out=path, progress=sys.stderr.isatty())
    if state != "reusing":
        log(f"  done in {time.perf_counter() - t:.0f} s")
    return rmap


def _complete(path: Path) -> bool:
    try:
        with open(path) as f:
            acc = json.load(f)["accuracy"]
    except (OSError, ValueError, KeyError):
        return False
    return all(v is not None for row in acc for cell in row for v in cell)


def map_chip(s: Setup, rate: float, trial: int):
    """Chip ``trial`` at ``rate`` exactly as :func:`training.fat.resilience_map` draws it."""
    from training import fat

    return fat.map_chip(s.cfg, rate, trial, s.args.seed)


def population(s: Setup, n: int):
    """``n`` chips (chip ``i`` is the same for every ``n``) with ``--chip-rates`` and ``--spatial``."""
    from faults import Population

    return Population.generate(s.cfg, n, rates=s.args.chip_rates, seed=s.args.seed, spatial=s.args.spatial)


def make_plan(s: Setup, pop, rmap, strategy: str = "reward"):
    """:func:`training.planner.plan`, with a one-line exit when no chip can meet the constraint."""
    from training.planner import PlanError, plan

    try:
        return plan(pop, rmap, s.args.max_drop, strategy=strategy)
    except PlanError as e:
        raise SystemExit(f"error: {e}") from None


def fmt_epochs(e: float) -> str:
    """An amount for a CSV cell: ``inf`` where nothing on the map meets the constraint."""
    return "inf" if math.isinf(e) else f"{e:g}"


def write_csv(path: Path, header: list[str], rows) -> None:
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)


def done(s: Setup, files, t0: float) -> None:
    log(f"wrote {', '.join(str(s.path(f)) for f in files)} ({time.perf_counter() - t0:.0f} s)")


def rng_for(s: Setup, *key) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([s.args.seed, *key]))
