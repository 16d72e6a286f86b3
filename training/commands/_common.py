"""Argument helpers shared by the sub-commands."""

from __future__ import annotations

import argparse


def floats(text: str) -> list[float]:
    """Parse ``"0.1,0.2"`` into floats, for argparse."""
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers; got {text!r}") from None


def add_model_args(p, array=True):
    p.add_argument("--data", default="digits", help="'digits' (default), 'mnist:PATH' or 'fashion:PATH'")
    p.add_argument("--model", default="lenet5", help="mlp, lenet5 or vgg (default lenet5)")
    p.add_argument("--seed", type=int, default=0, help="seed of data split, training and random chips")
    if array:
        p.add_argument("--rows", type=int, default=32)
        p.add_argument("--cols", type=int, default=32)


def load_model_and_data(args):
    from training.baseline import pretrained
    from training.data import load_dataset

    data = load_dataset(args.data, seed=args.seed)
    return pretrained(args.model, data, seed=args.seed, progress=True), data
