"""Shared set-up of the eFAT figure examples (``fig1_*.py`` ... ``fig5_*.py``).

Every example takes the same core options (``--data``, ``--model``, ``--rows``/``--cols``,
``--seed``, ``--max-drop``, ``--out``, ``--quick``) and builds the same three things, with
the helpers the ``efat`` command line uses (:mod:`cli.args`, :mod:`cli.maps`):

* the data set (scikit-learn digits by default; ``--data mnist`` reads the MNIST test files
  at ``../shared/data/mnist`` next to the repository, or ``$EFAT_MNIST``);
* the pretrained model (trained once, then loaded from the cache of
  :func:`training.pretrained`);
* ONE resilience map per (data, model weights, array, grid, trials, seed), stored as JSON in
  the output folder and resumed by every example that needs it, so running fig1 ... fig5 one
  after another measures the map once.

The map's chips are the ones :func:`efat.resilience_map` draws; :func:`efat.map_chip`
rebuilds chip ``(rate, trial)`` so fig1 can add the unmitigated accuracy of exactly those
chips (and checks that its bypass accuracy matches the map's).
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as a script from anywhere: the project's packages come first
    sys.path.insert(0, str(REPO))

from cli.args import Parser, add_array_args, add_data_args, add_executor_args, executor_spec  # noqa: E402
from cli.args import floats, ints, limit_threads  # noqa: E402
from cli.pipeline import DemoConfig  # noqa: E402
from cli.args import load_model_and_data  # noqa: E402
from fileio import atomic_write  # noqa: E402

__all__ = ["floats", "ints"]  # argument types the examples use, from the app

DEFAULT_OUT = REPO / "examples" / "out"

#: Resilience-map grid of the default runs: the one ``efat demo`` uses (LeNet-5 on digits,
#: 32x32: about 2.5 minutes with ``--processes 2``).
MAP_RATES = DemoConfig.fault_rates
MAP_EPOCHS = DemoConfig.epochs
#: ... and of ``--quick`` (tests: seconds, not meaningful): a pass target and confidence of
#: 0.5 certify an amount with 1 chip, and the map holds 1 to 3 chips per rate.
QUICK_RATES = (0.02, 0.06)
QUICK_EPOCHS = (0.5,)
QUICK_LEVEL = 0.5
QUICK_PRETRAIN_EPOCHS = 5

#: Per-chip fault rates of the populations of fig3 ... fig5.
CHIP_RATES = "uniform:0.005,0.06"


def parser(doc: str, population: bool = False) -> Parser:
    """An argument parser with the options every example shares (and, with ``population``,
    the population options of fig3 ... fig5)."""
    p = Parser(description=doc.split("\n\n")[0])
    add_data_args(p)
    add_array_args(p)
    p.add_argument("--max-drop", type=float, default=0.02, metavar="FRACTION",
                   help="accuracy constraint: max drop below the fault-free int8 accuracy (0.02 = 2 points)")
    p.add_argument("--pass-target", type=float, default=None, metavar="P",
                   help="share of chips that must meet the drop (default: 0.9; 0.5 with --quick)")
    p.add_argument("--confidence", type=float, default=None, metavar="C",
                   help="confidence of that share (default: 0.9; 0.5 with --quick)")
    p.add_argument("--out", default=str(DEFAULT_OUT), metavar="DIR",
                   help="output folder (the shared resilience map lives here too)")
    p.add_argument("--quick", action="store_true",
                   help="tiny grids and populations, a briefly pretrained model (for tests; not meaningful)")
    p.add_argument("--pretrain-epochs", type=float, default=None, metavar="EPOCHS",
                   help="epochs of the baseline training (default: the model zoo's; 5 with --quick)")
    g = p.add_argument_group("resilience map (shared by all examples; defaults depend on --quick)")
    g.add_argument("--map-rates", type=floats, default=None, metavar="F1,F2,...",
                   help=f"fault-rate grid (default: {','.join(f'{r:g}' for r in MAP_RATES)})")
    g.add_argument("--map-epochs", type=floats, default=None, metavar="E1,E2,...",
                   help=f"retraining amounts in epochs, 0 added (default: {','.join(f'{e:g}' for e in MAP_EPOCHS)})")
    g.add_argument("--trials", type=int, default=None, metavar="N",
                   help="chips per rate in the map's first round (default: the fewest that can certify the pass "
                        "target at the confidence)")
    g.add_argument("--max-trials", type=int, default=None, metavar="N",
                   help="budget of chips per rate for adaptive sampling (default: 3 x the first round)")
    add_executor_args(p)
    if population:
        q = p.add_argument_group("population")
        q.add_argument("--chip-rates", default=CHIP_RATES, metavar="SPEC",
                       help="per-chip fault rates: a number or uniform:LO,HI, normal:..., lognormal:..., negbin:...")
        q.add_argument("--spatial", default="uniform", choices=("uniform", "clustered"),
                       help="placement of faulty PEs on a chip")
    return p


@dataclass
class Setup:
    """What every example needs: parsed args, array, data, pretrained model, output folder, grid."""

    args: object
    cfg: object
    data: object
    model: object
    out: Path
    rates: tuple
    epochs: tuple
    constraint: object

    def path(self, name: str) -> Path:
        return self.out / name

    def tag(self) -> str:
        """Short description for titles: model, data, array."""
        return f"{self.args.model} on {self.data.name}, {self.cfg.rows}x{self.cfg.cols} array"


def setup(args) -> Setup:
    """Load data and the pretrained model; fix the map grid (``--quick`` shrinks it).
    Bad input ends the script with one line."""
    from efat import Constraint
    from simulator import ArrayConfig

    limit_threads()
    if args.rows < 1 or args.cols < 1:
        raise SystemExit(f"error: --rows and --cols must be >= 1; got {args.rows}x{args.cols}.")
    level = QUICK_LEVEL if args.quick else 0.9
    try:
        executor_spec(args)
    except ValueError as e:
        raise SystemExit(f"error: {e}") from None
    try:
        constraint = Constraint(args.max_drop, args.pass_target if args.pass_target is not None else level,
                                args.confidence if args.confidence is not None else level)
    except ValueError as e:
        raise SystemExit(f"error: {e}") from None
    t = time.perf_counter()
    epochs = args.pretrain_epochs if args.pretrain_epochs is not None else (QUICK_PRETRAIN_EPOCHS if args.quick else None)
    try:
        model, data = load_model_and_data(args, epochs)
    except ValueError as e:
        raise SystemExit(f"error: {e}") from None
    if time.perf_counter() - t > 2:
        log(f"trained {args.model} on {data.name} in {time.perf_counter() - t:.0f} s (cached from now on)")
    rates = tuple(args.map_rates or (QUICK_RATES if args.quick else MAP_RATES))
    epochs = tuple(args.map_epochs or (QUICK_EPOCHS if args.quick else MAP_EPOCHS))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    return Setup(args, ArrayConfig(args.rows, args.cols), data, model, out, rates, epochs, constraint)


def log(msg: str) -> None:
    print(msg, flush=True)


def shared_map(s: Setup):
    """The resilience map for this set-up, shared by all examples (:func:`cli.maps.shared_map`)."""
    from cli.maps import map_path, shared_map as load_or_measure

    sampling = dict(constraint=s.constraint, trials=s.args.trials, max_trials=s.args.max_trials)
    path = map_path(s.out, s.data, s.model, s.args.model, s.cfg, s.rates, s.epochs, s.args.seed, **sampling)
    return load_or_measure(path, s.model, s.data, s.cfg, s.rates, s.epochs, s.args.seed, log=log,
                           executor=executor_spec(s.args), **sampling)


def map_chip(s: Setup, rate: float, trial: int):
    """Chip ``trial`` at ``rate`` exactly as :func:`efat.resilience_map` draws it."""
    from efat import map_chip

    return map_chip(s.cfg, rate, trial, s.args.seed)


def population(s: Setup, n: int):
    """``n`` chips (chip ``i`` is the same for every ``n``) with ``--chip-rates`` and ``--spatial``."""
    from faults import Population

    return Population.generate(s.cfg, n, rates=s.args.chip_rates, seed=s.args.seed, spatial=s.args.spatial)


def make_plan(s: Setup, pop, rmap, strategy: str = "reward"):
    """:func:`efat.plan`, with a one-line exit when no chip can meet the constraint."""
    from efat import PlanError, plan

    try:
        return plan(pop, rmap, s.constraint, strategy=strategy)
    except PlanError as e:
        raise SystemExit(f"error: {e}") from None


def fmt_epochs(e: float) -> str:
    """An amount for a CSV cell: ``inf`` where nothing on the map meets the constraint."""
    return "inf" if math.isinf(e) else f"{e:g}"


def write_csv(path: Path, header: list[str], rows) -> None:
    import csv

    with atomic_write(path, newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)


def done(s: Setup, files, t0: float) -> None:
    log(f"wrote {', '.join(str(s.path(f)) for f in files)} ({time.perf_counter() - t0:.0f} s)")


def rng_for(s: Setup, *key) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([s.args.seed, *key]))
