"""The ``efat`` command line.

Each sub-command lives in :mod:`cli.commands` and registers itself. Bad input (any
``ValueError``, among them every file error, and missing or unwritable files) ends the
program with one line on stderr and exit code 2; so do malformed arguments.
"""

from __future__ import annotations

import sys

from .args import Parser
from .commands import abft, assign, axdnn, demo, inject, multipliers, plan, population, resilience, retrain, simulate, timing

COMMANDS = (demo, simulate, resilience, plan, retrain, assign, population, timing, inject, multipliers, axdnn, abft)


def build_parser() -> Parser:
    parser = Parser(prog="efat", description="Systolic-array fault simulation and eFAT planning.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True, parser_class=Parser)
    for module in COMMANDS:
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # --help, or a bad argument (already reported in one line)
        return int(e.code or 0) if not isinstance(e.code, str) else 2
    try:
        return int(args.func(args) or 0)
    except (ValueError, OSError) as e:
        print(f"efat {args.command}: error: {_one_line(e)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"efat {args.command}: interrupted", file=sys.stderr)
        return 130


def _one_line(e: Exception) -> str:
    if isinstance(e, OSError) and e.filename is not None:
        return f"{e.filename}: {e.strerror or e}"
    return " ".join(str(e).split())


if __name__ == "__main__":
    sys.exit(main())
