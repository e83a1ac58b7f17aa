"""The auto-arranger: from a folder of generated clips to a plan of parts with a shape.

`plan(clips_dir, seconds=...)` picks the best clips (curation.json's keepers in rank order when
present, an own loudness/activity ranking otherwise), cuts each into passages at quiet or onset
boundaries, takes passages best-first until the piece is long enough, orders them so that each
join is smooth (similar loudness and spectrum across it) and the piece has an arc (it starts
sparse, builds to a peak about two-thirds in, and settles), then sets each part's gain along the
arc and each join's crossfade from how alike its two sides are.

A person's marks (in each clip's sidecar, see inspire.clips) come first: a clip they discarded
is never used and one they kept always is, whatever curation said; starred clips give their
passages first; a clip's marked regions are its passages (as marked, not cut further). Without
marked regions, curation's keeper regions (the clean stretch before a collapse into noise) bound
where a clip's passages are cut: the rest of it is never used.

Pure analysis: numpy only, no printing, deterministic for a given folder and seed. Rendering
is compose's job; the caller says the plan's warnings.
"""

from __future__ import annotations

import math
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from inspire import clips
from inspire.audio import spectral
from inspire.audio.io import AudioStream, find_audio_files, probe, read_span
from inspire.curate.curate import CURATION_FILE, load_curation
from inspire.errors import InspireError, UserInputError

PIECE_KIND = "inspire-piece"  # piece.json's "kind": audio beside such a sidecar is never a clip

HOP_S = 0.01  # analysis hop
MIN_PASSAGE_S = 3.0
TARGET_PASSAGE_S = 8.0
MAX_PASSAGE_S = 12.0
SILENT_DBFS = -55.0  # a clip whose active level is below this is treated as silent
MIN_ACTIVITY = 0.15  # share of active frames below which a clip is skipped
N_BANDS = 16


@dataclass(frozen=True)
class Clip:
    id: str
    path: Path
    rank: int  # 1 = best
    score: float
    curation: dict | None  # the clip's curation.json record, when there is one
    star: bool = False  # a person's favourite: its passages are taken first
    regions: tuple[tuple[float, float], ...] = ()  # a person's keeper passages (seconds); (): cut automatically
    usable: tuple[tuple[float, float], ...] = ()  # curation's keeper regions: cut only inside them; (): all of it


@dataclass
class Passage:
    clip: Clip
    in_s: float
    out_s: float
    level_db: float  # mean power of its active frames, dBFS
    head_db: float  # level of its first seconds
    tail_db: float  # level of its last seconds
    head_shape: np.ndarray  # (N_BANDS,) log band energies, mean removed
    tail_shape: np.ndarray
    brightness: float  # spectral centroid, Hz
    activity: float  # share of active frames

    @property
    def seconds(self) -> float:
        return self.out_s - self.in_s


@dataclass(frozen=True)
class PlannedPart:
    clip: Clip
    in_s: float
    out_s: float
    gain_db: float
    crossfade_s: float  # into the next part


@dataclass(frozen=True)
class Plan:
    sample_rate: int
    parts: tuple[PlannedPart, ...]
    requested_s: float
    seconds: float  # the planned length
    available_s: float  # what the chosen material could give at most
    skipped: tuple[str, ...]  # "clip: reason"
    used_curation: bool
    warnings: tuple[str, ...]


# -------------------------------------------------------------------------------- clip metadata


def is_piece(audio_path: str | os.PathLike) -> bool:
    """Whether an audio file is a piece compose made (its sidecar is a piece's, not a clip's)."""
    return _sidecar(Path(audio_path))[1]


def _sidecar(path: Path) -> tuple[clips.ClipRecord | None, bool]:
    """(the clip's record or None, whether the file is a composed piece)."""
    try:
        return clips.read(path), False
    except clips.NotAClipError as exc:
        return None, exc.kind == PIECE_KIND
    except InspireError:  # a sidecar with mistyped fields: the clip is used, its marks are not known
        return None, False


