"""The arranger's data: the pieces (arrangements) in the opened folders, opened and saved through
the compose wing's own reader, writer and checks, and the bin of keepers to arrange.

    GET  /api/pieces                  every arrangement in the opened folders, and where new ones go
    GET  /api/pieces/{root}/{path}    one, as JSON: the document, each part's clip and lineage, its TOML
    PUT  /api/pieces/{root}/{path}    save it (JSON or TOML body); 409 when the file exists, unless
                                      ?overwrite=1; 400 {"error", "field", "part"} when it is wrong
    POST /api/pieces/toml             the TOML a JSON arrangement becomes at a place (checked, not written)
    GET  /api/keepers                 the bin: keeper passages and whole kept clips, with lineage

One format, two editors: a piece is the `piece.toml` that `inspire compose` renders
(inspire.compose.arrangement owns it); the JSON form here is that document (`arrangement.to_dict`)
with, per part, where its clip is in the studio's terms ("file": "r0/clips/job/0003-....wav").
A part sent with a "file" gets the clip reference the TOML needs from where the piece is saved
(the clip's id when it lies in `clips_dir`, else a path relative to the piece); a part's own
"clip" is kept when it still names the same file from there, so a hand-written piece keeps its
references and renders identically after the round trip. Comments (the header and the note above
each part) survive it too.

New pieces go to `pieces/` of a run (RUN/pieces/NAME.toml, beside which `POST /api/render` writes
the piece) or, with no run opened, of the first opened folder. Every file read or written lies
inside an opened folder; the session token guards every write (server._Guard).
"""

from __future__ import annotations

import contextlib
import errno
import functools
import json
import os
import re
import tempfile
import time
import tomllib
from collections import Counter
from dataclasses import replace
from pathlib import Path
from urllib.parse import quote, unquote

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from inspire import clips
from inspire.audio.io import probe
from inspire.compose import arrangement as arrangement_format
from inspire.compose import master
from inspire.compose.arrange import PIECE_KIND
from inspire.curate.curate import load_curation
from inspire.errors import DiskFullError, InspireError
from inspire.files import AUDIO_EXTENSIONS, read_json, write_text
from inspire.studio import wire

PIECES = "pieces"  # RUN/pieces/: where the studio saves and renders pieces
MAX_BODY = 1 << 20  # bytes: a 2,000-part arrangement is about 300 kB
MAX_TOML = 1 << 20  # a .toml larger than this is not looked at when listing
_DEPTH = 3  # RUN/clips/JOB/piece.toml is as deep as the listing looks
_SKIP = {"data", "checkpoints", "previews", "report_files", "discarded", "__pycache__", "node_modules"}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.-]{0,99}\.toml$")  # render's piece names, plus .toml


class PieceError(Exception):
    """A request refused: answered as {"error": message, "field", "part"} with `status`."""

    def __init__(self, status: int, message: str, *, field: str | None = None, part: int | None = None):
        super().__init__(message)
        self.status, self.message, self.field, self.part = status, message, field, part

    @classmethod
    def of(cls, exc: InspireError, status: int = 400) -> "PieceError":
        """From the compose wing's error, keeping the part and field it names."""
        return cls(status, str(exc), field=getattr(exc, "field", None), part=getattr(exc, "part", None))


def _studio(request: Request):
    return request.app.state.studio


# ------------------------------------------------------------------------- references and places


def ref_of(roots, path: Path) -> str | None:
    """A file inside an opened folder in the studio's terms: "r0/clips/job/x.wav" (None outside)."""
    url = roots.url_of(Path(path))
    return None if url is None else unquote(url[len("/files/"):])


def resolve_ref(roots, ref, *, what: str) -> Path:
    """The file a reference ("r0/path" or "/files/r0/path") names, inside an opened folder."""
    if not isinstance(ref, str) or not ref:
        raise PieceError(400, f"{what}: expected a file in an opened folder like \"r0/clips/job/x.wav\", got {ref!r}")
    text = ref[len("/files/"):] if ref.startswith("/files/") else ref
    key, _, rel = text.partition("/")
    path = roots.resolve(key, unquote(rel))
    if path is None:
        raise PieceError(400, f"{what}: {ref} is not a file in the opened folders")
    return path


