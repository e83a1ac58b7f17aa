"""Benchmark stopping: seconds from SIGTERM to exit of `inspire train`, in three moments of a run.
Prints figures; asserts nothing.

    .venv/bin/python bench/bench_stop.py                  # preset small on the demo album, ~3 min on 2 cores

Moments: while training steps run; while a validation runs (the signal lands a moment after the
step before a validation); while the three preview clips of a checkpoint render (the signal
lands just after the step file appears). The old loop finished the validation, ran another one
after the signal and rendered all previews before exiting (260-290 s measured with `small` on a
2-core laptop); a prompt stop saves the checkpoint and skips both. Each moment trains a fresh
copy of the prepared data in a subprocess, exactly as a musician's Ctrl-C or a scheduler's
SIGTERM reaches it.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MOMENTS = {
    # name: (extra flags, when to send SIGTERM: a function of the run folder -> bool)
    "training steps": (["--val-every=100000", "--checkpoint-every=100000", "--log-every=1"],
                       lambda run: _last_step(run) >= 3),
    "validation": (["--val-every=4", "--checkpoint-every=100000", "--log-every=1"],
                   lambda run: _last_step(run) >= 3),  # step 4 validates next; the signal follows a moment later
    "previews": (["--val-every=100000", "--checkpoint-every=3", "--log-every=1"],
                 lambda run: (run / "checkpoints" / "step-00000003.pt").exists()),
}


def _last_step(run: Path) -> int:
    try:
        return json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])["step"]
    except (FileNotFoundError, IndexError, ValueError, KeyError):
        return 0


def stop_time(prepared: Path, work: Path, name: str, *, preset: str, settle: float,
              device: str) -> tuple[float, int, str]:
    flags, ready = MOMENTS[name]
    run = work / name.replace(" ", "-")
    shutil.copytree(prepared / "data", run / "data")
    cmd = [sys.executable, "-m", "inspire", "train", str(run), "--preset", preset, "--quiet", "--device", device,
           *flags]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    while not ready(run):
        if proc.poll() is not None:
            raise SystemExit(f"{name}: train exited early:\n{proc.stderr.read()[-2000:]}")
        time.sleep(0.02)
    time.sleep(settle)
    sent = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate()
    took = time.monotonic() - sent
    saved = next((line for line in err.splitlines() if line.startswith("stopped at step")), "no 'stopped' line")
    return took, proc.returncode, saved


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="small", help="the preset trained")
    ap.add_argument("--settle", type=float, default=1.0, help="seconds between the moment being reached and SIGTERM")
    ap.add_argument("--device", default="cpu", help="training device (previews always render on the CPU)")
    ap.add_argument("--moments", default=",".join(MOMENTS), help="which moments, comma-separated")
    args = ap.parse_args()
    from inspire.audio.dataset import PrepareSettings, prepare
    from inspire.audio.synth import write_album

    print(f"{len(os.sched_getaffinity(0))} cores, {args.device}; preset {args.preset}; "
          f"SIGTERM {args.settle:g} s after each moment is reached")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        prepare(write_album(tmp / "album"), tmp / "prepared", PrepareSettings(), progress=False)
        for name in args.moments.split(","):
            took, rc, saved = stop_time(tmp / "prepared", tmp, name, preset=args.preset, settle=args.settle,
                                        device=args.device)
            print(f"SIGTERM during {name:<15} exit {rc} after {took:6.1f} s  ({saved})")
    print(f"load average: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
