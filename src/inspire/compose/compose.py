"""Compose: splice generated clips into a new piece, and hand it over cleanly to a DAW.

An arrangement is a small TOML file: global options and a list of parts, each a stretch of one
clip with a gain and a crossfade into the next part.

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

Rendering places part k+1 so that it overlaps the last `crossfade_s` of part k (so the piece
lasts the sum of the parts minus the crossfades), fades with cos/sin gains (equal power),
dips butt joins through a 4 ms fade so no join clicks, optionally gates noise with noisereduce,
then normalises loudness with pyloudnorm under a true-peak ceiling (a look-ahead limiter works
on 4x oversampled peaks). Beside OUT it writes OUT.json (every part traced to its clip, the
clip's generation sidecar and curation lineage) and OUT.labels.txt (an Audacity label track);
`--stems DIR` writes each part as a full-length file, silent outside its part.

Nothing here imports torch; scipy, noisereduce and pyloudnorm load only when rendering.
"""

from __future__ import annotations

import math
import os
import re
import sys
import tomllib
from dataclasses import dataclass, fields, replace
from pathlib import Path

import numpy as np

from inspire.compose.arrange import PIECE_KIND, load_curation, read_sidecar
from inspire.audio.io import AUDIO_EXTENSIONS, probe, read_audio, write_audio
from inspire.errors import UserInputError
from inspire.files import write_json, write_text

FORMAT_VERSION = 1
NOISE_MODES = ("off", "parts", "mix")
OUT_EXTENSIONS = (".wav", ".flac", ".mp3", ".ogg", ".aiff", ".aif")
EDGE_FADE_S = 0.004  # every butt join and the piece's ends fade at least this long
LIMITER_MARGIN_DB = 0.2  # the limiter aims this far under the ceiling


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
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UserInputError(f"{path}: not valid TOML: {exc}") from exc
    return from_dict(doc, base_dir=str(path.parent), source=str(path), lines=_line_map(text))


def from_dict(doc: dict, *, base_dir: str = ".", source: str = "<arrangement>", lines: tuple = ()) -> Arrangement:
    shell = Arrangement(parts=(), source=source, lines=lines)
    for key in doc:
        if key not in _TOP_FIELDS | {"part"}:
            raise UserInputError(f"{shell.where(None, key)}: unknown field (expected one of: {', '.join(sorted(_TOP_FIELDS | {'part'}))})")
    if doc.get("format_version", FORMAT_VERSION) != FORMAT_VERSION:
        raise UserInputError(f"{shell.where(None, 'format_version')}: expected {FORMAT_VERSION}, got {doc['format_version']!r}")
    raw_parts = doc.get("part")
    if not isinstance(raw_parts, list) or not raw_parts or not all(isinstance(p, dict) for p in raw_parts):
        raise UserInputError(f"{source}: needs at least one [[part]] table")
    parts = []
    for i, raw in enumerate(raw_parts):
        stub = replace(shell, parts=tuple(parts) + (Part(clip=str(raw.get("clip", "?"))),))
        for key in raw:
            if key not in _PART_FIELDS:
                raise UserInputError(f"{stub.where(i, key)}: unknown field (expected one of: {', '.join(sorted(_PART_FIELDS))})")
        clip = raw.get("clip")
        if not isinstance(clip, str) or not clip.strip():
            raise UserInputError(f"{stub.where(i, 'clip')}: expected a clip id or path (a string), got {clip!r}")
        num = lambda k, default, **kw: _number(raw.get(k, default), stub.where(i, k), **kw)  # noqa: E731
        part = Part(
            clip=clip,
            in_s=num("in_s", 0.0, low=0.0),
            out_s=None if raw.get("out_s") is None else num("out_s", None, low=0.0),
            gain_db=num("gain_db", 0.0, low=-96.0, high=48.0),
            crossfade_s=num("crossfade_s", 0.0, low=0.0),
        )
        if part.out_s is not None and part.out_s <= part.in_s:
            raise UserInputError(f"{stub.where(i, 'out_s')}: out_s = {part.out_s} must be after in_s = {part.in_s}")
        parts.append(part)
    top = lambda k, **kw: _number(doc.get(k, getattr(shell, k)), shell.where(None, k), **kw)  # noqa: E731
    sr = doc.get("sample_rate")
    if sr is not None and (not isinstance(sr, int) or isinstance(sr, bool) or not 1000 <= sr <= 384000):
        raise UserInputError(f"{shell.where(None, 'sample_rate')}: expected a whole number of Hz (1000..384000), got {sr!r}")
    nr = doc.get("noise_reduction", "mix")
    if nr not in NOISE_MODES:
        raise UserInputError(f"{shell.where(None, 'noise_reduction')}: expected one of {', '.join(NOISE_MODES)}, got {nr!r}")
    clips_dir = doc.get("clips_dir")
    if clips_dir is not None and not isinstance(clips_dir, str):
        raise UserInputError(f"{shell.where(None, 'clips_dir')}: expected a folder path (a string), got {clips_dir!r}")
    arr = Arrangement(
        parts=tuple(parts), sample_rate=sr, clips_dir=clips_dir, noise_reduction=nr,
        lufs=top("lufs", low=-70.0, high=0.0), true_peak=top("true_peak", low=-30.0, high=0.0),
        fade_in_s=top("fade_in_s", low=0.0), fade_out_s=top("fade_out_s", low=0.0),
        base_dir=base_dir, source=source, lines=lines,
    )
    if arr.parts[-1].crossfade_s > 0:
        raise UserInputError(f"{arr.where(len(parts) - 1, 'crossfade_s')}: the last part has nothing to fade into "
                             f"(set 0; fade_out_s shapes the ending)")
    return arr