def rank_clips(clips_dir: str | os.PathLike, *, sample_rate: int | None = None) -> tuple[list[Clip], list[str], bool]:
    """The clips to compose with, best first (a person's starred clips before the rest); also
    the skipped ones ("name: why") and whether curation.json decided. Without curation, clips
    are ranked by activity and loudness and near-silent ones are skipped. A person's verdict
    (marks) overrides curation's and the near-silence test."""
    clips_dir = Path(clips_dir)
    if not clips_dir.is_dir():
        raise UserInputError(f"{clips_dir}: no such folder of clips")
    marks: dict[Path, clips.Marks] = {}
    for f in find_audio_files([clips_dir]):
        record, piece = _sidecar(f)
        if not piece:
            marks[f] = record.marks if record is not None else clips.Marks()
    cur = load_curation(clips_dir)
    skipped: list[str] = []
    if cur is not None:
        by_name = {f.relative_to(clips_dir).as_posix(): f for f in marks}
        chosen, listed = [], set()
        records = sorted(cur["clips"], key=lambda r: (r.get("rank") is None, r.get("rank") or 0))
        for rec in records:
            path = by_name.get(str(rec.get("file", "")))
            person = marks[path].verdict if path is not None else None
            listed.add(path)
            if (person or rec.get("verdict")) != "keep":
                if person == "discard" and rec.get("verdict") == "keep":
                    skipped.append(f"{rec.get('file')}: marked discard")
                continue
            if path is None:
                skipped.append(f"{rec.get('file')}: listed as keep in {CURATION_FILE} but not in the folder")
                continue
            chosen.append(_clip(str(rec.get("id") or path.stem), path, int(rec.get("rank") or len(chosen) + 1),
                                float(rec.get("score") or 0.0), rec, marks[path]))
        for f, m in marks.items():  # kept by a person but not listed in curation.json (made since)
            if f not in listed and m.verdict == "keep":
                chosen.append(_clip(f.stem, f, len(records) + 1 + len(chosen), 0.0, None, m))
        if not chosen:
            raise UserInputError(
                f"{clips_dir / CURATION_FILE}: no clip is marked keep (and present); nothing to compose")
        return _stars_first(chosen), skipped, True
    scored = []
    for f, m in marks.items():
        if m.verdict == "discard":
            skipped.append(f"{f.name}: marked discard")
            continue
        try:
            db = analyse(f, sample_rate=sample_rate, spectra=False).db
        except InspireError as exc:
            skipped.append(f"{f.name}: {exc}")
            continue
        active = _active(db)
        level = _power_db(db[active]) if active.any() else -120.0
        activity = float(active.mean()) if db.size else 0.0
        if (level < SILENT_DBFS or activity < MIN_ACTIVITY) and m.verdict != "keep":
            skipped.append(f"{f.name}: near-silent (level {level:.0f} dBFS, {activity:.0%} active)")
            continue
        scored.append((activity + 0.01 * (level - SILENT_DBFS) / 10.0, f))
    if not scored:
        raise UserInputError(f"{clips_dir}: no usable audio clips (found {len(marks)}; {len(skipped)} skipped)")
    scored.sort(key=lambda sf: (-sf[0], sf[1].as_posix()))
    return _stars_first([_clip(f.stem, f, i + 1, round(s, 4), None, marks[f]) for i, (s, f) in enumerate(scored)]), \
        skipped, False


def _clip(cid: str, path: Path, rank: int, score: float, curation: dict | None, marks: clips.Marks) -> Clip:
    usable = ()
    if curation is not None and isinstance(curation.get("regions"), list):
        usable = tuple((float(a), float(b)) for a, b in curation["regions"] if float(a) < float(b))
    return Clip(cid, path, rank, score, curation, star=marks.star, regions=marks.regions, usable=usable)


def _stars_first(chosen: list[Clip]) -> list[Clip]:
    return sorted(chosen, key=lambda c: not c.star)  # stable: rank order within each group


# ------------------------------------------------------------------------------------ analysis


def frame_db(x: np.ndarray, sample_rate: int, *, hop_s: float = HOP_S) -> np.ndarray:
    """Level of each hop (non-overlapping), in dBFS. (frames,)"""
    hop = max(1, int(round(hop_s * sample_rate)))
    n = len(x) // hop
    if n == 0:
        return np.full(1, 10 * math.log10(float(np.mean(np.square(x, dtype=np.float64))) + 1e-12))
    p = np.square(x[: n * hop].reshape(n, hop), dtype=np.float64).mean(axis=1)
    return 10.0 * np.log10(p + 1e-12)


