"""Curate an abundance: score every clip in a folder, say which to keep and why, find where
clips copy their training tracks, and write it all down (curation.json, curation.csv, the
clips' sidecars, report.html).

Clips are streamed one at a time (memory holds one clip, the lineage index and the results).
Unreadable clips are listed with their error and ranked last; they never stop the run.
Nothing is moved or deleted unless `move=True`. No torch, here or in what this imports.
"""

from __future__ import annotations

import csv
import io
import math
import os
import sys
from pathlib import Path

from inspire.errors import AudioReadError, UserInputError
from inspire.files import read_json, write_json, write_text

FORMAT_VERSION = 1
DISCARDED = "discarded"
REPORT_FILES = "report_files"
_NOT_SIDECARS = {"manifest.json", "curation.json"}


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
    from inspire.curate import lineage
    from inspire.curate import report
    from inspire.curate import scores
    from inspire.audio.io import find_audio_files, read_audio

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
                 "features": {}, "lineage": None, "error": None}
        try:
            x, info = read_audio(path)
            result = scores.analyze(x, info.sample_rate, thresholds=thresholds)
            entry.update(verdict=result.verdict, score=result.score, reasons=result.reasons, features=result.features)
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
    if move:
        _move_discarded(clips_dir, entries)
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
    write_json(clips_dir / "curation.json", curation)
    write_text(clips_dir / "curation.csv", to_csv(entries))
    for entry in entries:
        _update_sidecar(clips_dir, entry)
    temperatures = {e["id"]: _temperature(clips_dir, e) for e in entries}
    report.write_report(clips_dir, curation, temperatures=temperatures)
    return curation


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


def _move_discarded(clips_dir: Path, entries: list[dict]) -> None:
    target = clips_dir / DISCARDED
    for entry in entries:
        if entry["verdict"] != "discard":
            continue
        src = clips_dir / entry["file"]
        if not src.exists():
            continue
        target.mkdir(exist_ok=True)
        dest = target / src.name
        os.replace(src, dest)
        sidecar = src.with_suffix(".json")
        if sidecar.exists() and sidecar.name not in _NOT_SIDECARS:
            os.replace(sidecar, target / sidecar.name)
        entry["file"] = dest.relative_to(clips_dir).as_posix()


def _sidecar_path(clips_dir: Path, entry: dict) -> Path | None:
    path = (clips_dir / entry["file"]).with_suffix(".json")
    if path.name in _NOT_SIDECARS and path.parent == clips_dir:
        return None
    return path


def _update_sidecar(clips_dir: Path, entry: dict) -> None:
    """Add or replace the "curation" key of an existing sidecar; other keys stay as they are.
    Clips without a sidecar get none (curation.json holds everything)."""
    path = _sidecar_path(clips_dir, entry)
    if path is None or not path.exists():
        return
    try:
        data = read_json(path)
    except (OSError, ValueError) as exc:
        print(f"inspire curate: warning: {path}: not a readable sidecar ({exc}); left alone", file=sys.stderr)
        return
    if not isinstance(data, dict):
        return
    data["curation"] = {k: entry[k] for k in ("verdict", "score", "rank", "reasons", "features", "lineage", "error")}
    write_json(path, data)


def _temperature(clips_dir: Path, entry: dict) -> dict | None:
    path = _sidecar_path(clips_dir, entry)
    if path is None or not path.exists():
        return None
    try:
        temp = read_json(path).get("temperature")
    except (OSError, ValueError, AttributeError):
        return None
    if isinstance(temp, dict) and len(temp.get("times_s", [])) == len(temp.get("values", [])) > 0:
        return temp
    return None


CSV_FEATURES = [k for k in (
    "duration_s", "loudness_lufs", "peak_dbfs", "silence_fraction", "clipped_fraction", "dc_offset",
    "spectral_flatness", "variety_db", "variety_p90_db", "monotony", "dynamic_range_db",
    "loop_period_s", "loop_start_s", "loop_end_s", "loop_fraction", "loop_similarity",
)]  # fmt: skip


def to_csv(entries: list[dict]) -> str:
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(["rank", "id", "file", "verdict", "score", "reasons", "lineage_fraction", "lineage_tracks", *CSV_FEATURES, "error"])
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


class _NoBar:
    def update(self, n):
        pass

    def close(self):
        pass


def _bar(total: int, progress: bool):
    if not progress:
        return _NoBar()
    from tqdm import tqdm

    return tqdm(total=total, desc="curating", unit="clip", file=sys.stderr)


# --- lineage of one clip -------------------------------------------------------------------


def clip_lineage(clip: str | os.PathLike, run_dir: str | os.PathLike, *, progress: bool = False) -> tuple[float, list]:
    """(clip seconds, matches) of one clip against a run's tracks."""
    from inspire.curate import lineage
    from inspire.audio.io import read_audio

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
    lines = [f"|{''.join(bar)}|  0:00 .. {_clock(seconds)}"]
    if not matches:
        lines.append("no passage closely matches a training track")
    for m in matches:
        lines.append(
            f"{letters[m.track]}  {_clock(m.clip_start_s)}-{_clock(m.clip_end_s)}  "
            f"{m.track} @ {_clock(m.source_start_s)}  similarity {m.similarity:.2f}"
        )
    fraction = sum(m.clip_end_s - m.clip_start_s for m in matches) / max(seconds, 1e-9)
    lines.append(f"near-copy: {100 * min(1.0, fraction):.0f}% of {seconds:.1f} s")
    return "\n".join(lines)


def _clock(seconds: float) -> str:
    m, s = divmod(max(0.0, seconds), 60)
    return f"{int(m)}:{s:05.2f}"
