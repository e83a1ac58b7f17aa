"""What each stretch of a run's prepared audio is labelled, for training a steerable model.

Three ways to label (`inspire train --label-by`):

    track            each track is its own label: its name as the manifest shows it (a name two
                     tracks share is told apart by the track's id)
    folder           the folder each source file sat in (one label per album or session)
    FILE.csv         sections you name: one row per section, `file,start,end,label`
                     (a header row is optional; start and end in seconds or m:ss; end empty or
                     `end` for the end of the file). Audio outside every section is unlabelled.

The result, a `Labelling`, holds the label names (row i + 1 of the model's label tables; row 0
is "no label") and every labelled section in samples, and gives the label of every sample of a
stretch (`rows`). Only labels that occur in training audio become names: a label met only in
held-out audio has nothing to learn from, so it counts as unlabelled. A `Labelling` goes into
the run's config.json and every checkpoint (`to_json`/`from_json`), so a run continues with the
labels it started with even if the CSV file moves.

Bad input (an unknown file, overlapping or out-of-range sections, a malformed row, the reserved
name `none`) is a `UserInputError` naming the file, the line and what is wrong.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from inspire.audio.dataset import PreparedData, Track
from inspire.errors import DatasetError, UserInputError

BY = ("none", "track", "folder")  # or a CSV file
RESERVED = "none"  # the steering word for "no label"
END_TOLERANCE_S = 0.05  # a section may end this far past its file's end (rounding in a hand-made CSV)


@dataclass(frozen=True)
class Section:
    track: str  # track id
    start: int  # samples
    end: int  # samples, exclusive
    label: str


@dataclass(frozen=True)
class Labelling:
    """How a run's audio is labelled: `by` (none, track, folder or csv), the label names (model
    rows 1..n), and the labelled sections of every track."""

    by: str = "none"
    names: tuple[str, ...] = ()
    sections: tuple[Section, ...] = ()
    source: dict | None = None  # csv: {"path", "sha256"}

    def __post_init__(self) -> None:
        rows = {n: i + 1 for i, n in enumerate(self.names)}
        by_track: dict[str, list[tuple[int, int, int]]] = {}
        for s in self.sections:
            by_track.setdefault(s.track, []).append((s.start, s.end, rows.get(s.label, 0)))
        object.__setattr__(self, "_by_track", by_track)

    def rows(self, track_id: str, start: int, end: int) -> np.ndarray:
        """(end - start,) int64: the label row of every sample of a stretch (0: no label)."""
        out = np.zeros(max(0, end - start), dtype=np.int64)
        for a, b, row in self._by_track.get(track_id, ()):
            lo, hi = max(a, start), min(b, end)
            if hi > lo and row:
                out[lo - start : hi - start] = row
        return out

    def row_of(self, track_id: str, start: int, end: int) -> int:
        """The label row covering most of a stretch (0 when unlabelled audio covers most)."""
        counts = np.bincount(self.rows(track_id, start, end), minlength=len(self.names) + 1)
        return int(counts.argmax())

    def seconds(self, prep: PreparedData, split: str = "train") -> dict[str, float]:
        """Seconds of `split` audio under each label name."""
        sr, out = prep.settings.sample_rate, dict.fromkeys(self.names, 0.0)
        for track, seg in prep.segments(split):
            counts = np.bincount(self.rows(track.id, seg.start, seg.end), minlength=len(self.names) + 1)
            for i, name in enumerate(self.names):
                out[name] += counts[i + 1] / sr
        return out

    def to_json(self) -> dict:
        return {
            "by": self.by,
            "names": list(self.names),
            "source": self.source,
            "sections": [[s.track, s.start, s.end, s.label] for s in self.sections],
        }

    @classmethod
    def from_json(cls, d: dict | None) -> "Labelling":
        if not d:
            return cls()
        try:
            sections = tuple(Section(str(t), int(a), int(b), str(lab)) for t, a, b, lab in d["sections"])
            return cls(str(d["by"]), tuple(d["names"]), sections, d.get("source"))
        except (KeyError, TypeError, ValueError) as exc:
            raise DatasetError(f"unreadable labels record ({exc})") from exc


def resolve(prep: PreparedData, by: str) -> Labelling:
    """Label a prepared run: `by` is none, track, folder or the path of a CSV file of sections."""
    if by == "none":
        return Labelling()
    if by == "track":
        counts: dict[str, int] = {}
        for t in prep.tracks:
            counts[t.name] = counts.get(t.name, 0) + 1
        # A name that cannot be a label ("none", a double quote) is labelled by the track's id.
        named = [(t, t.name if counts[t.name] == 1 and _valid_name(t.name) else t.id) for t in prep.tracks]
        return _whole_tracks(prep, "track", named)
    if by == "folder":
        return _whole_tracks(prep, "folder", [(t, Path(t.source).parent.name or "/") for t in prep.tracks])
    if not by.lower().endswith(".csv"):
        raise UserInputError(f"--label-by {by!r}: expected none, track, folder or a .csv file of sections")
    return _from_csv(prep, Path(by))


def _whole_tracks(prep: PreparedData, by: str, named: list[tuple[Track, str]]) -> Labelling:
    for t, name in named:
        _check_name(name, f"{by} label of {t.source}")
    sections = tuple(Section(t.id, 0, t.samples, name) for t, name in named)
    return _finish(prep, by, sections, None, where=f"--label-by {by}")


def _finish(prep: PreparedData, by: str, sections: tuple[Section, ...], source: dict | None, *,
            where: str) -> Labelling:
    """Keep as names the labels that occur in training audio, in order of first appearance."""
    trained = {t.id: [(s.start, s.end) for s in t.segments if s.split == "train"] for t in prep.tracks}
    names: list[str] = []
    for s in sections:
        if s.label not in names and any(min(b, s.end) > max(a, s.start) for a, b in trained.get(s.track, ())):
            names.append(s.label)
    if not names:
        raise DatasetError(f"{where}: no label covers any training audio of {prep.run_dir}")
    return Labelling(by, tuple(names), sections, source)


def _valid_name(name: str) -> bool:
    return name.strip().lower() != RESERVED and '"' not in name


def _check_name(name: str, what: str) -> None:
    if name.strip().lower() == RESERVED:
        raise DatasetError(f"{what} is {name!r}, which is reserved for 'no label'; rename it or label by a CSV file")
    if '"' in name:
        raise DatasetError(f"{what} is {name!r}: label names cannot hold a double quote")


_TIME = re.compile(r"^\s*(?:(\d+):)?(\d+(?:\.\d*)?|\.\d+)\s*$")


def _seconds(text: str) -> float | None:
    """'12.5' or '1:02.5' -> seconds; None if it is neither."""
    m = _TIME.match(text)
    if not m:
        return None
    return float(m.group(2)) + 60 * int(m.group(1) or 0)


def _from_csv(prep: PreparedData, path: Path) -> Labelling:
    if not path.is_file():
        raise UserInputError(f"--label-by {path}: no such file")
    from inspire.audio.io import sha256_of

    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise UserInputError(f"{path}: cannot read it as UTF-8 text ({exc})") from None
    sr = prep.settings.sample_rate
    found: dict[str, list[tuple[int, int, str, int]]] = {}
    rows = list(csv.reader(text.splitlines()))
    for line, row in enumerate(rows, start=1):
        if not row or all(not c.strip() for c in row) or row[0].lstrip().startswith("#"):
            continue
        if len(row) != 4:
            raise UserInputError(f"{path}:{line}: expected 4 columns file,start,end,label, found {len(row)}")
        file, start_t, end_t, label = (c.strip() for c in row)
        if line == 1 and _seconds(start_t) is None and start_t.lower() == "start":
            continue  # a header row
        track = _match_track(prep, file, path, line)
        start = _seconds(start_t)
        end = track.samples / sr if end_t.lower() in ("", "end") else _seconds(end_t)
        if start is None or end is None:
            bad = start_t if start is None else end_t
            raise UserInputError(f"{path}:{line}: {bad!r} is not a time (seconds like 12.5, or m:ss like 1:02.5)")
        dur = track.samples / sr
        if not start < end:
            raise UserInputError(f"{path}:{line}: the section must end after it starts ({start_t} to {end_t})")
        if end > dur + END_TOLERANCE_S:
            raise UserInputError(f"{path}:{line}: the section ends at {end:g} s, beyond the end of {file} "
                                 f"({dur:.2f} s)")
        if not label:
            raise UserInputError(f"{path}:{line}: the label is empty")
        if label.lower() == RESERVED or '"' in label:
            raise UserInputError(f"{path}:{line}: {label!r} cannot be a label (none is reserved; no double quotes)")
        found.setdefault(track.id, []).append((round(start * sr), min(round(end * sr), track.samples), label, line))
    sections = []
    for track_id, items in found.items():
        items.sort()
        for (_, a1, _, la), (b0, _, _, lb) in zip(items, items[1:], strict=False):
            if b0 < a1:
                raise UserInputError(f"{path}: sections on lines {la} and {lb} overlap ({a1 / sr:g} s > {b0 / sr:g} s)")
        sections += [Section(track_id, a, b, lab) for a, b, lab, _ in items]
    if not sections:
        raise UserInputError(f"{path}: no sections (rows file,start,end,label)")
    source = {"path": str(path.resolve()), "sha256": sha256_of(path)}
    return _finish(prep, "csv", tuple(sections), source, where=str(path))


def _match_track(prep: PreparedData, file: str, csv_path: Path, line: int) -> Track:
    """A CSV's file column -> the track: its path (absolute, or relative to the CSV's folder or
    the current folder), its file name, its name as the manifest shows it, or its id."""
    if not file:
        raise UserInputError(f"{csv_path}:{line}: the file column is empty")
    for base in (csv_path.parent, Path.cwd()):
        p = (base / file).expanduser()
        if p.exists():
            hit = [t for t in prep.tracks if Path(t.source) == p.resolve()]
            if hit:
                return hit[0]
    for key in (lambda t: Path(t.source).name, lambda t: t.name, lambda t: t.id):
        hit = [t for t in prep.tracks if key(t) == file]
        if len(hit) == 1:
            return hit[0]
        if len(hit) > 1:
            raise UserInputError(f"{csv_path}:{line}: {file!r} names {len(hit)} tracks; give its path instead")
    known = ", ".join(Path(t.source).name for t in prep.tracks[:8]) + (", ..." if len(prep.tracks) > 8 else "")
    raise UserInputError(f"{csv_path}:{line}: unknown file {file!r} (the run's tracks: {known})")
