"""Benchmark `inspire prepare` on long files: peak memory must stay flat whatever the length.

Writes synthetic 44.1 kHz stereo recordings (a slowly wandering chord with a little noise, so the
codec has real work) of each length to a temporary folder, as FLAC and/or WAV, written block by
block. Each file is prepared in a fresh Python process that reports its own peak resident memory
(ru_maxrss) and wall time; the same for a process that only imports inspire (the floor), and
optionally for the whole-track path (`read_audio` + `condition`, what prepare did before it
streamed) to show what the streaming saves. Prints a table and the load average.

    .venv/bin/python bench/bench_prepare.py                          # 5, 20, 60 minutes, FLAC and WAV
    .venv/bin/python bench/bench_prepare.py --minutes 5,20 --formats flac --whole-track
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

SR = 44100
SRC = str(Path(__file__).resolve().parents[1] / "src")

CHILD = r"""
import json, resource, sys, time
t0 = time.monotonic()
mode, path, run = sys.argv[1:4]
from inspire.audio.dataset import PrepareSettings, condition, prepare
if mode == "prepare":
    prepare([path], run, PrepareSettings(), progress=False)
elif mode == "whole-track":
    from inspire.audio.io import read_audio
    audio, _ = read_audio(path, sample_rate=16000)
    q = condition(audio, PrepareSettings())
print(json.dumps({"seconds": time.monotonic() - t0,
                  "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def write_recording(path: Path, minutes: float, *, seed: int = 0) -> None:
    """A stereo recording written in 10-s blocks (the bench itself stays small in memory)."""
    rng = np.random.default_rng(seed)
    block = 10 * SR
    phase = np.zeros(3)
    fmt = {"flac": ("FLAC", "PCM_16"), "wav": ("WAV", "PCM_16")}[path.suffix[1:]]
    with sf.SoundFile(str(path), "w", SR, 2, format=fmt[0], subtype=fmt[1]) as f:
        for _ in range(int(round(minutes * 60 * SR / block))):
            t = np.arange(block) / SR
            base = 110 * 2 ** (rng.integers(0, 12) / 12)
            freqs = base * np.array([1.0, 1.5, 2.0])
            y = np.zeros(block)
            for k, fr in enumerate(freqs):
                y += np.sin(phase[k] + 2 * np.pi * fr * t) / (k + 1)
                phase[k] = (phase[k] + 2 * np.pi * fr * block / SR) % (2 * np.pi)
            y = 0.3 * y + 0.01 * rng.standard_normal(block)
            left, right = y, np.roll(y, 7) * 0.9
            f.write(np.stack([left, right], axis=1).astype(np.float32))


def child(mode: str, path: Path, run: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": SRC}
    r = subprocess.run([sys.executable, "-c", CHILD, mode, str(path), str(run)], capture_output=True, text=True,
                       env=env, check=False)
    if r.returncode != 0:
        raise SystemExit(f"{mode} {path} failed:\n{r.stderr}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", default="5,20,60", help="lengths of the synthetic recordings, comma-separated")
    ap.add_argument("--formats", default="flac,wav", help="flac and/or wav, comma-separated")
    ap.add_argument("--whole-track", action="store_true",
                    help="also measure the whole-track path (memory grows with length: ~2.3 GB per hour)")
    ap.add_argument("--tmp", default=None, help="folder for the temporary files (default: the system's)")
    args = ap.parse_args()
    minutes = [float(m) for m in args.minutes.split(",")]
    formats = [f.strip() for f in args.formats.split(",")]

    with tempfile.TemporaryDirectory(dir=args.tmp) as tmp:
        tmp = Path(tmp)
        floor = child("import-only", tmp, tmp / "none")
        print(f"python + inspire imported: {floor['max_rss_mb']:.0f} MB peak RSS")
        print(f"{'file':<14} {'MB on disk':>10} {'prepare s':>10} {'x realtime':>10} {'peak RSS MB':>12}"
              + (f" {'whole-track MB':>15}" if args.whole_track else ""))
        for m in minutes:
            for fmt in formats:
                path = tmp / f"rec-{m:g}min.{fmt}"
                write_recording(path, m)
                r = child("prepare", path, tmp / f"run-{m:g}-{fmt}")
                line = (f"{path.name:<14} {path.stat().st_size / 1e6:>10.0f} {r['seconds']:>10.1f} "
                        f"{m * 60 / r['seconds']:>10.0f} {r['max_rss_mb']:>12.0f}")
                if args.whole_track:
                    line += f" {child('whole-track', path, tmp / 'unused')['max_rss_mb']:>15.0f}"
                print(line, flush=True)
                path.unlink()
    load = os.getloadavg()
    print(f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} cores; "
          f"{time.strftime('%Y-%m-%d %H:%M')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
