"""Preparing a musician's audio into a training dataset, and reading it back.

`prepare()` turns any mix of files and folders into `RUN_DIR/data/`:

    data/manifest.json          settings, one record per track, files skipped and why
    data/tracks/<id>.npy        quantized mono audio, uint8 (uint16 above 256 levels)

Tracks are memory-mapped by training (`PreparedData.array`), so a long album is never loaded
whole. The validation split is by track; a lone track is split into a training stretch and a
held-out stretch with a gap between them, so no training window ever overlaps validation audio.
Every file is written atomically and the manifest last: an interrupted `prepare` leaves the
previous dataset usable.
"""

from __future__ import annotations

import contextlib
import errno
import math
import os
import re
import sys
import tempfile
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Iterator

import numpy as np

from inspire import __version__, clips
from inspire.audio.io import (
    PEAK_QUANTILE,
    PEAK_TARGET,
    AudioStream,
    Found,
    normalize_peak,
    probe,
    remove_dc,
    sha256_of,
    walk_audio,
)
from inspire.audio.quantize import KINDS, dequantize, quantize
from inspire.config import setting
from inspire.errors import AudioReadError, DatasetError, DiskFullError, InspireError, UserInputError
from inspire.files import atomic_path, read_json, write_json
from inspire.locks import job_lock
from inspire.progress import Progress
from inspire.timefmt import clock

FORMAT_VERSION = 1
NORMALIZE = ("peak", "none")
MIN_SECONDS = 1.0  # shorter clips are skipped: too short to train on or to validate with
SINGLE_TRACK_GAP_SECONDS = 1.0  # gap between training and validation stretches of a lone track
SILENT_DBFS = -60.0  # a track whose robust peak is below this is (near) silent: nothing to learn from


@dataclass(frozen=True)
class PrepareSettings:
    """How audio becomes training data. Fixed for the life of a run."""

    sample_rate: int = setting(16000, "target sample rate in Hz")
    quantization: str = setting("mu-law", "quantization kind")
    levels: int = setting(256, "number of quantization levels (softmax size)")
    val_fraction: float = setting(
        0.1, "share of tracks held out for validation (at least one track; a held-out stretch when only one)")
    normalize: str = setting(
        "peak", "level per track: peak brings each track's robust peak near full scale (-0.45 dBFS); "
        "none keeps the tracks' own levels")

    def __post_init__(self) -> None:
        if not 1000 <= self.sample_rate <= 192000:
            raise UserInputError(f"--sample-rate must be between 1000 and 192000 Hz, got {self.sample_rate}")
        if self.quantization not in KINDS:
            raise UserInputError(f"--quantization must be one of {', '.join(KINDS)}, got {self.quantization!r}")
        if not 2 <= self.levels <= 65536:
            raise UserInputError(f"--levels must be between 2 and 65536, got {self.levels}")
        if not 0.0 < self.val_fraction < 1.0:
            raise UserInputError(f"--val-fraction must be between 0 and 1 (exclusive), got {self.val_fraction}")
        if self.normalize not in NORMALIZE:
            raise UserInputError(f"--normalize must be one of {', '.join(NORMALIZE)}, got {self.normalize!r}")

    def fixed(self) -> dict:
        """The settings a run cannot change once data exists."""
        return {"sample_rate": self.sample_rate, "quantization": self.quantization, "levels": self.levels,
                "normalize": self.normalize}

    @classmethod
    def from_json(cls, d: dict) -> "PrepareSettings":
        """Settings as stored in a manifest or checkpoint (older ones lack `normalize`: peak)."""
        return cls(d["sample_rate"], d["quantization"], d["levels"], d.get("val_fraction", 0.1),
                   d.get("normalize", "peak"))


def condition(audio: np.ndarray, settings: PrepareSettings) -> np.ndarray:
    """Mono float audio at the run's rate -> the run's classes, exactly as training data is made:
    DC removed, level normalised (unless normalize is 'none'), quantized. (`prepare` does the
    same in streaming passes, so a long file never sits in memory; a test holds the two equal.)"""
    audio = remove_dc(audio)
    if settings.normalize == "peak":
        audio = normalize_peak(audio)
    return quantize(audio, kind=settings.quantization, levels=settings.levels)


