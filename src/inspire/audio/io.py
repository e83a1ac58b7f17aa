"""Reading and writing audio as musicians have it: any format libsndfile reads, any rate, any
channel count, in; mono float32 at the run's sample rate, out.

Resampling is soxr's (the SoX resampler, 'HQ'); file I/O is soundfile's (libsndfile, which reads
WAV, FLAC, OGG/Vorbis, MP3, AIFF and more). Nothing here imports torch.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from inspire.errors import AudioReadError, UserInputError
from inspire.files import atomic_path

# Extensions libsndfile can read; used to pick files out of folders. A file with another
# extension given explicitly is still tried.
AUDIO_EXTENSIONS = frozenset(
    ".wav .wave .flac .ogg .oga .opus .mp3 .aif .aiff .aifc .au .snd .caf .w64 .rf64 .voc .sd2".split()
)


@dataclass(frozen=True)
class AudioInfo:
    """What a source file was before we converted it."""

    path: str
    format: str  # e.g. "FLAC", "WAV", "MP3"
    subtype: str  # e.g. "PCM_16", "FLOAT"
    sample_rate: int  # Hz
    channels: int
    frames: int  # samples per channel

    @property
    def seconds(self) -> float:
        return self.frames / self.sample_rate if self.sample_rate else 0.0


def find_audio_files(sources: list[str | os.PathLike]) -> list[Path]:
    """Expand files and folders (recursively) into a sorted, de-duplicated list of audio files.

    Raises UserInputError for a path that does not exist.
    """
    found: list[Path] = []
    for src in sources:
        p = Path(src)
        if not p.exists():
            raise UserInputError(f"{p}: no such file or folder")
        if p.is_dir():
            found.extend(
                f for f in sorted(p.rglob("*")) if f.is_file() and f.suffix.lower() in AUDIO_EXTENSIONS
            )
        else:
            found.append(p)
    seen: set[Path] = set()
    unique = []
    for f in found:
        key = f.resolve()
        if key not in seen:
            seen.add(key)
            unique.append(f)
    return unique


def sha256_of(path: str | os.PathLike, *, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def probe(path: str | os.PathLike) -> AudioInfo:
    """Read a file's header; AudioReadError if libsndfile cannot make sense of it."""
    path = Path(path)
    try:
        if path.stat().st_size == 0:
            raise AudioReadError(f"{path}: empty file (0 bytes)")
        info = sf.info(str(path))
    except AudioReadError:
        raise
    except (RuntimeError, sf.LibsndfileError, OSError) as exc:
        raise AudioReadError(f"{path}: not readable audio ({_short(exc)})") from exc
    return AudioInfo(str(path), info.format, info.subtype, int(info.samplerate), int(info.channels), int(info.frames))


def read_audio(path: str | os.PathLike, *, sample_rate: int | None = None) -> tuple[np.ndarray, AudioInfo]:
    """Read a file as mono float32 in [-1, 1]-ish, resampled to `sample_rate` (None: keep).

    Channels are averaged. NaN or infinite samples raise AudioReadError naming the file.
    """
    info = probe(path)
    try:
        data, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except (RuntimeError, sf.LibsndfileError, OSError) as exc:
        raise AudioReadError(f"{path}: cannot decode audio ({_short(exc)})") from exc
    if data.shape[0] == 0:
        raise AudioReadError(f"{path}: holds no samples")
    if not np.isfinite(data).all():
        bad = int((~np.isfinite(data)).sum())
        raise AudioReadError(f"{path}: {bad} NaN or infinite samples")
    mono = data.mean(axis=1, dtype=np.float32) if data.shape[1] > 1 else data[:, 0]
    info = AudioInfo(info.path, info.format, info.subtype, int(sr), info.channels, int(data.shape[0]))
    if sample_rate is not None and sr != sample_rate:
        mono = resample(mono, sr, sample_rate)
    return np.ascontiguousarray(mono, dtype=np.float32), info


def resample(x: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """Band-limited resampling with soxr (high quality); a no-op when the rates agree."""
    if from_rate == to_rate:
        return x
    import soxr

    return soxr.resample(x.astype(np.float32, copy=False), from_rate, to_rate, quality="HQ").astype(np.float32)


def remove_dc(x: np.ndarray) -> np.ndarray:
    return (x - np.float32(x.mean(dtype=np.float64))).astype(np.float32)


def normalize_peak(x: np.ndarray, *, peak: float = 0.95, quantile: float = 0.9995) -> np.ndarray:
    """Scale so the track's robust peak (a high quantile of |x|, immune to a lone click) sits at
    `peak`, clipping the rare samples above. Silence stays silence."""
    ref = float(np.quantile(np.abs(x), quantile)) if x.size else 0.0
    if ref < 1e-6:
        return x.astype(np.float32)
    return np.clip(x * np.float32(peak / ref), -1.0, 1.0).astype(np.float32)


def write_audio(path: str | os.PathLike, x: np.ndarray, sample_rate: int, *, subtype: str | None = None) -> Path:
    """Write mono (T,) or multichannel (T, C) float audio atomically; format from the extension
    (.wav, .flac, .ogg, .mp3, .aiff). WAV defaults to 16-bit PCM."""
    path = Path(path)
    ext = path.suffix.lower()
    if subtype is None and ext in (".wav", ".aif", ".aiff", ".flac"):
        subtype = "PCM_16"
    data = np.clip(np.asarray(x, dtype=np.float32), -1.0, 1.0)
    with atomic_path(path) as tmp:
        sf.write(str(tmp), data, sample_rate, subtype=subtype, format=_format_for(ext))
    return path


def _format_for(ext: str) -> str | None:
    return {".mp3": "MP3", ".ogg": "OGG", ".flac": "FLAC", ".wav": "WAV", ".aif": "AIFF", ".aiff": "AIFF"}.get(ext)


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:160]
