"""Lineage: which passages of a clip are near-copies of a training track, and from where.

A landmark fingerprint in the manner of Wang's Shazam paper (2003): spectral peaks of a
log-magnitude spectrogram (8 kHz, 64-ms window, 16-ms hop) are paired with a few later peaks
nearby, and each pair (anchor bin, bin difference, frame difference) is a 22-bit hash stored
with the anchor's frame. A clip's hashes are looked up in the index; copies show up as many
hits sharing one offset (source frame - clip frame) over a stretch of the clip. Each such
proposal is then checked frame by frame against the track's stored band levels (33 log-spaced
bands a frame, `frame_similarity`), which confirms it, sets its ends to the frame and gives
its similarity.

Why this survives what the model does to audio: peaks are local maxima, so a gain change
moves none of them; 8-bit mu-law noise sits ~35 dB under the signal, far below the strongest
peaks; a few milliseconds of timing shift moves a peak by at most one frame, which lookups
with frame difference +-1 and an offset tolerance of +-2 frames absorb; slow drift stays
within that tolerance for seconds at a time. Why it does not fire on timbre: a hash records
*which* frequencies follow *which* at what interval - the notes and their rhythm - while
timbre shows up only as how many partials there are; different notes from the same
instrument share hashes by chance only, and chance hits scatter over offsets; the band-level
check removes each band's local mean (the timbre) before correlating what is left.

Why hand-written: the Python fingerprinting libraries (dejavu, audfprint, chromaprint via
pyacoustid) are built to name *whole recordings* - dejavu needs a database server, chromaprint
a C library and its fingerprints are tuned to whole-file lookup - and none returns the aligned
per-passage timeline (clip span -> track, source time, similarity) this needs. The method
itself is a few hundred lines of numpy.

No torch here; scipy is imported where it is used.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from inspire.audio import spectral
from inspire.audio.io import resample

ALGORITHM_VERSION = 1  # bump when anything below changes what an index holds

FP_RATE = 8000  # fingerprints are taken at this rate, whatever the audio's rate
N_FFT = 512  # 64 ms
HOP = 128  # 16 ms
HOP_S = HOP / FP_RATE
PEAK_FREQ_NEIGHBOURS = 15  # a peak is the largest value in 15 bins (234 Hz) ...
PEAK_TIME_NEIGHBOURS = 7  # ... by 7 frames (112 ms)
PEAK_ABOVE_MEDIAN_DB = 10.0  # ... and this far above its frame's median level
PEAKS_PER_SECOND = 40  # the strongest peaks kept per second
FAN_OUT = 6  # each anchor pairs with the next 6 peaks ...
MAX_DT = 40  # ... up to 40 frames (0.64 s) later ...
MAX_DF = 100  # ... and 100 bins (1.56 kHz) apart
TRACK_GAP = 64  # frames left between tracks in the global timeline
MAX_POSTINGS = 300  # a hash seen more often than this in the index says nothing: skipped
OFFSET_TOLERANCE = 2  # frames (+-32 ms) of timing slack within one passage


@dataclass(frozen=True)
class SearchSettings:
    """When a cluster of hits counts as a copied passage."""

    min_hits: int = 8  # distinct clip landmarks agreeing on one offset propose a passage
    max_gap_s: float = 1.0  # a longer stretch without hits splits a proposal
    min_agreement: float = 0.5  # frames whose band levels correlate this much (smoothed) are copied
    edge_agreement: float = 0.2  # at a passage's ends, frames agreeing this much still count
    max_dip_s: float = 0.25  # shorter dips below min_agreement do not end a passage
    min_seconds: float = 1.5  # shortest passage reported
    # mean correlation over the passage (unrelated: ~0-0.1; mu-law copy of mu-law data: ~0.5)
    min_similarity: float = 0.35


@dataclass(frozen=True)
class Match:
    clip_start_s: float
    clip_end_s: float
    track: str  # track name (file stem)
    source_start_s: float  # where clip_start_s sits in the track
    similarity: float  # mean frame correlation of band levels (see `frame_similarity`), 0..1

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Index:
    """Every track's landmarks on one global frame timeline (tracks separated by gaps)."""

    hashes: np.ndarray  # (N,) uint32, sorted
    frames: np.ndarray  # (N,) int32 global anchor frame of each hash
    bands: np.ndarray  # (global frames, 33) uint8 band levels (see `_band_levels`), zero in the gaps
    names: list[str]  # track names
    starts: np.ndarray  # (tracks,) int64 global frame where each track starts
    lengths: np.ndarray  # (tracks,) int64 frames in each track
    key: str = ""  # what the index was built from (sha256s + version), for caching

    @property
    def seconds(self) -> float:
        return float(self.lengths.sum() * HOP_S)