@dataclass(frozen=True)
class Segment:
    split: str  # "train" or "val"
    start: int  # samples
    end: int  # samples, exclusive


@dataclass(frozen=True)
class Track:
    id: str
    name: str
    source: str
    sha256: str
    format: str
    subtype: str
    original_sample_rate: int
    channels: int
    seconds: float  # duration after resampling
    samples: int
    file: str  # relative to data/
    split: str  # "train", "val" or "mixed" (a lone track split into stretches)
    segments: tuple[Segment, ...] = field(default_factory=tuple)
    # The robust peak (PEAK_QUANTILE of |x|) before normalisation, dBFS; -200 for digital silence.
    # None: prepared before this was recorded.
    peak_dbfs: float | None = None

    @classmethod
    def from_json(cls, d: dict) -> "Track":
        known = {f.name for f in fields(cls)}
        d = {k: v for k, v in d.items() if k in known}  # a newer version's extra keys are ignored
        d["segments"] = tuple(Segment(**s) for s in d.get("segments", ()))
        return cls(**d)

    def to_json(self) -> dict:
        d = asdict(self)
        d["segments"] = [asdict(s) for s in self.segments]
        return d


class PreparedData:
    """A run's prepared dataset: settings, tracks, and memory-mapped access to their samples."""

    def __init__(self, run_dir: str | Path):
        self.run_dir = Path(run_dir)
        self.data_dir = self.run_dir / "data"
        path = self.data_dir / "manifest.json"
        if not path.exists():
            raise DatasetError(
                f"{self.run_dir}: no prepared data (run `inspire prepare SOURCE... --run {self.run_dir}` first)"
            )
        try:
            self.manifest = read_json(path)
            self.settings = PrepareSettings.from_json(self.manifest["settings"])
            self.tracks = [Track.from_json(t) for t in self.manifest["tracks"]]
        except (ValueError, KeyError, TypeError) as exc:
            raise DatasetError(f"{path}: unreadable manifest ({exc})") from exc
        if not self.tracks:
            raise DatasetError(f"{path}: the dataset holds no tracks")

    def array(self, track: Track) -> np.ndarray:
        """The track's quantized samples, memory-mapped (read-only)."""
        path = self.data_dir / track.file
        try:
            return np.load(path, mmap_mode="r")
        except (OSError, ValueError) as exc:
            raise DatasetError(f"{path}: missing or corrupt track file ({exc}); run `inspire prepare` again") from exc

    def audio(self, track: Track) -> np.ndarray:
        """The whole track as float32 audio in [-1, 1] (dequantized)."""
        s = self.settings
        return dequantize(np.asarray(self.array(track)), kind=s.quantization, levels=s.levels)

    def segments(self, split: str) -> list[tuple[Track, Segment]]:
        return [(t, seg) for t in self.tracks for seg in t.segments if seg.split == split]

    def seconds(self, split: str) -> float:
        return sum(seg.end - seg.start for _, seg in self.segments(split)) / self.settings.sample_rate

    def fingerprint(self) -> str:
        """Identifies the content of the dataset (changes when tracks are added)."""
        import hashlib

        return hashlib.sha256("".join(sorted(t.sha256 for t in self.tracks)).encode()).hexdigest()[:16]


def load_prepared(run_dir: str | Path) -> PreparedData:
    return PreparedData(run_dir)


def prepare(sources, run_dir: str | Path, settings: PrepareSettings, *, progress: bool = True) -> dict:
    """Add every usable audio file in `sources` to the run's dataset; return the new manifest.

    One `prepare` per run at a time (a second one gets BusyError naming the first). Audio is
    streamed, so memory stays flat whatever a file's length. Folders inside the sources that are
    inspire run or clips folders (the run's own previews and clips above all) are left out.
    """
    run_dir = Path(run_dir)
    data_dir = run_dir / "data"
    found = _find_sources(list(sources), run_dir)
    if not found.files:
        extra = "".join(f"; {p}: {why}" for p, why in found.skipped_files[:3])
        raise UserInputError(f"no audio files found in {', '.join(str(s) for s in sources)}{extra}")
    _make_folder(run_dir)
    with job_lock(run_dir, "prepared"):
        for folder in (data_dir, data_dir / "tracks"):
            _make_folder(folder)
        return _prepare_locked(sources, found, run_dir, settings, progress=progress)


