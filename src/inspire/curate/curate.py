"""Curate an abundance: score every clip in a folder, say which to keep and why, find where
clips copy their training tracks, and write it all down (curation.json, curation.csv, the
clips' sidecars, report.html).

This module owns curation.json (`load_curation` reads it for every other stage). Each clip's
sidecar gets the same results as its "curation" (through inspire.clips, so a person's marks and
anything else in the sidecar are kept; a clip without a sidecar gets none).

Clips are streamed one at a time (memory holds one clip, the lineage index and the results).
Unreadable clips are listed with their error and ranked last; they never stop the run.
Nothing is moved or deleted unless `move=True`; then clips judged discard move to discarded/,
except those a person marked keep (and those a person marked discard move too).
No torch, here or in what this imports.
"""

from __future__ import annotations

import csv
import io
import math
import os
import sys
from dataclasses import replace
from pathlib import Path

from inspire import clips
from inspire.errors import AudioReadError, InspireError, UserInputError
from inspire.files import read_json, write_json, write_text
from inspire.progress import Progress
from inspire.timefmt import clock

FORMAT_VERSION = 1
CURATION_FILE = "curation.json"
DISCARDED = "discarded"
REPORT_FILES = "report_files"


def curate_folder(
    clips_dir: str | os.PathLike,
    *,
    run_dir: str | os.PathLike | None = None,
    keep: int | None = None,
    keep_fraction: float | None = None,
    move: bool = False,
    progress: bool = False,
    thresholds=None,
) -> dict:
    """Score every audio file in `clips_dir` (recursively, except discarded/), search each
    against the run's training tracks when `run_dir` is given, and write curation.json,
    curation.csv, report.html and a "curation" key in each existing sidecar. `keep` /
    `keep_fraction` keep at most that many of the best (clips already judged discards stay
    discards). `move` moves discarded clips and their sidecars into clips_dir/discarded/.
    Returns the curation dict (the content of curation.json)."""
    from inspire.audio.io import find_audio_files, read_audio
    from inspire.curate import lineage, report, scores

    clips_dir = Path(clips_dir)
    if not clips_dir.is_dir():
        raise UserInputError(f"{clips_dir}: not a folder of clips")
    if keep is not None and keep < 0:
        raise UserInputError(f"--keep must be 0 or more, got {keep}")
    if keep_fraction is not None and not 0.0 <= keep_fraction <= 1.0:
        raise UserInputError(f"--keep-fraction must be between 0 and 1, got {keep_fraction}")
    thresholds = thresholds or scores.Thresholds()
    files = [
        f
        for f in find_audio_files([clips_dir])
        if f.relative_to(clips_dir).parts[0] not in (DISCARDED, REPORT_FILES) and not f.name.startswith(".")
    ]
    if not files:
        raise UserInputError(f"{clips_dir}: no audio files (looked for WAV, FLAC, OGG, MP3, AIFF...)")
    index = lineage.run_index(run_dir, progress=progress) if run_dir is not None else None

    pictures = clips_dir / REPORT_FILES
    bar = _bar(len(files), progress)
    entries = []
    for path in files:
        rel = path.relative_to(clips_dir).as_posix()
        entry = {"id": path.stem, "file": rel, "verdict": "discard", "score": 0.0, "rank": 0, "reasons": [],
                 "features": {}, "regions": None, "lineage": None, "error": None}
        try:
            x, info = read_audio(path)
            result = scores.analyze(x, info.sample_rate, thresholds=thresholds,
                                    temperature=_temperature(_record(clips_dir, entry)))
            entry.update(verdict=result.verdict, score=result.score, reasons=result.reasons, features=result.features,
                         regions=keeper_regions(result.features) if result.verdict == "keep" else None)
            if index is not None:
                matches = lineage.search(index, x, info.sample_rate)
                entry["lineage"] = {
                    "fraction": lineage.lineage_fraction(matches, x.size / info.sample_rate),
                    "matches": [m.to_dict() for m in matches],
                }
            report.write_spectrogram(pictures / f"{_safe(rel)}.png", result.bands_db)
            del x
        except AudioReadError as exc:
            entry["error"] = str(exc)
            entry["reasons"] = ["unreadable: " + str(exc).split(": ", 1)[-1]]
        entries.append(entry)
        bar.update(1)
    bar.close()

    _rank(entries, keep=keep, keep_fraction=keep_fraction)
    records = [_record(clips_dir, e) for e in entries]  # before any move: a person's verdict counts
    if move:
        _move_discarded(clips_dir, entries, records)
    curation = {
        "format_version": FORMAT_VERSION,
        "settings": {
            "thresholds": thresholds.to_dict(),
            "keep": keep,
            "keep_fraction": keep_fraction,
            "run": None if run_dir is None else os.fspath(run_dir),
            "lineage_version": lineage.ALGORITHM_VERSION if run_dir is not None else None,
        },
        "features": scores.FEATURES,
        "clips": entries,
    }
    write_json(clips_dir / CURATION_FILE, curation)
    write_text(clips_dir / "curation.csv", to_csv(entries))
    for entry in entries:
        _update_sidecar(clips_dir, entry)
    temperatures = {e["id"]: _temperature(r) for e, r in zip(entries, records, strict=False)}
    report.write_report(clips_dir, curation, temperatures=temperatures)
    return curation


