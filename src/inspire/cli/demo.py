"""`inspire demo`: the whole journey on the built-in synthetic album, in a few minutes on a CPU.

album (synthesized) -> prepare -> train (tiny preset, a short budget) -> generate clips with a
rising temperature (and a few steered, a few watched by the collapse guard) -> curate (ranked
report) -> compose (a short piece). Each stage is the same code the real commands run; the demo
only picks small settings.
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import signal
import sys
import time
from pathlib import Path

from inspire.errors import UserInputError

DEMO_CLIPS = 8
DEMO_CLIP_SECONDS = 5.0
DEMO_STEERED = 2  # clips that morph from the first track into the last
DEMO_GUARDED = 2  # clips on the ramp with the collapse guard watching
DEMO_TEMPERATURES = ["0.875:1.15", "0.95"]
DEMO_TRAIN_MINUTES = 1.5


def add(sub, formatter) -> None:
    p = sub.add_parser(
        "demo",
        formatter_class=formatter,
        help="run the whole pipeline on a built-in synthetic album",
        description=(
            "Synthesize a short deterministic 'album' of cold, bright synth textures, then run every\n"
            "stage on it (prepare, train a tiny model, generate, curate, compose) and say what to open."
        ),
    )
    p.add_argument("--out", default="inspire-demo", metavar="DIR", help="folder for everything the demo makes")
    p.add_argument("--train-minutes", type=float, default=DEMO_TRAIN_MINUTES,
                   help="wall-clock budget for the demo's training")
    p.add_argument("--force", action="store_true", help="start over if DIR already holds a demo")
    p.set_defaults(func=run)


def run(args) -> int:
    return run_demo(args.out, train_minutes=args.train_minutes, force=args.force)


def _say(msg: str, t0: float) -> None:
    print(f"[demo {time.monotonic() - t0:5.0f} s] {msg}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def _signals_seen():
    """The set of signals delivered while the block runs, even those a handler inside it catches
    (the training loop turns Ctrl-C into "save and stop" and returns normally). Python writes
    each caught signal's number to the wakeup fd, whoever handles it."""
    seen: set[int] = set()
    r, w = os.pipe()
    os.set_blocking(r, False)
    os.set_blocking(w, False)
    try:
        old = signal.set_wakeup_fd(w, warn_on_full_buffer=False)
    except ValueError:  # not the main thread: no signals arrive here anyway
        os.close(r)
        os.close(w)
        yield seen
        return
    try:
        yield seen
    finally:
        signal.set_wakeup_fd(old)
        with contextlib.suppress(BlockingIOError):
            seen.update(os.read(r, 1024))
        os.close(r)
        os.close(w)