def _prepare_locked(sources, found: Found, run_dir: Path, settings: PrepareSettings, *, progress: bool) -> dict:
    data_dir = run_dir / "data"
    manifest_path = data_dir / "manifest.json"
    old = _read_manifest(manifest_path) if manifest_path.exists() else None
    if old is not None:
        fixed, asked = PrepareSettings.from_json(old["settings"]).fixed(), settings.fixed()
        if fixed != asked:
            diff = ", ".join(f"{k} {fixed[k]} (asked {asked[k]})" for k in fixed if fixed[k] != asked[k])
            raise DatasetError(
                f"{run_dir} was prepared with other settings: {diff}; use a new --run folder or the same settings"
            )
    tracks = [Track.from_json(t) for t in old["tracks"]] if old else []
    skipped = list(old.get("skipped", [])) if old else []
    known = {t.sha256 for t in tracks}
    new_tracks: list[Track] = []
    new_skipped: list[dict] = [_skip(p, why) for p, why in found.skipped_files]
    for stale in (data_dir / "tracks").glob(".*.tmp*"):  # left by a prepare killed mid-write
        stale.unlink(missing_ok=True)

    seconds = {f: _probe_seconds(f) for f in found.files}
    try:
        with Progress(sum(seconds.values()), desc="preparing", unit="s of audio", enabled=progress) as bar:
            done = 0.0
            for path in found.files:
                bar.set_postfix(path.name)
                try:
                    track = _add_file(path, data_dir, settings, known=known,
                                      taken={t.id for t in tracks + new_tracks}, on_audio=bar.update)
                except AudioReadError as exc:
                    new_skipped.append(_skip(path, str(exc).split(": ", 1)[-1]))
                    track = None
                if track is not None:
                    known.add(track.sha256)
                    new_tracks.append(track)
                done += seconds[path]
                bar.update(max(0.0, done - bar.n))

        for s in new_skipped:
            print(f"warning: skipped {s['source']}: {s['reason']}", file=sys.stderr)
        for t in new_tracks:
            if _is_silent(t):
                print(f"warning: {t.source} is (near) silent (robust peak {_level_text(t.peak_dbfs)}): "
                      "it teaches the model nothing; remove it or check the file", file=sys.stderr)
        if not tracks and not new_tracks:
            raise UserInputError(
                f"no usable audio in {', '.join(str(s) for s in sources)} ({len(new_skipped)} file(s) skipped)"
            )

        tracks = _assign_splits(tracks, new_tracks, settings)
        settled = {x["source"] for x in new_skipped} | {t.source for t in new_tracks}  # listed afresh below
        skipped = [s for s in skipped if s["source"] not in settled] + new_skipped
        manifest = {
            "format_version": FORMAT_VERSION,
            "software": f"inspire {__version__}",
            "settings": asdict(settings),
            "tracks": [t.to_json() for t in tracks],
            "skipped": skipped,
            "totals": _totals(tracks, settings.sample_rate),
        }
        write_json(manifest_path, manifest)  # last: the dataset switches over atomically here
    except BaseException as exc:
        for t in new_tracks:  # not in any manifest: nothing would ever read them
            (data_dir / t.file).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise _write_error(exc, data_dir) from exc
        raise
    return manifest


def _add_file(path: Path, data_dir: Path, settings: PrepareSettings, *, known: set[str], taken: set[str],
              on_audio) -> Track | None:
    """The file as a new track, or None when the dataset already holds it (same content)."""
    try:
        digest = sha256_of(path)
    except OSError as exc:
        raise AudioReadError(f"{path}: cannot read file ({exc.strerror})") from exc
    if digest in known:
        return None  # unchanged file already in the dataset
    return _prepare_one(path, digest, data_dir, settings, taken=taken, on_audio=on_audio)


