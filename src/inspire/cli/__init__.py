"""The `inspire` command line: one console script, one subcommand per stage of the journey.

`main(argv)` returns an exit code so tests call it in-process. Each subcommand has its module
here with `add(sub, formatter)` (its parser, built without importing torch, so help starts
fast) and a run function that imports the wing it drives. User errors (`InspireError`) print
one line on stderr and exit 2, with no traceback. Progress and logs go to stderr; results
(paths, tables) to stdout. Nothing else in inspire imports this package.
"""

from __future__ import annotations

import argparse
import sys

from inspire import __version__
from inspire.cli import compose, curate, demo, generate, play, prepare, studio, train
from inspire.cli.flags import Formatter
from inspire.errors import InspireError

# In the order `inspire --help` lists them (curate also adds `lineage`).
COMMANDS = (prepare, demo, train, generate, play, curate, compose, studio)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="inspire",
        formatter_class=Formatter,
        description=(
            "An inspiration machine for musicians: train SampleRNN on your own audio, generate an\n"
            "abundance of clips with expressive temperature, curate them, compose with them.\n\n"
            "Journey: prepare -> train -> generate -> curate -> compose.  Try: inspire demo"
        ),
    )
    parser.add_argument("--version", action="version", version=f"inspire {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in COMMANDS:
        command.add(sub, Formatter)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except InspireError as exc:
        print(f"inspire {args.command}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"inspire {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