def load_curation(clips_dir: str | os.PathLike) -> dict | None:
    """CLIPS_DIR/curation.json as `curate_folder` wrote it, or None when absent. UserInputError
    when it is not readable or not a curation (an object with a list of clip objects)."""
    path = Path(clips_dir) / CURATION_FILE
    if not path.is_file():
        return None
    try:
        cur = read_json(path)
    except (OSError, ValueError) as exc:
        raise UserInputError(f"{path}: not readable JSON ({exc})") from exc
    if not isinstance(cur, dict) or not isinstance(cur.get("clips"), list):
        raise UserInputError(f"{path}: expected an object with a 'clips' list")
    bad = next((i for i, c in enumerate(cur["clips"], 1) if not isinstance(c, dict)), None)
    if bad is not None:
        raise UserInputError(f"{path}: clips entry {bad} is not an object")
    return cur


def _rank(entries: list[dict], *, keep: int | None, keep_fraction: float | None) -> None:
    """Sort in place: kept clips by score, then discarded ones, unreadable last; rank from 1.
    Then trim the keepers to `keep` / `keep_fraction` of all clips."""
    entries.sort(key=lambda e: (e["error"] is not None, e["verdict"] != "keep", -e["score"], e["id"]))
    limit = None
    if keep is not None:
        limit = keep
    if keep_fraction is not None:
        by_fraction = math.ceil(keep_fraction * len(entries))
        limit = by_fraction if limit is None else min(limit, by_fraction)
    kept = 0
    for rank, entry in enumerate(entries, start=1):
        entry["rank"] = rank
        if entry["verdict"] == "keep":
            kept += 1
            if limit is not None and kept > limit:
                entry["verdict"] = "discard"
                entry["reasons"] = [f"not among the best {limit}"] + entry["reasons"]


def _move_discarded(clips_dir: Path, entries: list[dict], records: list) -> None:
    """Move discarded clips (a person's verdict, when given, over curation's) and their
    sidecars into clips_dir/discarded/."""
    for entry, record in zip(entries, records, strict=False):
        person = record.marks.verdict if record is not None else None
        if (person or entry["verdict"]) != "discard":
            continue
        src = clips_dir / entry["file"]
        if not src.exists():
            continue
        dest = clips.move(src, clips_dir / DISCARDED)
        entry["file"] = dest.relative_to(clips_dir).as_posix()


def _record(clips_dir: Path, entry: dict) -> clips.ClipRecord | None:
    """The clip's sidecar record, or None when it has none or it is not a clip's."""
    try:
        return clips.read(clips_dir / entry["file"])
    except InspireError:
        return None


def _update_sidecar(clips_dir: Path, entry: dict) -> None:
    """Set the "curation" of the clip's sidecar; everything else in it stays as it is (a
    person's marks, keys of newer versions). Clips without a sidecar get none (curation.json
    holds everything); a composed piece's sidecar is not a clip's and is left alone."""
    curation = {k: entry[k] for k in ("verdict", "score", "rank", "reasons", "features", "regions", "lineage", "error")}
    path = clips_dir / entry["file"]
    try:
        clips.update(path, lambda r: replace(r, curation=curation))
    except clips.NotAClipError as exc:
        quiet = isinstance(exc, clips.NoSidecarError) or exc.kind is not None  # no sidecar, or a piece's
        if not (quiet or clips.sidecar_path(path).name in clips.RESERVED):
            print(f"inspire curate: warning: {exc}; left alone", file=sys.stderr)
    except InspireError as exc:
        print(f"inspire curate: warning: {exc}; left alone", file=sys.stderr)


