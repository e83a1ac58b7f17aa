"""Rendering and mastering: an arrangement becomes a finished, loudness-normalised mono piece.

Part k+1 is placed so that it overlaps the last `crossfade_s` of part k (so the piece lasts the
sum of the parts minus the crossfades), fades with cos/sin gains (equal power), butt joins dip
through a 4 ms fade so no join clicks; noise is optionally gated with noisereduce (per part or
on the mix); then loudness is normalised with pyloudnorm (BS.1770) under a true-peak ceiling
(a look-ahead limiter works on 4x oversampled peaks, soxr's).

Nothing here imports torch; scipy, noisereduce and pyloudnorm load only when rendering.
"""

from __future__ import annotations

import math
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from inspire.audio.io import probe, read_span
from inspire.compose.arrangement import Arrangement
from inspire.files import AUDIO_EXTENSIONS

EDGE_FADE_S = 0.004  # every butt join and the piece's ends fade at least this long
LIMITER_MARGIN_DB = 0.2  # the limiter aims this far under the ceiling


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
    paths = clip_paths(arr)
    sr = arr.sample_rate or probe(paths[0]).sample_rate
    raw: list[np.ndarray] = []  # each part's own stretch of its clip: nothing else is read
    for i, (part, p) in enumerate(zip(arr.parts, paths, strict=True)):
        native = probe(p).seconds
        _check_span(arr, i, native)
        i0 = int(round(part.in_s * sr))
        x = read_span(p, i0, int(round((part.out_s if part.out_s is not None else native) * sr)), sample_rate=sr)
        if len(x) < 1:
            raise arr.error(i, "out_s", "the part is shorter than one sample")
        raw.append(x)
    lengths = [len(x) for x in raw]
    xf = [int(round(p.crossfade_s * sr)) for p in arr.parts]
    edge = int(round(EDGE_FADE_S * sr))
    fade_in, fade_out = _check_joins(arr, lengths, sr)

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

    def segments(denoise: bool) -> list[np.ndarray]:  # denoise: each part gated on its own
        return [(reduce_noise(x, sr) if denoise else x).astype(np.float64) * (10.0 ** (part.gain_db / 20.0)) * env
                for x, part, env in zip(raw, arr.parts, envs, strict=True)]

    segs = segments(arr.noise_reduction == "parts")
    mix = np.zeros(total, dtype=np.float64)
    for s, seg in zip(starts, segs, strict=True):
        mix[s: s + len(seg)] += seg
    if arr.noise_reduction == "mix":
        body = mix[fade_in: total - fade_out] if total - fade_out - fade_in > sr else mix
        mix = reduce_noise(mix, sr, profile_from=body).astype(np.float64)
    warnings: list[str] = []
    finished, gain, limiter, loud = normalize_loudness(mix, sr, lufs=arr.lufs, true_peak=arr.true_peak,
                                                       warnings=warnings)
    stems = None
    if with_stems:
        if arr.noise_reduction == "mix":
            segs = segments(True)  # the mix's gate cannot be split; each stem is gated on its own
        stems = [(seg * gain * limiter[s: s + len(seg)]).astype(np.float32)
                 for s, seg in zip(starts, segs, strict=True)]
    return Rendered(finished.astype(np.float32), sr, starts, lengths, paths, loud, warnings, stems)


def check(arr: Arrangement) -> list[int]:
    """Every check `render` makes, from the clips' headers alone (nothing is decoded): each clip
    is found, each part lies inside its clip, crossfades fit their parts and the fades fit the
    ends, with render's messages (ArrangementError naming part and field). Returns each part's
    length in samples at the piece's rate."""
    paths = clip_paths(arr)
    infos = [probe(p) for p in paths]
    sr = arr.sample_rate or infos[0].sample_rate
    lengths = []
    for i, (part, info) in enumerate(zip(arr.parts, infos, strict=True)):
        _check_span(arr, i, info.seconds)
        end = int(round(info.frames * sr / info.sample_rate))  # the clip's last sample at the piece's rate
        stop = end if part.out_s is None else min(end, int(round(part.out_s * sr)))
        n = stop - int(round(part.in_s * sr))
        if n < 1:
            raise arr.error(i, "out_s", "the part is shorter than one sample")
        lengths.append(n)
    _check_joins(arr, lengths, sr)
    return lengths