def run_demo(out: str | Path, *, train_minutes: float = DEMO_TRAIN_MINUTES, force: bool = False) -> int:
    from inspire.audio import synth
    from inspire.audio.dataset import PrepareSettings, prepare, print_table

    if not (math.isfinite(train_minutes) and train_minutes > 0):
        raise UserInputError(f"--train-minutes must be a positive number of minutes, got {train_minutes}")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UserInputError(f"{out}: a file is in the way (the demo needs a folder); pick another --out")
    if out.exists() and any(out.iterdir()):
        if not force:
            raise UserInputError(f"{out} is not empty: add --force to make the demo again there, or pick another --out")
        for name in ("album", "run", "piece"):
            shutil.rmtree(out / name, ignore_errors=True)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserInputError(f"{out}: cannot write here ({exc.strerror})") from None
    t0 = time.monotonic()

    _say("1/5 synthesizing the demo album (5 tracks of cold, bright synth textures)", t0)
    album = synth.write_album(out / "album")

    _say("2/5 preparing it as training data", t0)
    run = out / "run"
    manifest = prepare([out / "album"], run, PrepareSettings(), progress=False)
    print_table(manifest, file=sys.stderr)

    _say(f"3/5 training the tiny model for {train_minutes:g} minutes", t0)
    from inspire.samplernn.train import train

    with _signals_seen() as seen:
        train(run, preset="tiny", max_minutes=train_minutes, train_overrides={"checkpoint_every": 10**9},
              log_every=10, progress=False)
    if seen & {signal.SIGINT, signal.SIGTERM}:  # training saved and stopped; the demo stops too
        _say(f"demo stopped by {'Ctrl-C' if signal.SIGINT in seen else 'SIGTERM'} during training; "
             f"the model so far is in {run / 'checkpoints'}", t0)
        return 130

    _say(f"4/5 generating {DEMO_CLIPS} clips of {DEMO_CLIP_SECONDS:g} s "
         f"with temperatures {', '.join(DEMO_TEMPERATURES)}", t0)
    from inspire import clips as clip_records
    from inspire.samplernn import generate

    clips = generate.run_job(run, n=DEMO_CLIPS, seconds=DEMO_CLIP_SECONDS, temperatures=DEMO_TEMPERATURES,
                             seed=0, out=run / "clips" / "demo", progress=False)

    from inspire.samplernn import checkpoint

    labels = checkpoint.read_run_config(run).model.labels  # the album's tracks (training labels them)
    steered = None
    if len(labels) >= 2:
        morph = f"{labels[0]}:{labels[-1]}"
        _say(f"   and {DEMO_STEERED} clips steered from track {labels[0]} into {labels[-1]} (--steer {morph})", t0)
        steered = generate.run_job(run, n=DEMO_STEERED, seconds=DEMO_CLIP_SECONDS, temperatures=["0.95"],
                                   steers=[morph], seed=0, out=run / "clips" / "demo-steered", progress=False)

    _say(f"   and {DEMO_GUARDED} clips on the ramp {DEMO_TEMPERATURES[0]} watched by the collapse guard (--guard)", t0)
    guarded = generate.run_job(run, n=DEMO_GUARDED, seconds=DEMO_CLIP_SECONDS, temperatures=DEMO_TEMPERATURES[:1],
                               guard=True, seed=0, out=run / "clips" / "demo-guarded", progress=False)
    events = [e for r in clip_records.scan(guarded) for e in (r.guard or {}).get("interventions", [])]
    redraws = sum(1 for e in events if not e.get("gave_up"))

    _say("   curating them: scores, verdicts, lineage against the album, report.html", t0)
    from inspire.curate import curate

    curation = curate.curate_folder(clips, run_dir=run, progress=False)
    kept = sum(1 for c in curation["clips"] if c["verdict"] == "keep")
    for extra in (steered, guarded):  # so the studio shows every folder's verdicts (a collapse named too)
        if extra is not None:
            curate.curate_folder(extra, run_dir=run, progress=False)

    piece_path = out / "piece" / "piece.wav"
    if kept:
        _say("5/5 composing a short piece from the keepers", t0)
        from inspire.compose import compose

        piece = compose.auto_compose(clips, minutes=0.5, out=piece_path, seed=0)
    else:  # a busy or slow machine trained too few steps: say so rather than fail at the last stage
        _say("5/5 no clip passed curation, so there is no piece: the model trained too little on this machine; "
             "run again with --force --train-minutes 5", t0)

    minutes = (time.monotonic() - t0) / 60
    print(f"demo finished in {minutes:.1f} minutes. Open:")
    print(f"  album          {album[0].parent}/")
    print(f"  training curve {run / 'training.png'}")
    print(f"  previews       {run / 'previews'}/")
    print(f"  clips          {clips}/  ({kept} of {len(curation['clips'])} kept)")
    print(f"  curation       {clips / 'report.html'}")
    if steered:
        print(f"  steered clips  {steered}/")
    let_be = len(events) - redraws  # streams that kept falling past the guard's budget
    let_be_note = f" and let {let_be} stream{'s' if let_be > 1 else ''} be" if let_be else ""
    print(f"  guarded clips  {guarded}/  (the guard redrew {redraws} stretch{'' if redraws == 1 else 'es'}"
          f"{let_be_note}{', each recorded at its sample in the sidecar' if events else ''})")
    if kept:
        print(f"  piece          {piece_path}  (arrangement {piece_path.with_suffix('.toml')}, "
              f"Audacity labels {piece_path.with_suffix('.labels.txt')})")
        print(f"  parts          {len(piece.get('parts', []))}")
    print(f"Audition, triage and mark the clips by ear in the studio: inspire studio {run}")
    return 0
