"""Compose: splice generated clips into a new piece, and hand it over cleanly to a DAW.

`render_arrangement` renders an arrangement file (inspire.compose.arrangement owns the format);
`auto_compose` lets the auto-arranger (inspire.compose.arrange) choose the parts from a folder of
clips and writes the arrangement beside the piece to edit and render again. The rendering and
mastering (crossfades, noise gating, loudness, true peak) is inspire.compose.master's.

Beside OUT this writes OUT.json (every part traced to its clip, the clip's sidecar and its
curation lineage) and OUT.labels.txt (an Audacity label track); `--stems DIR` writes each part
as a full-length file, silent outside its part.

Nothing here imports torch; scipy, noisereduce and pyloudnorm load only when rendering.
"""

from __future__ import annotations

import math
import os
import re
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

from inspire import clips
from inspire.audio.io import resample, write_audio
from inspire.compose.arrange import PIECE_KIND, plan
from inspire.compose.arrangement import (
    NOISE_MODES,
    Arrangement,
    Part,
    number,
    read_arrangement,
    write_arrangement,
)
from inspire.compose.master import Rendered, clip_paths, render
from inspire.curate.curate import load_curation
from inspire.errors import InspireError, UserInputError
from inspire.files import write_json, write_text

FORMAT_VERSION = 1  # piece.json
BIT_DEPTHS = {16: "PCM_16", 24: "PCM_24", 32: "FLOAT"}  # --bit-depth: soundfile subtypes
OUT_EXTENSIONS = (".wav", ".flac", ".mp3", ".ogg", ".aiff", ".aif")


# ---------------------------------------------------------------------------------- hand-over


def _check_out(out: Path, *, force: bool, stems_dir: Path | None) -> None:
    """What can be refused before any reading or rendering: the names given, as names."""
    if out.suffix.lower() not in OUT_EXTENSIONS:
        raise UserInputError(f"--out {out}: unsupported extension (use one of {', '.join(OUT_EXTENSIONS)})")
    _under_folders(out, "--out")
    if out.is_dir():
        raise UserInputError(f"--out {out}: is a folder")
    if out.exists() and not force:
        raise UserInputError(f"--out {out}: already exists (use --force to overwrite)")
    if stems_dir is not None:
        _under_folders(stems_dir, "--stems")
        if stems_dir.exists() and not stems_dir.is_dir():
            raise UserInputError(f"--stems {stems_dir}: is a file, not a folder")
        if stems_dir.is_dir() and any(stems_dir.iterdir()) and not force:
            raise UserInputError(f"--stems {stems_dir}: folder is not empty (use --force to overwrite its stems)")


def _under_folders(path: Path, flag: str) -> None:
    """Refuse a path whose nearest existing ancestor is a file (it could never be made)."""
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise UserInputError(f"{flag} {path}: {parent} is a file, not a folder")
            return


def _check_sources(written: dict[Path, str], sources: list[tuple[Path, str]]) -> None:
    """Refuse to write over the piece's own inputs (a clip, its sidecar, the arrangement), even
    with --force: `written` maps each file to be written to its flag, `sources` names each input.
    A clip's sidecar counts even before it exists (OUT.json there would make the clip a piece)."""
    def keys(p: Path) -> set:
        try:
            st = p.stat()
            found = {(st.st_dev, st.st_ino)}
        except OSError:
            found = set()
        return found | {p.resolve()}

    taken = {k: what for p, what in sources for k in keys(p)}
    for p, flag in written.items():
        what = next((taken[k] for k in keys(p) if k in taken), None)
        if what is not None:
            raise UserInputError(f"{flag}: would write {p}, {what} (not even with --force); "
                                 f"choose another name")


def _sources(arr_paths: list[Path], arrangement_path: Path | None) -> list[tuple[Path, str]]:
    out = [(arrangement_path, "the arrangement being rendered")] if arrangement_path is not None else []
    for i, p in enumerate(arr_paths):
        out.append((p, f"the clip of part {i + 1} of the piece"))
        out.append((clips.sidecar_path(p), f"the sidecar of {p.name}, the clip of part {i + 1}"))
    return out


