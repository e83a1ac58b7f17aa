"""The clip record: the one owner of a clip's sidecar and of a clip folder's manifest.

A generated clip is `<id>.wav` with a sidecar `<id>.json` beside it. The sidecar says what made
the clip (written by `inspire generate`), what curation concluded (`curation`, added by
`inspire curate`) and what a person decided (`marks`, written by the studio). Every stage reads
and writes it through this module, as a `ClipRecord`; nothing else touches its keys.

    {
      "format_version": 2,
      "id": "0003-1a2b3c4d", "file": "0003-1a2b3c4d.wav",
      "run": ..., "checkpoint": {"path", "sha256", "step"}, "seed": 0, "index": 3, "stream_seed": ...,
      "temperature": {"spec", "times_s", "values"},
      "min_p": null | {"spec", "times_s", "values"}, "top_p": null | {...},   # truncation curves (null: off)
      "guard": null | {"settings": {...}, "interventions": [{"at", "to", "ease", "flatness"[, "hold_to", "release_to"]}
                                                             | {"at", "gave_up"}]},
      "steer": null | {"spec", "times_s", "mixes", "guidance"},   # a labelled model's steering curve
      "seconds": 30.0, "samples": 480000,
      "sample_rate": 16000, "quantization": "mu-law", "levels": 256,
      "prime": null | {"source", "start_s", "seconds", "included", ...}, "int8": false,
      "software": "inspire 0.2.0", "created": "2026-...",
      "curation": null | {"verdict", "score", "rank", "reasons", "features", "lineage", "error"},
      "marks": {"verdict": null | "keep" | "discard", "star": false, "regions": [[start_s, end_s], ...]},
      ...                                  # keys a newer version added: kept as they are
    }

Versions: 1 (release 0.1) had no `marks`; it is read as "no marks yet" and written back as 2.
A sidecar with no `format_version` (made by hand) is read as version 1. A sidecar from a newer
version is read too: what this version does not know stays in `extra` and is written back.
Sidecars written by hand may lack any field but the audio: a missing `id` is the file's stem.

Writes are atomic (a reader sees the old sidecar or the new one). `update` is a
read-modify-write under an exclusive OS lock on the folder's `.clips.lock` (fcntl.flock; on
Windows msvcrt.locking), so the studio, `inspire curate` and generation shards writing into
one folder at once never lose each other's changes; the lock file is removed on release. The
folder's `manifest.json` (the job and every finished clip, in index order) is rebuilt from the
sidecars under the same lock.

No torch, no audio libraries at import time (soundfile is imported only to measure a clip that
has no sidecar yet).
"""

from __future__ import annotations

import contextlib
import math
import os
import threading
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Callable, Iterator

from inspire.errors import UserInputError
from inspire.files import AUDIO_EXTENSIONS, read_json, write_json

FORMAT_VERSION = 2  # the sidecar format; 1 = release 0.1 (no marks)
MANIFEST_VERSION = 1  # the folder manifest's format (unchanged since release 0.1)
MANIFEST = "manifest.json"
LOCK_FILE = ".clips.lock"
MOVED = "moved.json"  # clips a curation moved out of this folder: {id: where to}
RESERVED = frozenset({MANIFEST, "curation.json", MOVED})  # JSON files of a clip folder that are never sidecars
VERDICTS = ("keep", "discard")
CLIP_KIND = "inspire-clip"  # a sidecar with another "kind" (e.g. a composed piece's) is not a clip's
REGION_SLACK_S = 1e-3  # a region may end this far past the clip's last sample (rounding)


class NotAClipError(UserInputError):
    """A JSON file that is not a clip sidecar: a manifest, a composed piece's sidecar, a list,
    unreadable JSON. `kind` is the file's "kind" field when it has one (e.g. "inspire-piece")."""

    def __init__(self, message: str, *, kind: str | None = None):
        super().__init__(message)
        self.kind = kind


class NoSidecarError(NotAClipError):
    """The clip has no sidecar (yet)."""


# ----------------------------------------------------------------------------------- marks