# --- fingerprints --------------------------------------------------------------------------


@dataclass
class Fingerprint:
    """What one piece of audio contributes: landmark hashes with their anchor frames (sorted
    by frame) and its band levels, one row per 16-ms frame."""

    hashes: np.ndarray  # (N,) uint32: anchor bin << 14 | (bin difference + 128) << 6 | frame difference
    anchors: np.ndarray  # (N,) int32 anchor frame
    bands: np.ndarray  # (frames, 33) uint8 band levels, 0.5 dB steps (see `_band_levels`)


def fingerprint(x: np.ndarray, sample_rate: int) -> Fingerprint:
    """Landmarks and frame descriptors of mono audio at any rate."""
    y = resample(np.asarray(x, dtype=np.float32), sample_rate, FP_RATE)
    spec = np.abs(spectral.stft(y, n_fft=N_FFT, hop=HOP))[:, :256]  # (len // HOP + 1 frames, 256 bins)
    power = spec.astype(np.float32) ** 2
    h, a = _landmarks(10.0 * np.log10(power + 1e-14))
    return Fingerprint(h, a, _band_levels(power))


def _landmarks(db: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    from scipy import ndimage

    local_max = ndimage.maximum_filter(db, size=(PEAK_TIME_NEIGHBOURS, PEAK_FREQ_NEIGHBOURS), mode="nearest")
    floor = np.median(db, axis=1, keepdims=True) + PEAK_ABOVE_MEDIAN_DB
    t, f = np.nonzero((db == local_max) & (db > floor) & (db > -100.0))
    if t.size == 0:
        return np.zeros(0, np.uint32), np.zeros(0, np.int32)
    # Keep the strongest PEAKS_PER_SECOND per one-second block: dense enough to survive noise,
    # sparse enough to keep the index small.
    block = t // round(1.0 / HOP_S)
    order = np.lexsort((-db[t, f], block))
    t, f, block = t[order], f[order], block[order]
    first = np.searchsorted(block, block, side="left")
    keep = (np.arange(t.size) - first) < PEAKS_PER_SECOND
    t, f = t[keep], f[keep]
    order = np.lexsort((f, t))
    t, f = t[order].astype(np.int64), f[order].astype(np.int64)
    # Pair each anchor with the next FAN_OUT peaks inside the target zone.
    hashes, anchors = [], []
    taken = np.zeros(t.size, dtype=np.int64)
    for k in range(1, 4 * FAN_OUT):
        if k >= t.size:
            break
        dt = t[k:] - t[:-k]
        df = f[k:] - f[:-k]
        ok = (dt >= 1) & (dt <= MAX_DT) & (np.abs(df) <= MAX_DF) & (taken[:-k] < FAN_OUT)
        idx = np.flatnonzero(ok)
        taken[idx] += 1
        hashes.append((f[idx] << 14) | ((df[idx] + 128) << 6) | dt[idx])
        anchors.append(t[idx])
    if not hashes:  # a single peak pairs with nothing
        return np.zeros(0, np.uint32), np.zeros(0, np.int32)
    h = np.concatenate(hashes).astype(np.uint32)
    a = np.concatenate(anchors).astype(np.int32)
    order = np.argsort(a, kind="stable")
    return h[order], a[order]


def _band_matrix() -> np.ndarray:
    """(256 bins, 33 bands) log-spaced from 150 Hz to 3.8 kHz."""
    edges = np.geomspace(150.0, 3800.0, 34) / (FP_RATE / N_FFT)
    bins = np.arange(256)
    m = np.zeros((256, 33), np.float32)
    for b in range(33):
        m[(bins >= edges[b]) & (bins < max(edges[b + 1], edges[b] + 1)), b] = 1.0
    return m


def _band_levels(power: np.ndarray) -> np.ndarray:
    """(frames, 33) energies of log-spaced bands in dB, stored as uint8 in 0.5-dB steps
    (0 = -115 dB or less). 33 numbers a frame, enough to check a proposed copy frame by frame."""
    e = 10.0 * np.log10(power @ _band_matrix() + 1e-12)
    return np.clip(np.round((e + 115.0) * 2.0), 0, 255).astype(np.uint8)


def build_index(tracks, sample_rate: int, *, key: str = "", progress=None) -> Index:
    """Index named tracks: `tracks` maps name -> mono float audio at `sample_rate` (anything
    with .items(), so audio can be produced one track at a time); `progress(name)` is called
    after each."""
    all_h, all_f, all_bands, names, starts, lengths = [], [], [], [], [], []
    cursor = 0
    for name, audio in tracks.items():
        fp = fingerprint(audio, sample_rate)
        n = fp.bands.shape[0]
        all_h.append(fp.hashes)
        all_f.append(fp.anchors + cursor)
        all_bands.extend([fp.bands, np.zeros((TRACK_GAP, fp.bands.shape[1]), np.uint8)])
        names.append(str(name))
        starts.append(cursor)
        lengths.append(n)
        cursor += n + TRACK_GAP
        if progress:
            progress(name)
    hashes = np.concatenate(all_h) if all_h else np.zeros(0, np.uint32)
    frames = np.concatenate(all_f).astype(np.int32) if all_f else np.zeros(0, np.int32)
    bands = np.concatenate(all_bands) if all_bands else np.zeros((0, 33), np.uint8)
    order = np.argsort(hashes, kind="stable")
    return Index(
        hashes[order], frames[order], bands, names, np.array(starts, np.int64), np.array(lengths, np.int64), key
    )


def save_index(index: Index, path: str | os.PathLike) -> None:
    from inspire.files import atomic_path

    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(
                fh,
                hashes=index.hashes,
                frames=index.frames,
                bands=index.bands,
                starts=index.starts,
                lengths=index.lengths,
                meta=np.array(json.dumps({"names": index.names, "key": index.key, "version": ALGORITHM_VERSION})),
            )


def load_index(path: str | os.PathLike) -> Index | None:
    """The index saved at `path`, or None when absent, unreadable or from another version."""
    try:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            if meta.get("version") != ALGORITHM_VERSION:
                return None
            return Index(z["hashes"], z["frames"], z["bands"], meta["names"], z["starts"], z["lengths"], meta["key"])
    except (OSError, ValueError, KeyError):
        return None


def index_key(sha256s: list[str], sample_rate: int) -> str:
    text = json.dumps({"tracks": sha256s, "rate": sample_rate, "version": ALGORITHM_VERSION})
    return hashlib.sha256(text.encode()).hexdigest()


def run_index(run_dir: str | os.PathLike, *, progress: bool = False) -> Index:
    """The lineage index of a run's prepared tracks, from RUN_DIR/lineage/index.npz when it was
    built from the same tracks (by sha256) and algorithm version; otherwise built and saved.
    Raises DatasetError when the run has no prepared data."""
    from inspire.audio.dataset import load_prepared

    prep = load_prepared(run_dir)
    tracks = list(prep.tracks)
    rate = int(prep.settings.sample_rate)
    key = index_key([t.sha256 for t in tracks], rate)
    path = Path(run_dir) / "lineage" / "index.npz"
    cached = load_index(path)
    if cached is not None and cached.key == key:
        return cached

    class _Lazy:  # reads one track at a time so that memory holds one track, not the corpus
        def items(self):
            for track in tracks:
                yield track.name, prep.audio(track)

    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(tracks), desc="indexing tracks", unit="track", file=None)
    index = build_index(_Lazy(), rate, key=key, progress=(lambda _name: bar.update(1) if bar else None))
    if bar:
        bar.close()
    save_index(index, path)
    return index