def _urls(roots, path: Path) -> dict:
    url = roots.url_of(path)
    return {"audio_url": url, "waveform_url": None if url is None else "/api/waveform/" + url[len("/files/"):]}


def _target(roots, key: str, rel: str, *, make: bool = False) -> Path:
    """Where a piece `rel` inside root `key` is (it need not exist yet): a .toml inside the root,
    in a folder that exists, or in RUN/pieces/ (made when `make`)."""
    root = roots.by_key.get(key)
    if root is None:
        raise PieceError(404, f"no opened folder {key!r} (GET /api/folders lists them)")
    parts = rel.split("/")
    if (not rel or rel.startswith("/") or "\\" in rel or "\x00" in rel
            or any(p in ("", ".", "..") for p in parts)):
        raise PieceError(400, f"path: {rel!r} must be a relative path inside the folder (no .., no leading /)",
                         field="name")
    if not _NAME.match(parts[-1]):
        raise PieceError(400, f"name: {parts[-1]!r} must end in .toml and use letters, digits, spaces and . _ - "
                              "(at most 100 before .toml)", field="name")
    parent = root.path.joinpath(*parts[:-1])
    if not parent.is_dir():
        if parent.name != PIECES or not parent.parent.is_dir():
            raise PieceError(404, f"{_display(roots, parent)}: no such folder", field="name")
        if make:
            parent.mkdir(exist_ok=True)
        else:  # RUN/pieces/ to be: rendering or saving makes it
            parent = parent.parent.resolve() / PIECES
            return parent / parts[-1] if _inside(parent, root.path) else _refuse()
    resolved = parent.resolve()
    return resolved / parts[-1] if _inside(resolved, root.path) else _refuse()


def _inside(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def _refuse():
    raise PieceError(404, "not found")


def _display(roots, path: Path) -> str:
    for r in roots.roots:
        if path == r.path or r.path in path.parents:
            return f"{r.path.name}/{path.relative_to(r.path).as_posix()}"
    return str(path)


def targets(roots) -> list[dict]:
    """Where new pieces can be saved: pieces/ of every run, else of the first opened folder."""
    runs = [r for r in roots.roots if r.is_run] or roots.roots[:1]
    return [{"root": r.key, "folder": PIECES, "run": r.key if r.is_run else None,
             "where": f"{r.path.name}/{PIECES}/"} for r in runs]


# --------------------------------------------------------------------------------- a clip's info


class _Clips:
    """What the arranger shows of a clip (id, length, verdict, lineage), read once per request:
    the sidecar's curation, else curation.json's record for the file."""

    def __init__(self, studio):
        self.studio = studio
        self.curations: dict[Path, dict | None] = {}
        self.folders = {f.path: f for f in studio.roots.clips_folders}

    def curation(self, path: Path, record: dict | None) -> dict | None:
        if record is not None and isinstance(record.get("curation"), dict):
            return record["curation"]
        folder = path.parent
        if folder not in self.curations:
            try:
                self.curations[folder] = load_curation(folder)
            except InspireError:
                self.curations[folder] = None
        cur = self.curations[folder]
        for rec in (cur or {}).get("clips", []):
            if rec.get("file") == path.name or rec.get("id") == path.stem:
                return rec
        return None

    def info(self, path: Path, record: dict | None = None) -> dict:
        if record is None:
            try:
                record = clips.to_dict(clips.read(path))
            except InspireError:
                record = None
        roots = self.studio.roots
        audio = probe(path)
        cur = self.curation(path, record) or {}
        marks = (record or {}).get("marks") or {}
        folder = self.folders.get(path.parent)
        temperature = (record or {}).get("temperature") or {}
        lineage = (cur.get("lineage") or {}) if isinstance(cur.get("lineage"), dict) else {}
        return {
            "id": path.stem,
            "folder": None if folder is None else folder.key,
            "file": ref_of(roots, path),
            **_urls(roots, path),
            "duration_s": round(audio.seconds, 6),
            "sample_rate": audio.sample_rate,
            "verdict": marks.get("verdict") or cur.get("verdict"),
            "by": "you" if marks.get("verdict") else ("curation" if cur.get("verdict") else None),
            "star": bool(marks.get("star")),
            "rank": cur.get("rank"),
            "score": cur.get("score"),
            "temperature": temperature.get("spec"),
            "marked_regions": _pairs(marks.get("regions")),
            "curation_regions": _pairs(cur.get("regions")),
            "lineage": [m for m in lineage.get("matches") or [] if isinstance(m, dict)],
        }


def _pairs(regions) -> list[list[float]]:
    """[[start_s, end_s], ...] from a sidecar's or curation's regions; malformed ones left out."""
    out = []
    for r in regions if isinstance(regions, list) else []:
        if (isinstance(r, (list, tuple)) and len(r) == 2
                and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in r) and r[0] < r[1]):
            out.append([float(r[0]), float(r[1])])
    return out


