"""The ``efat`` command line.

Each sub-command lives in :mod:`training.commands` and registers itself. Errors from
bad input (any ``ValueError``, missing files) end the program with one line on stderr
and exit code 2; argparse does the same for malformed arguments.
"""

from __future__ import annotations

import argparse
import sys

from .commands import demo, plan, population, resilience, retrain, simulate, timing

COMMANDS = (demo, simulate, resilience, plan, retrain, population, timing)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="efat",
        description="Systolic-array fault simulation and eFAT planning.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in COMMANDS:
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError, IsADirectoryError, PermissionError) as e:
        print(f"efat {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"efat {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
