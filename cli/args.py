"""What the commands (and the example scripts) share: a parser that errs in one line,
argument types, the data/model/array options, and loading the pretrained model."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

__all__ = ["Parser", "floats", "ints", "add_data_args", "add_array_args", "add_executor_args", "executor_spec",
           "add_constraint_args", "constraint_of", "resolve_data", "load_model_and_data", "limit_threads",
           "DEFAULT_MNIST"]

#: The MNIST test files beside the repository (``--data mnist``), unless ``$EFAT_MNIST`` names another folder.
DEFAULT_MNIST = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"
DATA_HELP = ("'digits' (scikit-learn's 8x8 digits), 'mnist' (the MNIST files in $EFAT_MNIST or "
             "../shared/data/mnist), 'mnist:PATH' or 'fashion:PATH' (a folder of IDX files)")


class HelpFormatter(argparse.HelpFormatter):
    """Appends ``(default: X)`` to an option's help unless the help already states its
    default, the option is required, or it is a flag."""

    def _get_help_string(self, action):
        text = action.help or ""
        if "default" in text or action.required or any(action.default is v for v in (None, False, argparse.SUPPRESS)):
            return text
        return text + " (default: %(default)s)"


class Parser(argparse.ArgumentParser):
    """An argument parser that shows every option's default in ``--help`` and reports a
    bad argument in one line (no usage dump), exit code 2."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _numbers(text: str, kind, what: str) -> list:
    try:
        values = [kind(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated {what}, e.g. 1,2,3; got {text!r}") from None
    if not values:
        raise argparse.ArgumentTypeError(f"expected at least one of the comma-separated {what}; got {text!r}")
    return values


def floats(text: str) -> list[float]:
    """``"0.1,0.2"`` -> ``[0.1, 0.2]`` (argparse type; the error names the option)."""
    return _numbers(text, float, "numbers")


def ints(text: str) -> list[int]:
    """``"10,25"`` -> ``[10, 25]``, each >= 1 (argparse type)."""
    values = _numbers(text, int, "integers")
    if min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive integers; got {text!r}")
    return values


def add_data_args(p, model: bool = True) -> None:
    """``--data``, ``--model`` and ``--seed``."""
    p.add_argument("--data", default="digits", metavar="SPEC", help=DATA_HELP)
    if model:
        p.add_argument("--model", default="lenet5", metavar="NAME",
                       help="model of the zoo: mlp, lenet5, vgg or vit (trained once, then loaded from the cache)")
    p.add_argument("--seed", type=int, default=0, help="seed of the data split, the training and the random chips")


def add_array_args(p, default: int = 32) -> None:
    """``--rows`` and ``--cols`` of the array."""
    p.add_argument("--rows", type=int, default=default, metavar="R", help="PE rows of the array")
    p.add_argument("--cols", type=int, default=default, metavar="C", help="PE columns of the array")


def add_executor_args(p) -> None:
    """Where the tasks run: ``--workers N`` (a local Dask cluster), ``--scheduler ADDR``
    (a running Dask scheduler) or ``--processes N`` (a local process pool); default serial."""
    g = p.add_argument_group("where the work runs (same results on every choice; default: this process)")
    x = g.add_mutually_exclusive_group()
    x.add_argument("--workers", type=int, metavar="N",
                   help="start a local Dask cluster of N worker processes (default: none)")
    x.add_argument("--scheduler", metavar="ADDR",
                   help="use a running Dask scheduler, e.g. tcp://host:8786 (default: none)")
    x.add_argument("--processes", type=int, metavar="N",
                   help="use a pool of N local processes, without Dask (default: none)")


def executor_spec(args):
    """The :func:`efat.executors.make_executor` spec of ``add_executor_args``' options."""
    for name, value in (("--workers", args.workers), ("--processes", args.processes)):
        if value is not None and value < 1:
            raise ValueError(f"{name} must be an int >= 1; got {value}.")
    if args.workers is not None:
        return f"dask:{args.workers}"
    if args.scheduler is not None:
        return args.scheduler if args.scheduler.startswith("tcp://") else f"tcp://{args.scheduler}"
    if args.processes is not None:
        return f"processes:{args.processes}"
    return None


def add_constraint_args(p, drop: float = 0.02) -> None:
    """``--max-drop``, ``--pass-target`` and ``--confidence``."""
    p.add_argument("--max-drop", type=float, default=drop, metavar="FRACTION",
                   help="max accuracy drop below the fault-free int8 accuracy (0.02 = 2 points)")
    p.add_argument("--pass-target", type=float, default=0.9, metavar="P",
                   help="share of chips that must meet the drop, in (0, 1)")
    p.add_argument("--confidence", type=float, default=0.9, metavar="C",
                   help="confidence with which the share is certified, in (0, 1)")


def constraint_of(args):
    """The :class:`efat.Constraint` of ``add_constraint_args``' options (checked)."""
    from efat import Constraint

    return Constraint(args.max_drop, args.pass_target, args.confidence)


def resolve_data(spec: str) -> str:
    """Turn ``--data`` into a :func:`training.load_dataset` spec (``mnist`` = the MNIST
    test files of ``$EFAT_MNIST`` or beside the repository)."""
    if spec != "mnist":
        return spec
    folder = Path(os.environ.get("EFAT_MNIST") or DEFAULT_MNIST)
    if not folder.is_dir():
        raise ValueError(f"--data mnist: no MNIST folder at {folder} (set EFAT_MNIST or pass --data mnist:PATH).")
    return f"mnist:{folder}"


def load_model_and_data(args, epochs: float | None = None):
    """``(pretrained model, dataset)`` for ``args.data``, ``args.model`` and ``args.seed``;
    ``epochs`` of baseline training (default: the model zoo's)."""
    from training import load_dataset, pretrained

    data = load_dataset(resolve_data(args.data), seed=args.seed)
    return pretrained(args.model, data, seed=args.seed, epochs=epochs, progress=sys.stderr.isatty()), data


def limit_threads() -> None:
    """One torch thread unless ``OMP_NUM_THREADS`` says otherwise.

    The models here are tiny: extra intra-op threads buy nothing and, on a busy 2-core
    machine, cost a lot (pretraining the MLP took 68 s with 2 threads, 15 s with 1).
    """
    if not os.environ.get("OMP_NUM_THREADS"):
        import torch

        torch.set_num_threads(1)