@dataclass(frozen=True)
class Marks:
    """What a person decided about a clip: keep it, throw it away or not decided (None); a
    star for favourites; the passages worth keeping, in seconds of the clip's audio file."""

    verdict: str | None = None  # "keep" | "discard" | None (not decided)
    star: bool = False
    regions: tuple[tuple[float, float], ...] = ()  # ((start_s, end_s), ...), start < end, as made
    extra: dict = field(default_factory=dict)  # keys from newer versions: kept on a round trip

    def __post_init__(self) -> None:
        if self.verdict is not None and self.verdict not in VERDICTS:
            raise UserInputError(f"marks: verdict must be 'keep', 'discard' or null, got {self.verdict!r}")
        if not isinstance(self.star, bool):
            raise UserInputError(f"marks: star must be true or false, got {self.star!r}")
        if isinstance(self.regions, (str, bytes, dict)) or not hasattr(self.regions, "__iter__"):
            raise UserInputError(f"marks: regions must be a list of [start_s, end_s] pairs, got {self.regions!r}")
        regions = []
        for k, region in enumerate(self.regions, 1):
            try:
                start, end = region
            except (TypeError, ValueError):
                raise UserInputError(f"marks: region {k} must be a pair [start_s, end_s], got {region!r}") from None
            if not all(_is_number(v) for v in (start, end)):
                raise UserInputError(f"marks: region {k} {list(region)!r}: start and end must be numbers of seconds")
            if start < 0:
                raise UserInputError(f"marks: region {k} [{start:g}, {end:g}] starts before the clip (start < 0)")
            if not start < end:
                raise UserInputError(f"marks: region {k} [{start:g}, {end:g}]: start must be before end")
            regions.append((float(start), float(end)))
        object.__setattr__(self, "regions", tuple(regions))
        if not isinstance(self.extra, dict) or {"verdict", "star", "regions"} & set(self.extra):
            raise UserInputError(f"marks: extra must be an object of other keys, got {self.extra!r}")

    @property
    def empty(self) -> bool:
        return self.verdict is None and not self.star and not self.regions

    def check(self, seconds: float | None) -> None:
        """Raise UserInputError when a region ends after a clip of `seconds` (None: unknown)."""
        if seconds is None:
            return
        for k, (start, end) in enumerate(self.regions, 1):
            if end > seconds + REGION_SLACK_S:
                raise UserInputError(
                    f"marks: region {k} [{start:g}, {end:g}] ends after the clip's end ({seconds:.3f} s)"
                )

    def to_dict(self) -> dict:
        return {"verdict": self.verdict, "star": self.star, "regions": [[a, b] for a, b in self.regions], **self.extra}

    @classmethod
    def from_dict(cls, d: Any) -> "Marks":
        if d is None:
            return cls()
        if not isinstance(d, dict):
            raise UserInputError(f"marks: expected an object with verdict, star and regions, got {d!r}")
        extra = {k: v for k, v in d.items() if k not in ("verdict", "star", "regions")}
        return cls(d.get("verdict"), d.get("star", False), d.get("regions") or (), extra)


# ---------------------------------------------------------------------------------- record


@dataclass(frozen=True)
class ClipRecord:
    """One clip's sidecar. Generation fields are None when the sidecar does not say (clips
    made by other tools, or by hand); `extra` holds keys this version does not know."""

    id: str
    file: str = ""  # the audio file's name, beside the sidecar ("" -> "<id>.wav")
    run: str | None = None  # the run folder it was generated from
    checkpoint: dict | None = None  # {"path", "sha256", "step"}
    seed: int | None = None  # the job's seed
    index: int | None = None  # the clip's index in its job
    stream_seed: int | None = None  # the seed of its random stream
    temperature: dict | None = None  # {"spec", "times_s", "values"}: the resolved curve
    min_p: dict | None = None  # the min-p truncation curve, same form; None: off
    top_p: dict | None = None  # the top-p truncation curve, same form; None: off
    guard: dict | None = None  # {"settings", "interventions"} (inspire.samplernn.guard); None: no guard
    steer: dict | None = None  # {"spec", "times_s", "mixes", "guidance"}: the steering curve (labelled models)
    seconds: float | None = None  # generated audio, without an included prime
    samples: int | None = None  # generated samples, without an included prime
    sample_rate: int | None = None
    quantization: str | None = None
    levels: int | None = None
    prime: dict | None = None  # {"source", "start_s", "seconds", "included", ...} or None: unprimed
    int8: bool = False  # made with int8 weights
    software: str | None = None
    created: str | None = None  # ISO 8601, UTC
    curation: dict | None = None  # what `inspire curate` concluded (curate owns its content)
    marks: Marks = field(default_factory=Marks)  # what a person decided
    extra: dict = field(default_factory=dict)  # keys from newer versions: kept on a round trip

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not self.id:
            raise UserInputError(f"clip record: id must be a non-empty string, got {self.id!r}")
        if not self.file:
            object.__setattr__(self, "file", f"{self.id}.wav")
        if not isinstance(self.marks, Marks):
            raise UserInputError(f"clip {self.id}: marks must be a Marks, got {type(self.marks).__name__}")
        clash = set(self.extra) & (_FIELDS | {"format_version"})
        if clash:
            raise UserInputError(f"clip {self.id}: extra holds known field(s) {', '.join(sorted(clash))}")

    @property
    def auto_verdict(self) -> str | None:
        """The verdict `inspire curate` gave ("keep" | "discard"), or None when not curated."""
        verdict = (self.curation or {}).get("verdict")
        return verdict if verdict in VERDICTS else None

    @property
    def verdict(self) -> str | None:
        """The verdict that counts: a person's when they gave one, else curation's."""
        return self.marks.verdict or self.auto_verdict

    @property
    def duration_s(self) -> float | None:
        """Length of the audio file as made (an included prime comes first), or None."""
        if self.seconds is None:
            return None
        prime = self.prime or {}
        lead = prime.get("seconds", 0.0) if prime.get("included") else 0.0
        return float(self.seconds) + (float(lead) if _is_number(lead) else 0.0)


