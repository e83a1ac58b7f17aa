"""The built-in demo album: a deterministic synthesizer of bright, cold synth textures.

Five short tracks in A minor at 112 BPM: FM arpeggios, detuned pads, percussive noise hits
and a sub bass, each track a different blend. Same output on every machine (a fixed seed and
only numpy arithmetic), so the demo and its tests are reproducible.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

SAMPLE_RATE = 16000
BPM = 112.0
# A natural minor, MIDI note numbers.
SCALE = np.array([57, 59, 60, 62, 64, 65, 67])
CHORDS = [(57, 60, 64), (53, 57, 60), (48, 52, 55), (55, 59, 62)]  # Am F C G

TRACKS = (
    # name, seconds, (arp, pad, hits, bass) levels, arp pattern step
    ("01-glass-arpeggio", 28.0, (0.8, 0.3, 0.25, 0.3), 2),
    ("02-frozen-pad", 24.0, (0.25, 0.8, 0.1, 0.35), 3),
    ("03-ice-percussion", 22.0, (0.4, 0.2, 0.7, 0.4), 1),
    ("04-neon-cascade", 26.0, (0.7, 0.45, 0.35, 0.3), 5),
    ("05-polar-night", 24.0, (0.5, 0.6, 0.2, 0.45), 4),
)


def midi_hz(note: float) -> float:
    return 440.0 * 2.0 ** ((note - 69) / 12.0)


def _env(n: int, attack: int, decay: float) -> np.ndarray:
    t = np.arange(n, dtype=np.float64)
    a = np.minimum(1.0, t / max(attack, 1))
    return a * np.exp(-t / max(decay, 1.0))


def render_track(index: int, *, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """One track as float32 mono in [-1, 1]."""
    name, seconds, (arp_lv, pad_lv, hit_lv, bass_lv), step = TRACKS[index]
    rng = np.random.default_rng(1000 + index)
    n = int(seconds * sample_rate)
    out = np.zeros(n)
    beat = 60.0 / BPM
    sixteenth = int(beat / 4 * sample_rate)
    bar = 16 * sixteenth

    # FM arpeggio: 16th notes climbing the chord, carrier:modulator 1:2 with a decaying index.
    pos, k = 0, 0
    while pos < n:
        chord = CHORDS[(pos // bar) % len(CHORDS)]
        note = chord[(k * step) % 3] + 12 * (1 + (k // 3) % 2)
        f = midi_hz(note)
        m = min(sixteenth * 2, n - pos)
        t = np.arange(m) / sample_rate
        index_env = 3.0 * np.exp(-t * 18)
        tone = np.sin(2 * np.pi * f * t + index_env * np.sin(2 * np.pi * 2 * f * t))
        out[pos : pos + m] += arp_lv * 0.35 * tone * _env(m, 40, 0.12 * sample_rate)
        pos += sixteenth
        k += 1

    # Pads: three detuned saw-ish voices per chord tone, slow attack, one chord per bar.
    for b0 in range(0, n, bar):
        chord = CHORDS[(b0 // bar) % len(CHORDS)]
        m = min(bar, n - b0)
        t = np.arange(m) / sample_rate
        env = np.minimum(1.0, t / 0.4) * np.minimum(1.0, (m / sample_rate - t) / 0.3)
        pad = np.zeros(m)
        for note in chord:
            for det in (-0.08, 0.0, 0.08):
                f = midi_hz(note + det)
                pad += sum(np.sin(2 * np.pi * f * h * t) / h for h in (1, 2, 3, 4))
        out[b0 : b0 + m] += pad_lv * 0.03 * pad * env

    # Percussive noise hits on beats 2 and 4 plus random ghost notes, high-passed by differencing.
    for pos in range(0, n, sixteenth):
        s16 = (pos // sixteenth) % 16
        if s16 in (4, 12) or (s16 % 2 == 1 and rng.random() < 0.2):
            m = min(int(0.15 * sample_rate), n - pos)
            noise = np.diff(rng.standard_normal(m + 1))
            lv = 1.0 if s16 in (4, 12) else 0.35
            out[pos : pos + m] += hit_lv * 0.25 * lv * noise * _env(m, 5, 0.03 * sample_rate)

    # Sub bass on the root, eighth notes.
    for pos in range(0, n, 2 * sixteenth):
        chord = CHORDS[(pos // bar) % len(CHORDS)]
        m = min(2 * sixteenth, n - pos)
        t = np.arange(m) / sample_rate
        out[pos : pos + m] += (bass_lv * 0.4 * np.sin(2 * np.pi * midi_hz(chord[0] - 24) * t)
                               * _env(m, 80, 0.2 * sample_rate))

    out *= 0.8 / max(1e-9, np.abs(out).max())
    return out.astype(np.float32)


def write_album(folder: str | Path, *, sample_rate: int = SAMPLE_RATE) -> list[Path]:
    """Write the demo album as 16-bit WAV files; returns their paths."""
    from inspire.audio.io import write_audio

    folder = Path(folder)
    paths = []
    for i, (name, *_rest) in enumerate(TRACKS):
        paths.append(write_audio(folder / f"{name}.wav", render_track(i, sample_rate=sample_rate), sample_rate))
    return paths
