"""`inspire generate`: clips from a trained run (inspire.samplernn.generate, imported when it runs)."""

from __future__ import annotations

import argparse
import sys
import time

from inspire.cli.flags import add_field, terminate_as_interrupt
from inspire.config import GENERATE, GenerateDefaults, help_of
from inspire.errors import UserInputError


def add(sub, formatter) -> None:
    p = sub.add_parser(
        "generate",
        formatter_class=formatter,
        help="generate an abundance of clips with expressive temperature",
        description=(
            "Generate clips from a trained run. Temperature can move during a clip:\n"
            "  1.0                      constant\n"
            "  0.875:1.15               ramp from the start of each clip to its end\n"
            "  0:0.75,0.5:1.1,1:0.75    breakpoints at fractions of the clip\n"
            "  0s:0.9,20s:1.1,45s:0.8   breakpoints in seconds\n"
            "Several --temperature options spread the clips evenly across them (a sweep).\n\n"
            "Truncation is a second control in the same grammar: --min-p drops the unlikely tail that a\n"
            "high temperature would otherwise draw from (the usual road into noise), --top-p keeps the\n"
            "likeliest classes; several values sweep, combined with every temperature. --guard watches\n"
            "each clip for a collapse into noise and redraws the stretch where it falls, easing the\n"
            "temperature where it falls again. All three are off by default: on a well-trained model\n"
            "'-t 0.875:1.15 --min-p 0:0.05' kept every ending closest to the music (README), but on an\n"
            "undertrained one any truncation can leave clips silent.\n\n"
            "A model trained with labels (inspire train --label-by) can be steered, in the same grammar\n"
            "over its labels (the label embeddings are interpolated between breakpoints; none = unsteered):\n"
            "  nebula                                one label for the whole clip\n"
            "  nebula:through-space                  a morph from the start of each clip to its end\n"
            "  0s:nebula,20s:through-space,45s:none  breakpoints in seconds (or fractions 0..1)\n"
            "Several --steer options combine with several --temperature options: every temperature\n"
            "meets every steering curve. Quote a label holding a comma or colon: '\"live, take 2\":nebula'.\n\n"
            "Each clip is DIR/<id>.wav with a DIR/<id>.json sidecar saying what made it; DIR/manifest.json\n"
            "lists them. Run the same command again to resume; regenerate a favourite with --again ID.\n"
            "Ctrl-C or SIGTERM stops between samples: finished clips stay, the unfinished ones are dropped.\n\n"
            "Example: inspire generate RUN_DIR -n 215 --seconds 45 --temperature 0.875:1.15"
        ),
    )
    p.add_argument("run_dir", metavar="RUN_DIR", help="the run folder (made by inspire prepare / train)")
    p.add_argument("-n", "--clips", type=int, default=GENERATE.clips, dest="n", help=help_of(GenerateDefaults, "clips"))
    add_field(p, GenerateDefaults, "seconds", default=None,
              help=f"{help_of(GenerateDefaults, 'seconds')} "
                   f"(default: {GENERATE.seconds:g}; with --again, the clip's own length)")
    p.add_argument("--temperature", "-t", action="append", default=None, metavar="SPEC", dest="temperatures",
                   help=f"{help_of(GenerateDefaults, 'temperatures')} (default: {' '.join(GENERATE.temperatures)})")
    p.add_argument("--min-p", action="append", default=None, metavar="SPEC", dest="min_ps",
                   help=f"{help_of(GenerateDefaults, 'min_ps')} (default: {' '.join(GENERATE.min_ps)})")
    p.add_argument("--top-p", action="append", default=None, metavar="SPEC", dest="top_ps",
                   help=f"{help_of(GenerateDefaults, 'top_ps')} (default: {' '.join(GENERATE.top_ps)})")
    p.add_argument("--guard", action=argparse.BooleanOptionalAction, default=None,
                   help=f"{help_of(GenerateDefaults, 'guard')} (default: {'on' if GENERATE.guard else 'off'})")
    p.add_argument("--steer", action="append", default=None, metavar="SPEC", dest="steers",
                   help="steering curve over the model's labels (repeat for a sweep; see above; a model trained "
                        "without labels refuses it) (default: unsteered)")
    p.add_argument("--guidance", type=float, default=None, metavar="W",
                   help="with --steer: mix steered and unsteered predictions, "
                        "log p_none + W (log p_label - log p_none); "
                        "1 = plain steering, higher pushes further towards the labels, 0 to 10; about 1.5-2x "
                        "slower (every stream runs twice) (default: off)")
    add_field(p, GenerateDefaults, "checkpoint")
    add_field(p, GenerateDefaults, "seed")
    p.add_argument("--batch-size", type=int, default=None,
                   help=f"streams generated at once (default: {GENERATE.cpu_batch} on a CPU, "
                        f"{GENERATE.gpu_batch} on a GPU, fewer for fewer clips)")
    p.add_argument("--out", metavar="DIR", default=None,
                   help="output folder "
                        "(default: a folder under RUN_DIR/clips/ named after the job, so a rerun resumes)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    p.add_argument("--prime", metavar="FILE|corpus|corpus:TRACK", default=None,
                   help="continue from real audio: an audio file (any format, rate, channels), "
                        "'corpus' for a random stretch of a training track per clip, or 'corpus:TRACK' for a "
                        "stretch of that prepared track (its name or id) for every clip")
    add_field(p, GenerateDefaults, "prime_seconds")
    p.add_argument("--prime-start", type=float, default=None,
                   help="where the prime starts in FILE or TRACK, in seconds "
                        "(default: the last --prime-seconds of it)")
    p.add_argument("--include-prime", action="store_true", help="keep the prime at the start of each clip")
    p.add_argument("--again", metavar="ID", default=None,
                   help="regenerate the clip with this id (or sidecar path) exactly; with --seconds, longer or shorter")
    p.add_argument("--shard", metavar="I/N", default=None,
                   help="make only shard I of N (from 0) of the clips, into the same folder "
                        "(default: torchrun's RANK/WORLD_SIZE)")
    p.add_argument("--int8", action="store_true",
                   help="opt-in, CPU only: int8 weights for the big matrices (about 3x faster; "
                        "the sampled distribution moves slightly, so clips differ from fp32 ones)")
    p.add_argument("--threads", type=int, default=None,
                   help="CPU threads (default: measured at the start, the faster of one and all cores: several "
                        "threads are slower on a CPU busy with other work)")
    p.add_argument("--plot", action="store_true", help="draw each clip's temperature curve beside it (<id>.png)")
    p.add_argument("--force", action="store_true", help="replace clips in --out that were made with other settings")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--progress-json", action="store_true",
                   help="progress for a program, as one JSON object per line on stderr (every second, and as "
                        'clips finish): {"progress", "done", "total", "unit", "elapsed_s", "eta_s", "final", '
                        '"folder", "clips_done", "clips_total"}; done and total count seconds of audio to make '
                        "(inspire studio reads these)")
    p.set_defaults(func=run)


