"""The arrangement: a small TOML file saying which stretches of which clips make a piece.

This module owns the format (read, check, write, defaults): global options and a list of parts,
each a stretch of one clip with a gain and a crossfade into the next part.

    format_version = 1
    sample_rate = 16000            # Hz; absent: the first clip's rate
    clips_dir = "clips"            # where clip ids are looked up (relative to this file)
    noise_reduction = "mix"        # off | parts | mix
    lufs = -14.0                   # integrated loudness target
    true_peak = -1.0               # ceiling in dBTP (4x oversampled)
    fade_in_s = 0.05               # at the very start and end of the piece
    fade_out_s = 1.0

    [[part]]
    clip = "clip-0007"             # an id in clips_dir, or a path relative to this file
    in_s = 1.25                    # seconds into the clip
    out_s = 9.5                    # absent: the clip's end
    gain_db = -2.0
    crossfade_s = 0.8              # equal-power overlap with the next part

Errors name the file, line, part and field ("piece.toml:12: part 3 (clip-0007): out_s: ...") and
are `ArrangementError`s carrying the part and field, so an editor can point at the field.
TOML is read with the standard library's tomllib; writing this flat schema needs no library.

One format, two editors: `to_dict`/`from_dict` are the document as plain data (what the studio's
timeline edits), `arrangement_toml` writes it back, and `comments` keeps a hand-written file's
header and the notes above its parts across that round trip.
"""

from __future__ import annotations

import math
import os
import re
import tomllib
from dataclasses import dataclass, fields, replace
from pathlib import Path

from inspire.errors import UserInputError
from inspire.files import write_text

FORMAT_VERSION = 1
NOISE_MODES = ("off", "parts", "mix")
TOP_KEYS = ("sample_rate", "clips_dir", "noise_reduction", "lufs", "true_peak", "fade_in_s", "fade_out_s")
PART_KEYS = ("clip", "in_s", "out_s", "gain_db", "crossfade_s")


class ArrangementError(UserInputError):
    """A wrong arrangement: the message names file, line, part and field; `part` (0-based, None
    for a top-level field) and `field` say the same to a program."""

    def __init__(self, message: str, *, part: int | None = None, field: str | None = None):
        super().__init__(message)
        self.part = part
        self.field = field


@dataclass(frozen=True)
class Part:
    clip: str  # an id (file stem in clips_dir) or a path relative to the arrangement
    in_s: float = 0.0
    out_s: float | None = None  # None: the clip's end
    gain_db: float = 0.0
    crossfade_s: float = 0.0  # overlap with the next part


@dataclass(frozen=True)
class Arrangement:
    parts: tuple[Part, ...]
    sample_rate: int | None = None  # None: the first clip's rate
    clips_dir: str | None = None  # relative to base_dir; None: base_dir itself
    noise_reduction: str = "mix"
    lufs: float = -14.0
    true_peak: float = -1.0
    fade_in_s: float = 0.05
    fade_out_s: float = 1.0
    base_dir: str = "."  # where relative paths start (the arrangement file's folder); not in TOML
    source: str = "<arrangement>"  # for error messages; not in TOML
    lines: tuple = ()  # ({field: line}, [{field: line} per part]) for error messages; not in TOML

    def where(self, part: int | None = None, field: str | None = None) -> str:
        """'piece.toml:12: part 3 (clip-0007) out_s' — the place an error is about."""
        top, per_part = self.lines or ({}, [])
        line = None
        if part is not None and part < len(per_part):
            line = per_part[part].get(field or "", per_part[part].get(""))
        elif part is None:
            line = top.get(field or "")
        text = f"{self.source}:{line}" if line else self.source
        if part is not None:
            text += f": part {part + 1} ({self.parts[part].clip})"
        return f"{text}: {field}" if field else text

    def error(self, part: int | None, field: str | None, message: str) -> ArrangementError:
        """An ArrangementError about `field` of `part` (None: a top-level field), placed by `where`."""
        return ArrangementError(f"{self.where(part, field)}: {message}", part=part, field=field)


_TOP_FIELDS = {f.name for f in fields(Arrangement)} - {"parts", "base_dir", "source", "lines"} | {"format_version"}
_PART_FIELDS = {f.name for f in fields(Part)}


# ------------------------------------------------------------------------- reading and writing


