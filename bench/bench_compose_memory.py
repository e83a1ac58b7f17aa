"""Benchmark `inspire compose --auto` peak memory on a folder holding one long clip.

Writes a synthetic 16 kHz clip (a melody of decaying notes over a little hiss, so the arranger
finds onsets and quiet dips) of each length to a temporary folder, then runs
`inspire compose --auto DIR --minutes M --out piece.wav` in a fresh Python process that reports
its own peak resident memory (ru_maxrss) and wall time; the same for a process that only imports
inspire (the floor). Prints a table and the load average.

    .venv/bin/python bench/bench_compose_memory.py                 # one 10-minute clip, a 1-minute piece
    .venv/bin/python bench/bench_compose_memory.py --clip-minutes 10,30 --minutes 2
    PYTHONPATH=/other/checkout/src .venv/bin/python bench/bench_compose_memory.py   # another version
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

SR = 16000
SRC = os.environ.get("PYTHONPATH") or str(Path(__file__).resolve().parents[1] / "src")

CHILD = r"""
import json, resource, sys, time
t0 = time.monotonic()
mode, folder, minutes, out = sys.argv[1:5]
if mode == "compose":
    from inspire.cli import main
    rc = main(["compose", "--auto", folder, "--minutes", minutes, "--out", out, "--force"])
    assert rc == 0, rc
else:
    import inspire.compose.compose  # noqa: F401
print(json.dumps({"peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "seconds": time.monotonic() - t0}))
"""


def write_clip(path: Path, minutes: float, *, seed: int = 0) -> None:
    """A long clip written block by block (a minute at a time): notes of a minor scale."""
    rng = np.random.default_rng(seed)
    total = int(minutes * 60 * SR)
    scale = [0, 2, 3, 5, 7, 8, 10, 12]
    with sf.SoundFile(str(path), "w", SR, 1, subtype="PCM_16") as f:
        for start in range(0, total, 60 * SR):
            n = min(60 * SR, total - start)
            t = np.arange(n) / SR
            x = 0.003 * rng.standard_normal(n)
            pos = 0
            while pos < n:
                length = int(rng.choice([0.25, 0.5, 0.5, 1.0]) * SR)
                freq = 220 * 2 ** (rng.choice(scale) / 12)
                seg = t[: min(length + SR // 4, n - pos)]
                x[pos: pos + len(seg)] += 0.3 * np.sin(2 * np.pi * freq * seg) * np.exp(-4 * seg)
                pos += length
            f.write(x.astype(np.float32))


def child(mode: str, folder: Path, minutes: float, out: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": SRC, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-c", CHILD, mode, str(folder), f"{minutes:g}", str(out)],
                          capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise SystemExit(proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else f"exit {proc.returncode}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clip-minutes", default="10", help="comma-separated clip lengths, in minutes")
    ap.add_argument("--minutes", type=float, default=1.0, help="length of the piece to arrange, in minutes")
    args = ap.parse_args()
    print(f"inspire from {SRC}")
    with tempfile.TemporaryDirectory() as tmp:
        floor = child("import", Path(tmp), args.minutes, Path(tmp) / "x.wav")
        print(f"{'clip':>8} {'piece':>7} {'peak RSS':>10} {'over floor':>11} {'time':>8}")
        print(f"{'(import)':>8} {'':>7} {floor['peak_mb']:>8.0f} MB {'':>11} {floor['seconds']:>6.1f} s")
        for m in (float(v) for v in args.clip_minutes.split(",")):
            folder = Path(tmp) / f"clips-{m:g}"
            folder.mkdir()
            write_clip(folder / "long.wav", m)
            got = child("compose", folder, args.minutes, Path(tmp) / f"piece-{m:g}.wav")
            over = got["peak_mb"] - floor["peak_mb"]
            print(f"{m:>6g} m {args.minutes:>5g} m {got['peak_mb']:>8.0f} MB {over:>8.0f} MB {got['seconds']:>6.1f} s")
    print(f"load average: {', '.join(f'{v:.2f}' for v in os.getloadavg())} ({os.cpu_count()} cores)")


if __name__ == "__main__":
    main()
