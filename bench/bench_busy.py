"""Benchmark training on a busy CPU: audio samples per second of `inspire train` idle, and beside a
competing busy process, at a fixed thread count (the old default: all cores) and with the measured,
re-measured count (the default now). Prints figures and the load average; asserts nothing.

    .venv/bin/python bench/bench_busy.py                      # ~5 min
    .venv/bin/python bench/bench_busy.py --cpus 0,1           # pin everything to two cores (a laptop)

The competitor is a torch matmul loop on `--busy-threads` threads in its own process (a DAW, a
second training). Each configuration trains `--seconds` of wall time on a fresh copy of the demo
album, preset small, on the CPU, no validation or checkpoints inside the timing; figures are the median of
the logged rows (steady state) and the whole session's mean (probing included). "arrives" starts
the competitor halfway through an adaptive run and reports before and after (a DAW opened
mid-run). Goal: under load, training keeps at least half its idle throughput.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

COMPETITOR = """
import sys, torch
torch.set_num_threads(int(sys.argv[1]))
a = torch.randn(512, 512)
while True:
    a = torch.tanh(a @ a)
"""


def _pin(cpus: list[int] | None):
    return (lambda: os.sched_setaffinity(0, cpus)) if cpus else None


def competitor(threads: int, cpus: list[int] | None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", COMPETITOR, str(threads)], preexec_fn=_pin(cpus))


def train_run(prepared: Path, run: Path, *, preset: str, seconds: float, threads: int | None, cpus: list[int] | None,
              busy_at: float | None = None, busy_threads: int = 2) -> list[dict]:
    shutil.copytree(prepared / "data", run / "data")
    cmd = [sys.executable, "-m", "inspire", "train", str(run), "--preset", preset, "--quiet", "--no-previews",
           "--max-minutes", str(seconds / 60), "--val-every=1000000", "--checkpoint-every=1000000", "--log-every=2",
           "--val-seconds=0.1", "--device", "cpu"]
    if threads is not None:
        cmd += ["--threads", str(threads)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, preexec_fn=_pin(cpus))
    other = None
    if busy_at is not None:
        time.sleep(busy_at)
        other = competitor(busy_threads, cpus)
    _, err = proc.communicate()
    if other is not None:
        other.kill()
        other.wait()
    if proc.returncode:
        raise SystemExit(f"train failed:\n{err[-2000:]}")
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def rates(rows: list[dict], *, after: float = 0.0, before: float = float("inf")) -> tuple[float, float]:
    """(median of the logged rows, time-weighted mean) in samples/s over rows in (after, before].
    The median leaves out the first row (warm-up) and the last (the stop); the mean keeps
    everything, probing at other thread counts included."""
    inside = [(prev["elapsed_s"], r) for prev, r in zip([{"elapsed_s": 0.0}, *rows], rows, strict=False)
              if after < r["elapsed_s"] <= before]
    steady = [r["samples_per_s"] for _, r in inside if r is not rows[0] and r is not rows[-1]]
    median = statistics.median(steady) if steady else float("nan")
    spans = [(r["elapsed_s"] - t0, r["samples_per_s"]) for t0, r in inside]
    total = sum(dt for dt, _ in spans)
    return median, (sum(dt * v for dt, v in spans) / total if total > 0 else float("nan"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="small")
    ap.add_argument("--seconds", type=float, default=45.0, help="wall time of each training run")
    ap.add_argument("--busy-threads", type=int, default=2, help="threads of the competing process")
    ap.add_argument("--cpus", default=None, help="pin trainer and competitor to these CPUs, e.g. 0,1")
    args = ap.parse_args()
    from inspire.audio.dataset import PrepareSettings, prepare
    from inspire.audio.synth import write_album

    cpus = [int(c) for c in args.cpus.split(",")] if args.cpus else None
    cores = len(cpus) if cpus else len(os.sched_getaffinity(0))
    print(f"{cores} cores{' (pinned: ' + args.cpus + ')' if cpus else ''}; preset {args.preset}; "
          f"{args.seconds:g} s per run; competitor: {args.busy_threads} threads of matmul")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        prepare(write_album(tmp / "album"), tmp / "prepared", PrepareSettings(), progress=False)
        results = {}
        plan = [
            ("idle, adaptive (default)", None, False),
            (f"idle, --threads {cores}", cores, False),
            (f"busy, --threads {cores} (old default)", cores, True),
            ("busy, adaptive (default)", None, True),
            ("busy, --threads 1", 1, True),
        ]
        for i, (name, threads, busy) in enumerate(plan):
            other = competitor(args.busy_threads, cpus) if busy else None
            try:
                if other is not None:
                    time.sleep(2.0)  # let it get going
                rows = train_run(tmp / "prepared", tmp / f"run{i}", preset=args.preset, seconds=args.seconds,
                                 threads=threads, cpus=cpus)
            finally:
                if other is not None:
                    other.kill()
                    other.wait()
            results[name] = rates(rows)
            load = os.getloadavg()[0]
            median, mean = results[name]
            print(f"{name:<34} {median:8.0f} samples/s median, {mean:8.0f} mean  (load {load:.2f})")
        rows = train_run(tmp / "prepared", tmp / "arrives", preset=args.preset, seconds=2 * args.seconds, threads=None,
                         cpus=cpus, busy_at=args.seconds, busy_threads=args.busy_threads)
        settle = 10.0  # seconds for the tuner to notice and re-probe
        before, after = rates(rows, before=args.seconds), rates(rows, after=args.seconds + settle)
        print(f"{'arrives mid-run, adaptive':<34} {before[0]:8.0f} samples/s before, {after[0]:8.0f} after "
              f"(median; {settle:g} s after the arrival on)")
        idle = results["idle, adaptive (default)"][0]
        busy = results["busy, adaptive (default)"][0]
        old = results[f"busy, --threads {cores} (old default)"][0]
        print(f"busy/idle: adaptive {busy / idle:.2f}, old default {old / idle:.2f} (goal: adaptive >= 0.5)")
    print(f"load average: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