def _overlapping(matches: list[dict], start: float, end: float) -> list[dict]:
    out = []
    for m in matches:
        try:
            a, b = float(m["clip_start_s"]), float(m["clip_end_s"])
        except (KeyError, TypeError, ValueError):
            continue
        if b > start and a < end:
            out.append(m)
    return out


# ------------------------------------------------------------------------------------ the bin


def keepers(studio, *, folder: str | None = None, everything: bool = False) -> list[dict]:
    """The arranger's bin: for each clip a person or curation kept (or starred, or marked
    passages in), the whole clip and its keeper passages (a person's marked regions, else
    curation's keeper regions: the clean stretch before a collapse), each with the lineage
    matches inside it. `everything`: every finished clip, discarded ones too."""
    entries = studio.list_clips(folder)
    info = _Clips(studio)
    out = []
    for entry in entries:
        if entry.get("status") != "ready" or not entry.get("audio_url"):
            continue
        folder_obj = studio.roots.folder(entry["folder"])
        record = entry.get("record") or {}
        path = folder_obj.path / (record.get("file") or f"{entry['id']}.wav")
        try:
            clip = info.info(path, record)
        except InspireError:
            continue  # unreadable audio: nothing to arrange
        kept = clip["verdict"] == "keep" or clip["star"]
        passages = [("you", r) for r in clip["marked_regions"]] or [("curation", r) for r in clip["curation_regions"]]
        if not (everything or kept or (clip["marked_regions"] and clip["verdict"] != "discard")):
            continue
        base = {k: clip[k] for k in ("id", "folder", "file", "audio_url", "waveform_url", "duration_s", "sample_rate",
                                     "verdict", "by", "star", "rank", "score", "temperature")}
        duration = clip["duration_s"]
        if everything or kept:
            out.append({**base, "key": f"{entry['folder']}/{entry['id']}", "kind": "clip", "source": "clip",
                        "in_s": 0.0, "out_s": duration, "lineage": clip["lineage"]})
        for source, (a, b) in passages:
            a, b = max(0.0, float(a)), min(duration, float(b))
            if b - a <= 0.01:
                continue
            out.append({**base, "key": f"{entry['folder']}/{entry['id']}@{a:.3f}-{b:.3f}", "kind": "region",
                        "source": source, "in_s": round(a, 3), "out_s": round(b, 3),
                        "lineage": _overlapping(clip["lineage"], a, b)})
    out.sort(key=lambda k: not k["star"])  # favourites first, curation's rank within (list_clips' order)
    return out


# ------------------------------------------------------------------------------ reading pieces


def _looks_like_arrangement(text: str) -> bool:
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return bool(re.search(r"^\s*\[\[\s*part\s*\]\]", text, re.M))  # broken, but meant as one
    return isinstance(doc.get("part"), list)


def _walk(folder: Path, depth: int):
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError:
        return
    for e in entries:
        if e.name.startswith("."):
            continue
        try:
            if e.is_dir(follow_symlinks=False):
                if depth > 0 and e.name not in _SKIP:
                    yield from _walk(Path(e.path), depth - 1)
            elif e.name.endswith(".toml") and e.is_file() and e.stat().st_size <= MAX_TOML:
                yield Path(e.path)
        except OSError:
            continue


