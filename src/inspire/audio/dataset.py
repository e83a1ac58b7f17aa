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

import re
import sys
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from inspire import __version__
from inspire.audio.io import find_audio_files, normalize_peak, read_audio, remove_dc, sha256_of
from inspire.errors import AudioReadError, DatasetError, UserInputError
from inspire.files import atomic_path, read_json, write_json
from inspire.timefmt import clock
from inspire.audio.quantize import KINDS, dequantize, quantize

FORMAT_VERSION = 1
NORMALIZE = ("peak", "none")
MIN_SECONDS = 1.0  # shorter clips are skipped: too short to train on or to validate with
SINGLE_TRACK_GAP_SECONDS = 1.0  # gap between training and validation stretches of a lone track


@dataclass(frozen=True)
class PrepareSettings:
    """How audio becomes training data. Fixed for the life of a run."""

    sample_rate: int = 16000  # Hz
    quantization: str = "mu-law"  # "mu-law" or "linear"
    levels: int = 256  # quantization classes = softmax size
    val_fraction: float = 0.1  # share of tracks held out (at least one)
    normalize: str = "peak"  # "peak": each track's robust peak to -0.45 dBFS; "none": keep levels

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
        return cls(d["sample_rate"], d["quantization"], d["levels"], d.get("val_fraction", 0.1), d.get("normalize", "peak"))


def condition(audio: np.ndarray, settings: PrepareSettings) -> np.ndarray:
    """Mono float audio at the run's rate -> the run's classes, exactly as training data is made:
    DC removed, level normalised (unless normalize is 'none'), quantized."""
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

    @classmethod
    def from_json(cls, d: dict) -> "Track":
        d = dict(d)
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
            raise DatasetError(f"{self.run_dir}: no prepared data (run `inspire prepare SOURCE... --run {self.run_dir}` first)")
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
    """Add every usable audio file in `sources` to the run's dataset; return the new manifest."""
    run_dir = Path(run_dir)
    data_dir = run_dir / "data"
    manifest_path = data_dir / "manifest.json"
    files = find_audio_files(list(sources))
    if not files:
        raise UserInputError(f"no audio files found in {', '.join(str(s) for s in sources)}")

    old = read_json(manifest_path) if manifest_path.exists() else None
    if old is not None:
        fixed = PrepareSettings.from_json(old["settings"]).fixed()
        if fixed != settings.fixed():
            diff = ", ".join(f"{k} {fixed[k]} (asked {settings.fixed()[k]})" for k in fixed if fixed[k] != settings.fixed()[k])
            raise DatasetError(
                f"{run_dir} was prepared with other settings: {diff}; use a new --run folder or the same settings"
            )
    tracks = [Track.from_json(t) for t in old["tracks"]] if old else []
    skipped = list(old.get("skipped", [])) if old else []
    known = {t.sha256 for t in tracks}
    new_tracks: list[Track] = []
    new_skipped: list[dict] = []

    iterator = files
    if progress and len(files) > 1:
        from tqdm import tqdm

        iterator = tqdm(files, desc="preparing", unit="file", file=sys.stderr, leave=False)
    for path in iterator:
        try:
            digest = sha256_of(path)
        except OSError as exc:
            new_skipped.append(_skip(path, f"cannot read file ({exc.strerror})"))
            continue
        if digest in known:
            continue  # unchanged file already in the dataset
        try:
            track = _prepare_one(path, digest, data_dir, settings, taken={t.id for t in tracks + new_tracks})
        except AudioReadError as exc:
            new_skipped.append(_skip(path, str(exc).split(": ", 1)[-1]))
            continue
        known.add(digest)
        new_tracks.append(track)

    for s in new_skipped:
        print(f"warning: skipped {s['source']}: {s['reason']}", file=sys.stderr)
    if not tracks and not new_tracks:
        raise UserInputError(f"no usable audio in {', '.join(str(s) for s in sources)} ({len(new_skipped)} file(s) skipped)")

    tracks = _assign_splits(tracks, new_tracks, settings)
    skipped = [s for s in skipped if s["source"] not in {x["source"] for x in new_skipped}] + new_skipped
    manifest = {
        "format_version": FORMAT_VERSION,
        "software": f"inspire {__version__}",
        "settings": asdict(settings),
        "tracks": [t.to_json() for t in tracks],
        "skipped": skipped,
        "totals": _totals(tracks, settings.sample_rate),
    }
    write_json(manifest_path, manifest)  # last: the dataset switches over atomically here
    return manifest


def _prepare_one(path: Path, digest: str, data_dir: Path, settings: PrepareSettings, *, taken: set[str]) -> Track:
    audio, info = read_audio(path, sample_rate=settings.sample_rate)
    seconds = audio.size / settings.sample_rate
    if seconds < MIN_SECONDS:
        raise AudioReadError(f"{path}: too short ({seconds:.2f} s; at least {MIN_SECONDS:g} s needed)")
    q = condition(audio, settings)
    track_id = f"{_slug(path.stem)}-{digest[:8]}"
    n = 2
    while track_id in taken:
        track_id = f"{_slug(path.stem)}-{digest[:8]}-{n}"
        n += 1
    rel = f"tracks/{track_id}.npy"
    with atomic_path(data_dir / rel) as tmp:
        with open(tmp, "wb") as f:
            np.save(f, q)
    return Track(
        id=track_id,
        name=path.stem,
        source=str(path.resolve()),
        sha256=digest,
        format=info.format,
        subtype=info.subtype,
        original_sample_rate=info.sample_rate,
        channels=info.channels,
        seconds=round(seconds, 4),
        samples=int(q.size),
        file=rel,
        split="train",
        segments=(Segment("train", 0, int(q.size)),),
    )


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

    return {"tracks": len(tracks), "seconds": round(sum(t.seconds for t in tracks), 3), "train_seconds": secs("train"), "val_seconds": secs("val")}


def _skip(path: Path, reason: str) -> dict:
    return {"source": str(Path(path).resolve()), "reason": reason}


def _slug(name: str) -> str:
    s = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-._")
    return (s or "track")[:48]


def print_table(manifest: dict, *, file=None) -> None:
    """Tracks (name, duration, split) and totals, on stdout."""
    file = file or sys.stdout
    rows = [(t["name"], clock(t["seconds"]), t["split"]) for t in manifest["tracks"]]
    w = max([len("track")] + [len(r[0]) for r in rows])
    print(f"{'track':<{w}}  {'duration':>8}  split", file=file)
    for name, dur, split in rows:
        print(f"{name:<{w}}  {dur:>8}  {split}", file=file)
    tot = manifest["totals"]
    print(
        f"{tot['tracks']} tracks, {clock(tot['seconds'])} in all: {clock(tot['train_seconds'])} training, "
        f"{clock(tot['val_seconds'])} validation; {len(manifest['skipped'])} file(s) skipped",
        file=file,
    )
