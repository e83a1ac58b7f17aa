"""Reading and writing audio as musicians have it: any format libsndfile reads, any rate, any
channel count, in; mono float32 at the run's sample rate, out.

Resampling is soxr's (the SoX resampler, 'HQ'); file I/O is soundfile's (libsndfile, which reads
WAV, FLAC, OGG/Vorbis, MP3, AIFF and more). Nothing here imports torch.
"""

from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import soundfile as sf

from inspire.errors import AudioReadError, UserInputError
from inspire.files import AUDIO_EXTENSIONS, atomic_path

# Extensions libsndfile can read; used to pick files out of folders. A file with another
# extension given explicitly is still tried.
BLOCK_FRAMES = 1 << 16  # source frames per block when streaming (1.5 s at 44.1 kHz)


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

    Raises UserInputError for a path that does not exist. Anything but a regular file (a FIFO, a
    device) is left out: reading one would block or never end.
    """
    return walk_audio(sources).files


@dataclass
class Found:
    """What `walk_audio` found: audio files to read, and what it passed over and why."""

    files: list[Path]
    skipped_files: list[tuple[Path, str]]  # given explicitly but not readable as a file
    skipped_folders: list[tuple[Path, str]]  # folders left out by `prune`


def walk_audio(
    sources: list[str | os.PathLike], *, prune: Callable[[Path], str | None] | None = None
) -> Found:
    """Expand files and folders (recursively) into a sorted, de-duplicated list of audio files.

    In folders, only regular files with an audio extension are taken; a file given explicitly is
    tried whatever its extension, but one that is not a regular file (a FIFO, a device, a socket)
    is skipped with its reason, since opening it would block. `prune(folder)` may return a reason
    to leave a sub-folder (not a source itself) out, with everything below it.
    Raises UserInputError for a path that does not exist.
    """
    found = Found([], [], [])
    for src in sources:
        p = Path(src)
        if not p.exists():
            raise UserInputError(f"{p}: no such file or folder")
        if p.is_dir():
            found.files.extend(sorted(_walk_folder(p, prune, found.skipped_folders)))
        elif p.is_file():
            found.files.append(p)
        else:
            found.skipped_files.append((p, f"not a regular file ({_file_kind(p)})"))
    seen: set[Path] = set()
    unique = []
    for f in found.files:
        key = f.resolve()
        if key not in seen:
            seen.add(key)
            unique.append(f)
    found.files = unique
    return found


def _walk_folder(top: Path, prune, pruned: list[tuple[Path, str]]) -> list[Path]:
    out = []
    for folder, dirs, names in os.walk(top):  # symlinked folders are not followed (as rglob)
        here = Path(folder)
        if prune is not None:
            keep = []
            for d in sorted(dirs):
                reason = prune(here / d)
                if reason:
                    pruned.append((here / d, reason))
                else:
                    keep.append(d)
            dirs[:] = keep
        for name in names:
            f = here / name
            if f.suffix.lower() in AUDIO_EXTENSIONS and f.is_file():
                out.append(f)
    return out


def _file_kind(p: Path) -> str:
    mode = p.stat().st_mode
    for test, kind in ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return kind
    return "a special file"


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


def read_span(path: str | os.PathLike, start: int, stop: int, *, sample_rate: int | None = None) -> np.ndarray:
    """Samples [start, stop) of a file as mono float32 at `sample_rate` (None: the file's), reading
    only that stretch (and a short margin either side when resampling, so the filter settles; the
    span then lands within a fraction of a sample of where `read_audio`'s would). (n,) float32,
    shorter than asked at the file's end. AudioReadError names the file."""
    info = probe(path)
    sr = sample_rate or info.sample_rate
    native = info.sample_rate
    if native == sr:
        s0, s1 = max(0, start), max(0, stop)
    else:
        margin = native // 16
        s0 = max(0, int(start * native // sr) - margin)
        s1 = max(s0, int(-(-stop * native // sr)) + margin)
    try:
        data, _ = sf.read(str(path), start=min(s0, info.frames), stop=min(s1, info.frames), dtype="float32",
                          always_2d=True)
    except (RuntimeError, sf.LibsndfileError, OSError) as exc:
        raise AudioReadError(f"{path}: cannot decode audio ({_short(exc)})") from exc
    if not np.isfinite(data).all():
        raise AudioReadError(f"{path}: NaN or infinite samples")
    mono = data.mean(axis=1, dtype=np.float32) if data.shape[1] > 1 else data[:, 0]
    if native != sr:
        offset = int(round(s0 * sr / native))
        mono = resample(mono, native, sr)[max(0, start) - offset: stop - offset]
    return np.ascontiguousarray(mono, dtype=np.float32)


class AudioStream:
    """A file read block by block as mono float32 at `sample_rate`, in memory that does not grow
    with the file's length (a three-hour recording costs what a three-minute one does).

        stream = AudioStream(path, sample_rate=16000)
        for block in stream:      # (n,) float32; blocks of about `block_frames` source frames
            ...
        stream.info               # the source as read (frames counted while reading)

    The samples are those `read_audio` returns, in pieces: channels averaged the same way, and
    soxr's streaming resampler gives the one-shot resampler's output. Iterating again reads the
    file again. Raises AudioReadError (naming the file) for unreadable audio, NaN or infinite
    samples (with the time of the first) and a file that holds no samples.
    """

    def __init__(self, path: str | os.PathLike, *, sample_rate: int | None = None,
                 block_frames: int = BLOCK_FRAMES) -> None:
        self.path = Path(path)
        self.info = probe(self.path)
        self.sample_rate = sample_rate or self.info.sample_rate
        self.block_frames = block_frames

    def __iter__(self) -> Iterator[np.ndarray]:
        path, src_rate = self.path, self.info.sample_rate
        resampler = None
        if src_rate != self.sample_rate:
            import soxr

            resampler = soxr.ResampleStream(src_rate, self.sample_rate, 1, dtype="float32", quality="HQ")
        frames = 0
        try:
            with sf.SoundFile(str(path)) as f:
                for data in f.blocks(blocksize=self.block_frames, dtype="float32", always_2d=True):
                    if not np.isfinite(data).all():
                        first = frames + int(np.argmax(~np.isfinite(data).all(axis=1)))
                        raise AudioReadError(f"{path}: NaN or infinite samples (the first at {first / src_rate:.2f} s)")
                    frames += data.shape[0]
                    mono = data.mean(axis=1, dtype=np.float32) if data.shape[1] > 1 else data[:, 0]
                    if resampler is not None:
                        mono = resampler.resample_chunk(mono, last=False)
                    if mono.size:
                        yield np.ascontiguousarray(mono, dtype=np.float32)
        except (RuntimeError, sf.LibsndfileError, OSError) as exc:
            raise AudioReadError(f"{path}: cannot decode audio ({_short(exc)})") from exc
        if frames == 0:
            raise AudioReadError(f"{path}: holds no samples")
        self.info = replace(self.info, frames=frames)
        if resampler is not None:
            tail = resampler.resample_chunk(np.zeros(0, np.float32), last=True)
            if tail.size:
                yield np.ascontiguousarray(tail, dtype=np.float32)


def resample(x: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """Band-limited resampling with soxr (high quality); a no-op when the rates agree."""
    if from_rate == to_rate:
        return x
    import soxr

    return soxr.resample(x.astype(np.float32, copy=False), from_rate, to_rate, quality="HQ").astype(np.float32)


def remove_dc(x: np.ndarray) -> np.ndarray:
    return (x - np.float32(x.mean(dtype=np.float64))).astype(np.float32)


PEAK_TARGET = 0.95  # where normalisation puts a track's robust peak (-0.45 dBFS)
PEAK_QUANTILE = 0.9995  # the robust peak: this quantile of |x|, immune to a lone click


def normalize_peak(x: np.ndarray, *, peak: float = PEAK_TARGET, quantile: float = PEAK_QUANTILE) -> np.ndarray:
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