def _rendered(roots, toml_path: Path) -> dict | None:
    """The piece compose rendered from this arrangement (OUT.json beside it names it), or None."""
    side = toml_path.with_suffix(".json")
    try:
        piece = read_json(side)
    except (OSError, ValueError):
        return None
    if not isinstance(piece, dict) or piece.get("kind") != PIECE_KIND:
        return None
    audio = toml_path.parent / str(piece.get("file") or "")
    if not audio.is_file() or audio.suffix.lower() not in AUDIO_EXTENSIONS:
        return None
    labels = toml_path.parent / str(piece.get("labels") or "")
    stems = []
    for part in piece.get("parts") or []:
        stem = part.get("stem") if isinstance(part, dict) else None
        if stem and (toml_path.parent / stem).is_file():
            stems.append(roots.url_of((toml_path.parent / stem).resolve()))
    return {**_urls(roots, audio), "json_url": roots.url_of(side),
            "labels_url": roots.url_of(labels) if labels.is_file() else None,
            "stems": [s for s in stems if s], "seconds": piece.get("seconds"),
            "sample_rate": piece.get("sample_rate"), "bit_depth": piece.get("bit_depth"),
            "loudness": piece.get("loudness"), "modified": _mtime(audio)}


def _mtime(path: Path) -> str | None:
    try:
        return time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(path.stat().st_mtime))
    except OSError:
        return None


def _seconds(arr, lengths: list[int], sr: int) -> float:
    xf = sum(int(round(p.crossfade_s * sr)) for p in arr.parts[:-1])
    return round((sum(lengths) - xf) / sr, 3)


def _summary(roots, path: Path, key: str, text: str) -> dict:
    root = roots.by_key[key]
    entry = {"root": key, "path": path.relative_to(root.path).as_posix(), "name": path.stem,
             "where": _display(roots, path), "url": roots.url_of(path), "modified": _mtime(path),
             "run": key if root.is_run else None, "parts": None, "seconds": None, "error": None,
             "rendered": _rendered(roots, path)}
    try:
        arr = arrangement_format.parse_text(text, base_dir=str(path.parent), source=path.name)
        entry["parts"] = len(arr.parts)
        lengths = master.check(arr)
        sr = arr.sample_rate or probe(master.resolve_clip(arr, 0)).sample_rate
        entry["seconds"] = _seconds(arr, lengths, sr)
    except InspireError as exc:
        entry["error"] = str(exc)
    return entry


def list_pieces(studio) -> dict:
    roots = studio.roots
    seen, out = set(), []
    for root in roots.roots:
        for path in _walk(root.path, _DEPTH):
            try:
                real = path.resolve()
                text = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError):
                continue
            if real in seen or not _inside(real, root.path) or not _looks_like_arrangement(text):
                continue
            seen.add(real)
            out.append(_summary(roots, real, root.key, text))
    out.sort(key=lambda p: (p["modified"] or ""), reverse=True)
    return {"pieces": out, "targets": targets(roots)}


def open_piece(studio, key: str, rel: str) -> dict:
    """A piece as the timeline shows it. 404 when there is none; 422 when its TOML cannot be
    read as an arrangement (the error names line, part and field)."""
    path = studio.roots.resolve(key, rel)
    if path is None or path.suffix != ".toml":
        raise PieceError(404, f"no piece {rel!r} in {key} (GET /api/pieces lists them)")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PieceError(422, f"{path.name}: cannot read it as UTF-8 text ({exc})") from None
    try:
        arr = arrangement_format.parse_text(text, base_dir=str(path.parent), source=path.name)
    except InspireError as exc:
        raise PieceError.of(exc, 422) from None
    return describe(studio, arr, path, key, text)