_FIELDS = {f.name for f in fields(ClipRecord)} - {"extra"}
_OPTIONAL = {"min_p", "top_p", "guard", "steer"}  # fields a sidecar holds only when they are set
# Type of each plain field: what a sidecar may hold there (None is always allowed).
_TYPES: dict[str, tuple[type, ...]] = {
    "file": (str,), "run": (str,), "checkpoint": (dict,), "seed": (int,), "index": (int,), "stream_seed": (int,),
    "temperature": (dict,), "min_p": (dict,), "top_p": (dict,), "guard": (dict,), "steer": (dict,),
    "seconds": (int, float), "samples": (int,), "sample_rate": (int,), "quantization": (str,), "levels": (int,),
    "prime": (dict,), "int8": (bool,), "software": (str,), "created": (str,), "curation": (dict,),
}  # fmt: skip


def to_dict(record: ClipRecord) -> dict:
    """The sidecar's JSON content: every field (null where unknown; the controls added since
    release 0.1, truncation, the guard and steering, only when used), then unknown keys."""
    out: dict[str, Any] = {"format_version": FORMAT_VERSION}
    for f in fields(ClipRecord):
        if f.name == "marks":
            out["marks"] = record.marks.to_dict()
        elif f.name in _OPTIONAL and getattr(record, f.name) is None:
            continue  # written only when set (a plain clip's sidecar is as release 0.1 wrote it)
        elif f.name != "extra":
            out[f.name] = getattr(record, f.name)
    out.update(record.extra)
    return out


def from_dict(d: Any, *, default_id: str | None = None, where: str = "sidecar") -> ClipRecord:
    """A record from a sidecar's JSON content, upgraded from older versions. `default_id`: the
    id when the sidecar names none (its file's stem). Errors name `where` and the field."""
    if not isinstance(d, dict):
        raise NotAClipError(f"{where}: not a clip sidecar (expected a JSON object, got {type(d).__name__})")
    kind = d.get("kind")
    if kind is not None and kind != CLIP_KIND:
        raise NotAClipError(f"{where}: not a clip sidecar (kind {kind!r})", kind=str(kind))
    if isinstance(d.get("clips"), list):
        raise NotAClipError(f"{where}: not a clip sidecar (a folder's list of clips)")
    version = d.get("format_version", 1)
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise UserInputError(f"{where}: format_version must be a whole number from 1, got {version!r}")
    d = _upgrade(dict(d), version)
    values: dict[str, Any] = {}
    for key, types in _TYPES.items():
        value = d.get(key)
        if value is None:
            continue
        if not isinstance(value, types) or (bool not in types and isinstance(value, bool)):
            expected = " or ".join(_TYPE_WORDS[t] for t in types)
            raise UserInputError(f"{where}: {key} must be {expected} (or null), got {value!r}")
        values[key] = value
    rid = d.get("id", default_id)
    if not isinstance(rid, str) or not rid:
        raise UserInputError(f"{where}: id must be a non-empty string, got {rid!r}")
    try:
        marks = Marks.from_dict(d.get("marks"))
    except UserInputError as exc:
        raise UserInputError(f"{where}: {exc}") from None
    extra = {k: v for k, v in d.items() if k not in _FIELDS and k != "format_version"}
    return ClipRecord(id=rid, marks=marks, extra=extra, **values)


_TYPE_WORDS = {str: "a string", dict: "an object", int: "a whole number", float: "a number", bool: "true or false"}


def _upgrade(d: dict, version: int) -> dict:
    """Bring a sidecar's content up to FORMAT_VERSION, one version at a time. Newer versions are
    left as they are (what this version does not know is kept in `extra`)."""
    if version < 2:  # 1 -> 2: marks arrive; an older sidecar has none
        d.setdefault("marks", None)
    return d


