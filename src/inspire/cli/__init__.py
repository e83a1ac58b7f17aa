"""The `inspire` command line: one console script, one subcommand per stage of the journey.

`main(argv)` returns an exit code so tests call it in-process. Parsers are built without
importing torch (help starts fast); each command imports what it needs when it runs.
User errors (`InspireError`) print one line on stderr and exit 2, with no traceback.
Progress and logs go to stderr; results (paths, tables) to stdout.
"""

from __future__ import annotations

import argparse
import sys

from inspire import __version__
from inspire.errors import InspireError


class _Formatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    pass


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="inspire",
        formatter_class=_Formatter,
        description=(
            "An inspiration machine for musicians: train SampleRNN on your own audio, generate an\n"
            "abundance of clips with expressive temperature, curate them, compose with them.\n\n"
            "Journey: prepare -> train -> generate -> curate -> compose.  Try: inspire demo"
        ),
    )
    parser.add_argument("--version", action="version", version=f"inspire {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    _add_prepare(sub)
    _add_demo(sub)
    # Each later stage registers its own subcommands; their modules import no torch at top level.
    _add_stage_commands(sub)
    return parser


def _add_stage_commands(sub) -> None:
    from inspire.cli import train as train_cli

    train_cli.add_cli(sub, _Formatter)
    from inspire.samplernn import generate
    generate.add_cli(sub, _Formatter)
    from inspire.curate import curate
    curate.add_cli(sub, _Formatter)
    from inspire.compose import compose
    compose.add_cli(sub, _Formatter)
    from inspire.cli import studio

    studio.add(sub, _Formatter)


def _add_prepare(sub) -> None:
    p = sub.add_parser(
        "prepare",
        formatter_class=_Formatter,
        help="turn a folder of your music into a training dataset",
        description=(
            "Read every audio file in SOURCE (files and folders, searched recursively; WAV, FLAC,\n"
            "OGG, MP3, AIFF... at any rate and channel count), mix to mono, resample with soxr,\n"
            "remove DC, normalise each track's level and quantize into RUN_DIR/data/.\n"
            "Run again with more files to add them; unchanged files are skipped."
        ),
    )
    p.add_argument("sources", nargs="+", metavar="SOURCE", help="audio files and/or folders")
    p.add_argument("--run", required=True, metavar="RUN_DIR", help="run folder (created if absent)")
    p.add_argument("--sample-rate", type=int, default=16000, help="target sample rate in Hz")
    p.add_argument("--quantization", choices=["mu-law", "linear"], default="mu-law", help="quantization kind")
    p.add_argument("--levels", type=int, default=256, help="number of quantization levels (softmax size)")
    p.add_argument(
        "--normalize",
        choices=["peak", "none"],
        default="peak",
        help="level per track: peak brings each track's robust peak near full scale; none keeps the tracks' own levels",
    )
    p.add_argument(
        "--val-fraction",
        type=float,
        default=0.1,
        help="share of tracks held out for validation (at least one track; a held-out stretch when only one)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_run_prepare)


def _run_prepare(args) -> int:
    from inspire.audio.dataset import PrepareSettings, prepare, print_table

    settings = PrepareSettings(
        sample_rate=args.sample_rate,
        quantization=args.quantization,
        levels=args.levels,
        val_fraction=args.val_fraction,
        normalize=args.normalize,
    )
    manifest = prepare(args.sources, args.run, settings, progress=not args.quiet)
    print_table(manifest)
    return 0


def _add_demo(sub) -> None:
    p = sub.add_parser(
        "demo",
        formatter_class=_Formatter,
        help="run the whole pipeline on a built-in synthetic album",
        description=(
            "Synthesize a short deterministic 'album' of cold, bright synth textures, then run every\n"
            "stage on it (prepare, train a tiny model, generate, curate, compose) and say what to open."
        ),
    )
    p.add_argument("--out", default="inspire-demo", metavar="DIR", help="folder for everything the demo makes")
    p.add_argument("--train-minutes", type=float, default=1.5, help="wall-clock budget for the demo's training")
    p.add_argument("--force", action="store_true", help="start over if DIR already holds a demo")
    p.set_defaults(func=_run_demo)


def _run_demo(args) -> int:
    from inspire.cli.demo import run_demo

    return run_demo(args.out, train_minutes=args.train_minutes, force=args.force)


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
