"""Shared helpers: synthetic audio written to tmp_path (no binary fixtures)."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf


def sine(freq: float, seconds: float, sr: int, *, amp: float = 0.5, phase: float = 0.0) -> np.ndarray:
    t = np.arange(int(round(seconds * sr))) / sr
    return (amp * np.sin(2 * np.pi * freq * t + phase)).astype(np.float32)


def write(path, x: np.ndarray, sr: int, **kw) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), x, sr, **kw)
    return str(path)


def note(freq: float, seconds: float, *, decay: float = 4.0, sr: int = 16000) -> np.ndarray:
    """One synthetic instrument note: six decaying harmonics with a 5 ms attack."""
    t = np.arange(int(seconds * sr)) / sr
    y = sum(0.6**h * np.sin(2 * np.pi * freq * (h + 1) * t) for h in range(6))
    return (y * np.exp(-decay * t) * np.minimum(1.0, t * 200)).astype(np.float32)


def melody(seconds: float, seed: int, *, sr: int = 16000) -> np.ndarray:
    """A varied, musical clip: that instrument playing random notes of a minor scale."""
    rng = np.random.default_rng(seed)
    out = np.zeros(int((seconds + 1) * sr), np.float32)
    pos = 0
    while pos < seconds * sr:
        length = rng.choice([0.125, 0.25, 0.25, 0.375, 0.5])
        freq = 110 * 2 ** (rng.choice([0, 2, 3, 5, 7, 8, 10, 12, 14, 15]) / 12) * rng.choice([1, 2, 2, 4])
        n = note(freq, length + 0.3, decay=rng.uniform(2, 6), sr=sr)
        out[pos : pos + n.size] += n * rng.uniform(0.3, 0.8)
        pos += int(length * sr)
    out = out[: int(seconds * sr)]
    return (0.5 * out / np.abs(out).max()).astype(np.float32)


@pytest.fixture
def album(tmp_path):
    """Three short 'tracks' (2-3 s each) of distinct tones, as 16 kHz WAV files."""
    folder = tmp_path / "album"
    for i, (f, secs) in enumerate([(220.0, 3.0), (330.0, 2.5), (440.0, 2.0)]):
        x = sine(f, secs, 16000) + 0.1 * sine(3 * f, secs, 16000)
        write(folder / f"track{i}.wav", x, 16000)
    return folder


def save_checkpoint(run_dir, model, *, step: int, sample_rate: int = 16000) -> None:
    """Write `model` (e.g. random-init) as RUN/checkpoints/best.pt with mu-law data settings: a run
    that generate and play load like a trained one."""
    from inspire import config
    from inspire.samplernn import checkpoint

    cfg = model.cfg
    checkpoint.save(run_dir / "checkpoints" / "best.pt", {
        "model_config": config.to_dict(cfg),
        "train_config": config.to_dict(config.TrainConfig()),
        "data": {"sample_rate": sample_rate, "quantization": "mu-law", "levels": cfg.levels, "fingerprint": "test"},
        "model": model.state_dict(),
        "step": step,
    })


def make_labelled_run(root, labels=("song0", "song1"), *, seed: int = 0, sample_rate: int = 16000):
    """A prepared run of two 2-s tones whose random-init tiny checkpoint knows `labels`, with label
    tables that are not zero (as after training) and RUN/config.json written as `inspire train`
    writes it (the studio reads the labels there)."""
    import soundfile as sf
    import torch

    from inspire.audio.dataset import PrepareSettings, prepare
    from inspire.config import ModelConfig
    from inspire.samplernn import checkpoint
    from inspire.samplernn.model import SampleRNN

    root.mkdir(parents=True, exist_ok=True)
    songs = []
    for i in range(2):
        t = np.arange(int(2.0 * sample_rate)) / sample_rate
        songs.append(root / f"tune{i}.wav")
        sf.write(str(songs[-1]), 0.4 * np.sin(2 * np.pi * (200 + 150 * i) * t), sample_rate)
    run = root / "labelled"
    prepare(songs, run, PrepareSettings(levels=64), progress=False)
    torch.manual_seed(seed)
    model = SampleRNN(ModelConfig(frame_sizes=(4, 2), dim=16, levels=64, labels=tuple(labels)))
    with torch.no_grad():
        for tier in model.tiers:
            tier.label_table.normal_(0, 1.0)
    save_checkpoint(run, model.eval(), step=3, sample_rate=sample_rate)
    checkpoint.write_run_config(run, checkpoint.spec(checkpoint.load(run / "checkpoints" / "best.pt")))
    return run