def _prepare_one(path: Path, digest: str, data_dir: Path, settings: PrepareSettings, *, taken: set[str],
                 on_audio=None) -> Track:
    """Stream one file into data/tracks/<id>.npy, exactly as `condition` would in memory.

    Pass 1 decodes and resamples block by block into a nameless float32 scratch file beside the
    tracks (the DC sum on the way); passes 2-3 find the robust peak (`_robust_peak`); pass 4
    removes DC, scales and quantizes block by block into the .npy. Memory: a few blocks.
    """
    sr = settings.sample_rate
    report = on_audio or (lambda seconds: None)
    stream = AudioStream(path, sample_rate=sr)
    with _scratch(data_dir / "tracks") as scratch:
        n, total = 0, 0.0
        for block in stream:
            total += float(block.sum(dtype=np.float64))
            scratch.write(block.data)
            n += block.size
            report(block.size / sr / 2)  # decoding is about half the work
        if n / sr < MIN_SECONDS:
            raise AudioReadError(f"{path}: too short ({n / sr:.2f} s; at least {MIN_SECONDS:g} s needed)")
        dc = np.float32(total / n)  # as remove_dc: the float64 mean, subtracted in float32
        ref = _robust_peak(scratch, n, dc)
        scale = np.float32(PEAK_TARGET / ref) if settings.normalize == "peak" and ref >= 1e-6 else None

        track_id = f"{_slug(path.stem)}-{digest[:8]}"
        k = 2
        while track_id in taken:
            track_id = f"{_slug(path.stem)}-{digest[:8]}-{k}"
            k += 1
        rel = f"tracks/{track_id}.npy"
        dtype = np.uint8 if settings.levels <= 256 else np.uint16
        with atomic_path(data_dir / rel) as tmp, open(tmp, "wb") as f:
            header = {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)), "fortran_order": False, "shape": (n,)}
            np.lib.format.write_array_header_1_0(f, header)  # the header np.save writes
            for x in _read_blocks(scratch, n):
                x = x - dc
                if scale is not None:
                    x = np.clip(x * scale, -1.0, 1.0)
                f.write(quantize(x, kind=settings.quantization, levels=settings.levels).data)
                report(x.size / sr / 2)
    info = stream.info
    return Track(
        id=track_id,
        name=path.stem,
        source=str(path.resolve()),
        sha256=digest,
        format=info.format,
        subtype=info.subtype,
        original_sample_rate=info.sample_rate,
        channels=info.channels,
        seconds=round(n / sr, 4),
        samples=int(n),
        file=rel,
        split="train",
        segments=(Segment("train", 0, int(n)),),
        peak_dbfs=round(20 * math.log10(max(ref, 1e-10)), 1),
    )


SCRATCH_BLOCK = 1 << 18  # samples per block when re-reading the scratch file (1 MB of float32)


@contextlib.contextmanager
def _scratch(folder: Path) -> Iterator:
    """A nameless read-write file in `folder`: its name is removed at once, so a killed prepare
    leaves nothing behind; the space returns when it is closed."""
    fd, name = tempfile.mkstemp(prefix=".scratch-", suffix=".tmp", dir=folder)
    os.unlink(name)
    with open(fd, "w+b") as f:
        yield f


def _read_blocks(f, n: int) -> Iterator[np.ndarray]:
    """The scratch file's n float32 samples, block by block (plain reads, not a memory map: mapped
    pages would count against the process's memory and grow with the file)."""
    f.flush()
    f.seek(0)
    step = SCRATCH_BLOCK
    for start in range(0, n, step):
        count = min(step, n - start)
        data = f.read(4 * count)
        if len(data) != 4 * count:
            raise OSError(errno.EIO, "scratch file shorter than written")
        yield np.frombuffer(data, dtype=np.float32)


