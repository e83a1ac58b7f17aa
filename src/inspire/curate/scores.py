"""Per-clip features and a verdict a listener would agree with, computed from audio alone.

Every feature has a documented meaning and unit (`FEATURES`). Loudness is BS.1770 integrated
loudness from pyloudnorm; everything else is a few lines of numpy/scipy over one shared
analysis: a log band-energy spectrogram (`band_energies_db`, 16-ms hop, mel-spaced bands).

The loop detector looks for a stretch where the spectrogram repeats itself at one lag: frames
are centred per band (so a steady drone does not look repetitive) and compared with the frames
one lag later (cosine similarity); a run of high similarity lasting several periods, which is
clearly higher than the similarity at lags inside the period (so a slowly evolving pad is not
taken for a loop), is a stuck loop. Its period is refined to the sample with the waveform's
autocorrelation.

Nothing here imports torch; scipy and pyloudnorm are imported inside the functions that use
them so that `inspire --help` starts fast.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

import numpy as np

from inspire.audio import spectral
from inspire.errors import UserInputError

# What each feature means; the report and the CSV header use these words.
FEATURES: dict[str, str] = {
    "duration_s": "clip length (seconds)",
    "loudness_lufs": "integrated loudness, ITU-R BS.1770 via pyloudnorm (LUFS; null when silent or < 0.4 s)",
    "peak_dbfs": "largest absolute sample (dBFS)",
    "silence_fraction": "share of 50-ms frames quieter than `silence_dbfs` RMS (0-1)",
    "clipped_fraction": "share of samples in flat-topped runs (>= 3 equal samples) at a peak near full scale (0-1)",
    "dc_offset": "mean sample value (full-scale units, -1..1)",
    "spectral_flatness": "median Wiener entropy of non-silent frames (0 = pure tone, ~0.56 = white noise)",
    "variety_db": "median spectral change between consecutive 0.5-s blocks (dB, RMS over 40 bands)",
    "variety_p90_db": "90th percentile of that change: how big the biggest moves are (dB)",
    "monotony": "share of consecutive 0.5-s blocks that barely change (< `drone_variety_db`) (0-1)",
    "dynamic_range_db": "spread of 400-ms block levels, 10th to 95th percentile of non-silent blocks (dB)",
    "loop_period_s": "period of the longest stuck loop (seconds; null when none)",
    "loop_start_s": "where that loop starts (seconds; null when none)",
    "loop_end_s": "where it ends (seconds; null when none)",
    "loop_fraction": "share of the clip spent in that loop (0-1)",
    "loop_similarity": "mean spectral similarity between one period and the next inside it (0-1)",
    "collapse_s": "where the clip falls into noise for good (seconds; null when it does not): features above "
                  "then describe only the clean stretch before it",
    "collapse_temperature": "the temperature there, from the clip's sidecar (null when unknown)",
    "clean_s": "end of that clean stretch, the clip's keeper region (seconds; null when no collapse)",
}


@dataclass(frozen=True)
class Thresholds:
    """Where a feature turns into a reason to discard. Defaults tuned on real 16-kHz music
    (the muldjord dev corpus, plain and mu-law-quantized) and on synthetic failures."""

    silence_dbfs: float = -50.0  # a 50-ms frame with RMS below this is silent
    max_silence_fraction: float = 0.6  # more silent than this: "mostly silence"
    min_loudness_lufs: float = -45.0  # quieter than this overall: "barely audible"
    noise_flatness: float = 0.3  # median spectral flatness above this: "white noise"
    max_clipped_fraction: float = 0.01  # more flat-topped samples than this: "clipped"
    max_dc_offset: float = 0.05  # |mean| above this: "DC offset"
    drone_variety_db: float = 1.0  # median block-to-block change below this: "monotonous drone"
    loop_similarity: float = 0.75  # frames one period apart at least this similar count as repeating
    loop_contrast: float = 0.25  # ...and this much more similar than frames inside the period
    min_loop_period_s: float = 0.1
    max_loop_period_s: float = 3.0
    min_loop_s: float = 3.0  # a loop must last this long...
    min_loop_repeats: float = 3.0  # ...and this many periods to count
    max_loop_fraction: float = 0.3  # a loop covering more of the clip than this: "stuck loop"
    min_loop_change_db: float = 2.0  # a loop must move inside its period (RMS dB); else it is a drone
    collapse_flatness: float = 0.3  # a 64-ms frame flatter than this is a noise frame
    collapse_share: float = 0.8  # a collapse: at least this share of noise frames from its onset to the end...
    clean_share: float = 0.3  # ...at most this share before it...
    min_collapse_s: float = 1.0  # ...lasting at least this long, to the end of the clip
    collapse_margin_s: float = 0.25  # the keeper region ends this long before the onset
    min_keeper_s: float = 3.0  # a clean stretch shorter than this: the collapsed clip is discarded

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, (int, float)) or not math.isfinite(value):
                raise UserInputError(f"threshold {f.name} must be a finite number, got {value!r}")
        if not 0 < self.min_loop_period_s < self.max_loop_period_s:
            raise UserInputError(
                f"thresholds need 0 < min_loop_period_s < max_loop_period_s, "
                f"got {self.min_loop_period_s} and {self.max_loop_period_s}"
            )
        for name in ("max_silence_fraction", "noise_flatness", "max_clipped_fraction", "max_loop_fraction",
                     "collapse_flatness", "collapse_share", "clean_share"):
            if not 0 <= getattr(self, name) <= 1:
                raise UserInputError(f"threshold {name} must be between 0 and 1, got {getattr(self, name)}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_overrides(cls, pairs: list[str] | None) -> "Thresholds":
        """Build from 'name=value' strings (the CLI's --threshold); unknown names are errors."""
        known = {f.name for f in fields(cls)}
        values: dict[str, float] = {}
        for pair in pairs or []:
            name, sep, text = pair.partition("=")
            name = name.strip().replace("-", "_")
            if not sep or name not in known:
                raise UserInputError(
                    f"--threshold {pair!r}: expected NAME=VALUE with NAME one of {', '.join(sorted(known))}"
                )
            try:
                values[name] = float(text)
            except ValueError:
                raise UserInputError(f"--threshold {pair!r}: {text!r} is not a number") from None
        return cls(**values)


@dataclass
class ClipScore:
    """Features, verdict and score for one clip; `bands_db` (T, B) is kept for pictures."""

    features: dict
    verdict: str  # "keep" | "discard"
    reasons: list[str]
    score: float  # 0..1, higher is better
    bands_db: np.ndarray | None = None  # (frames, bands) log band energies, one row per HOP_S


# --- the shared analysis -------------------------------------------------------------------


HOP_S = 0.016  # analysis hop (seconds)
N_BANDS = 40


def stft_power(x: np.ndarray, sample_rate: int, *, hop_s: float = HOP_S) -> tuple[np.ndarray, int]:
    """Power spectrogram (frames, bins) with a Hann window of ~64 ms, frames centred on
    multiples of the hop, scaled so a full-scale sine peaks near 1 (0 dB); returns it and the
    hop in samples."""
    hop = max(1, round(hop_s * sample_rate))
    n_fft = 1 << max(6, math.ceil(math.log2(0.064 * sample_rate)))
    power = spectral.power(spectral.stft(x, n_fft=n_fft, hop=hop))
    power /= float(np.sum(np.hanning(n_fft).astype(np.float32) ** 2)) * n_fft / 2
    return power, hop


def mel_filterbank(sample_rate: int, n_fft_bins: int, n_bands: int, *, fmin: float = 50.0) -> np.ndarray:
    """Triangular mel-spaced filters, (bins, bands), each summing to one."""
    fmax = sample_rate / 2
    mel = lambda f: 2595.0 * np.log10(1.0 + f / 700.0)  # noqa: E731
    edges_hz = 700.0 * (10 ** (np.linspace(mel(fmin), mel(fmax), n_bands + 2) / 2595.0) - 1.0)
    freqs = np.linspace(0, fmax, n_fft_bins)
    fb = np.zeros((n_fft_bins, n_bands), dtype=np.float32)
    for b in range(n_bands):
        lo, mid, hi = edges_hz[b : b + 3]
        up = (freqs - lo) / max(mid - lo, 1e-9)
        down = (hi - freqs) / max(hi - mid, 1e-9)
        fb[:, b] = np.clip(np.minimum(up, down), 0, None)
        if fb[:, b].sum() == 0:  # a band narrower than a bin: take the nearest bin
            fb[np.argmin(np.abs(freqs - mid)), b] = 1.0
    return fb / fb.sum(axis=0, keepdims=True)


def band_energies_db(power: np.ndarray, sample_rate: int, *, n_bands: int = N_BANDS) -> np.ndarray:
    """(frames, bands) mel band energies in dB (floor -120 dB)."""
    fb = mel_filterbank(sample_rate, power.shape[1], n_bands)
    return (10.0 * np.log10(power @ fb + 1e-12)).astype(np.float32)


# --- features ------------------------------------------------------------------------------


def analyze(x: np.ndarray, sample_rate: int, *, thresholds: Thresholds = Thresholds(),
            temperature: dict | None = None) -> ClipScore:
    """Compute every feature of mono float audio `x` and judge it. `temperature`: the clip's
    resolved temperature curve from its sidecar ({"times_s", "values"}), to say the temperature
    at which a collapse began."""
    feats, bands = compute_features(x, sample_rate, thresholds=thresholds)
    if feats["collapse_s"] is not None and temperature:
        at = np.interp(feats["collapse_s"], temperature["times_s"], temperature["values"])
        feats["collapse_temperature"] = round(float(at), 3)
    verdict, reasons, score = judge(feats, thresholds)
    return ClipScore(feats, verdict, reasons, score, bands)


def compute_features(x: np.ndarray, sample_rate: int, *,
                     thresholds: Thresholds = Thresholds()) -> tuple[dict, np.ndarray]:
    """Every feature of `x`, and its band energies (for pictures). When the clip collapses into
    noise (`find_collapse`) the features other than the collapse's own describe the clean
    stretch before it: that is what a listener would keep."""
    x = np.asarray(x, dtype=np.float32)
    t = thresholds
    power, hop = stft_power(x, sample_rate)
    bands_all = band_energies_db(power, sample_rate)
    frame_db = 10.0 * np.log10(power.sum(axis=1) * 0.5 + 1e-12)  # ~ RMS level of the frame (dBFS)
    loud = frame_db > t.silence_dbfs
    hop_s = hop / sample_rate

    feats: dict = {"duration_s": round(x.size / sample_rate, 3)}
    collapse = find_collapse(power, loud, hop_s=hop_s, duration_s=x.size / sample_rate, thresholds=t)
    bands = bands_all
    if collapse is not None and collapse["clean_s"] > 0:  # judge the clean stretch
        frames = max(1, int(collapse["clean_s"] / hop_s))
        x = x[: round(collapse["clean_s"] * sample_rate)]
        power, bands, loud = power[:frames], bands[:frames], loud[:frames]
    feats["loudness_lufs"] = _round(loudness_lufs(x, sample_rate), 2)
    peak = float(np.max(np.abs(x))) if x.size else 0.0
    feats["peak_dbfs"] = _round(_db(peak), 2)
    feats["silence_fraction"] = round(silence_fraction(x, sample_rate, silence_dbfs=t.silence_dbfs), 4)
    feats["clipped_fraction"] = round(clipped_fraction(x), 5)
    feats["dc_offset"] = round(float(x.mean(dtype=np.float64)) if x.size else 0.0, 5)
    feats["spectral_flatness"] = round(spectral_flatness(power, loud), 4)
    changes = block_changes_db(bands, loud, hop_s=hop_s)
    feats["variety_db"] = round(float(np.median(changes)), 3) if changes.size else 0.0
    feats["variety_p90_db"] = round(float(np.quantile(changes, 0.9)), 3) if changes.size else 0.0
    feats["monotony"] = round(float(np.mean(changes < t.drone_variety_db)), 4) if changes.size else 1.0
    feats["dynamic_range_db"] = round(dynamic_range_db(x, sample_rate, silence_dbfs=t.silence_dbfs), 2)
    loop = find_loop(x, sample_rate, bands, loud, hop=hop, thresholds=t)
    feats["loop_period_s"] = loop["period_s"] if loop else None
    feats["loop_start_s"] = loop["start_s"] if loop else None
    feats["loop_end_s"] = loop["end_s"] if loop else None
    feats["loop_fraction"] = round(loop["fraction"], 4) if loop else 0.0
    feats["loop_similarity"] = loop["similarity"] if loop else None
    feats["collapse_s"] = collapse["onset_s"] if collapse else None
    feats["collapse_temperature"] = None
    feats["clean_s"] = collapse["clean_s"] if collapse else None
    return feats, bands_all


def find_collapse(power: np.ndarray, loud: np.ndarray, *, hop_s: float, duration_s: float,
                  thresholds: Thresholds = Thresholds()) -> dict | None:
    """Where a clip falls into noise and stays there: {"onset_s", "clean_s"} or None.

    Every non-silent frame flatter than `collapse_flatness` is a noise frame. The onset is the
    frame that best splits the clip into "mostly not noise" before and "noise" after (the step
    function closest to the noise frames: fewest noise frames before plus fewest other frames
    after; accurate to a frame or two, 16-32 ms). It is a collapse when at least
    `collapse_share` of the frames after it are noise, at most `clean_share` before, and the
    noise lasts `min_collapse_s` to the end. A clip that is noise from its first half second
    (onset < 0.5 s) is no collapse but noise (`judge` names it from the whole clip's flatness).
    clean_s: where the keeper region before the onset ends (`collapse_margin_s` before it), 0
    when nothing before the onset is worth keeping.
    """
    t = thresholds
    n = power.shape[0]
    if n < 2:
        return None
    noisy = loud & (frame_flatness(power) > t.collapse_flatness)
    before = np.concatenate([[0], np.cumsum(noisy)])  # noise frames in [0, k)
    clean_after = (n - np.arange(n + 1)) - (before[-1] - before)  # other frames in [k, n)
    k = int(np.argmin(before + clean_after))
    onset = k * hop_s
    if (n - k) * hop_s < t.min_collapse_s or onset < 0.5:
        return None
    if (before[-1] - before[k]) / (n - k) < t.collapse_share or before[k] / k > t.clean_share:
        return None
    clean = onset - t.collapse_margin_s
    return {"onset_s": round(onset, 3), "clean_s": round(clean, 3) if clean >= 0.5 else 0.0}


def frame_flatness(power: np.ndarray) -> np.ndarray:
    """Spectral flatness (Wiener entropy: geometric / arithmetic mean, DC left out) of every
    frame of a power spectrogram (frames, bins) -> (frames,)."""
    p = power[:, 1:].astype(np.float64) + 1e-12
    return np.exp(np.mean(np.log(p), axis=1)) / np.mean(p, axis=1)


def loudness_lufs(x: np.ndarray, sample_rate: int) -> float | None:
    """BS.1770-4 integrated loudness (pyloudnorm); None when too short to measure or silent."""
    import pyloudnorm

    if x.size < int(0.4 * sample_rate) + 1:
        return None
    value = pyloudnorm.Meter(sample_rate).integrated_loudness(x.astype(np.float64))
    return float(value) if math.isfinite(value) else None


def silence_fraction(x: np.ndarray, sample_rate: int, *, silence_dbfs: float = -50.0) -> float:
    n = max(1, int(0.05 * sample_rate))
    count = x.size // n
    if count == 0:
        return 1.0 if _db(float(np.sqrt(np.mean(x.astype(np.float64) ** 2))) if x.size else 0.0) < silence_dbfs else 0.0
    frames = x[: count * n].reshape(count, n).astype(np.float64)
    rms = np.sqrt(np.mean(frames**2, axis=1))
    return float(np.mean(20.0 * np.log10(rms + 1e-12) < silence_dbfs))


def clipped_fraction(x: np.ndarray, *, full_scale: float = 0.9, min_run: int = 3) -> float:
    """Share of samples in runs of >= `min_run` equal samples at the clip's peak, when that peak
    is near full scale. (8-bit mu-law audio tops out at 0.978, so 'full scale' is the clip's own
    peak rather than 1.0.)"""
    if x.size == 0:
        return 0.0
    a = np.abs(x)
    peak = float(a.max())
    if peak < full_scale:
        return 0.0
    at_peak = a >= peak * (1 - 1e-4)
    # Runs of consecutive at-peak samples: run lengths from the edges of the boolean mask.
    edges = np.flatnonzero(np.diff(np.concatenate(([0], at_peak.view(np.int8), [0]))))
    lengths = edges[1::2] - edges[::2]
    return float(lengths[lengths >= min_run].sum() / x.size)


def spectral_flatness(power: np.ndarray, loud: np.ndarray) -> float:
    """Median over non-silent frames of geometric / arithmetic mean of the power spectrum."""
    if not loud.any():
        return 0.0
    return float(np.median(frame_flatness(power[loud])))


def block_changes_db(bands: np.ndarray, loud: np.ndarray, *, hop_s: float, block_s: float = 0.5) -> np.ndarray:
    """RMS-over-bands difference (dB) between the mean spectra of consecutive 0.5-s blocks,
    for pairs of blocks that are mostly non-silent."""
    n = max(1, round(block_s / hop_s))
    count = bands.shape[0] // n
    if count < 2:
        return np.zeros(0, dtype=np.float32)
    blocks = bands[: count * n].reshape(count, n, -1).mean(axis=1)
    ok = loud[: count * n].reshape(count, n).mean(axis=1) > 0.5
    diff = np.sqrt(np.mean(np.diff(blocks, axis=0) ** 2, axis=1))
    return diff[ok[1:] & ok[:-1]]


def dynamic_range_db(x: np.ndarray, sample_rate: int, *, silence_dbfs: float = -50.0) -> float:
    n, hop = int(0.4 * sample_rate), int(0.1 * sample_rate)
    if x.size < n:
        return 0.0
    frames = np.lib.stride_tricks.sliding_window_view(x.astype(np.float64), n)[::hop]
    level = 10.0 * np.log10(np.mean(frames**2, axis=1) + 1e-12)
    level = level[level > silence_dbfs]
    if level.size < 2:
        return 0.0
    return float(np.quantile(level, 0.95) - np.quantile(level, 0.10))


def find_loop(
    x: np.ndarray, sample_rate: int, bands: np.ndarray, loud: np.ndarray, *, hop: int, thresholds: Thresholds
) -> dict | None:
    """The longest stretch where the spectrogram repeats at one period (see module docstring);
    None when there is no such stretch of at least `min_loop_s` and `min_loop_repeats` periods."""
    from scipy import ndimage

    t = thresholds
    hop_s = hop / sample_rate
    n = bands.shape[0]
    lo = max(1, round(t.min_loop_period_s / hop_s))
    hi = min(round(t.max_loop_period_s / hop_s), n // 2)
    if hi < lo or loud.sum() < 2:
        return None
    f = bands - np.median(bands[loud], axis=0)
    f /= np.linalg.norm(f, axis=1, keepdims=True) + 1e-9
    f[~loud] = 0.0  # silence repeats trivially; it must never look like a loop

    def similarity(lag: int) -> np.ndarray:
        return np.einsum("ij,ij->i", f[:-lag], f[lag:])

    best = None  # (span frames, lag, start, run length)
    spans = {}
    closing = np.ones(5, dtype=bool)
    for lag in range(lo, hi + 1):
        high = similarity(lag) > t.loop_similarity
        if not high.any():
            continue
        high = ndimage.binary_closing(high, structure=closing) | high
        labels, count = ndimage.label(high)
        if count == 0:
            continue
        sizes = np.bincount(labels)[1:]
        k = int(np.argmax(sizes))
        run = int(sizes[k])
        start = int(np.flatnonzero(labels == k + 1)[0])
        span = run + lag
        if span * hop_s >= t.min_loop_s and span >= t.min_loop_repeats * lag:
            spans[lag] = (span, start, run)
            if best is None or span > best[0]:
                best = (span, lag, start, run)
    if best is None:
        return None
    # The period is the shortest lag whose loop is about as long as the longest one; multiples
    # of it (2P, 3P) repeat too. Then settle on the best-aligned lag around it.
    lag = min(k for k, (span, _, _) in spans.items() if span >= 0.8 * best[0])
    span, start, run = spans[lag]
    region = slice(start, start + run)
    candidates = [k for k in range(lag - 2, lag + 3) if k in spans]
    lag = max(candidates, key=lambda k: float(similarity(k)[region].mean()))
    sim = float(similarity(lag)[region].mean())
    inside = [max(1, round(lag * q)) for q in (0.25, 0.375, 0.5, 0.625, 0.75)]
    inside_sim = min(float(similarity(k)[region].mean()) for k in inside if k < lag)
    if sim - inside_sim < t.loop_contrast:
        return None  # as similar inside the period as across it: slow change, not a loop
    seg = bands[region]
    change = float(np.sqrt(np.mean((seg - seg.mean(axis=0)) ** 2)))
    if change < t.min_loop_change_db:
        return None  # nothing moves inside the 'loop': a drone, judged as such elsewhere
    period = _refine_period(x, start * hop, (start + run) * hop, lag * hop, 2 * hop)
    end = min(start + run + lag, n)
    duration = x.size / sample_rate
    return {
        "period_s": round(period / sample_rate, 4),
        "start_s": round(start * hop_s, 3),
        "end_s": round(min(end * hop_s, duration), 3),
        "fraction": min(1.0, (end - start) * hop_s / max(duration, 1e-9)),
        "similarity": round(sim, 3),
    }


def _refine_period(x: np.ndarray, a: int, b: int, lag: int, tolerance: int) -> int:
    """Sharpen a period found on 16-ms frames to the sample: the waveform autocorrelation's
    peak within +-`tolerance` samples of `lag`, over (at most 10 s of) the looping stretch."""
    seg = x[a : min(b + lag, a + 10 * lag + 160_000)].astype(np.float64)
    if seg.size < lag + tolerance + 2:
        return lag
    seg = seg - seg.mean()
    size = 1 << math.ceil(math.log2(2 * seg.size))
    spec = np.fft.rfft(seg, size)
    ac = np.fft.irfft(spec.real**2 + spec.imag**2, size)[: lag + tolerance + 1]
    lo = max(1, lag - tolerance)
    if ac[0] <= 0:
        return lag
    window = ac[lo:] / (seg.size - np.arange(lo, lag + tolerance + 1))  # unbiased
    k = int(np.argmax(window))
    if window[k] <= 0.2 * ac[0] / seg.size:
        return lag  # the waveform does not repeat cleanly (phase drift): trust the frames
    return lo + k


# --- the verdict ---------------------------------------------------------------------------


def judge(feats: dict, thresholds: Thresholds = Thresholds()) -> tuple[str, list[str], float]:
    """Turn features into ('keep' | 'discard', reasons, score in 0..1).

    Reasons that discard come first; notes about milder faults (a little clipping, DC) are
    listed for kept clips too. The score rewards change (variety) and penalises silence,
    noise, clipping and looping; a discarded clip's score is quartered so ranks read sensibly.
    A clip that collapsed into noise is judged on its clean stretch (the features say so): the
    collapse is a reason to discard when that stretch is shorter than `min_keeper_s`, else a note.
    """
    t = thresholds
    reasons: list[str] = []
    notes: list[str] = []
    if feats.get("collapse_s") is not None:
        temp = feats.get("collapse_temperature")
        said = f"collapsed into noise at {feats['collapse_s']:.1f} s" + (f" (T {temp:.2f})" if temp is not None else "")
        if feats["clean_s"] < t.min_keeper_s:
            reasons.append(said)
        else:
            notes.append(f"{said}; the first {feats['clean_s']:.1f} s are clean")
    silence = feats["silence_fraction"]
    lufs = feats["loudness_lufs"]
    mostly_silent = silence > t.max_silence_fraction or lufs is None
    if mostly_silent:
        reasons.append("mostly silence")
    elif lufs < t.min_loudness_lufs:
        reasons.append(f"barely audible ({lufs:.0f} LUFS)")
    noisy = not mostly_silent and feats["spectral_flatness"] > t.noise_flatness
    if noisy:
        reasons.append("white noise" if feats["spectral_flatness"] > 0.45 else "mostly noise")
    if feats["loop_period_s"] is not None and feats["loop_fraction"] > t.max_loop_fraction and not mostly_silent:
        p, a, b = feats["loop_period_s"], feats["loop_start_s"], feats["loop_end_s"]
        until_end = b >= (feats.get("clean_s") or feats["duration_s"]) - max(0.5, p)
        if until_end:
            reasons.append(f"stuck in a {p:.2f} s loop from {a:.1f} s on")
        else:
            reasons.append(f"stuck in a {p:.2f} s loop from {a:.1f} s to {b:.1f} s")
    elif not (mostly_silent or noisy) and feats["variety_db"] < t.drone_variety_db:
        reasons.append("monotonous drone")
    if feats["clipped_fraction"] > t.max_clipped_fraction:
        reasons.append(f"clipped ({100 * feats['clipped_fraction']:.1f}% of samples)")
    elif feats["clipped_fraction"] > t.max_clipped_fraction / 10:
        notes.append(f"some clipping ({100 * feats['clipped_fraction']:.2f}% of samples)")
    if abs(feats["dc_offset"]) > t.max_dc_offset:
        notes.append(f"DC offset ({feats['dc_offset']:+.2f})")

    interest = 1.0 - math.exp(-feats["variety_db"] / 3.0)
    score = interest * (1.0 - silence) * (1.0 - feats["loop_fraction"])
    score *= min(1.0, max(0.0, 1.0 - (feats["spectral_flatness"] - 0.15) / 0.3))
    score *= max(0.0, 1.0 - 20.0 * feats["clipped_fraction"])
    score *= 0.9 if notes else 1.0
    verdict = "discard" if reasons else "keep"
    if reasons:
        score *= 0.25
    return verdict, reasons + notes, round(float(score), 4)


def _db(amplitude: float) -> float | None:
    return 20.0 * math.log10(amplitude) if amplitude > 0 else None


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(float(value), digits)