def read_arrangement(path: str | os.PathLike) -> Arrangement:
    """Parse and check an arrangement file; UserInputError names the line, part and field."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UserInputError(f"{path}: cannot read arrangement ({exc.strerror or exc})") from exc
    except UnicodeDecodeError as exc:
        raise UserInputError(f"{path}: not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset {exc.start}); "
                             f"an arrangement is a TOML file saved as UTF-8") from exc
    return parse_text(text, base_dir=str(path.parent), source=str(path))


def parse_text(text: str, *, base_dir: str = ".", source: str = "<arrangement>") -> Arrangement:
    """An arrangement from its TOML text, as if read from the file `source` in `base_dir` (where
    its relative paths start): the same checks and messages as `read_arrangement` (the studio
    checks an arrangement this way before writing it)."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ArrangementError(f"{source}: not valid TOML: {exc}") from exc
    return from_dict(doc, base_dir=base_dir, source=source, lines=_line_map(text))


def from_dict(doc: dict, *, base_dir: str = ".", source: str = "<arrangement>", lines: tuple = ()) -> Arrangement:
    """An arrangement from its document as plain data (what TOML parses to, and what `to_dict`
    gives), checked; ArrangementError names the part and field."""
    shell = Arrangement(parts=(), source=source, lines=lines)
    if not isinstance(doc, dict):
        raise ArrangementError(f"{source}: expected a table of fields and [[part]]s, got {type(doc).__name__}")
    for key in doc:
        if key not in _TOP_FIELDS | {"part"}:
            expected = ", ".join(sorted(_TOP_FIELDS | {"part"}))
            raise shell.error(None, key, f"unknown field (expected one of: {expected})")
    if doc.get("format_version", FORMAT_VERSION) != FORMAT_VERSION:
        raise shell.error(None, "format_version", f"expected {FORMAT_VERSION}, got {doc['format_version']!r}")
    raw_parts = doc.get("part")
    if not isinstance(raw_parts, list) or not raw_parts or not all(isinstance(p, dict) for p in raw_parts):
        raise ArrangementError(f"{source}: needs at least one [[part]] table", field="part")
    parts = []
    for i, raw in enumerate(raw_parts):
        stub = replace(shell, parts=tuple(parts) + (Part(clip=str(raw.get("clip", "?"))),))
        for key in raw:
            if key not in _PART_FIELDS:
                expected = ", ".join(sorted(_PART_FIELDS))
                raise stub.error(i, key, f"unknown field (expected one of: {expected})")
        clip = raw.get("clip")
        if not isinstance(clip, str) or not clip.strip():
            raise stub.error(i, "clip", f"expected a clip id or path (a string), got {clip!r}")
        num = lambda k, default, *, _raw=raw, _stub=stub, _i=i, **kw: (  # noqa: E731
            number(_raw.get(k, default), _stub.where(_i, k), part=_i, field=k, **kw))
        part = Part(
            clip=clip,
            in_s=num("in_s", 0.0, low=0.0),
            out_s=None if raw.get("out_s") is None else num("out_s", None, low=0.0),
            gain_db=num("gain_db", 0.0, low=-96.0, high=48.0),
            crossfade_s=num("crossfade_s", 0.0, low=0.0),
        )
        if part.out_s is not None and part.out_s <= part.in_s:
            raise stub.error(i, "out_s", f"out_s = {part.out_s} must be after in_s = {part.in_s}")
        parts.append(part)
    top = lambda k, **kw: number(doc.get(k, getattr(shell, k)), shell.where(None, k), field=k, **kw)  # noqa: E731
    sr = doc.get("sample_rate")
    if sr is not None and (not isinstance(sr, int) or isinstance(sr, bool) or not 1000 <= sr <= 384000):
        raise shell.error(None, "sample_rate", f"expected a whole number of Hz (1000..384000), got {sr!r}")
    nr = doc.get("noise_reduction", "mix")
    if nr not in NOISE_MODES:
        raise shell.error(None, "noise_reduction", f"expected one of {', '.join(NOISE_MODES)}, got {nr!r}")
    clips_dir = doc.get("clips_dir")
    if clips_dir is not None and not isinstance(clips_dir, str):
        raise shell.error(None, "clips_dir", f"expected a folder path (a string), got {clips_dir!r}")
    arr = Arrangement(
        parts=tuple(parts), sample_rate=sr, clips_dir=clips_dir, noise_reduction=nr,
        lufs=top("lufs", low=-70.0, high=0.0), true_peak=top("true_peak", low=-30.0, high=0.0),
        fade_in_s=top("fade_in_s", low=0.0), fade_out_s=top("fade_out_s", low=0.0),
        base_dir=base_dir, source=source, lines=lines,
    )
    if arr.parts[-1].crossfade_s > 0:
        raise arr.error(len(parts) - 1, "crossfade_s",
                        "the last part has nothing to fade into (set 0; fade_out_s shapes the ending)")
    return arr