def _robust_peak(f, n: int, dc: np.float32, *, q: float = PEAK_QUANTILE) -> float:
    """`np.quantile(np.abs(x - dc), q)` (numpy's default, linear method) of the scratch file's
    samples, to the last bit, in two streaming passes with 2 x 65536 counters.

    Written by hand because numpy's quantile needs the whole array in memory. Non-negative
    float32 values sort as their bit patterns do (as uint32), so a histogram of the top 16 bits
    finds the bin that holds each wanted order statistic, and a histogram of that bin's low 16
    bits finds the value itself; the two neighbouring order statistics are then interpolated.
    """
    pos = q * (n - 1)
    ranks = (int(math.floor(pos)), min(int(math.floor(pos)) + 1, n - 1))
    top = np.zeros(1 << 16, np.int64)
    for x in _read_blocks(f, n):
        top += np.bincount(np.abs(x - dc).view(np.uint32) >> 16, minlength=1 << 16)
    cum_top = np.cumsum(top)
    bins = [int(np.searchsorted(cum_top, r, side="right")) for r in ranks]
    low = {b: np.zeros(1 << 16, np.int64) for b in set(bins)}
    for x in _read_blocks(f, n):
        bits = np.abs(x - dc).view(np.uint32)
        for b, counts in low.items():
            counts += np.bincount(bits[(bits >> 16) == b] & 0xFFFF, minlength=1 << 16)
    values = []
    for r, b in zip(ranks, bins, strict=True):
        rank_in_bin = r - (int(cum_top[b - 1]) if b else 0)
        lo = int(np.searchsorted(np.cumsum(low[b]), rank_in_bin, side="right"))
        values.append(np.array([(b << 16) | lo], np.uint32).view(np.float32)[0])
    # Interpolated as numpy's quantile does it (float32 arithmetic, from the nearer side).
    a, b = values
    gamma = pos - math.floor(pos)
    return float(b - (b - a) * (1 - gamma) if gamma >= 0.5 else a + (b - a) * gamma)


def _probe_seconds(path: Path) -> float:
    try:
        return probe(path).seconds
    except AudioReadError:
        return 0.0


def _find_sources(sources: list, run_dir: Path) -> Found:
    """The sources' audio files, leaving out the run being prepared and any run or clips folder
    found inside a source folder (their previews and generated clips are not source material)."""
    run = run_dir.resolve()
    kept = []
    for src in sources:
        p = Path(src)
        if p.exists() and (p.resolve() == run or run in p.resolve().parents):
            print(f"note: skipped {p}: inside the run folder being prepared ({run_dir})", file=sys.stderr)
        else:
            kept.append(src)

    def prune(folder: Path) -> str | None:
        if folder.resolve() == run:
            return "the run folder being prepared"
        return _inspire_folder(folder)

    found = walk_audio(kept, prune=prune)
    for folder, why in found.skipped_folders:
        print(f"note: skipped folder {folder}: {why}", file=sys.stderr)
    return found


def _inspire_folder(folder: Path) -> str | None:
    """Why `folder` is an inspire run or clips folder, or None if it is not one."""
    if (folder / "data" / "manifest.json").is_file() or (folder / "checkpoints").is_dir():
        return "an inspire run folder (its clips and previews are not source material)"
    if (folder / "curation.json").is_file():
        return "an inspire clips folder"
    if (folder / clips.MANIFEST).is_file() and isinstance((clips.read_manifest(folder) or {}).get("clips"), list):
        return "an inspire clips folder"
    return None


def _make_folder(folder: Path) -> None:
    if folder.exists() and not folder.is_dir():
        raise UserInputError(f"{folder}: a file is in the way (a folder is needed here); move it or pick another --run")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _write_error(exc, folder) from exc


def _write_error(exc: OSError, where: Path) -> InspireError:
    """An OSError met while writing the dataset, as one line for the musician."""
    target = exc.filename or where
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return DiskFullError(f"{target}: disk full while preparing; the previous dataset is intact")
    if exc.errno == errno.EROFS:
        return UserInputError(f"{target}: read-only filesystem; pick a --run folder on a writable disk")
    return UserInputError(f"{target}: cannot write ({exc.strerror or exc})")