def _number(value, where: str, *, low: float | None = None, high: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise UserInputError(f"{where}: expected a number, got {value!r}")
    if low is not None and value < low:
        raise UserInputError(f"{where}: must be at least {low:g}, got {value!r}")
    if high is not None and value > high:
        raise UserInputError(f"{where}: must be at most {high:g}, got {value!r}")
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
    for key in ("sample_rate", "clips_dir", "noise_reduction", "lufs", "true_peak", "fade_in_s", "fade_out_s"):
        value = getattr(arr, key)
        if value is not None:
            lines.append(f"{key} = {_toml_value(value)}")
    for i, part in enumerate(arr.parts):
        lines.append("")
        if notes and i < len(notes) and notes[i]:
            lines.append(f"# {notes[i]}")
        lines.append("[[part]]")
        for key in ("clip", "in_s", "out_s", "gain_db", "crossfade_s"):
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
    return repr(round(float(v), 6))


# ------------------------------------------------------------------------------------ rendering


@dataclass
class Rendered:
    mix: np.ndarray  # (T,) float32, the finished piece
    sample_rate: int
    starts: list[int]  # sample where each part begins in the piece
    lengths: list[int]  # samples of each part
    paths: list[Path]  # each part's clip file
    loudness: dict
    warnings: list[str]
    stems: list[np.ndarray] | None = None  # each part's own finished audio, (lengths[k],)


def crossfade_gains(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Equal-power (cos, sin) gains for an n-sample crossfade: out**2 + in**2 == 1 everywhere."""
    t = (np.arange(n, dtype=np.float64) + 0.5) / max(n, 1)
    return np.cos(0.5 * np.pi * t), np.sin(0.5 * np.pi * t)


def _ramp(n: int) -> np.ndarray:
    """A half-Hann rise from 0 to 1 over n samples (for fades into or out of silence)."""
    t = (np.arange(n, dtype=np.float64) + 0.5) / max(n, 1)
    return 0.5 - 0.5 * np.cos(np.pi * t)


def render(arr: Arrangement, *, with_stems: bool = False) -> Rendered:
    """Render an arrangement to a finished, loudness-normalised mono piece (in memory)."""
    paths = [_resolve_clip(arr, i) for i in range(len(arr.parts))]
    sr = arr.sample_rate or probe(paths[0]).sample_rate
    audio: dict[Path, np.ndarray] = {}
    for p in paths:
        if p not in audio:
            audio[p] = read_audio(p, sample_rate=sr)[0]
    spans = []
    for i, (part, p) in enumerate(zip(arr.parts, paths)):
        native = probe(p).seconds
        if part.in_s >= native:
            raise UserInputError(f"{arr.where(i, 'in_s')}: in_s = {part.in_s} is at or beyond the clip's end ({native:.3f} s)")
        if part.out_s is not None and part.out_s > native + 1e-3:
            raise UserInputError(f"{arr.where(i, 'out_s')}: out_s = {part.out_s} is beyond the clip's end ({native:.3f} s)")
        i0 = int(round(part.in_s * sr))
        i1 = min(len(audio[p]), int(round((part.out_s if part.out_s is not None else native) * sr)))
        if i1 - i0 < 1:
            raise UserInputError(f"{arr.where(i, 'out_s')}: the part is shorter than one sample")
        spans.append((i0, i1))
    lengths = [b - a for a, b in spans]
    xf = [int(round(p.crossfade_s * sr)) for p in arr.parts]
    edge = int(round(EDGE_FADE_S * sr))
    for i, n in enumerate(lengths):
        into = xf[i - 1] if i else 0
        if xf[i] > 0 and xf[i] > lengths[i + 1]:
            raise UserInputError(f"{arr.where(i, 'crossfade_s')}: {arr.parts[i].crossfade_s} s is longer than the next "
                                 f"part ({lengths[i + 1] / sr:.3f} s)")
        if into + xf[i] > n:
            raise UserInputError(f"{arr.where(i, 'crossfade_s')}: the crossfade in ({into / sr:.3f} s) and out "
                                 f"({xf[i] / sr:.3f} s) overlap: together longer than the part ({n / sr:.3f} s)")
    fade_in = max(int(round(arr.fade_in_s * sr)), min(edge, lengths[0] // 4))
    fade_out = max(int(round(arr.fade_out_s * sr)), min(edge, lengths[-1] // 4))
    if fade_in > lengths[0] - xf[0]:
        raise UserInputError(f"{arr.where(None, 'fade_in_s')}: {arr.fade_in_s} s is longer than part 1 before its crossfade")
    if fade_out > lengths[-1] - (xf[-2] if len(xf) > 1 else 0) - (fade_in if len(lengths) == 1 else 0):
        raise UserInputError(f"{arr.where(None, 'fade_out_s')}: {arr.fade_out_s} s is longer than the last part after its crossfade")

    starts = [0]
    for i in range(1, len(lengths)):
        starts.append(starts[-1] + lengths[i - 1] - xf[i - 1])
    total = starts[-1] + lengths[-1]

    def envelope(i: int) -> np.ndarray:
        n, env = lengths[i], np.ones(lengths[i])
        head = fade_in if i == 0 else xf[i - 1]
        tail = fade_out if i == len(lengths) - 1 else xf[i]
        if i == 0 or xf[i - 1] == 0:
            head = head if i == 0 else min(edge, n // 4)
            env[:head] *= _ramp(head)
        else:
            env[:head] *= crossfade_gains(head)[1]
        if i == len(lengths) - 1 or xf[i] == 0:
            tail = tail if i == len(lengths) - 1 else min(edge, n // 4)
            env[n - tail:] *= _ramp(tail)[::-1]
        else:
            env[n - tail:] *= crossfade_gains(tail)[0]
        return env

    envs = [envelope(i) for i in range(len(lengths))]

    def segments(denoise: bool) -> list[np.ndarray]:
        src = {p: reduce_noise(x, sr) for p, x in audio.items()} if denoise else audio
        return [src[p][a:b].astype(np.float64) * (10.0 ** (part.gain_db / 20.0)) * env
                for p, (a, b), part, env in zip(paths, spans, arr.parts, envs)]

    segs = segments(arr.noise_reduction == "parts")
    mix = np.zeros(total, dtype=np.float64)
    for s, seg in zip(starts, segs):
        mix[s: s + len(seg)] += seg
    if arr.noise_reduction == "mix":
        body = mix[fade_in: total - fade_out] if total - fade_out - fade_in > sr else mix
        mix = reduce_noise(mix, sr, profile_from=body).astype(np.float64)
    warnings: list[str] = []
    finished, gain, limiter, loud = normalize_loudness(mix, sr, lufs=arr.lufs, true_peak=arr.true_peak, warnings=warnings)
    stems = None
    if with_stems:
        if arr.noise_reduction == "mix":
            segs = segments(True)  # the mix's gate cannot be split; each stem is gated on its own
        stems = [(seg * gain * limiter[s: s + len(seg)]).astype(np.float32) for s, seg in zip(starts, segs)]
    return Rendered(finished.astype(np.float32), sr, starts, lengths, paths, loud, warnings, stems)


def _resolve_clip(arr: Arrangement, i: int) -> Path:
    clip = arr.parts[i].clip
    base = Path(arr.base_dir)
    if "/" in clip or "\\" in clip or Path(clip).suffix.lower() in AUDIO_EXTENSIONS:
        p = Path(clip) if Path(clip).is_absolute() else Path(os.path.normpath(base / clip))
        if not p.is_file():
            raise UserInputError(f"{arr.where(i, 'clip')}: no such clip file {p}")
        return p
    folder = Path(os.path.normpath(base / arr.clips_dir)) if arr.clips_dir else base
    found = sorted(f for f in folder.glob(f"{glob_escape(clip)}.*") if f.is_file() and f.suffix.lower() in AUDIO_EXTENSIONS) \
        if folder.is_dir() else []
    if not found:
        raise UserInputError(f"{arr.where(i, 'clip')}: no clip {clip!r} in {folder}")
    if len(found) > 1:
        raise UserInputError(f"{arr.where(i, 'clip')}: {clip!r} is ambiguous in {folder} "
                             f"({', '.join(f.name for f in found)}); give the file name")
    return found[0]


def glob_escape(name: str) -> str:
    return re.sub(r"([*?\[])", r"[\1]", name)


# ------------------------------------------------------------------------ noise and loudness


def reduce_noise(x: np.ndarray, sample_rate: int, *, prop_decrease: float = 0.85,
                 profile_from: np.ndarray | None = None) -> np.ndarray:
    """Spectral gating (noisereduce, stationary) with the noise profile taken from the quietest
    tenth of the audio (or of `profile_from`, e.g. the piece without its fades), so sustained
    notes are not mistaken for noise; narrow mask smoothing keeps tones intact. Audio too short
    to profile is returned unchanged."""
    n_fft = 1 << int(round(math.log2(0.128 * sample_rate)))
    noise = noise_profile(x if profile_from is None else profile_from, sample_rate)
    if len(x) < 2 * n_fft or noise is None:
        return np.asarray(x, dtype=np.float32)
    nr = _noisereduce()
    y = nr.reduce_noise(y=np.asarray(x, dtype=np.float32), sr=sample_rate, stationary=True, y_noise=noise,
                        prop_decrease=prop_decrease, n_fft=n_fft, freq_mask_smooth_hz=1 * sample_rate / (n_fft / 2),
                        time_mask_smooth_ms=50, n_jobs=1, use_tqdm=False)
    return np.asarray(y[: len(x)], dtype=np.float32)


NOISE_FLOOR_GAP_DB = 15.0  # quiet blocks this far under the median level are taken as plain noise


def noise_profile(x: np.ndarray, sample_rate: int, *, share: float = 0.1, block_s: float = 0.1) -> np.ndarray | None:
    """A sample of the noise: the quietest `share` of 100 ms blocks (digital silence excluded).
    Dense material has no quiet moments of pure noise: when the quiet blocks sit less than
    NOISE_FLOOR_GAP_DB under the median block, they are mostly music, so the sample is turned
    down by the shortfall and the gate only touches what lies under them."""
    b = int(block_s * sample_rate)
    n = len(x) // b
    if n < 5:
        return None
    blocks = np.asarray(x[: n * b], dtype=np.float32).reshape(n, b)
    energy = np.square(blocks, dtype=np.float64).mean(axis=1)
    live = np.flatnonzero(energy > 1e-10)  # fades and gaps say nothing about the noise
    if live.size < 3:
        return None
    pick = np.sort(live[np.argsort(energy[live], kind="stable")[: max(3, int(round(share * live.size)))]])
    gap_db = 10.0 * math.log10(float(np.median(energy[live])) / float(energy[pick].mean()))
    shortfall = max(0.0, NOISE_FLOOR_GAP_DB - gap_db)
    return blocks[pick].reshape(-1) * np.float32(10.0 ** (-shortfall / 20.0))


def _noisereduce():
    """Import noisereduce without letting it import torch (it tries, for an optional GPU path
    we never use); a process that already has torch keeps it."""
    if "noisereduce" in sys.modules or "torch" in sys.modules:
        import noisereduce

        return noisereduce
    import joblib  # noqa: F401  (its dependencies, imported normally first)
    import scipy.signal  # noqa: F401
    import tqdm.auto  # noqa: F401

    sys.modules["torch"] = None  # type: ignore[assignment]  # makes `import torch` fail fast
    try:
        import noisereduce
    finally:
        del sys.modules["torch"]
    return noisereduce


def oversampled_peaks(x: np.ndarray, *, factor: int = 4) -> np.ndarray:
    """|x| after `factor`x oversampling with soxr's steep linear-phase filter (an estimate of
    the reconstructed waveform, as BS.1770 true peak asks), the largest of each sample's
    phases. (T,)"""
    import soxr

    x = np.asarray(x, dtype=np.float32)
    if len(x) == 0:
        return np.zeros(0)
    up = np.abs(soxr.resample(x, 1, factor, quality="VHQ"))
    up = np.pad(up, (0, max(0, factor * len(x) - len(up))))[: factor * len(x)]
    return np.maximum(up.reshape(-1, factor).max(axis=1), np.abs(x)).astype(np.float64)


def true_peak_db(x: np.ndarray) -> float:
    peak = float(oversampled_peaks(x).max()) if len(x) else 0.0
    return 20.0 * math.log10(peak) if peak > 0 else -math.inf


def _limiter_gain(x: np.ndarray, sample_rate: int, ceiling: float) -> np.ndarray:
    """A smooth gain (T,) with gain * true peak <= ceiling: the needed gain is held for 12 ms
    either side (look-ahead) and smoothed by two 6 ms moving averages, whose span never exceeds
    the hold, so each peak still gets at most its own gain."""
    from scipy.ndimage import minimum_filter1d, uniform_filter1d

    need = np.minimum(1.0, ceiling / np.maximum(oversampled_peaks(x), 1e-12))
    if need.min() >= 1.0:
        return np.ones(len(x))
    hold = max(1, int(0.012 * sample_rate))
    g = minimum_filter1d(need, 2 * hold + 1, mode="nearest")
    for _ in range(2):
        g = uniform_filter1d(g, 2 * (hold // 2) + 1, mode="nearest")
    return np.minimum(g, need)


def normalize_loudness(x: np.ndarray, sample_rate: int, *, lufs: float, true_peak: float,
                       warnings: list[str] | None = None) -> tuple[np.ndarray, float, np.ndarray, dict]:
    """Scale to `lufs` integrated loudness (BS.1770, pyloudnorm) with a limiter holding the true
    peak under `true_peak` dBTP. Returns (audio, gain, limiter gain (T,), report)."""
    import pyloudnorm

    warnings = warnings if warnings is not None else []
    meter = pyloudnorm.Meter(sample_rate)
    ones = np.ones(len(x))
    if len(x) < int(0.4 * sample_rate) + 1:
        warnings.append("piece shorter than 0.4 s: loudness not normalised")
        return x, 1.0, ones, {"target_lufs": lufs, "integrated_lufs": None, "true_peak_dbtp": true_peak_db(x)}
    measured = float(meter.integrated_loudness(x))
    if not math.isfinite(measured) or measured < -70.0:
        warnings.append("piece is silent: loudness not normalised")
        return x, 1.0, ones, {"target_lufs": lufs, "integrated_lufs": None, "true_peak_dbtp": true_peak_db(x)}
    ceiling = 10.0 ** ((true_peak - LIMITER_MARGIN_DB) / 20.0)
    gain_db = lufs - measured
    for _ in range(8):
        gain = 10.0 ** (gain_db / 20.0)
        limiter = _limiter_gain(x * gain, sample_rate, ceiling)
        y = x * gain * limiter
        got = float(meter.integrated_loudness(y))
        if abs(got - lufs) < 0.05:
            break
        gain_db += lufs - got
    tp = true_peak_db(y)
    if tp > true_peak:  # the limiter's gain moved a hair faster than the oversampled peaks
        trim = 10.0 ** ((true_peak - LIMITER_MARGIN_DB / 2 - tp) / 20.0)
        y, limiter = y * trim, limiter * trim
        got, tp = float(meter.integrated_loudness(y)), true_peak_db(y)
    reduction = -20.0 * math.log10(max(float(limiter.min()), 1e-9))
    if reduction > 8.0:
        warnings.append(f"limiter reduced peaks by up to {reduction:.1f} dB to reach {lufs} LUFS; "
                        f"a lower --lufs will sound less squashed")
    report = {"target_lufs": lufs, "integrated_lufs": round(got, 2), "true_peak_dbtp": round(tp, 2),
              "ceiling_dbtp": true_peak, "gain_db": round(gain_db, 2), "limiter_max_reduction_db": round(reduction, 2)}
    return y, gain, limiter, report


# ---------------------------------------------------------------------------------- hand-over


def _check_out(out: Path, *, force: bool, stems_dir: Path | None) -> None:
    if out.suffix.lower() not in OUT_EXTENSIONS:
        raise UserInputError(f"--out {out}: unsupported extension (use one of {', '.join(OUT_EXTENSIONS)})")
    if out.exists() and not force:
        raise UserInputError(f"--out {out}: already exists (use --force to overwrite)")
    if out.exists() and out.is_dir():
        raise UserInputError(f"--out {out}: is a folder")
    if stems_dir is not None and stems_dir.is_dir() and any(stems_dir.iterdir()) and not force:
        raise UserInputError(f"--stems {stems_dir}: folder is not empty (use --force to overwrite its stems)")


def _relpath(p: Path, start: Path) -> str:
    try:
        return Path(os.path.relpath(p.resolve(), start.resolve())).as_posix()
    except ValueError:  # another drive on Windows
        return str(p.resolve())


def write_piece(arr: Arrangement, r: Rendered, out: Path, *, stems_dir: Path | None = None,
                arrangement_path: Path | None = None, auto: dict | None = None) -> dict:
    """Write the piece (atomically), then OUT.json, OUT.labels.txt and the stems."""
    sr = r.sample_rate
    write_audio(out, r.mix, sr)
    curations: dict[Path, dict | None] = {}
    labels, parts = [], []
    stem_ext = out.suffix.lower() if out.suffix.lower() in (".wav", ".flac", ".aiff", ".aif") else ".wav"
    for i, (part, path, start, n) in enumerate(zip(arr.parts, r.paths, r.starts, r.lengths)):
        cid = path.stem
        label = f"{i + 1}: {cid} [{part.in_s:.3f}-{(part.out_s if part.out_s is not None else part.in_s + n / sr):.3f}]"
        labels.append(f"{start / sr:.6f}\t{(start + n) / sr:.6f}\t{label}")
        if path.parent not in curations:
            curations[path.parent] = load_curation(path.parent)
        record = _curation_record(curations[path.parent], path)
        stem = None
        if stems_dir is not None and r.stems is not None:
            stem = stems_dir / f"{i + 1:02d}-{re.sub(r'[^A-Za-z0-9._-]+', '_', cid)}{stem_ext}"
            full = np.zeros(len(r.mix), dtype=np.float32)
            full[start: start + n] = r.stems[i]
            write_audio(stem, full, sr, subtype="PCM_24")
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
            "start_sample": start,
            "end_sample": start + n,
            "generation": read_sidecar(path),
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
        "sample_rate": sr,
        "samples": len(r.mix),
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
        changes["lufs"] = _number(lufs, "--lufs", low=-70.0, high=0.0)
    if true_peak is not None:
        changes["true_peak"] = _number(true_peak, "--true-peak", low=-30.0, high=0.0)
    return replace(arr, **changes)


def render_arrangement(arrangement_path: str | os.PathLike, *, out: str | os.PathLike,
                       stems_dir: str | os.PathLike | None = None, force: bool = False,
                       noise_reduction: str | None = None, lufs: float | None = None,
                       true_peak: float | None = None) -> dict:
    """Render a hand-written (or edited) arrangement to `out`; returns what OUT.json holds.
    `noise_reduction`, `lufs` and `true_peak` override the arrangement's when given."""
    out = Path(out)
    stems = Path(stems_dir) if stems_dir is not None else None
    _check_out(out, force=force, stems_dir=stems)
    arr = _overridden(read_arrangement(arrangement_path), noise_reduction, lufs, true_peak)
    _say(f"rendering {len(arr.parts)} parts from {arrangement_path}")
    r = render(arr, with_stems=stems is not None)
    for w in r.warnings:
        _say(f"warning: {w}")
    return write_piece(arr, r, out, stems_dir=stems, arrangement_path=Path(arrangement_path))


def auto_compose(clips_dir: str | os.PathLike, *, minutes: float, out: str | os.PathLike, seed: int = 0,
                 noise_reduction: str = "mix", lufs: float = -14.0, true_peak: float = -1.0,
                 stems_dir: str | os.PathLike | None = None, force: bool = False) -> dict:
    """Arrange the best passages of `clips_dir` into a piece of about `minutes`, render it to
    `out` and write OUT.toml (the arrangement, to edit and render again), OUT.json and
    OUT.labels.txt beside it. Returns what OUT.json holds."""
    from inspire.compose.arrange import plan

    out = Path(out)
    stems = Path(stems_dir) if stems_dir is not None else None
    _check_out(out, force=force, stems_dir=stems)
    if isinstance(minutes, bool) or not isinstance(minutes, (int, float)) or not (math.isfinite(minutes) and minutes > 0):
        raise UserInputError(f"--minutes must be a positive number, got {minutes!r}")
    _say(f"arranging {float(minutes):g} min from {clips_dir}")
    pl = plan(clips_dir, seconds=float(minutes) * 60.0, seed=seed)
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
                      fade_out_s=round(min(3.0, 0.4 * (parts[-1].out_s - parts[-1].in_s - (parts[-2].crossfade_s if len(parts) > 1 else 0))), 3),
                      base_dir=str(out.parent), source=str(toml_path))
    arr = _overridden(arr, noise_reduction, lufs, true_peak)
    r = render(arr, with_stems=stems is not None)
    r.warnings[:0] = list(pl.warnings)
    for w in r.warnings[len(pl.warnings):]:
        _say(f"warning: {w}")
    header = (f"inspire arrangement, made by `inspire compose --auto {clips_dir} --minutes {float(minutes):g} --seed {seed}`.\n"
              f"Edit it and render again: inspire compose {toml_path.name} --out {out.name} --force\n"
              "Fields: clip (id in clips_dir, or a path), in_s/out_s (seconds in the clip), gain_db,\n"
              "crossfade_s (equal-power overlap into the next part). Paths are relative to this file.")
    auto = {"clips_dir": clips_rel, "minutes": float(minutes), "seed": seed, "requested_s": pl.requested_s,
            "planned_s": pl.seconds, "available_s": pl.available_s,
            "used_curation": pl.used_curation, "skipped": list(pl.skipped)}
    piece = write_piece(arr, r, out, stems_dir=stems, arrangement_path=toml_path, auto=auto)
    write_text(toml_path, arrangement_toml(arr, notes=notes, header=header))
    return piece