def _written(out: Path, stems_dir: Path | None, paths: list[Path], *, auto: bool) -> dict[Path, str]:
    files = {out: f"--out {out}"}
    for ext in (".json", ".labels.txt") + ((".toml",) if auto else ()):
        files[out.with_suffix(ext)] = f"--out {out}"
    if stems_dir is not None:
        for i, p in enumerate(paths):
            files[_stem_path(stems_dir, i, p, out)] = f"--stems {stems_dir}"
    return files


def _stem_path(stems_dir: Path, i: int, clip_path: Path, out: Path) -> Path:
    stem_ext = out.suffix.lower() if out.suffix.lower() in (".wav", ".flac", ".aiff", ".aif") else ".wav"
    return stems_dir / f"{i + 1:02d}-{re.sub(r'[^A-Za-z0-9._-]+', '_', clip_path.stem)}{stem_ext}"


def _relpath(p: Path, start: Path) -> str:
    try:
        return Path(os.path.relpath(p.resolve(), start.resolve())).as_posix()
    except ValueError:  # another drive on Windows
        return str(p.resolve())


def check_delivery(out: Path, *, sample_rate: int | None, bit_depth: int | None) -> None:
    """The hand-over format asked for (`--sample-rate`, `--bit-depth`), checked before rendering."""
    if sample_rate is not None and not (isinstance(sample_rate, int) and 8000 <= sample_rate <= 384000):
        raise UserInputError(f"--sample-rate must be a whole number of Hz from 8000 to 384000, got {sample_rate!r}")
    if bit_depth is not None:
        if bit_depth not in BIT_DEPTHS:
            raise UserInputError(f"--bit-depth must be one of {', '.join(map(str, BIT_DEPTHS))}, got {bit_depth!r}")
        if out.suffix.lower() not in (".wav", ".flac", ".aif", ".aiff"):
            raise UserInputError(f"--bit-depth {bit_depth}: {out.name} is a lossy format with no bit depth "
                                 "(write .wav, .flac or .aiff)")
        if bit_depth == 32 and out.suffix.lower() == ".flac":
            raise UserInputError("--bit-depth 32 (float) cannot be written as FLAC: write .wav or .aiff")


