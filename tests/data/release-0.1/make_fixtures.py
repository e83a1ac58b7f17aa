"""How these fixtures were made: the release-0.1 command line (commit c0c6649), run once.

    PYTHONPATH=src python tests/data/release-0.1/make_fixtures.py

Do not run it again with later code: the point of this folder is that it holds what the
*release* wrote (sidecars with format_version 1, their manifest, curation.json, an
arrangement and its piece), so tests can check that newer code still reads them.

A tiny model is trained for a few steps on two synthetic tracks, makes two clips of 1.2 s
(compose --auto of the release fails on clips under ~1 s), `inspire curate` judges them
(thresholds relaxed so that both are kept, as an untrained model makes noise) and
`inspire compose --auto` arranges a short piece from them. Absolute paths in the sidecars
point into the temporary folder it ran in; nothing reads them back.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

from inspire.cli import main

HERE = Path(__file__).resolve().parent
SR = 16000


def melody(seconds: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    out = np.zeros_like(t)
    for start in np.arange(0.0, seconds, 0.25):
        f = 110 * 2 ** (rng.choice([0, 3, 5, 7, 10, 12]) / 12) * 2
        on = (t >= start) & (t < start + 0.4)
        out[on] += np.sin(2 * np.pi * f * (t[on] - start)) * np.exp(-5 * (t[on] - start))
    return (0.5 * out / np.abs(out).max()).astype(np.float32)


def run(argv: list[str]) -> None:
    print("inspire", " ".join(argv), file=sys.stderr)
    if main(argv) != 0:
        raise SystemExit(f"failed: inspire {' '.join(argv)}")


def make() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="inspire-release-0.1-"))
    album, run_dir, clips, piece = tmp / "album", tmp / "run", tmp / "clips", tmp / "piece"
    album.mkdir()
    for i in range(2):
        sf.write(album / f"track{i}.wav", melody(6.0, i), SR)
    run(["prepare", str(album), "--run", str(run_dir), "--levels", "64"])
    run(["train", str(run_dir), "--preset", "tiny", "--dim", "16", "--max-steps", "20", "--no-previews", "--quiet"])
    run(["generate", str(run_dir), "-n", "2", "--seconds", "1.2", "-t", "0.9:1.1", "-t", "1.0", "--checkpoint", "last",
         "--seed", "3", "--out", str(clips), "--quiet"])
    relaxed = ["max_silence_fraction=1", "min_loudness_lufs=-70", "noise_flatness=1", "max_clipped_fraction=1",
               "drone_variety_db=0", "max_loop_fraction=1"]
    run(["curate", str(clips), "--run", str(run_dir), "--quiet", *[a for r in relaxed for a in ("--threshold", r)]])
    run(["compose", "--auto", str(clips), "--minutes", "0.03", "--out", str(piece / "piece.wav"),
         "--noise-reduction", "off"])

    target = HERE
    for sub in ("clips", "piece"):
        shutil.rmtree(target / sub, ignore_errors=True)
    (target / "clips").mkdir()
    for f in clips.iterdir():
        if f.suffix in (".wav", ".json"):  # sidecars, audio, manifest.json, curation.json
            shutil.copy2(f, target / "clips" / f.name)
    (target / "piece").mkdir()
    for f in piece.iterdir():
        shutil.copy2(f, target / "piece" / f.name)
    shutil.rmtree(tmp)


if __name__ == "__main__":
    make()
