"""Waveform peaks and a small log-frequency spectrogram of an audio file, for the page to draw.

The browser never decodes audio to draw it: the server reads each file once, reduces it to
about 100 peaks per second and a spectrogram of at most `MAX_COLUMNS` columns, and caches
the result keyed by the file's path, size and modification time (memory, then disk). Both are
sent as base64 of uint8 arrays: about 56 kB for a clip of 45 s, fetched only when its card
scrolls into view.

Written here rather than taken from a library: what is needed is a few lines of numpy over
soundfile (no audio UI library computes peaks on a server), and wavesurfer.js draws from them.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import threading
from collections import OrderedDict
from pathlib import Path

import numpy as np

from inspire.audio.io import read_audio
from inspire.errors import DiskFullError
from inspire.files import write_text

VERSION = 1  # bump when the computation changes: old cache entries are then ignored
PEAKS_PER_SECOND = 100
MIN_PEAKS, MAX_PEAKS = 200, 12000
N_FFT = 512
MAX_COLUMNS = 600
BANDS = 64
FLOOR_DB = -80.0  # spectrogram range below the loudest cell
LOW_HZ = 30.0


def compute(path: str | os.PathLike) -> dict:
    """{"duration", "sample_rate", "peaks": {"count", "data"}, "spectrogram": {"columns", "bands",
    "low_hz", "high_hz", "floor_db", "data"}} of an audio file (mono mix).

    peaks.data: base64 of uint8, max |x| per bucket scaled to 0..255 (1.0 = 255).
    spectrogram.data: base64 of uint8, row-major (columns, bands), low band first; 0 = floor_db
    below the loudest cell or quieter, 255 = the loudest cell. Bands are log-spaced in frequency.
    Raises AudioReadError for a file that cannot be read.
    """
    x, info = read_audio(path)
    return of_samples(x, info.sample_rate)


def of_samples(x: np.ndarray, sr: int) -> dict:
    """What `compute` gives for a file, for samples already in memory (a prepared track)."""
    return {
        "version": VERSION,
        "duration": round(x.size / sr, 6),
        "sample_rate": sr,
        "peaks": _peaks(x, sr),
        "spectrogram": _spectrogram(x, sr),
    }


def _peaks(x: np.ndarray, sr: int) -> dict:
    n = int(np.clip(round(x.size / sr * PEAKS_PER_SECOND), MIN_PEAKS, MAX_PEAKS))
    n = max(1, min(n, x.size))
    edges = np.linspace(0, x.size, n + 1).astype(np.int64)
    peaks = np.maximum.reduceat(np.abs(x), edges[:-1]) if x.size else np.zeros(n, np.float32)
    data = np.clip(np.round(peaks * 255.0), 0, 255).astype(np.uint8)
    return {"count": int(n), "data": base64.b64encode(data.tobytes()).decode("ascii")}


def _spectrogram(x: np.ndarray, sr: int) -> dict:
    """Magnitude STFT (Hann, N_FFT) at evenly spaced frames, pooled into log-spaced bands, in dB."""
    columns = int(max(1, min(MAX_COLUMNS, x.size // (N_FFT // 4))))
    padded = np.pad(x, (N_FFT // 2, N_FFT // 2))
    starts = np.linspace(0, max(padded.size - N_FFT, 0), columns).astype(np.int64)
    if padded.size < N_FFT:
        padded = np.pad(padded, (0, N_FFT - padded.size))
    frames = padded[starts[:, None] + np.arange(N_FFT)[None, :]] * np.hanning(N_FFT).astype(np.float32)
    power = np.abs(np.fft.rfft(frames, axis=1)) ** 2  # (columns, N_FFT/2 + 1)
    freqs = np.fft.rfftfreq(N_FFT, 1.0 / sr)
    high = sr / 2.0
    edges = np.geomspace(LOW_HZ, high, BANDS + 1)
    # Each band takes the mean power of its bins; a band narrower than one bin takes the nearest bin.
    lo = np.searchsorted(freqs, edges[:-1], side="left")
    hi = np.maximum(np.searchsorted(freqs, edges[1:], side="right"), lo + 1)
    lo, hi = np.minimum(lo, freqs.size - 1), np.minimum(hi, freqs.size)
    csum = np.concatenate([np.zeros((columns, 1)), np.cumsum(power, axis=1)], axis=1)
    bands = (csum[:, hi] - csum[:, lo]) / (hi - lo)  # (columns, BANDS)
    db = 10.0 * np.log10(np.maximum(bands, 1e-12))
    db -= db.max() if db.size else 0.0
    data = np.clip(np.round((db - FLOOR_DB) / -FLOOR_DB * 255.0), 0, 255).astype(np.uint8)
    return {
        "columns": columns,
        "bands": BANDS,
        "low_hz": LOW_HZ,
        "high_hz": high,
        "floor_db": FLOOR_DB,
        "data": base64.b64encode(data.tobytes()).decode("ascii"),
    }


class Cache:
    """`compute()` results by (path, size, mtime): a small in-memory LRU in front of JSON files in
    `folder` (None: memory only). A changed file is computed again; a cache file that cannot be
    written (read-only disk) only costs the recomputation."""

    def __init__(self, folder: str | os.PathLike | None, *, memory_items: int = 256):
        self.folder = None if folder is None else Path(folder)
        self.memory_items = memory_items
        self._memory: OrderedDict[str, dict] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, path: str | os.PathLike, *, make=None) -> dict:
        """The result for the file at `path`: `compute(path)`, or `make(path)` for a file that
        is not audio (a prepared track's samples), cached the same way."""
        path = Path(path)
        st = path.stat()
        key = hashlib.sha256(f"{VERSION}|{path.resolve()}|{st.st_size}|{st.st_mtime_ns}".encode()).hexdigest()[:32]
        with self._lock:
            if key in self._memory:
                self._memory.move_to_end(key)
                return self._memory[key]
        result = self._load(key)
        if result is None:
            result = (make or compute)(path)
            self._save(key, result)
        with self._lock:
            self._memory[key] = result
            while len(self._memory) > self.memory_items:
                self._memory.popitem(last=False)
        return result

    def _file(self, key: str) -> Path | None:
        return None if self.folder is None else self.folder / key[:2] / f"{key}.json"

    def _load(self, key: str) -> dict | None:
        file = self._file(key)
        if file is None or not file.is_file():
            return None
        try:
            result = json.loads(file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return result if isinstance(result, dict) and result.get("version") == VERSION else None

    def _save(self, key: str, result: dict) -> None:
        file = self._file(key)
        if file is None:
            return
        try:
            write_text(file, json.dumps(result, separators=(",", ":")))
        except (OSError, DiskFullError):
            pass  # a cache that cannot be written is only slower


def default_cache_folder() -> Path:
    """$XDG_CACHE_HOME/inspire/studio (~/.cache/inspire/studio when unset)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "inspire" / "studio"