def keeper_regions(features: dict) -> list[list[float]] | None:
    """The passages curation suggests keeping, [[start_s, end_s]]: the clean stretch before a
    collapse into noise; None when the whole clip is as good as its verdict says."""
    clean = features.get("clean_s")
    if features.get("collapse_s") is None or not clean:
        return None
    return [[0.0, float(clean)]]


def _temperature(record: clips.ClipRecord | None) -> dict | None:
    temp = record.temperature if record is not None else None
    if isinstance(temp, dict) and len(temp.get("times_s", [])) == len(temp.get("values", [])) > 0:
        return temp
    return None


CSV_FEATURES = [k for k in (
    "duration_s", "loudness_lufs", "peak_dbfs", "silence_fraction", "clipped_fraction", "dc_offset",
    "spectral_flatness", "variety_db", "variety_p90_db", "monotony", "dynamic_range_db",
    "loop_period_s", "loop_start_s", "loop_end_s", "loop_fraction", "loop_similarity",
    "collapse_s", "collapse_temperature", "clean_s",
)]  # fmt: skip


def to_csv(entries: list[dict]) -> str:
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(["rank", "id", "file", "verdict", "score", "reasons", "lineage_fraction", "lineage_tracks",
                *CSV_FEATURES, "error"])
    for e in entries:
        lin = e["lineage"]
        tracks = sorted({m["track"] for m in lin["matches"]}) if lin else []
        w.writerow([
            e["rank"], e["id"], e["file"], e["verdict"], e["score"], "; ".join(e["reasons"]),
            "" if lin is None else lin["fraction"], " ".join(tracks),
            *["" if e["features"].get(k) is None else e["features"][k] for k in CSV_FEATURES],
            e["error"] or "",
        ])  # fmt: skip
    return out.getvalue()


def _safe(rel: str) -> str:
    return rel.replace("/", "__")


def _bar(total: int, progress: bool) -> Progress:
    return Progress(total=total, desc="curating", unit="clip", enabled=progress)


# --- lineage of one clip -------------------------------------------------------------------


def clip_lineage(clip: str | os.PathLike, run_dir: str | os.PathLike, *, progress: bool = False) -> tuple[float, list]:
    """(clip seconds, matches) of one clip against a run's tracks."""
    from inspire.audio.io import read_audio
    from inspire.curate import lineage

    if not Path(clip).is_file():
        raise UserInputError(f"{clip}: no such clip")
    index = lineage.run_index(run_dir, progress=progress)
    x, info = read_audio(clip)
    return x.size / info.sample_rate, lineage.search(index, x, info.sample_rate)


def format_timeline(seconds: float, matches: list, *, width: int = 60) -> str:
    """A text timeline: one bar with a letter per source track, then one line per passage."""
    letters = {}
    for m in matches:
        letters.setdefault(m.track, "ABCDEFGHIJKLMNOPQRSTUVWXYZ"[len(letters) % 26])
    bar = ["."] * width
    for m in matches:
        a = int(m.clip_start_s / max(seconds, 1e-9) * width)
        b = max(a + 1, int(math.ceil(m.clip_end_s / max(seconds, 1e-9) * width)))
        for i in range(a, min(b, width)):
            bar[i] = letters[m.track]
    lines = [f"|{''.join(bar)}|  0:00 .. {clock(seconds, decimals=2)}"]
    if not matches:
        lines.append("no passage closely matches a training track")
    for m in matches:
        lines.append(
            f"{letters[m.track]}  {clock(m.clip_start_s, decimals=2)}-{clock(m.clip_end_s, decimals=2)}  "
            f"{m.track} @ {clock(m.source_start_s, decimals=2)}  similarity {m.similarity:.2f}"
        )
    fraction = sum(m.clip_end_s - m.clip_start_s for m in matches) / max(seconds, 1e-9)
    lines.append(f"near-copy: {100 * min(1.0, fraction):.0f}% of {seconds:.1f} s")
    return "\n".join(lines)