# --- search --------------------------------------------------------------------------------


def search(index: Index, x: np.ndarray, sample_rate: int, *,
           settings: SearchSettings = SearchSettings()) -> list[Match]:
    """Passages of `x` that are near-copies of indexed tracks, sorted by clip time.

    Landmark hits propose (offset, track, stretch); the frame descriptors then confirm each
    proposal, set its ends to the frame and measure its similarity."""
    fp = fingerprint(x, sample_rate)
    h, t = fp.hashes, fp.anchors.astype(np.int64)
    if h.size == 0 or index.hashes.size == 0:
        return []
    # Look every clip hash up with its frame difference as found and +-1 (timing jitter).
    q_h = np.concatenate([h, h + 1, h - 1])
    q_id = np.concatenate([np.arange(h.size)] * 3)
    lo = np.searchsorted(index.hashes, q_h, side="left")
    n = np.searchsorted(index.hashes, q_h, side="right") - lo
    n[n > MAX_POSTINGS] = 0  # a hash everywhere in the corpus (a held note) tells nothing
    if n.sum() == 0:
        return []
    pos = np.repeat(lo - np.cumsum(n) + n, n) + np.arange(n.sum())
    clip_id = np.repeat(q_id, n)  # which clip landmark each hit belongs to
    offset = index.frames[pos].astype(np.int64) - t[clip_id]  # global frame of the clip's frame 0
    base = int(t.max()) + 1
    alive = np.ones(offset.size, dtype=bool)
    loud = _loud_frames(x, sample_rate, fp.bands.shape[0])
    matches: list[Match] = []
    for _ in range(64):  # strongest offset first, until no offset gathers enough hits
        if not alive.any():
            break
        votes = _distinct_votes(offset[alive] + base, clip_id[alive])
        smooth = np.convolve(votes, np.ones(2 * OFFSET_TOLERANCE + 1), mode="same")
        best = int(np.argmax(smooth))
        if smooth[best] < settings.min_hits:
            break
        near = alive & (np.abs(offset + base - best) <= OFFSET_TOLERANCE)
        alive &= ~near
        ids = np.unique(clip_id[near])
        times = t[ids]
        cuts = np.flatnonzero(np.diff(times) > round(settings.max_gap_s / HOP_S)) + 1
        for group in np.split(times, cuts):
            if group.size >= settings.min_hits:
                m = _confirm(index, fp, loud, best - base, int(group[0]), int(group[-1]) + MAX_DT // 2, settings)
                if m is not None:
                    matches.append(m)
    return _drop_overlaps(matches)


def _distinct_votes(keys: np.ndarray, clip_id: np.ndarray) -> np.ndarray:
    """Per offset, how many distinct clip landmarks hit it (a landmark found three times at
    one offset through the +-1 lookups counts once)."""
    width = int(clip_id.max()) + 1
    pair = np.unique(keys * width + clip_id)
    return np.bincount(pair // width)


def _loud_frames(x: np.ndarray, sample_rate: int, n_frames: int, *, floor_dbfs: float = -55.0) -> np.ndarray:
    """Frames (on the fingerprint's 16-ms grid) with sound in them; silence matches silence
    trivially and must not count as a copy."""
    hop = sample_rate * HOP_S
    idx = (np.arange(n_frames) * hop).astype(np.int64)
    x2 = np.concatenate(([0.0], np.cumsum(np.asarray(x, np.float64) ** 2)))
    lo = np.clip(idx - int(2 * hop), 0, len(x))
    hi = np.clip(idx + int(2 * hop), 0, len(x))
    rms2 = (x2[hi] - x2[lo]) / np.maximum(hi - lo, 1)
    return 10.0 * np.log10(rms2 + 1e-14) > floor_dbfs


def frame_similarity(x_bands: np.ndarray, y_bands: np.ndarray) -> np.ndarray:
    """Per-frame correlation across bands of two aligned (frames, 33) band-level arrays, after
    flooring each frame 40 dB under its loudest band (toward 8-bit mu-law's noise) and
    removing each band's local mean (over ~240 ms: the timbre, the gain): what is left is
    which bands rise and fall when - the notes and the rhythm. Near 1 for a copy, near 0 for
    unrelated audio even of the same instrument."""
    from scipy.ndimage import uniform_filter1d

    def prepare(b):
        e = b.astype(np.float32) * 0.5
        e = np.maximum(e, e.max(axis=1, keepdims=True) - 40.0)
        e -= uniform_filter1d(e, 15, axis=0, mode="nearest")
        return e - e.mean(axis=1, keepdims=True)

    xe, ye = prepare(x_bands), prepare(y_bands)
    num = np.einsum("ij,ij->i", xe, ye)
    den = np.sqrt(np.einsum("ij,ij->i", xe, xe) * np.einsum("ij,ij->i", ye, ye)) + 1e-6
    return num / den


def _confirm(index: Index, fp: Fingerprint, loud: np.ndarray, offset: int, a: int, b: int, settings) -> Match | None:
    """Check a proposed copy (clip frames a..b at global `offset`) frame by frame, grow or
    shrink it to where the band levels agree, and measure it; None when it does not hold."""
    track = int(np.searchsorted(index.starts, offset + a, side="right")) - 1
    if track < 0:
        return None
    t_lo, t_hi = int(index.starts[track]), int(index.starts[track] + index.lengths[track])
    pad = round(1.0 / HOP_S)
    n_clip = fp.bands.shape[0]
    # Fine offset: the one of +-OFFSET_TOLERANCE frames whose band levels agree best.
    best = None
    for off in range(offset - OFFSET_TOLERANCE, offset + OFFSET_TOLERANCE + 1):
        lo = max(0, a - pad, t_lo - off)
        hi = min(n_clip, b + pad, t_hi - off)
        if hi - lo < 8:
            continue
        sim = frame_similarity(fp.bands[lo:hi], index.bands[lo + off : hi + off])
        sim = np.where(loud[lo:hi], sim, 0.0)
        inner = sim[max(0, a - lo) : max(0, b - lo)]
        score = float(inner.mean()) if inner.size else 0.0
        if best is None or score > best[0]:
            best = (score, off, lo, sim)
    if best is None:
        return None
    _, off, lo, sim = best
    # Smooth over ~80 ms; frames above threshold, with dips shorter than `max_dip_s` bridged
    # (a held chord correlates weakly frame by frame), form runs; the passage is the run
    # around the best-agreeing frame among the landmark hits.
    smooth = np.convolve(sim, np.ones(5) / 5, mode="same")
    above = _bridge(smooth >= settings.min_agreement, round(settings.max_dip_s / HOP_S))
    a_rel, b_rel = max(0, a - lo), max(1, min(b - lo, above.size))
    mid = a_rel + int(np.argmax(smooth[a_rel:b_rel]))
    if not above[mid]:
        return None
    start = mid
    while start > 0 and above[start - 1]:
        start -= 1
    end = mid
    while end + 1 < above.size and above[end + 1]:
        end += 1
    start, end = _sharpen(sim, start, end)
    # Frames at the edges of a copy straddle it (and the band means around them mix in
    # what lies outside), so they agree only weakly: take them in while they agree at all.
    while start > 0 and max(sim[max(0, start - 2) : start]) > settings.edge_agreement:
        start -= 1 if sim[start - 1] > settings.edge_agreement else 2
    while end + 1 < sim.size and max(sim[end + 1 : end + 3]) > settings.edge_agreement:
        end += 1 if sim[end + 1] > settings.edge_agreement else 2
    if (end - start + 1) * HOP_S < settings.min_seconds:
        return None
    similarity = float(np.clip(sim[start : end + 1].mean(), 0.0, 1.0))
    if similarity < settings.min_similarity:
        return None
    clip_start = lo + start
    return Match(
        clip_start_s=round(clip_start * HOP_S, 3),
        clip_end_s=round((lo + end + 1) * HOP_S, 3),
        track=index.names[track],
        source_start_s=round((clip_start + off - t_lo) * HOP_S, 3),
        similarity=round(similarity, 3),
    )


def _sharpen(sim: np.ndarray, start: int, end: int, *, reach: int = 8, width: int = 16) -> tuple[int, int]:
    """Move each end of a run (smoothing blurs them by several frames) to the frame within
    `reach` that best separates high similarity inside from low outside."""

    def step(lo, hi, inward):
        best, where = -np.inf, None
        for k in range(lo, hi + 1):
            a, b = (k, k + width) if inward else (k - width + 1, k + 1)
            out = sim[max(0, k - width) : k] if inward else sim[k + 1 : k + 1 + width]
            inner = sim[max(0, a) : max(0, b)]
            if inner.size == 0:
                continue
            gain = inner.mean() - (out.mean() if out.size else 0.0)
            if gain > best:
                best, where = gain, k
        return where

    s = step(max(0, start - reach), min(end, start + reach), True)
    e = step(max(s if s is not None else start, end - reach), min(sim.size - 1, end + reach), False)
    return (start if s is None else s), (end if e is None else e)


def _bridge(mask: np.ndarray, max_gap: int) -> np.ndarray:
    """Fill runs of False no longer than `max_gap` that lie between two Trues."""
    out = mask.copy()
    idx = np.flatnonzero(mask)
    if idx.size < 2:
        return out
    gaps = np.flatnonzero((np.diff(idx) > 1) & (np.diff(idx) <= max_gap + 1))
    for g in gaps:
        out[idx[g] : idx[g + 1]] = True
    return out


def _drop_overlaps(matches: list[Match]) -> list[Match]:
    """Where passages overlap by more than half the shorter one, keep the more similar."""
    kept: list[Match] = []
    for m in sorted(matches, key=lambda m: -m.similarity * (m.clip_end_s - m.clip_start_s)):
        clash = False
        for k in kept:
            overlap = min(m.clip_end_s, k.clip_end_s) - max(m.clip_start_s, k.clip_start_s)
            if overlap > 0.5 * min(m.clip_end_s - m.clip_start_s, k.clip_end_s - k.clip_start_s):
                clash = True
                break
        if not clash:
            kept.append(m)
    return sorted(kept, key=lambda m: m.clip_start_s)


def lineage_fraction(matches: list[Match], duration_s: float) -> float:
    """Share of the clip's time covered by at least one match (0-1)."""
    if duration_s <= 0 or not matches:
        return 0.0
    spans = sorted((m.clip_start_s, m.clip_end_s) for m in matches)
    total, (a, b) = 0.0, spans[0]
    for s, e in spans[1:]:
        if s > b:
            total += b - a
            a, b = s, e
        else:
            b = max(b, e)
    total += b - a
    return round(min(1.0, total / duration_s), 4)
