"""`inspire prepare`: a folder of music becomes a run's training data (inspire.audio.dataset)."""

from __future__ import annotations

from inspire.audio.dataset import NORMALIZE, PrepareSettings, prepare, print_table
from inspire.audio.quantize import KINDS
from inspire.cli.flags import add_field


def add(sub, formatter) -> None:
    p = sub.add_parser(
        "prepare",
        formatter_class=formatter,
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
    add_field(p, PrepareSettings, "sample_rate")
    add_field(p, PrepareSettings, "quantization", choices=KINDS)
    add_field(p, PrepareSettings, "levels")
    add_field(p, PrepareSettings, "normalize", choices=NORMALIZE)
    add_field(p, PrepareSettings, "val_fraction")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args) -> int:
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