def _read_manifest(path: Path) -> dict:
    try:
        manifest = read_json(path)
        PrepareSettings.from_json(manifest["settings"])
        manifest["tracks"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DatasetError(
            f"{path}: unreadable manifest ({exc}); move the run's data folder aside to prepare afresh"
        ) from exc
    return manifest


def _is_silent(track: "Track") -> bool:
    return track.peak_dbfs is not None and track.peak_dbfs < SILENT_DBFS


def _level_text(dbfs: float | None) -> str:
    return "digital silence" if dbfs is not None and dbfs <= -200 else f"{dbfs:.0f} dBFS"


def _assign_splits(old: list[Track], new: list[Track], settings: PrepareSettings) -> list[Track]:
    """Existing tracks keep their split (a model may already have trained on them); new tracks
    go to validation until the run holds its share, in a deterministic order (by content hash)."""
    tracks = old + new
    if len(tracks) == 1:
        return [_split_single(tracks[0], settings)]
    want_val = max(1, round(settings.val_fraction * len(tracks)))
    have_val = sum(1 for t in old if t.split in ("val", "mixed"))
    order = sorted(range(len(new)), key=lambda i: new[i].sha256)  # reproducible choice
    n_val = max(0, want_val - have_val)
    if not any(t.split in ("train", "mixed") for t in old):
        n_val = min(n_val, len(new) - 1)  # keep at least one training track
    val_idx = set(order[:n_val])
    out = list(old)
    for i, t in enumerate(new):
        split = "val" if i in val_idx else "train"
        out.append(replace(t, split=split, segments=(Segment(split, 0, t.samples),)))
    return out


def _split_single(track: Track, settings: PrepareSettings) -> Track:
    """A lone track: the last `val_fraction` is held out, after a gap, so training windows
    (taken only inside the training stretch) never overlap it."""
    n = track.samples
    gap = int(SINGLE_TRACK_GAP_SECONDS * settings.sample_rate)
    val_len = max(int(round(settings.val_fraction * n)), int(0.25 * settings.sample_rate))
    train_end = n - val_len - gap
    if train_end < int(0.5 * settings.sample_rate):
        gap = 0
        train_end = n - val_len
    segs = (Segment("train", 0, train_end), Segment("val", train_end + gap, n))
    return replace(track, split="mixed", segments=segs)


def _totals(tracks: list[Track], sample_rate: int) -> dict:
    def secs(split: str) -> float:
        return round(sum(s.end - s.start for t in tracks for s in t.segments if s.split == split) / sample_rate, 3)

    return {"tracks": len(tracks), "seconds": round(sum(t.seconds for t in tracks), 3),
            "train_seconds": secs("train"), "val_seconds": secs("val")}


def _skip(path: Path, reason: str) -> dict:
    return {"source": str(Path(path).resolve()), "reason": reason}


def _slug(name: str) -> str:
    s = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-._")
    return (s or "track")[:48]


def print_table(manifest: dict, *, file=None) -> None:
    """Tracks (name, duration, split; a note on (near) silent ones) and totals, on stdout."""
    file = file or sys.stdout
    tracks = [Track.from_json(t) for t in manifest["tracks"]]
    rows = [(t.name, clock(t.seconds), t.split, _silent_note(t)) for t in tracks]
    w = max([len("track")] + [len(r[0]) for r in rows])
    print(f"{'track':<{w}}  {'duration':>8}  split", file=file)
    for name, dur, split, note in rows:
        print(f"{name:<{w}}  {dur:>8}  {split:<5}{note}".rstrip(), file=file)
    tot = manifest["totals"]
    print(
        f"{tot['tracks']} tracks, {clock(tot['seconds'])} in all: {clock(tot['train_seconds'])} training, "
        f"{clock(tot['val_seconds'])} validation; {len(manifest['skipped'])} file(s) skipped",
        file=file,
    )
    silent = sum(1 for t in tracks if _is_silent(t))
    if silent:
        what = "every track is" if silent == len(tracks) else f"{silent} of {len(tracks)} tracks are"
        print(f"warning: {what} (near) silent: silence teaches the model nothing", file=file)


def _silent_note(track: Track) -> str:
    return f"  (near) silent: robust peak {_level_text(track.peak_dbfs)}" if _is_silent(track) else ""