def run(args) -> int:
    with terminate_as_interrupt():
        return _run(args)


def _run(args) -> int:
    from inspire.samplernn import generate

    progress = "json" if args.progress_json else not args.quiet
    common = dict(out=args.out, device=args.device, progress=progress, plot=args.plot, force=args.force,
                  threads=args.threads)
    start = time.time()
    if args.again:
        given = [f for f, v in (("--min-p", args.min_ps), ("--top-p", args.top_ps), ("--guard/--no-guard", args.guard))
                 if v is not None]
        if given:
            raise UserInputError(f"{', '.join(given)} with --again: the clip is made again with the truncation and "
                                 "guard it was made with (start a new job to change them)")
        if args.steers or args.guidance is not None:
            raise UserInputError("--again makes the clip with its own steering (from its sidecar); leave out --steer "
                                 "and --guidance")
        folder = generate.again(args.run_dir, args.again, seconds=args.seconds, int8=True if args.int8 else None,
                                include_prime=True if args.include_prime else None, **common)
    else:
        folder = generate.run_job(
            args.run_dir, n=args.n, seconds=GENERATE.seconds if args.seconds is None else args.seconds,
            temperatures=args.temperatures or GENERATE.temperatures, min_ps=args.min_ps or GENERATE.min_ps,
            top_ps=args.top_ps or GENERATE.top_ps, guard=GENERATE.guard if args.guard is None else args.guard,
            seed=args.seed, checkpoint=args.checkpoint,
            batch_size=args.batch_size, prime=args.prime, prime_seconds=args.prime_seconds,
            prime_start=args.prime_start, include_prime=args.include_prime, shard=args.shard, int8=args.int8,
            steers=args.steers, guidance=args.guidance, **common,
        )
    print(f"generate: done in {time.time() - start:.1f} s", file=sys.stderr)
    print(folder)
    return 0