def _check_span(arr: Arrangement, i: int, native: float) -> None:
    """Part i lies inside its clip of `native` seconds."""
    part = arr.parts[i]
    if part.in_s >= native:
        raise arr.error(i, "in_s", f"in_s = {part.in_s} is at or beyond the clip's end ({native:.3f} s)")
    if part.out_s is not None and part.out_s > native + 1e-3:
        raise arr.error(i, "out_s", f"out_s = {part.out_s} is beyond the clip's end ({native:.3f} s)")


def _check_joins(arr: Arrangement, lengths: list[int], sr: int) -> tuple[int, int]:
    """Crossfades fit the parts they join and the piece's fades fit its ends (parts of `lengths`
    samples at `sr`). Returns (fade_in, fade_out) in samples, as render applies them."""
    xf = [int(round(p.crossfade_s * sr)) for p in arr.parts]
    edge = int(round(EDGE_FADE_S * sr))
    for i, n in enumerate(lengths):
        into = xf[i - 1] if i else 0
        if xf[i] > 0 and xf[i] > lengths[i + 1]:
            raise arr.error(i, "crossfade_s", f"{arr.parts[i].crossfade_s} s is longer than the next part "
                                              f"({lengths[i + 1] / sr:.3f} s)")
        if into + xf[i] > n:
            raise arr.error(i, "crossfade_s", f"the crossfade in ({into / sr:.3f} s) and out ({xf[i] / sr:.3f} s) "
                                              f"overlap: together longer than the part ({n / sr:.3f} s)")
    fade_in = max(int(round(arr.fade_in_s * sr)), min(edge, lengths[0] // 4))
    fade_out = max(int(round(arr.fade_out_s * sr)), min(edge, lengths[-1] // 4))
    if fade_in > lengths[0] - xf[0]:
        raise arr.error(None, "fade_in_s", f"{arr.fade_in_s} s is longer than part 1 before its crossfade")
    if fade_out > lengths[-1] - (xf[-2] if len(xf) > 1 else 0) - (fade_in if len(lengths) == 1 else 0):
        raise arr.error(None, "fade_out_s", f"{arr.fade_out_s} s is longer than the last part after its crossfade")
    return fade_in, fade_out


def clip_paths(arr: Arrangement) -> list[Path]:
    """Each part's clip file (UserInputError naming the part when one is missing or ambiguous)."""
    return [resolve_clip(arr, i) for i in range(len(arr.parts))]


def resolve_clip(arr: Arrangement, i: int) -> Path:
    clip = arr.parts[i].clip
    base = Path(arr.base_dir)
    if "/" in clip or "\\" in clip or Path(clip).suffix.lower() in AUDIO_EXTENSIONS:
        p = Path(clip) if Path(clip).is_absolute() else Path(os.path.normpath(base / clip))
        if not p.is_file():
            raise arr.error(i, "clip", f"no such clip file {p}")
        return p
    folder = Path(os.path.normpath(base / arr.clips_dir)) if arr.clips_dir else base
    found = sorted(f for f in folder.glob(f"{glob_escape(clip)}.*")
                   if f.is_file() and f.suffix.lower() in AUDIO_EXTENSIONS) if folder.is_dir() else []
    if not found:
        raise arr.error(i, "clip", f"no clip {clip!r} in {folder}")
    if len(found) > 1:
        raise arr.error(i, "clip", f"{clip!r} is ambiguous in {folder} ({', '.join(f.name for f in found)}); "
                                   "give the file name")
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
