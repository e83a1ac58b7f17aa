"""`inspire compose`: render an arrangement, or arrange a folder of clips (inspire.compose)."""

from __future__ import annotations

import sys
from dataclasses import fields
from pathlib import Path

from inspire.cli.flags import terminate_as_interrupt
from inspire.compose.arrangement import NOISE_MODES, Arrangement
from inspire.errors import UserInputError

# The arrangement's own defaults: shown in the help, and what an --auto piece starts from.
_ARRANGEMENT = {f.name: f.default for f in fields(Arrangement)}
_MASTERING = ("noise_reduction", "lufs", "true_peak")  # flags that override the arrangement's


def add(sub, formatter) -> None:
    p = sub.add_parser(
        "compose",
        formatter_class=formatter,
        help="splice clips into a new, loudness-normalised piece",
        description=(
            "Render ARRANGEMENT (a TOML list of parts: clip, in_s, out_s, gain_db, crossfade_s) to OUT,\n"
            "or with --auto arrange the best passages of a folder of clips yourself (using its\n"
            "curation.json when present) and write the arrangement beside OUT as OUT.toml to edit.\n"
            "Also writes OUT.json (every part traced to its clip) and OUT.labels.txt (open it in\n"
            "Audacity with File > Import > Labels to see the splices).\n\n"
            "  inspire compose --auto clips/ --minutes 4 --out piece.wav\n"
            "  inspire compose piece.toml --out piece.wav --force"
        ),
    )
    p.add_argument("arrangement", nargs="?", metavar="ARRANGEMENT", help="arrangement TOML to render")
    p.add_argument("--auto", metavar="CLIPS_DIR", help="arrange the clips in CLIPS_DIR automatically")
    p.add_argument("--minutes", type=float, default=4.0, help="length of an --auto piece, in minutes")
    p.add_argument("--out", required=True, metavar="OUT", help="the piece to write (.wav, .flac or .mp3)")
    p.add_argument("--stems", metavar="DIR", help="also write each part as a full-length, aligned file in DIR")
    p.add_argument("--noise-reduction", choices=NOISE_MODES, default=None,
                   help="spectral gating: off, on each part, or on the whole mix "
                        f"(default: the arrangement's; {_ARRANGEMENT['noise_reduction']} for --auto)")
    p.add_argument("--lufs", type=float, default=None,
                   help=f"integrated loudness target (default: the arrangement's; {_ARRANGEMENT['lufs']:g})")
    p.add_argument("--true-peak", type=float, default=None,
                   help=f"true-peak ceiling in dBTP (default: the arrangement's; {_ARRANGEMENT['true_peak']:g})")
    p.add_argument("--sample-rate", type=int, default=None, metavar="HZ",
                   help="write the piece and stems at this rate (soxr), e.g. 48000 (default: the clips' rate)")
    p.add_argument("--bit-depth", type=int, choices=(16, 24, 32), default=None,
                   help="16- or 24-bit PCM, or 32-bit float (default: a 16-bit piece and 24-bit stems)")
    p.add_argument("--seed", type=int, default=0, help="seed for --auto's ordering search")
    p.add_argument("--force", action="store_true", help="overwrite an existing OUT (and its .toml/.json/.labels.txt)")
    p.set_defaults(func=run)


def run(args) -> int:
    with terminate_as_interrupt():  # SIGTERM (the studio's cancel) leaves no half-written files
        return _run(args)


def _run(args) -> int:
    from inspire.compose.compose import auto_compose, render_arrangement

    if (args.arrangement is None) == (args.auto is None):
        raise UserInputError("give either an ARRANGEMENT file or --auto CLIPS_DIR (exactly one)")
    given = {k: v for k in _MASTERING if (v := getattr(args, k)) is not None}
    if args.auto is not None:
        mastering = {k: _ARRANGEMENT[k] for k in _MASTERING} | given
        piece = auto_compose(args.auto, minutes=args.minutes, out=args.out, seed=args.seed, stems_dir=args.stems,
                             force=args.force, sample_rate=args.sample_rate, bit_depth=args.bit_depth, **mastering)
    else:
        piece = render_arrangement(args.arrangement, out=args.out, stems_dir=args.stems, force=args.force,
                                   sample_rate=args.sample_rate, bit_depth=args.bit_depth, **given)
    out = Path(args.out)
    loud = piece["loudness"]
    print(f"inspire compose: {len(piece['parts'])} parts, {piece['seconds']:.1f} s, "
          f"{loud.get('integrated_lufs')} LUFS, true peak {loud.get('true_peak_dbtp')} dBTP", file=sys.stderr)
    print(out)
    if piece.get("auto"):
        print(out.with_suffix(".toml"))
    print(out.with_suffix(".json"))
    print(out.with_suffix(".labels.txt"))
    for part in piece["parts"]:
        if part["stem"]:
            print(out.parent / part["stem"])
    return 0
