"""`inspire curate` and `inspire lineage`: judge a folder of clips, trace one clip to its sources
(inspire.curate, imported when they run)."""

from __future__ import annotations

import json
import sys
from pathlib import Path


def add(sub, formatter) -> None:
    p = sub.add_parser(
        "curate",
        formatter_class=formatter,
        help="score a folder of clips, keep the best, find what they copy",
        description=(
            "Score every clip in CLIPS_DIR (loudness, silence, clipping, noise, stuck loops,\n"
            "variety...), give each a verdict with reasons, a score and a rank, and write\n"
            "CLIPS_DIR/curation.json, curation.csv, report.html and each sidecar's 'curation'.\n"
            "With --run, also find passages that closely copy the run's training tracks.\n"
            "Nothing is moved or deleted unless --move is given."
        ),
    )
    p.add_argument("clips_dir", metavar="CLIPS_DIR", help="folder of audio clips (searched recursively)")
    p.add_argument("--run", metavar="RUN_DIR", default=None,
                   help="run folder whose training tracks to search for copies")
    p.add_argument("--keep", type=int, default=None, metavar="N", help="keep at most the N best clips")
    p.add_argument("--keep-fraction", type=float, default=None, metavar="F",
                   help="keep at most this share of all clips (0-1)")
    p.add_argument("--move", action="store_true",
                   help="move discarded clips and their sidecars into CLIPS_DIR/discarded/")
    p.add_argument(
        "--threshold",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="override a verdict threshold, e.g. max_silence_fraction=0.5 "
             "(repeatable; names in curation.json 'settings')",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run_curate)

    p = sub.add_parser(
        "lineage",
        formatter_class=formatter,
        help="show which passages of one clip copy which training track",
        description="Print the timeline of CLIP's near-copies of RUN_DIR's training tracks:\n"
                    "clip time, track, source time.",
    )
    p.add_argument("clip", metavar="CLIP", help="an audio file")
    p.add_argument("--run", required=True, metavar="RUN_DIR", help="run folder with prepared training data")
    p.add_argument("--json", action="store_true", help="print the matches as JSON instead of a timeline")
    p.set_defaults(func=run_lineage)


def run_curate(args) -> int:
    from inspire.curate.curate import curate_folder
    from inspire.curate.scores import Thresholds

    thresholds = Thresholds.from_overrides(args.threshold)
    curation = curate_folder(
        args.clips_dir,
        run_dir=args.run,
        keep=args.keep,
        keep_fraction=args.keep_fraction,
        move=args.move,
        progress=not args.quiet,
        thresholds=thresholds,
    )
    clips = curation["clips"]
    with_lineage = any(c["lineage"] for c in clips)
    print(f"{'rank':>4}  {'verdict':7}  {'score':>5}  {'copy':>5}  clip  reasons")
    for c in clips:
        copy = f"{100 * c['lineage']['fraction']:4.0f}%" if c["lineage"] else ("    -" if with_lineage else "     ")
        print(f"{c['rank']:>4}  {c['verdict']:7}  {c['score']:5.3f}  {copy}  {c['file']}  {'; '.join(c['reasons'])}")
    kept = sum(c["verdict"] == "keep" for c in clips)
    folder = Path(args.clips_dir)
    print(f"kept {kept} of {len(clips)}", file=sys.stderr)
    for name in ("curation.json", "curation.csv", "report.html"):
        print(folder / name)
    return 0


def run_lineage(args) -> int:
    from inspire.curate.curate import clip_lineage, format_timeline

    seconds, matches = clip_lineage(args.clip, args.run)
    if args.json:
        print(json.dumps({"clip": args.clip, "seconds": seconds, "matches": [m.to_dict() for m in matches]}, indent=2))
    else:
        print(format_timeline(seconds, matches))
    return 0