# ---------------------------------------------------------------------------- paths and I/O


def sidecar_path(audio_path: str | os.PathLike) -> Path:
    """Where the sidecar of an audio file is (or would be): beside it, named `<stem>.json`."""
    return Path(audio_path).with_suffix(".json")


def audio_path(record: ClipRecord, folder: str | os.PathLike) -> Path:
    """The audio file of a record whose sidecar is in `folder`."""
    return Path(folder) / record.file


def read(path: str | os.PathLike) -> ClipRecord:
    """The record of a clip: `path` is its sidecar or its audio file. Raises NoSidecarError when
    there is no sidecar, NotAClipError when the JSON is not a clip's, UserInputError (naming the
    file and field) when a field holds the wrong type."""
    side = _side(path)
    if side.name in RESERVED:
        raise NotAClipError(f"{side}: a clip folder's {side.name}, not a clip sidecar")
    try:
        content = read_json(side)
    except FileNotFoundError:
        raise NoSidecarError(f"{side}: no such sidecar") from None
    except (OSError, ValueError) as exc:
        raise NotAClipError(f"{side}: not a readable sidecar ({exc})") from None
    record = from_dict(content, default_id=side.stem, where=str(side))
    if "file" not in content:  # made by hand: the audio beside it, whatever its format
        given = Path(path)
        found = given if given != side and given.is_file() else _audio_beside(side)
        if found is not None:
            record = replace(record, file=found.name)
    return record


def write(record: ClipRecord, folder: str | os.PathLike) -> Path:
    """Write `record` as the sidecar of `folder/record.file`, atomically; return its path.
    Marks are checked against the clip's length (the audio file is measured when the record
    does not say)."""
    folder = Path(folder)
    side = sidecar_path(audio_path(record, folder))
    with locked(folder):
        _write(side, record)
    return side


def update(path: str | os.PathLike, fn: Callable[[ClipRecord], ClipRecord], *, create: bool = False) -> ClipRecord:
    """Read a clip's record, apply `fn` (old record -> new record) and write the result, all
    under the folder's exclusive lock; return the new record. `path`: the sidecar or the audio.
    A clip without a sidecar raises NoSidecarError, unless `create`: then `fn` gets `bare(audio)`."""
    side = _side(path)
    with locked(side.parent):
        try:
            old = read(path)
        except NoSidecarError:
            if not create:
                raise
            old = bare(path if Path(path) != side else (_audio_beside(side) or side.with_suffix(".wav")))
        new = fn(old)
        if not isinstance(new, ClipRecord):
            raise TypeError(f"update: fn must return a ClipRecord, got {type(new).__name__}")
        _write(side, new)
    return new


def bare(audio: str | os.PathLike) -> ClipRecord:
    """A record for an audio file that has no sidecar: id, file and, when it can be read, its
    length and rate."""
    audio = Path(audio)
    seconds = sample_rate = samples = None
    with contextlib.suppress(Exception):  # unreadable or absent: the record just says less
        import soundfile

        info = soundfile.info(str(audio))
        sample_rate, samples = int(info.samplerate), int(info.frames)
        seconds = round(samples / sample_rate, 6)
    return ClipRecord(id=audio.stem, file=audio.name, seconds=seconds, samples=samples, sample_rate=sample_rate)


def scan(folder: str | os.PathLike) -> list[ClipRecord]:
    """Every finished clip of a folder (not its subfolders): a sidecar with its audio beside it
    (same stem). Files that are not clip sidecars, and sidecars that cannot be read, are passed over.
    Sorted by index (clips without one last), then id."""
    folder = Path(folder)
    records = []
    for side in sorted(folder.glob("*.json")):
        try:
            record = read(side)
        except UserInputError:
            continue
        if sidecar_path(record.file).name == side.name and (folder / record.file).is_file():
            records.append(record)
    records.sort(key=lambda r: (r.index is None, r.index or 0, r.id))
    return records


def move(audio: str | os.PathLike, dest: str | os.PathLike) -> Path:
    """Move a clip's audio and its sidecar (if any) into folder `dest`, under the source
    folder's lock; return the audio's new path."""
    audio, dest = Path(audio), Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    with locked(audio.parent):
        target = dest / audio.name
        os.replace(audio, target)
        side = sidecar_path(audio)
        if side.name not in RESERVED and side.is_file():
            os.replace(side, dest / side.name)
        gone = moved(audio.parent)
        gone[audio.stem] = str(target.resolve())
        write_json(audio.parent / MOVED, gone)  # so a generate job run again knows not to remake it
    return target


