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


@pytest.fixture
def album(tmp_path):
    """Three short 'tracks' (2-3 s each) of distinct tones, as 16 kHz WAV files."""
    folder = tmp_path / "album"
    for i, (f, secs) in enumerate([(220.0, 3.0), (330.0, 2.5), (440.0, 2.0)]):
        x = sine(f, secs, 16000) + 0.1 * sine(3 * f, secs, 16000)
        write(folder / f"track{i}.wav", x, 16000)
    return folder