def describe(studio, arr, path: Path, key: str, text: str) -> dict:
    """The JSON form of an arrangement at `path`: the document, its comments, each part's clip
    (or why it cannot be found), and the first problem rendering would meet, if any."""
    roots = studio.roots
    info = _Clips(studio)
    header, notes = arrangement_format.comments(text)
    parts = []
    for i in range(len(arr.parts)):
        try:
            clip_path = master.resolve_clip(arr, i)
            entry = info.info(clip_path)
            if entry["file"] is None:
                entry["error"] = f"{clip_path} is outside the opened folders: open its folder too to hear it"
        except InspireError as exc:
            entry = {"error": str(exc)}
        parts.append(entry)
    problem = None
    try:
        lengths = master.check(arr)
    except InspireError as exc:
        problem = {"error": str(exc), "field": getattr(exc, "field", None), "part": getattr(exc, "part", None)}
        lengths = None
    rates = [p.get("sample_rate") for p in parts if p.get("sample_rate")]
    sr = arr.sample_rate or (rates[0] if rates else None)
    clips_dir = Path(os.path.normpath(Path(arr.base_dir) / arr.clips_dir)) if arr.clips_dir else None
    root = roots.by_key[key]
    return {
        "root": key, "path": path.relative_to(root.path).as_posix(), "name": path.stem, "where": _display(roots, path),
        "url": roots.url_of(path), "run": key if root.is_run else None, "modified": _mtime(path),
        "arrangement": arrangement_format.to_dict(arr), "header": header,
        "notes": notes + [""] * (len(arr.parts) - len(notes)),
        "clips_dir_at": None if clips_dir is None or not clips_dir.is_dir() else _folder_ref(roots, clips_dir),
        "parts": parts, "sample_rate": sr, "seconds": None if lengths is None or sr is None else
        _seconds(arr, lengths, sr), "problem": problem, "toml": text, "rendered": _rendered(roots, path),
    }


def _folder_ref(roots, folder: Path) -> str | None:
    folder = folder.resolve()
    for r in roots.roots:
        if folder == r.path or r.path in folder.parents:
            rel = folder.relative_to(r.path).as_posix()
            return r.key if rel == "." else f"{r.key}/{rel}"
    return None


def _folder_of_ref(roots, ref) -> Path:
    if not isinstance(ref, str) or not ref:
        raise PieceError(400, f"clips_dir_at: expected an opened folder like \"r0/clips/job\", got {ref!r}",
                         field="clips_dir")
    key, _, rel = ref.partition("/")
    root = roots.by_key.get(key)
    folder = (root.path / unquote(rel)).resolve() if root is not None else None
    if folder is None or not folder.is_dir() or not (folder == root.path or root.path in folder.parents):
        raise PieceError(400, f"clips_dir_at: {ref} is not a folder in the opened folders", field="clips_dir")
    return folder


# ---------------------------------------------------------------------------- JSON -> arrangement


def _relative(path: Path, start: Path) -> str:
    return Path(os.path.relpath(path, start)).as_posix()


def from_json(studio, body, at: Path):
    """The arrangement a JSON body describes, to be saved at `at`, with its comments:
    (Arrangement, notes, header). Every check `inspire compose` makes is made (PieceError 400
    names the part and field)."""
    roots = studio.roots
    if not isinstance(body, dict) or not isinstance(body.get("arrangement"), dict):
        raise PieceError(400, 'expected {"arrangement": {...the piece.toml fields..., "part": [...]}} '
                              "(or the TOML text itself)")
    doc = dict(body["arrangement"])
    raw_parts = doc.get("part")
    if not isinstance(raw_parts, list) or not raw_parts or not all(isinstance(p, dict) for p in raw_parts):
        raise PieceError(400, "arrangement: needs at least one part (\"part\": [{\"clip\" or \"file\", ...}])",
                         field="part")
    base = at.parent
    if body.get("clips_dir_at") is not None:
        doc["clips_dir"] = _relative(_folder_of_ref(roots, body["clips_dir_at"]), base)
    files = []
    for i, raw in enumerate(raw_parts):
        ref = raw.get("file")
        files.append(None if ref is None else resolve_ref(roots, ref, what=f"part {i + 1}: file"))
    if doc.get("clips_dir") is None and files and all(files):
        common = Counter(f.parent for f in files).most_common(1)[0][0]
        doc["clips_dir"] = _relative(common, base)
    notes = [str(p.get("note") or "") for p in raw_parts]
    parts = []
    for raw, file in zip(raw_parts, files, strict=True):
        part = {k: v for k, v in raw.items() if k not in ("file", "note")}
        if file is not None:
            part["clip"] = _clip_ref(doc, part.get("clip"), file, base)
        parts.append(part)
    doc["part"] = parts
    header = body.get("header") or ""
    if not isinstance(header, str):
        raise PieceError(400, f"header: expected text, got {header!r}", field="header")
    try:
        arr = arrangement_format.from_dict(doc, base_dir=str(base), source=at.name)
        master.check(arr)
    except InspireError as exc:
        raise PieceError.of(exc) from None
    return arr, notes, header