def moved(folder: str | os.PathLike) -> dict[str, str]:
    """{clip id: its audio's new path} for the clips moved out of FOLDER by `move`."""
    try:
        gone = read_json(Path(folder) / MOVED)
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in gone.items()} if isinstance(gone, dict) else {}


# -------------------------------------------------------------------------------- manifest


def read_manifest(folder: str | os.PathLike) -> dict | None:
    """FOLDER/manifest.json, or None when absent or unreadable (it is rebuilt from the sidecars)."""
    path = Path(folder) / MANIFEST
    try:
        manifest = read_json(path)
    except (OSError, ValueError):
        return None
    return manifest if isinstance(manifest, dict) else None


def rebuild_manifest(folder: str | os.PathLike, header: dict) -> dict:
    """Write FOLDER/manifest.json = header + a summary of every finished generated clip, from
    the sidecars, under the folder's lock (so shards never lose each other's clips); return it."""
    folder = Path(folder)
    with locked(folder):
        clips = [
            {"id": r.id, "file": r.file, "seed": r.seed, "index": r.index,
             "temperature_spec": r.temperature["spec"], "seconds": r.seconds}
            for r in scan(folder)
            if r.id == Path(r.file).stem and r.seed is not None and r.index is not None
            and r.seconds is not None and isinstance(r.temperature, dict) and "spec" in r.temperature
        ]  # fmt: skip
        clips.sort(key=lambda c: (c["index"], c["id"]))
        manifest = {"format_version": MANIFEST_VERSION, **header, "clips": clips}
        write_json(folder / MANIFEST, manifest)
    return manifest


# ----------------------------------------------------------------------------------- locking


_held = threading.local()  # lock files this thread holds (so a nested `locked` does not deadlock)


@contextlib.contextmanager
def locked(folder: str | os.PathLike) -> Iterator[None]:
    """Hold the exclusive OS lock of a clip folder (FOLDER/.clips.lock) for the block. Other
    processes and threads wait; the same thread may nest it. The lock file is removed on release
    (a waiter that then holds a removed file's lock notices and locks the new one), so folders
    are left as they were."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK_FILE
    key = os.path.realpath(path)
    held = _held.__dict__.setdefault("paths", set())
    if key in held:
        yield
        return
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            _lock(fd)
            current = os.stat(path)
        except FileNotFoundError:
            current = None  # removed by the holder we waited for: lock the next file
        except BaseException:
            os.close(fd)
            raise
        if current is not None and os.path.samestat(os.fstat(fd), current):
            break
        _unlock(fd)
        os.close(fd)
    held.add(key)
    try:
        yield
    finally:
        held.discard(key)
        with contextlib.suppress(OSError):  # Windows keeps an open file: it stays, harmlessly
            os.unlink(path)
        _unlock(fd)
        os.close(fd)


try:
    import fcntl

    def _lock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_EX)

    def _unlock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)

except ImportError:  # Windows
    import msvcrt

    def _lock(fd: int) -> None:
        os.lseek(fd, 0, os.SEEK_SET)
        while True:  # LK_LOCK gives up after ~10 s of trying; keep waiting like flock does
            try:
                msvcrt.locking(fd, msvcrt.LK_LOCK, 1)
                return
            except OSError:
                continue

    def _unlock(fd: int) -> None:
        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)


# ---------------------------------------------------------------------------------- helpers


def _side(path: str | os.PathLike) -> Path:
    path = Path(path)
    return path if path.suffix.lower() == ".json" else sidecar_path(path)


def _write(side: Path, record: ClipRecord) -> None:
    seconds = record.duration_s
    if seconds is None and record.marks.regions:
        seconds = bare(side.parent / record.file).seconds
    try:
        record.marks.check(seconds)
    except UserInputError as exc:
        raise UserInputError(f"{side}: {exc}") from None
    write_json(side, to_dict(record))


def _audio_beside(side: Path) -> Path | None:
    """The audio file a sidecar belongs to when it does not say: same stem, an audio suffix."""
    # The one list of audio suffixes lives with the audio wing; this runs only for sidecars made
    # by hand (inspire writes "file" into every sidecar), so the import stays off the common path.

    found = sorted(p for p in side.parent.glob(f"{_glob_escape(side.stem)}.*")
                   if p.suffix.lower() in AUDIO_EXTENSIONS and p.is_file())
    return min(found, key=lambda p: p.suffix.lower() != ".wav") if found else None


def _glob_escape(name: str) -> str:
    return "".join(f"[{c}]" if c in "*?[" else c for c in name)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
