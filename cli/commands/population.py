"""``efat population``: generate, save, summarise and plot populations of faulty chips.

Examples
--------
efat population -n 200 --rows 64 --cols 64 --rates negbin:0.02,0.5 --spatial clustered --out pop.npz
efat population --load pop.npz --plot pop.png --json
"""

from __future__ import annotations

import json

from tqdm import tqdm

from faults import SITES, SPATIAL_MODELS, Population
from faults.rates import SPEC_FORMS
from simulator import ArrayConfig

# generation options: default values (None on the parser, so --load can reject them)
DEFAULTS = dict(rows=32, cols=32, chips=100, rates="uniform:0.01,0.05", spatial="uniform",
                sites=",".join(SITES), seed=0)


class PopulationArgError(ValueError):
    """Inconsistent ``efat population`` options."""


def register(sub) -> None:
    """Add the ``population`` sub-command to ``sub`` (an argparse subparsers object)."""
    p = sub.add_parser("population", help="generate / summarise a population of faulty chips",
                       description="Generate a population of faulty chips (or load one) and summarise it.")
    g = p.add_argument_group("generation (ignored with --load)")
    g.add_argument("--rows", type=int, metavar="R", help=f"PE rows (default: {DEFAULTS['rows']})")
    g.add_argument("--cols", type=int, metavar="C", help=f"PE columns (default: {DEFAULTS['cols']})")
    g.add_argument("-n", "--chips", type=int, metavar="N", help=f"number of chips (default: {DEFAULTS['chips']})")
    g.add_argument("--rates", metavar="SPEC", help=f"per-chip fault rate, one of: {', '.join(SPEC_FORMS)} "
                                                   f"(default: {DEFAULTS['rates']})")
    g.add_argument("--spatial", metavar="MODEL",
                   help=f"placement of faulty PEs: {' or '.join(SPATIAL_MODELS)} (default: {DEFAULTS['spatial']})")
    g.add_argument("--sites", metavar="SITE,...", help=f"comma-separated fault sites (default: {DEFAULTS['sites']})")
    g.add_argument("--seed", type=int, help=f"random seed (default: {DEFAULTS['seed']})")
    p.add_argument("--load", metavar="FILE.npz",
                   help="summarise a saved population instead of generating one (default: generate)")
    p.add_argument("--out", metavar="FILE.npz", help="save the population here (default: not saved)")
    p.add_argument("--plot", metavar="FILE.png",
                   help="save a PNG of rates, per-PE fault counts and one chip (default: none)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON instead of a table")
    p.set_defaults(func=run)


def run(args) -> int:
    """Execute ``efat population`` for parsed ``args``; returns the exit code."""
    if args.out and not args.out.endswith(".npz"):
        raise PopulationArgError(f"--out must name a .npz file; got {args.out!r}.")
    pop = _load(args) if args.load else _generate(args)
    if args.out:
        pop.save(args.out)
    if args.plot:
        pop.plot(args.plot)
    if args.json:
        print(json.dumps(pop.summary(), indent=2))
    else:
        print(pop.summary_text())
        if args.out:
            print(f"saved {len(pop)} chips to {args.out}")
        if args.plot:
            print(f"plot written to {args.plot}")
    return 0


def _load(args) -> Population:
    given = [f"--{name}" for name in DEFAULTS if getattr(args, name) is not None]
    if given:
        raise PopulationArgError(f"--load reads an existing population; drop {', '.join(given)}.")
    return Population.load(args.load)


def _generate(args) -> Population:
    opt = {name: (DEFAULTS[name] if getattr(args, name) is None else getattr(args, name)) for name in DEFAULTS}
    cfg = ArrayConfig(opt["rows"], opt["cols"])
    sites = tuple(s.strip() for s in opt["sites"].split(",") if s.strip())
    with tqdm(total=max(opt["chips"], 0), desc="chips", unit="chip", disable=None, leave=False) as bar:
        return Population.generate(cfg, opt["chips"], rates=opt["rates"], seed=opt["seed"],
                                   spatial=opt["spatial"], sites=sites, progress=bar.update)