def _clip_ref(doc: dict, given, file: Path, base: Path) -> str:
    """How the TOML at `base` names `file`: the part's own reference when it still names that
    file from there, else the clip's id when it lies in clips_dir (and no other audio there
    shares its id), else a path relative to the piece."""
    probe_arr = arrangement_format.Arrangement(parts=(arrangement_format.Part(clip="?"),),
                                               clips_dir=doc.get("clips_dir"), base_dir=str(base))
    real = file.resolve()
    if isinstance(given, str) and given.strip():
        try:
            if master.resolve_clip(_with_clip(probe_arr, given), 0).resolve() == real:
                return given
        except InspireError:
            pass
    if isinstance(doc.get("clips_dir"), str):
        try:
            if master.resolve_clip(_with_clip(probe_arr, file.stem), 0).resolve() == real:
                return file.stem
        except InspireError:
            pass
    return _relative(real, base.resolve())


def _with_clip(arr, clip: str):
    return replace(arr, parts=(arrangement_format.Part(clip=clip),))


def _toml_of(studio, body, at: Path) -> tuple[str, object]:
    arr, notes, header = from_json(studio, body, at)
    return arrangement_format.arrangement_toml(arr, notes=notes, header=header), arr


def save_piece(studio, key: str, rel: str, *, body=None, text: str | None = None, overwrite: bool = False) -> dict:
    """Write a piece at `rel` inside root `key` from a JSON body or its TOML text (written as
    given, once it reads and checks as an arrangement). 409 when a file is there and `overwrite`
    is false, or when that file is not an arrangement at all."""
    at = _target(studio.roots, key, rel, make=True)
    if text is None:
        text, arr = _toml_of(studio, body, at)
    else:
        try:
            arr = arrangement_format.parse_text(text, base_dir=str(at.parent), source=at.name)
            master.check(arr)
        except InspireError as exc:
            raise PieceError.of(exc) from None
    if at.exists():
        if not at.is_file():
            raise PieceError(409, f"{_display(studio.roots, at)} is a folder; choose another name", field="name")
        try:
            old = at.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            old = ""
        if not _looks_like_arrangement(old):
            raise PieceError(409, f"{_display(studio.roots, at)} exists and is not an arrangement; "
                                  "choose another name", field="name")
        if not overwrite:
            raise PieceError(409, f"{_display(studio.roots, at)} exists: overwrite it?", field="name")
    _write(at, text, overwrite=overwrite, shown=_display(studio.roots, at))
    return describe(studio, arr, at, key, text)