def to_dict(arr: Arrangement) -> dict:
    """The arrangement as the document `from_dict` reads (and TOML holds): fields left at None
    are absent, every other field is given, parts under "part"."""
    doc: dict = {"format_version": FORMAT_VERSION}
    doc.update({k: getattr(arr, k) for k in TOP_KEYS if getattr(arr, k) is not None})
    doc["part"] = [{k: getattr(p, k) for k in PART_KEYS if getattr(p, k) is not None} for p in arr.parts]
    return doc


def number(value, where: str, *, low: float | None = None, high: float | None = None,
           part: int | None = None, field: str | None = None) -> float:
    """A finite number within [low, high]; ArrangementError (about `part` and `field`) names `where`."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ArrangementError(f"{where}: expected a number, got {value!r}", part=part, field=field)
    if low is not None and value < low:
        raise ArrangementError(f"{where}: must be at least {low:g}, got {value!r}", part=part, field=field)
    if high is not None and value > high:
        raise ArrangementError(f"{where}: must be at most {high:g}, got {value!r}", part=part, field=field)
    return float(value)


def _line_map(text: str) -> tuple[dict, list]:
    """Where each top-level field and each part's fields sit, for error messages."""
    top: dict[str, int] = {}
    parts: list[dict[str, int]] = []
    section: dict[str, int] | None = top
    for no, line in enumerate(text.splitlines(), 1):
        s = line.strip()
        if m := re.match(r"\[\[\s*([\w.-]+)\s*\]\]", s):
            if m.group(1) == "part":
                parts.append({"": no})
                section = parts[-1]
            else:
                top.setdefault(m.group(1), no)
                section = None
        elif m := re.match(r"\[\s*([\w.-]+)\s*\]", s):
            top.setdefault(m.group(1), no)
            section = None
        elif (m := re.match(r"""["']?([\w-]+)["']?\s*=""", s)) and section is not None:
            section.setdefault(m.group(1), no)
    return top, parts


def arrangement_toml(arr: Arrangement, *, notes: list[str] | None = None, header: str = "") -> str:
    """The arrangement as TOML (this flat schema only); `notes` become comments above parts."""
    lines = [f"# {h}" if h else "#" for h in header.splitlines()] if header else []
    lines.append(f"format_version = {FORMAT_VERSION}")
    for key in TOP_KEYS:
        value = getattr(arr, key)
        if value is not None:
            lines.append(f"{key} = {_toml_value(value)}")
    for i, part in enumerate(arr.parts):
        lines.append("")
        if notes and i < len(notes) and notes[i]:
            lines.extend(f"# {n}" if n else "#" for n in notes[i].splitlines())
        lines.append("[[part]]")
        for key in PART_KEYS:
            value = getattr(part, key)
            if value is not None:
                lines.append(f"{key} = {_toml_value(value)}")
    return "\n".join(lines) + "\n"


def _toml_value(v) -> str:
    if isinstance(v, str):
        return '"' + "".join(c if c.isprintable() and c not in '"\\' else f"\\u{ord(c):04x}" for c in v) + '"'
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    # Six decimals hide arithmetic's noise (0.30000000000000004); a value written with more
    # digits on purpose is kept exactly, so the file renders what was meant.
    v = float(v)
    return repr(round(v, 6) if abs(round(v, 6) - v) < 1e-9 else v)


def comments(text: str) -> tuple[str, list[str]]:
    """A hand-written file's comments that `arrangement_toml` can write back: the header (the
    comment lines opening the file, up to a blank line) and the note above each [[part]] (the
    comment lines just above it), without their "# "."""
    lines = text.splitlines()
    header: list[str] = []
    k = 0
    while k < len(lines) and lines[k].lstrip().startswith("#"):
        header.append(lines[k])
        k += 1
    if k < len(lines) and re.match(r"\s*\[\[\s*part\s*\]\]", lines[k]):
        header, k = [], 0  # the opening comment is the first part's note
    notes: list[str] = []
    for no, line in enumerate(lines):
        if no < k or not re.match(r"\s*\[\[\s*part\s*\]\]", line):
            continue
        above: list[str] = []
        j = no - 1
        while j >= k and lines[j].lstrip().startswith("#"):
            above.insert(0, lines[j])
            j -= 1
        notes.append("\n".join(_uncomment(a) for a in above))
    return "\n".join(_uncomment(h) for h in header), notes


def _uncomment(line: str) -> str:
    body = line.lstrip()[1:]
    return body[1:] if body.startswith(" ") else body


def write_arrangement(path: str | os.PathLike, arr: Arrangement, *, notes: list[str] | None = None,
                      header: str = "") -> None:
    """Write `arr` as TOML to `path`, atomically (see `arrangement_toml`)."""
    write_text(path, arrangement_toml(arr, notes=notes, header=header))