def _active(db: np.ndarray) -> np.ndarray:
    return db > max(SILENT_DBFS - 10.0, float(np.max(db)) - 40.0)


def _power_db(db: np.ndarray) -> float:
    return float(10.0 * np.log10(np.mean(10.0 ** (db / 10.0)) + 1e-12)) if db.size else -120.0


def _fft_sizes(sample_rate: int) -> tuple[int, int]:
    """(hop, n_fft): ~40 ms frames starting every hop."""
    hop = int(round(HOP_S * sample_rate))
    return hop, 1 << int(math.ceil(math.log2(4 * hop)))


def _power_spectra(x: np.ndarray, sample_rate: int) -> np.ndarray:
    """Power spectra of the whole frames of x (center=False); none when x is shorter than one. (frames, bins)"""
    hop, n_fft = _fft_sizes(sample_rate)
    if len(x) < n_fft:
        return np.zeros((0, n_fft // 2 + 1))
    return np.abs(spectral.stft(x, n_fft=n_fft, hop=hop, center=False)) ** 2


@dataclass(frozen=True)
class Analysis:
    """What the arranger needs of a whole clip, a few numbers per hop (a ten-minute clip's is
    about a megabyte; its spectra would be a gigabyte)."""
    db: np.ndarray  # (hops,) level of each hop, dBFS (see frame_db)
    flux: np.ndarray  # (frames,) spectral flux into each ~40 ms frame; frame 0 has 0
    samples: int  # the clip's length at the analysis rate


def analyse(path: str | os.PathLike, *, sample_rate: int | None = None, spectra: bool = True) -> Analysis:
    """Analyse a clip read block by block (memory does not grow with its length); `spectra=False`
    measures levels only (flux empty)."""
    stream = AudioStream(path, sample_rate=sample_rate)
    return analyse_blocks(stream, stream.sample_rate, spectra=spectra)


def analyse_blocks(blocks, sample_rate: int, *, spectra: bool = True) -> Analysis:
    """`analyse` over any sequence of consecutive blocks of mono audio: per hop and per frame the
    same numbers the whole clip at once gives (frames are cut from a carried-over buffer)."""
    hop, n_fft = _fft_sizes(sample_rate)
    buf = np.zeros(0, dtype=np.float32)
    dbs: list[np.ndarray] = []
    fluxes: list[np.ndarray] = []
    prev = None  # the log spectrum of the last frame so far, for the next frame's flux
    total = 0
    for block in blocks:
        total += len(block)
        buf = np.concatenate([buf, np.asarray(block, dtype=np.float32)])
        if spectra:
            n = (len(buf) - n_fft) // hop + 1 if len(buf) >= n_fft else 0
        else:
            n = len(buf) // hop
        if n <= 0:
            continue
        if spectra:
            logs = np.log(_power_spectra(buf[: (n - 1) * hop + n_fft], sample_rate) + 1e-10)
            rise = np.maximum(np.diff(logs if prev is None else np.vstack([prev, logs]), axis=0), 0.0).mean(axis=1)
            fluxes.append(np.concatenate([[0.0], rise]) if prev is None else rise)
            prev = logs[-1]
        dbs.append(frame_db(buf[: n * hop], sample_rate))
        buf = buf[n * hop:]
    if len(buf) >= hop:
        dbs.append(frame_db(buf[: len(buf) // hop * hop], sample_rate))
    elif total < hop:  # shorter than one hop: one level for the whole clip
        dbs.append(frame_db(buf, sample_rate))
    if spectra and not fluxes:  # shorter than one frame: one (zero-padded) frame
        fluxes.append(np.zeros(1))
    return Analysis(np.concatenate(dbs), np.concatenate(fluxes) if fluxes else np.zeros(0), total)


def _band_edges(sample_rate: int) -> np.ndarray:
    return np.geomspace(60.0, sample_rate / 2.0, N_BANDS + 1)


def _shape(spec: np.ndarray, freqs: np.ndarray, sample_rate: int) -> np.ndarray:
    mean = spec.mean(axis=0) if spec.size else np.zeros(len(freqs))
    edges = _band_edges(sample_rate)
    bands = np.array([mean[(freqs >= lo) & (freqs < hi)].sum() for lo, hi in zip(edges[:-1], edges[1:], strict=False)])
    db = 10.0 * np.log10(bands + 1e-12)
    return db - db.mean()


def boundary_scores(x: np.ndarray, sample_rate: int) -> np.ndarray:
    """How good a cut each hop is: 1 for a quiet dip or the moment just before an onset, 0 for
    the middle of a held sound. (frames,)"""
    an = analyse_blocks([x], sample_rate)
    return _boundary(an.db, an.flux)


def _boundary(db: np.ndarray, flux: np.ndarray) -> np.ndarray:
    flux = np.pad(flux, (0, max(0, len(db) - len(flux))))[: len(db)]
    med = np.median(flux)
    mad = np.median(np.abs(flux - med)) + 1e-9
    onset = np.clip((flux - med) / (6.0 * mad), 0.0, 1.0)
    before_onset = np.concatenate([onset[2:], [0.0, 0.0]])  # a cut 20 ms before the attack
    k = max(1, int(0.5 / HOP_S))
    # The centred 1.01-s mean ("same" mode, which for a clip shorter than the window would
    # return the window's length instead).
    local = np.convolve(db, np.ones(2 * k + 1) / (2 * k + 1), mode="full")[k: k + len(db)]
    quiet = np.clip((local - db) / 12.0, 0.0, 1.0)
    return np.maximum(quiet, before_onset)


def passages_of(clip: Clip, x: np.ndarray, sample_rate: int) -> list[Passage]:
    """Cut one clip (in memory) into passages of MIN..MAX_PASSAGE_S at good boundaries, silence
    trimmed, inside curation's keeper regions when it gave some; a clip with regions marked by a
    person has those as its passages instead."""
    return _passages(clip, analyse_blocks([x], sample_rate), sample_rate, lambda i, j: x[max(0, i):j])


def _passages(clip: Clip, an: Analysis, sample_rate: int, read) -> list[Passage]:
    """`passages_of` from the clip's analysis; `read(start, stop)` gives the samples of a span
    (only the passages' own audio is read, for their spectra)."""
    db = an.db
    seconds = an.samples / sample_rate
    if clip.regions:
        return [_passage(clip, read, sample_rate, db, int(round(a / HOP_S)), int(round(b / HOP_S)), a, b, seconds)
                for a, b in _merged(clip.regions, seconds)]
    spans = [(0, len(db))]
    if clip.usable:
        spans = [(int(a / HOP_S), int(b / HOP_S)) for a, b in _merged(clip.usable, seconds)]
    score = _boundary(db, an.flux)
    out = []
    for lo_h, hi_h in spans:
        active = lo_h + np.flatnonzero(_active(db)[lo_h:hi_h])
        if active.size == 0:
            continue
        cuts = _cuts(score, max(lo_h, int(active[0]) - 3), min(hi_h, int(active[-1]) + 4))
        out += [_passage(clip, read, sample_rate, db, a, b, a * HOP_S, b * HOP_S, seconds)
                for a, b in zip(cuts[:-1], cuts[1:], strict=True)]
    return [p for p in out if p.seconds >= 0.5]


def _cuts(score: np.ndarray, first: int, last: int) -> list[int]:
    """Cut points (hops) from `first` to `last` into passages of MIN..MAX_PASSAGE_S, each at the
    best boundary near TARGET_PASSAGE_S."""
    cuts = [first]
    min_h, tgt_h, max_h = (int(s / HOP_S) for s in (MIN_PASSAGE_S, TARGET_PASSAGE_S, MAX_PASSAGE_S))
    while last - cuts[-1] > max_h:
        a = cuts[-1]
        lo, hi = a + min_h, min(a + max_h, last - min_h)
        if hi <= lo:
            break
        idx = np.arange(lo, hi + 1)
        merit = score[idx] - 0.08 * np.abs(idx - (a + tgt_h)) * HOP_S
        cuts.append(int(idx[int(np.argmax(merit))]))
    cuts.append(last)
    return cuts


def _passage(clip: Clip, read, sample_rate: int, db: np.ndarray, a: int, b: int, in_s: float, out_s: float,
             seconds: float) -> Passage:
    """The passage from in_s to out_s (hops a..b of `db`), measured; its spectra are those of the
    whole frames starting in hops a..b-1, from its own audio."""
    edge = int(2.0 / HOP_S)
    hop, n_fft = _fft_sizes(sample_rate)
    seg_db = db[a:b]
    seg_spec = _power_spectra(read(a * hop, (b - 1) * hop + n_fft), sample_rate)[: max(0, b - a)]
    freqs = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)
    mean_spec = seg_spec.mean(axis=0) if len(seg_spec) else np.zeros(len(freqs))
    centroid = float((mean_spec * freqs).sum() / (mean_spec.sum() + 1e-12))
    return Passage(
        clip=clip,
        in_s=round(in_s, 3),
        out_s=round(min(out_s, seconds), 3),
        level_db=_power_db(seg_db[_active(seg_db)]) if seg_db.size else -120.0,
        head_db=_power_db(seg_db[:edge]),
        tail_db=_power_db(seg_db[-edge:]),
        head_shape=_shape(seg_spec[:edge], freqs, sample_rate),
        tail_shape=_shape(seg_spec[-edge:], freqs, sample_rate),
        brightness=centroid,
        activity=float(_active(seg_db).mean()) if seg_db.size else 0.0,
    )


def _merged(regions, seconds: float) -> list[tuple[float, float]]:
    """Regions in time order, overlapping ones joined, cut at the clip's end."""
    out: list[list[float]] = []
    for a, b in sorted(regions):
        b = min(b, seconds)
        if b - a < HOP_S:  # past the end (the audio is shorter than the sidecar said), or a sliver
            continue
        if out and a <= out[-1][1]:
            out[-1][1] = max(out[-1][1], b)
        else:
            out.append([a, b])
    return [(a, b) for a, b in out]


# ---------------------------------------------------------------------------------------- plan


def arc(p: np.ndarray | float) -> np.ndarray:
    """The piece's intended intensity at position p in [0, 1]: low, a peak near 2/3, settling."""
    return 0.25 + 0.75 * np.sin(np.pi * np.clip(p, 0.0, 1.0) ** 1.6)


def join_cost(a: Passage, b: Passage) -> float:
    """How audible the seam from a's tail into b's head is: level jump (per 6 dB) plus spectral
    shape difference (RMS over bands, per 6 dB)."""
    shape = float(np.sqrt(np.mean((a.tail_shape - b.head_shape) ** 2)))
    return abs(a.tail_db - b.head_db) / 6.0 + shape / 6.0


def plan(clips_dir: str | os.PathLike, *, seconds: float, seed: int = 0, sample_rate: int | None = None) -> Plan:
    """Choose, cut, order and balance passages for a piece of about `seconds`."""
    if not (isinstance(seconds, (int, float)) and math.isfinite(seconds) and seconds > 0):
        raise UserInputError(f"--minutes must be a positive number, got {seconds / 60.0!r}")
    clips, skipped, used_curation = rank_clips(clips_dir, sample_rate=sample_rate)
    if sample_rate is None:
        rates = Counter(probe(c.path).sample_rate for c in clips)
        sample_rate = max(rates, key=lambda r: (rates[r], r))
    per_clip: list[list[Passage]] = []
    for clip in clips:  # each clip streamed once for its levels and flux; then only its passages are read
        ps = _passages(clip, analyse(clip.path, sample_rate=sample_rate), sample_rate,
                       lambda i, j, path=clip.path: read_span(path, i, j, sample_rate=sample_rate))
        ps.sort(key=lambda p: (-(p.activity + 0.01 * p.level_db), p.in_s))
        per_clip.append(ps)
    chosen: list[Passage] = []
    total = 0.0
    for round_ in range(max((len(p) for p in per_clip), default=0)):
        for ps in per_clip:
            if round_ < len(ps) and total < seconds:
                chosen.append(ps[round_])
                total += ps[round_].seconds - _est_xfade(ps[round_].seconds)
    if not chosen:
        raise UserInputError(f"{clips_dir}: the clips hold no usable passages")
    order = _order(chosen, seed=seed)
    parts, available = _balance(order, seconds=seconds)
    planned = sum(p.out_s - p.in_s for p in parts) - sum(p.crossfade_s for p in parts)
    warnings = []
    if planned < seconds - 0.5:
        warnings.append(f"asked for {seconds / 60.0:.2f} min but the clips give only {planned / 60.0:.2f} min; "
                        f"the piece uses all usable material")
    return Plan(sample_rate, tuple(parts), seconds, round(planned, 3), round(available, 3), tuple(skipped),
                used_curation, tuple(warnings))


def _est_xfade(length_s: float) -> float:
    return min(1.0, 0.2 * length_s)


def _order(ps: list[Passage], *, seed: int) -> list[Passage]:
    """Order passages: the arc sets where loud/bright passages go, then pairwise swaps (in a
    seed-shuffled order) lower the total join cost plus the distance from the arc."""
    n = len(ps)
    if n <= 2:
        return sorted(ps, key=lambda p: p.level_db)
    intensity = np.array([p.level_db / 6.0 + math.log2(max(p.brightness, 50.0)) for p in ps])
    intensity = (intensity - intensity.mean()) / (intensity.std() + 1e-9)
    target = arc((np.arange(n) + 0.5) / n)
    target = (target - target.mean()) / (target.std() + 1e-9)
    # Start from the arc's rank matching: the k-th quietest passage to the k-th quietest slot.
    slots = np.argsort(target, kind="stable")
    order = np.empty(n, dtype=int)
    order[slots] = np.argsort(intensity, kind="stable")
    joins = np.array([[join_cost(a, b) for b in ps] for a in ps])
    w_arc = 0.5

    def cost_at(o: np.ndarray, positions: set[int]) -> float:
        c = 0.0
        for k in positions:
            if 0 <= k < n - 1:
                c += joins[o[k], o[k + 1]]
            if 0 <= k < n:
                c += w_arc * (intensity[o[k]] - target[k]) ** 2
        return c

    rng = np.random.default_rng(seed)
    pairs = [(i, j) for i in range(n) for j in range(i + 1, n)]
    for _ in range(30):
        improved = False
        for idx in rng.permutation(len(pairs)):
            i, j = pairs[idx]
            touched = {i - 1, i, i + 1, j - 1, j, j + 1}
            before = cost_at(order, touched)
            order[i], order[j] = order[j], order[i]
            if cost_at(order, touched) < before - 1e-9:
                improved = True
            else:
                order[i], order[j] = order[j], order[i]
        if not improved:
            break
    return [ps[k] for k in order]


def _balance(order: list[Passage], *, seconds: float) -> tuple[list[PlannedPart], float]:
    """Gains along the arc, crossfades from join similarity, and out points trimmed so the
    piece lasts `seconds` (or all there is)."""
    n = len(order)
    lens = [p.seconds for p in order]
    xf = []
    for k in range(n - 1):
        a, b = order[k], order[k + 1]
        want = 0.4 + min(1.6, join_cost(a, b))  # alike: a short blend; unlike: a long one
        xf.append(round(min(want, 0.3 * lens[k], 0.3 * lens[k + 1]), 3))
    xf.append(0.0)
    available = sum(lens) - sum(xf)
    excess = available - seconds
    outs = [p.out_s for p in order]
    if excess > 0:
        # Take the excess off each part's end in proportion to its slack, keeping every part
        # at least MIN_PASSAGE_S (or its crossfades plus a second) long.
        floors = [max(min(MIN_PASSAGE_S, lens[k]), (xf[k - 1] if k else 0.0) + xf[k] + 1.0) for k in range(n)]
        slack = [max(0.0, lens[k] - floors[k]) for k in range(n)]
        total_slack = sum(slack)
        if total_slack > 0:
            take = min(excess, total_slack)
            for k in range(n):
                outs[k] = round(outs[k] - take * slack[k] / total_slack, 3)
        # Rounding leaves a few milliseconds; settle them on the last part.
        fix = sum(o - p.in_s for o, p in zip(outs, order, strict=False)) - sum(xf) - seconds
        if fix > 0 and outs[-1] - fix - order[-1].in_s >= floors[-1]:
            outs[-1] = round(outs[-1] - fix, 3)
    ref = float(np.median([p.level_db for p in order]))
    parts = []
    for k, p in enumerate(order):
        pos = (k + 0.5) / n
        want_db = ref + 6.0 * (float(arc(pos)) - 0.7)
        gain = float(np.clip(want_db - p.level_db, -9.0, 6.0))
        parts.append(PlannedPart(p.clip, p.in_s, outs[k], round(gain, 2), xf[k]))
    return parts, available