def _write(at: Path, text: str, *, overwrite: bool, shown: str) -> None:
    """Write `text` to `at` atomically (files.write_text); without `overwrite`, only if no file
    is there at the last moment too (another tab may have saved this name since the check): the
    finished temporary file is hard-linked to the name, which fails when the name is taken."""
    if overwrite:
        write_text(at, text)
        return
    fd, name = tempfile.mkstemp(prefix=f".{at.stem}.", suffix=".tmp.toml", dir=at.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(name, 0o666 & ~_umask())
        try:
            os.link(name, at)
        except FileExistsError:
            raise PieceError(409, f"{shown} exists: overwrite it?", field="name") from None
        except OSError as exc:  # no hard links on this disk (FAT, some shares): the check before stands
            if exc.errno == errno.ENOSPC:
                raise DiskFullError(f"{at}: disk full while writing; nothing was written") from exc
            os.replace(name, at)
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise DiskFullError(f"{at}: disk full while writing; nothing was written") from exc
        raise
    finally:
        with contextlib.suppress(OSError):
            os.unlink(name)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# ------------------------------------------------------------------------------------- HTTP


def _answers(handler):
    """Refusals as {"error", "field", "part"} JSON; the compose wing's errors as 400."""
    @functools.wraps(handler)
    async def wrapped(request: Request) -> Response:
        try:
            return await handler(request)
        except PieceError as exc:
            body = {"error": exc.message, "field": exc.field, "part": exc.part}
            return JSONResponse(body, status_code=exc.status, headers={"Cache-Control": "no-store"})
        except InspireError as exc:
            body = {"error": str(exc), "field": getattr(exc, "field", None), "part": getattr(exc, "part", None)}
            status = 507 if isinstance(exc, DiskFullError) else 400
            return JSONResponse(body, status_code=status, headers={"Cache-Control": "no-store"})
    return wrapped


async def _body(request: Request) -> tuple[object | None, str | None]:
    """(JSON, None) or (None, TOML text) by the request's Content-Type; at most MAX_BODY bytes."""
    try:
        body = await wire.read_body(request, MAX_BODY)
    except wire.BodyTooLarge as exc:
        raise PieceError(413, str(exc)) from None
    try:
        raw = body.decode("utf-8")
    except UnicodeDecodeError:
        raise PieceError(400, "request body is not UTF-8 text") from None
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind in ("application/toml", "text/toml", "text/plain", "text/x-toml"):
        return None, raw
    try:
        return json.loads(raw), None
    except ValueError as exc:
        raise PieceError(400, f"request body is not valid JSON ({exc}); send TOML as Content-Type: application/toml")\
            from None


def _flag(request: Request, body, name: str) -> bool:
    value = request.query_params.get(name)
    if value is not None:
        return value.lower() in ("1", "true", "yes")
    return bool(isinstance(body, dict) and body.get(name) is True)


@_answers
async def api_pieces(request: Request) -> Response:
    studio = _studio(request)
    await run_in_threadpool(studio.roots.refresh)
    return JSONResponse(await run_in_threadpool(list_pieces, studio), headers={"Cache-Control": "no-store"})


@_answers
async def api_piece(request: Request) -> Response:
    studio = _studio(request)
    key, rel = request.path_params["root"], request.path_params["path"]
    if request.method == "GET":
        piece = await run_in_threadpool(open_piece, studio, key, rel)
        return JSONResponse(piece, headers={"Cache-Control": "no-store"})
    body, text = await _body(request)
    overwrite = _flag(request, body, "overwrite")
    piece = await run_in_threadpool(functools.partial(save_piece, studio, key, rel, body=body, text=text,
                                                      overwrite=overwrite))
    return JSONResponse(piece, headers={"Cache-Control": "no-store"})


@_answers
async def api_piece_toml(request: Request) -> Response:
    studio = _studio(request)
    body, text = await _body(request)
    if text is not None or not isinstance(body, dict):
        raise PieceError(400, 'expected JSON {"arrangement": {...}, "at": "r0/pieces/NAME.toml"}')
    at_ref = body.get("at")
    if not isinstance(at_ref, str) or "/" not in at_ref:
        raise PieceError(400, f"at: expected where the piece will be, like \"r0/pieces/NAME.toml\", got {at_ref!r}",
                         field="name")
    key, _, rel = at_ref.partition("/")
    at = _target(studio.roots, key, unquote(rel))
    toml, arr = await run_in_threadpool(_toml_of, studio, body, at)
    return JSONResponse({"toml": toml, "arrangement": arrangement_format.to_dict(arr),
                         "at": f"{key}/{quote(rel)}"}, headers={"Cache-Control": "no-store"})


@_answers
async def api_keepers(request: Request) -> Response:
    studio = _studio(request)
    everything = request.query_params.get("all", "").lower() in ("1", "true", "yes")
    folder = request.query_params.get("folder")
    if folder is not None and studio.roots.folder(folder) is None:
        raise PieceError(404, f"no clips folder {folder!r} (GET /api/folders lists them)")
    items = await run_in_threadpool(functools.partial(keepers, studio, folder=folder, everything=everything))
    return JSONResponse({"keepers": items}, headers={"Cache-Control": "no-store"})


ROUTES = [
    Route("/api/pieces", api_pieces),
    Route("/api/pieces/toml", api_piece_toml, methods=["POST"]),
    Route("/api/pieces/{root}/{path:path}", api_piece, methods=["GET", "PUT"]),
    Route("/api/keepers", api_keepers),
]
