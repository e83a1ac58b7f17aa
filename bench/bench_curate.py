"""Benchmark curation: index ~1 hour of corpus, then curate ~2.5 hours of clips against it.

The corpus is the muldjord dev songs (798 s at 16 kHz) repeated with perturbations (speed
changes via soxr, gain) until it reaches --corpus-minutes; it is prepared into a run folder
with `inspire.audio.dataset.prepare` (not timed as curation). The clips are 45-s WAVs: a third are
8-bit mu-law excerpts of the corpus embedded in synthetic notes (lineage finds them), the rest
synthetic music, noise, silence and loops. Prints wall times and peak memory.

    .venv/bin/python bench/bench_curate.py                 # the full size (~5 min on 2 cores)
    .venv/bin/python bench/bench_curate.py --corpus-minutes 5 --clip-minutes 10   # a quick look
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

SR = 16000
CORPUS = Path("/work/shared/corpora/dev/muldjord")


def synth_clip(seconds: float, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(int(0.6 * SR)) / SR
    out = np.zeros(int((seconds + 1) * SR), np.float32)
    pos = 0
    while pos < seconds * SR:
        f = 110 * 2 ** (rng.integers(0, 24) / 12)
        n = sum(0.6**h * np.sin(2 * np.pi * f * (h + 1) * t) for h in range(5)) * np.exp(-rng.uniform(2, 8) * t)
        out[pos : pos + n.size] += (0.3 * n).astype(np.float32)
        pos += int(rng.choice([0.125, 0.25, 0.5]) * SR)
    return out[: int(seconds * SR)]


def make_corpus(folder: Path, minutes: float) -> float:
    from inspire.audio.io import read_audio, resample

    songs = [read_audio(p)[0] for p in sorted(CORPUS.glob("*.flac"))]
    total, k = 0.0, 0
    speeds = [1.0, 0.97, 1.03, 0.94, 1.06, 0.91, 1.09]
    while total < minutes * 60:
        song = songs[k % len(songs)]
        speed = speeds[(k // len(songs)) % len(speeds)]
        x = resample(song, SR, int(round(SR * speed))) if speed != 1.0 else song
        x = x[: int(min(x.size, (minutes * 60 - total) * SR + SR))]
        sf.write(folder / f"track{k:02d}.flac", 0.9 * x / max(1e-6, np.abs(x).max()), SR, subtype="PCM_16")
        total += x.size / SR
        k += 1
    return total


def make_clips(folder: Path, corpus: Path, minutes: float, seconds: float = 45.0) -> int:
    from inspire.audio.quantize import dequantize, quantize

    rng = np.random.default_rng(0)
    tracks = sorted(corpus.glob("*.flac"))
    n = int(np.ceil(minutes * 60 / seconds))
    for i in range(n):
        kind = i % 6
        if kind in (0, 1):  # a copied 5-15 s excerpt inside synthetic notes
            src, _ = sf.read(tracks[rng.integers(len(tracks))], dtype="float32")
            length = int(rng.uniform(5, 15) * SR)
            a = int(rng.integers(0, src.size - length))
            x = synth_clip(seconds, rng)
            at = int(rng.uniform(0, seconds - 16) * SR)
            x[at : at + length] = 0.5 * src[a : a + length]
        elif kind == 2:
            x = (0.1 * rng.standard_normal(int(seconds * SR))).astype(np.float32)
        elif kind == 3:
            x = np.concatenate([synth_clip(10, rng), np.tile(synth_clip(0.7, rng), int((seconds - 10) / 0.7) + 1)])
            x = x[: int(seconds * SR)]
        else:
            x = synth_clip(seconds, rng)
        x = dequantize(quantize(np.clip(x, -1, 1)))  # what an 8-bit mu-law model emits
        sf.write(folder / f"clip{i:04d}.wav", x, SR, subtype="PCM_16")
    return n


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus-minutes", type=float, default=60.0, help="minutes of training audio to index")
    ap.add_argument("--clip-minutes", type=float, default=150.0, help="minutes of 45-s clips to curate")
    ap.add_argument("--workdir", default=None, help="keep files here (default: a temporary folder)")
    args = ap.parse_args()

    from inspire.audio.dataset import PrepareSettings, prepare
    from inspire.curate.curate import curate_folder
    from inspire.curate.lineage import run_index

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(args.workdir or tmp)
        (root / "corpus").mkdir(parents=True, exist_ok=True)
        (root / "clips").mkdir(exist_ok=True)
        t0 = time.perf_counter()
        corpus_s = make_corpus(root / "corpus", args.corpus_minutes)
        prepare([root / "corpus"], root / "run", PrepareSettings(sample_rate=SR), progress=False)
        n = make_clips(root / "clips", root / "corpus", args.clip_minutes)
        setup = time.perf_counter() - t0
        print(f"setup (synthesis + prepare, not curation): {setup:.1f} s", file=sys.stderr)

        t0 = time.perf_counter()
        index = run_index(root / "run")
        t_index = time.perf_counter() - t0
        t0 = time.perf_counter()
        run_index(root / "run")
        t_cached = time.perf_counter() - t0
        t0 = time.perf_counter()
        result = curate_folder(root / "clips", run_dir=root / "run")
        t_scan = time.perf_counter() - t0
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

        clips_s = sum(c["features"].get("duration_s", 0) for c in result["clips"])
        copies = sum(bool(c["lineage"] and c["lineage"]["matches"]) for c in result["clips"])
        kept = sum(c["verdict"] == "keep" for c in result["clips"])
        print(f"corpus: {corpus_s / 60:.1f} min in {len(index.names)} tracks, {index.hashes.size} landmarks")
        print(f"index build: {t_index:.1f} s ({t_index / corpus_s * 3600:.1f} s per corpus hour); "
              f"cached load: {t_cached:.2f} s")
        print(f"curate {n} clips, {clips_s / 60:.1f} min: {t_scan:.1f} s ({t_scan / max(n, 1) * 1000:.0f} ms per clip)")
        print(f"  kept {kept}, with a near-copy {copies} (a third were made with one)")
        print(f"total curation time: {t_index + t_scan:.1f} s; peak memory {peak_mb:.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