def _deliver(x: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    return resample(x, from_rate, to_rate) if to_rate != from_rate else x


def write_piece(arr: Arrangement, r: Rendered, out: Path, *, stems_dir: Path | None = None,
                arrangement_path: Path | None = None, auto: dict | None = None,
                sample_rate: int | None = None, bit_depth: int | None = None) -> dict:
    """Write the piece (atomically), then OUT.json, OUT.labels.txt and the stems. `sample_rate`
    and `bit_depth` set the hand-over format (soxr resampling; 16/24-bit PCM or 32-bit float):
    by default the clips' rate, 16-bit piece and 24-bit stems."""
    sr = r.sample_rate
    out_sr = sample_rate or sr
    write_audio(out, _deliver(r.mix, sr, out_sr), out_sr, subtype=None if bit_depth is None else BIT_DEPTHS[bit_depth])
    curations: dict[Path, dict | None] = {}
    labels, parts = [], []
    for i, (part, path, start, n) in enumerate(zip(arr.parts, r.paths, r.starts, r.lengths, strict=True)):
        cid = path.stem
        label = f"{i + 1}: {cid} [{part.in_s:.3f}-{(part.out_s if part.out_s is not None else part.in_s + n / sr):.3f}]"
        labels.append(f"{start / sr:.6f}\t{(start + n) / sr:.6f}\t{label}")
        if path.parent not in curations:
            curations[path.parent] = load_curation(path.parent)
        record = _curation_record(curations[path.parent], path)
        stem = None
        if stems_dir is not None and r.stems is not None:
            stem = _stem_path(stems_dir, i, path, out)
            full = np.zeros(len(r.mix), dtype=np.float32)
            full[start: start + n] = r.stems[i]
            write_audio(stem, _deliver(full, sr, out_sr), out_sr, subtype=BIT_DEPTHS[bit_depth or 24])
        parts.append({
            "index": i + 1,
            "clip": part.clip,
            "file": _relpath(path, out.parent),
            "in_s": part.in_s,
            "out_s": part.out_s if part.out_s is not None else round(part.in_s + n / sr, 6),
            "gain_db": part.gain_db,
            "crossfade_s": part.crossfade_s,
            "start_s": round(start / sr, 6),
            "end_s": round((start + n) / sr, 6),
            "start_sample": round(start * out_sr / sr),  # in the written file
            "end_sample": round((start + n) * out_sr / sr),
            "generation": _generation(path),
            "curation": None if record is None else {k: record.get(k) for k in ("rank", "score", "verdict", "reasons")},
            "lineage": _lineage_in_part(record, part, start / sr, n / sr),
            "stem": None if stem is None else _relpath(stem, out.parent),
        })
    piece = {
        "format_version": FORMAT_VERSION,
        "kind": PIECE_KIND,
        "file": out.name,
        "arrangement": None if arrangement_path is None else _relpath(arrangement_path, out.parent),
        "labels": out.with_suffix(".labels.txt").name,
        "sample_rate": out_sr,
        "bit_depth": bit_depth,
        "samples": round(len(r.mix) * out_sr / sr),
        "seconds": round(len(r.mix) / sr, 6),
        "noise_reduction": arr.noise_reduction,
        "loudness": r.loudness,
        "warnings": r.warnings,
        "auto": auto,
        "parts": parts,
    }
    write_text(out.with_suffix(".labels.txt"), "\n".join(labels) + "\n")
    write_json(out.with_suffix(".json"), piece)
    return piece


def _generation(path: Path) -> dict | None:
    """The clip's sidecar as it stands (what made it, curation, a person's marks), or None."""
    try:
        return clips.to_dict(clips.read(path))
    except InspireError:
        return None


def _curation_record(cur: dict | None, path: Path) -> dict | None:
    if not cur:
        return None
    for rec in cur.get("clips", []):
        if isinstance(rec, dict) and (rec.get("file") == path.name or rec.get("id") == path.stem):
            return rec
    return None


def _lineage_in_part(record: dict | None, part: Part, start_s: float, seconds: float) -> dict | None:
    """The clip's lineage, with only the matches inside the part, placed on the piece's time."""
    lin = (record or {}).get("lineage")
    if not isinstance(lin, dict):
        return None
    end = part.in_s + seconds
    matches = []
    for m in lin.get("matches") or []:
        try:
            a, b = float(m["clip_start_s"]), float(m["clip_end_s"])
        except (KeyError, TypeError, ValueError):
            continue
        if b > part.in_s and a < end:
            matches.append({**m, "piece_start_s": round(start_s + max(a, part.in_s) - part.in_s, 6),
                            "piece_end_s": round(start_s + min(b, end) - part.in_s, 6)})
    return {"fraction": lin.get("fraction"), "matches": matches}


def _say(msg: str) -> None:
    print(f"inspire compose: {msg}", file=sys.stderr)


def _overridden(arr: Arrangement, noise_reduction, lufs, true_peak) -> Arrangement:
    if noise_reduction is not None and noise_reduction not in NOISE_MODES:
        raise UserInputError(f"--noise-reduction must be one of {', '.join(NOISE_MODES)}, got {noise_reduction!r}")
    changes = {}
    if noise_reduction is not None:
        changes["noise_reduction"] = noise_reduction
    if lufs is not None:
        changes["lufs"] = number(lufs, "--lufs", low=-70.0, high=0.0)
    if true_peak is not None:
        changes["true_peak"] = number(true_peak, "--true-peak", low=-30.0, high=0.0)
    return replace(arr, **changes)


def render_arrangement(arrangement_path: str | os.PathLike, *, out: str | os.PathLike,
                       stems_dir: str | os.PathLike | None = None, force: bool = False,
                       noise_reduction: str | None = None, lufs: float | None = None,
                       true_peak: float | None = None, sample_rate: int | None = None,
                       bit_depth: int | None = None) -> dict:
    """Render a hand-written (or edited) arrangement to `out`; returns what OUT.json holds.
    `noise_reduction`, `lufs` and `true_peak` override the arrangement's when given;
    `sample_rate` and `bit_depth` set the files' format (see `write_piece`)."""
    out = Path(out)
    stems = Path(stems_dir) if stems_dir is not None else None
    _check_out(out, force=force, stems_dir=stems)
    check_delivery(out, sample_rate=sample_rate, bit_depth=bit_depth)
    arr = _overridden(read_arrangement(arrangement_path), noise_reduction, lufs, true_peak)
    paths = clip_paths(arr)
    _check_sources(_written(out, stems, paths, auto=False), _sources(paths, Path(arrangement_path)))
    _say(f"rendering {len(arr.parts)} parts from {arrangement_path}")
    r = render(arr, with_stems=stems is not None)
    for w in r.warnings:
        _say(f"warning: {w}")
    return write_piece(arr, r, out, stems_dir=stems, arrangement_path=Path(arrangement_path),
                       sample_rate=sample_rate, bit_depth=bit_depth)


def auto_compose(clips_dir: str | os.PathLike, *, minutes: float, out: str | os.PathLike, seed: int = 0,
                 noise_reduction: str = "mix", lufs: float = -14.0, true_peak: float = -1.0,
                 stems_dir: str | os.PathLike | None = None, force: bool = False, sample_rate: int | None = None,
                 bit_depth: int | None = None) -> dict:
    """Arrange the best passages of `clips_dir` into a piece of about `minutes`, render it to
    `out` and write OUT.toml (the arrangement, to edit and render again), OUT.json and
    OUT.labels.txt beside it. Returns what OUT.json holds."""
    out = Path(out)
    stems = Path(stems_dir) if stems_dir is not None else None
    _check_out(out, force=force, stems_dir=stems)
    check_delivery(out, sample_rate=sample_rate, bit_depth=bit_depth)
    if (isinstance(minutes, bool) or not isinstance(minutes, (int, float))
            or not (math.isfinite(minutes) and minutes > 0)):
        raise UserInputError(f"--minutes must be a positive number, got {minutes!r}")
    _say(f"arranging {float(minutes):g} min from {clips_dir}")
    pl = plan(clips_dir, seconds=float(minutes) * 60.0, seed=seed)
    for w in pl.warnings:
        _say(f"warning: {w}")
    paths = [p.clip.path for p in pl.parts]
    _check_sources(_written(out, stems, paths, auto=True), _sources(paths, None))
    toml_path = out.with_suffix(".toml")
    clips_rel = _relpath(Path(clips_dir), out.parent)
    parts, notes = [], []
    for p in pl.parts:
        by_id = p.clip.path.parent.resolve() == Path(clips_dir).resolve()
        parts.append(Part(p.clip.path.stem if by_id else _relpath(p.clip.path, out.parent),
                          p.in_s, p.out_s, p.gain_db, p.crossfade_s))
        notes.append(f"rank {p.clip.rank}, score {p.clip.score:g}")
    arr = Arrangement(parts=tuple(parts), sample_rate=pl.sample_rate, clips_dir=clips_rel,
                      fade_in_s=round(min(0.5, 0.25 * (parts[0].out_s - parts[0].in_s - parts[0].crossfade_s)), 3),
                      fade_out_s=round(min(3.0, 0.4 * (parts[-1].out_s - parts[-1].in_s
                                                       - (parts[-2].crossfade_s if len(parts) > 1 else 0))), 3),
                      base_dir=str(out.parent), source=str(toml_path))
    arr = _overridden(arr, noise_reduction, lufs, true_peak)
    r = render(arr, with_stems=stems is not None)
    r.warnings[:0] = list(pl.warnings)
    for w in r.warnings[len(pl.warnings):]:
        _say(f"warning: {w}")
    header = (f"inspire arrangement, made by "
              f"`inspire compose --auto {clips_dir} --minutes {float(minutes):g} --seed {seed}`.\n"
              f"Edit it and render again: inspire compose {toml_path.name} --out {out.name} --force\n"
              "Fields: clip (id in clips_dir, or a path), in_s/out_s (seconds in the clip), gain_db,\n"
              "crossfade_s (equal-power overlap into the next part). Paths are relative to this file.")
    auto = {"clips_dir": clips_rel, "minutes": float(minutes), "seed": seed, "requested_s": pl.requested_s,
            "planned_s": pl.seconds, "available_s": pl.available_s,
            "used_curation": pl.used_curation, "skipped": list(pl.skipped)}
    piece = write_piece(arr, r, out, stems_dir=stems, arrangement_path=toml_path, auto=auto,
                        sample_rate=sample_rate, bit_depth=bit_depth)
    write_arrangement(toml_path, arr, notes=notes, header=header)
    return piece
