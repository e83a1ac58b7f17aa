"""Synthetic material for the studio's tests and bench: a run folder (prepared tracks, a training
log, checkpoints, previews) and folders of clips with sidecars as generate + curate write them.

Deterministic from a seed; numpy + soundfile only (no torch, no model: the studio never needs one).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import soundfile as sf

SR = 16000


def tone(seconds: float, seed: int, *, sr: int = SR) -> np.ndarray:
    """A few decaying notes: distinct per seed, cheap to make."""
    rng = np.random.default_rng(seed)
    n = int(round(seconds * sr))
    out = np.zeros(n, np.float32)
    ring = np.arange(int(2.5 * sr)) / sr  # a note rings 2.5 s (down to -65 dB)
    note = np.exp(-3.0 * ring)
    pos = 0.0
    while pos < seconds:
        f = 110 * 2 ** (rng.integers(0, 24) / 12)
        start = int(pos * sr)
        m = min(ring.size, n - start)
        out[start : start + m] += (0.3 * np.sin(2 * np.pi * f * (ring[:m] + pos)) * note[:m]).astype(np.float32)
        pos += rng.uniform(0.2, 0.7)
    return (0.8 * out / max(1e-6, np.abs(out).max())).astype(np.float32)


def make_run(root: Path, *, tracks: int = 3, track_seconds: float = 6.0, steps=(100, 200, 300),
             temperatures=(0.9, 1.0), preview_seconds: float = 1.0) -> Path:
    """RUN/ as prepare + train leave it: data/ (real `prepare` of synthetic tracks named
    track0..), metrics.jsonl, checkpoints/step-N.pt (stand-in bytes) with best.pt and last.pt
    hard links, previews/step-N/temperature-T.wav."""
    from inspire.audio.dataset import PrepareSettings, prepare

    run = Path(root)
    album = run.parent / f"{run.name}-album"
    album.mkdir(parents=True, exist_ok=True)
    for i in range(tracks):
        sf.write(str(album / f"track{i}.wav"), tone(track_seconds, 1000 + i), SR, subtype="PCM_16")
    prepare([album], run, PrepareSettings(), progress=False)
    rows = []
    for step in range(10, max(steps) + 1, 10):
        row = {"step": step, "train_bits": round(7.5 - 3.0 * (1 - np.exp(-step / 120)), 5)}
        if step in steps:
            row.update(val_bits=round(row["train_bits"] + 0.2, 5), baseline_bits=7.1)
        rows.append(row)
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    cdir = run / "checkpoints"
    cdir.mkdir(exist_ok=True)
    for step in steps:
        (cdir / f"step-{step:08d}.pt").write_bytes(f"stand-in checkpoint {step}".encode())
        for k, temp in enumerate(temperatures):
            out = run / "previews" / f"step-{step:08d}" / f"temperature-{temp:.2f}.wav"
            out.parent.mkdir(parents=True, exist_ok=True)
            sf.write(str(out), tone(preview_seconds, step + k), SR, subtype="PCM_16")
    os.link(cdir / f"step-{max(steps):08d}.pt", cdir / "last.pt")
    os.link(cdir / f"step-{steps[len(steps) // 2]:08d}.pt", cdir / "best.pt")
    return run


def make_clips(folder: Path, n: int, *, seconds: float = 3.0, seed: int = 0, run: Path | None = None,
               curated: bool = True, tracks: int = 3, track_seconds: float = 6.0) -> list[str]:
    """n clips in `folder` with sidecars (written through inspire.clips), curated like
    `inspire curate` leaves them: verdict, score, rank, reasons, features and lineage matches
    against tracks track0.. of `run`. Returns the ids in rank order."""
    from inspire import clips

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    curves = [("0.875:1.15", [0.0, 1.0], [0.875, 1.15]), ("0.95", [0.0, 1.0], [0.95, 0.95]),
              ("0s:0.8,1s:1.2", [0.0, 1.0 / seconds, 1.0], [0.8, 1.2, 1.2]), ("1.05:0.9", [0.0, 1.0], [1.05, 0.9])]
    made = []
    for i in range(n):
        cid = f"{i:04d}-{seed:02d}{i * 7919 % 100000:05d}"
        sf.write(str(folder / f"{cid}.wav"), tone(seconds, seed * 100000 + i), SR, subtype="PCM_16")
        spec, fractions, values = curves[i % len(curves)]
        times = [round(f * seconds, 6) for f in fractions]
        score = float(rng.uniform(0, 1))
        matches = []
        if curated and i % 3 == 0:
            start = round(float(rng.uniform(0, seconds / 2)), 3)
            end = round(min(seconds, start + float(rng.uniform(0.5, min(seconds, track_seconds) / 2))), 3)
            matches.append({"clip_start_s": start, "clip_end_s": end, "track": f"track{i % tracks}",
                            "source_start_s": round(float(rng.uniform(0, track_seconds - (end - start))), 3),
                            "similarity": round(float(rng.uniform(0.4, 0.9)), 3)})
        curation = None
        if curated:
            keep = score > 0.35
            curation = {
                "verdict": "keep" if keep else "discard",
                "score": round(score, 4),
                "rank": 0,
                "reasons": ["varied and lively"] if keep else ["too quiet: -41.0 LUFS"],
                "features": {"loudness_lufs": round(-14 - 20 * (1 - score), 2), "variety_db": round(6 * score, 2),
                             "silence_fraction": round(0.3 * (1 - score), 3)},
                "lineage": {"fraction": round(sum(m["clip_end_s"] - m["clip_start_s"] for m in matches) / seconds, 4),
                            "matches": matches} if run is not None or matches else None,
                "error": None,
            }
        record = clips.ClipRecord(
            id=cid, file=f"{cid}.wav", run=None if run is None else str(Path(run).resolve()),
            checkpoint={"path": "checkpoints/step-00000300.pt", "sha256": "0" * 64, "step": 300},
            seed=seed, index=i, stream_seed=i, temperature={"spec": spec, "times_s": times, "values": values},
            seconds=seconds, samples=int(seconds * SR), sample_rate=SR, quantization="mu-law", levels=256,
            created=f"2026-01-01T00:{i // 60 % 60:02d}:{i % 60:02d}+00:00", curation=curation,
        )
        made.append(record)
    if curated:
        order = sorted(made, key=lambda r: (r.curation["verdict"] != "keep", -r.curation["score"], r.id))
        from dataclasses import replace

        made = [replace(r, curation={**r.curation, "rank": k}) for k, r in enumerate(order, 1)]
    for record in made:
        clips.write(record, folder)
    return [r.id for r in made]
