"""The collapse guard: see a stream fall into noise while it is generated, and take it back.

A sample-level model that once draws from the low-probability tail can feed its own noise back
in and stay there: the clip turns abruptly into broadband noise and never returns (most often
high on a temperature ramp). The guard watches every stream and, when one collapses, rewinds it
a short stretch and draws that stretch again.

Measure: the spectral flatness (Wiener entropy: geometric over arithmetic mean of the power
spectrum) of the generated audio, per frame of `FRAME` samples, on the device. White noise
reads about 0.56, music far lower; a frame quieter than -50 dBFS counts as 0 (silence is not
noise). It is curation's own notion of noise (`inspire.curate.scores.spectral_flatness`), so the
guard and curation agree on what a collapse is. A stream has collapsed when the median flatness
of its last `span_s` seconds is above `flatness`.

Recovery: the generation runs in windows of W samples (whole top-tier periods, a few frames);
the state of every stream is kept at the start of each of the last few windows. At a window's
end a collapsed stream is put back to the latest kept state at least `span_s + rewind_s` before
the window's end and goes on from there, drawing new random numbers (its random stream is never
rewound). The first fall at a place, at the curve's own temperature, is simply drawn again: the
same temperature, another continuation. A stream that falls again (at the same place, or while
still eased from an earlier fall) has its temperature eased like a limiter's gain: x `ease`
below the lowest factor in force over the redrawn stretch, held there over that stretch and
`hold_s` past where it fell, then released linearly back to the curve over `release_s`. So a
model that cannot bear the top of a ramp plays as hot as it can bear and keeps trying to climb
back, where a redraw at the same temperature would only fall again (measured on `small` after
7,000 steps on the story's ramp: redraws at full temperature fell again and again past 41 s,
T 1.13). After `retries` redraws at one place the guard lets that stream be (curation will name
the collapse and keep what came before), and so it does once the stretches it redrew in a clip
add up to `budget` of the clip's length, so that no stream (and no batch, which waits for its
slowest stream) can go on redrawing for ever.

Every intervention is recorded at its sample position ({"at", "to", "ease", "flatness"}, with
"hold_to" and "release_to" when eased, or {"at", "gave_up"}; an eased event without them, from
before the release existed, eased [to, at) only), and `replay` applies recorded interventions
instead of detecting, so a clip made with the guard regenerates exactly (`inspire generate
--again`), alone or in any batch.
Streams of a batch advance together but each rewinds on its own: each has its own position.

Cost: one host synchronisation per window (the samples and per-frame flatness come back to
decide), a flatness transform per window, and the redrawn stretches (see bench/bench_collapse.py).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import asdict, dataclass, fields
from typing import Callable, Iterator

import numpy as np
import torch
from torch import Tensor

from inspire.audio.quantize import dequantize
from inspire.errors import UserInputError
from inspire.samplernn.graph import PeriodStepper, _uniforms
from inspire.samplernn.model import SampleRNN, StepState
from inspire.samplernn.sample import FastStepper, StreamNoise

FRAME = 256  # samples per flatness frame (16 ms at 16 kHz)
SILENT_DBFS = -50.0  # a frame quieter than this has flatness 0

# f(starts (B,) int64 positions, n) -> (B, n) float tensor on the model's device: the control's
# values at positions starts[b] .. starts[b] + n - 1 of each stream.
Curve = Callable[[np.ndarray, int], Tensor]


@dataclass(frozen=True)
class GuardConfig:
    """When the guard steps in and how. Recorded in each clip's sidecar."""

    # Median frame flatness above which the latest span is noise. Measured (bench_collapse, dev
    # corpus): 0.5-s spans of the dev corpus's songs reach at most 0.30, a small model's collapse
    # noise reads 0.43 (0.34-0.44).
    flatness: float = 0.35
    span_s: float = 0.5  # how long the noise must last
    rewind_s: float = 1.0  # how far before the noisy span to go back
    retries: int = 4  # redraws at one place before the guard lets the stream be
    ease: float = 0.95  # temperature factor per further fall (below the factor already in force)
    hold_s: float = 2.0  # the eased temperature holds this long past where the stream fell...
    release_s: float = 6.0  # ...then returns linearly to the curve over this long
    window_s: float = 0.128  # decision cadence (rounded up to whole periods and frames)
    budget: float = 0.5  # most of a clip's length the guard redraws in all before it lets the stream be

    def __post_init__(self) -> None:
        checks = [
            (0 < self.flatness < 1, f"guard flatness must be in (0, 1), got {self.flatness}"),
            (self.span_s > 0, f"guard span_s must be > 0, got {self.span_s}"),
            (self.rewind_s >= 0, f"guard rewind_s must be >= 0, got {self.rewind_s}"),
            (isinstance(self.retries, int) and self.retries >= 1,
             f"guard retries must be an integer >= 1, got {self.retries}"),
            (0 < self.ease <= 1, f"guard ease must be in (0, 1], got {self.ease}"),
            (self.hold_s >= 0, f"guard hold_s must be >= 0, got {self.hold_s}"),
            (self.release_s >= 0, f"guard release_s must be >= 0, got {self.release_s}"),
            (self.window_s > 0, f"guard window_s must be > 0, got {self.window_s}"),
            (0 < self.budget <= 10, f"guard budget must be in (0, 10], got {self.budget}"),
        ]
        for ok, msg in checks:
            if not ok:
                raise UserInputError(msg)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "GuardConfig":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})

    def window(self, period: int, sample_rate: int) -> int:
        """W: samples per window, a multiple of both the model's period and FRAME."""
        unit = period * FRAME // math.gcd(period, FRAME)
        return unit * max(1, math.ceil(self.window_s * sample_rate / unit))


def frame_flatness(audio: Tensor) -> Tensor:
    """(B, n) float audio, n a multiple of FRAME -> (B, n // FRAME) spectral flatness per frame
    (Hann window, DC bin left out), 0 for frames quieter than SILENT_DBFS. The same measure as
    curation's `scores.frame_flatness` on the same frames (tested), here on the device so only
    the figures come back."""
    b, n = audio.shape
    frames = audio.reshape(b, n // FRAME, FRAME)
    window = torch.hann_window(FRAME, periodic=False, device=audio.device, dtype=audio.dtype)
    power = torch.fft.rfft(frames * window).abs().square()[..., 1:] + 1e-12  # (B, F, bins)
    flat = power.log().mean(dim=-1).exp() / power.mean(dim=-1)
    rms_db = 10.0 * torch.log10(frames.square().mean(dim=-1) + 1e-12)
    return torch.where(rms_db > SILENT_DBFS, flat, torch.zeros_like(flat))


class _Stream:
    """The guard's bookkeeping for one stream (host side)."""

    def __init__(self, span_frames: int, replay: list[dict] | None):
        self.pos = 0  # next sample position to generate
        self.flat = deque(maxlen=span_frames)  # flatness of the latest frames since the last rewind
        self.spot_at = -1  # where the current collapse place was seen
        self.spot_to = 0
        self.retries = 0
        self.redrawn = 0  # samples redrawn so far (the budget's count)
        # The temperature factor in force (one profile, from the latest eased redraw): `ease` over
        # [ease_from, hold_to), rising linearly to 1 over [hold_to, release_to), 1 elsewhere.
        self.ease = 1.0
        self.ease_from = self.hold_to = self.release_to = 0
        self.off = False  # gave up: no more detection for this stream
        self.pending: list[np.ndarray] = []  # generated, not yet handed out (from the commit point)
        self.replay = list(replay or [])


@torch.inference_mode()
def stream(
    model: SampleRNN,
    *,
    n_samples: int,
    temperature: Curve,
    seeds: list[int],
    sample_rate: int,
    quantization: str,
    config: GuardConfig = GuardConfig(),
    min_p: Curve | None = None,
    top_p: Curve | None = None,
    history: Tensor | None = None,
    state: StepState | None = None,
    stepper: FastStepper | None = None,
    graph: bool | None = None,
    log: list[list[dict]] | None = None,
    replay: list[list[dict]] | None = None,
    replay_until: int = 0,
    guarded: list[bool] | None = None,
) -> Iterator[Tensor]:
    """Generate `n_samples` per stream with the guard, yielding (B, k) integer classes (CPU) once
    they can no longer be rewound.

    Controls are functions of each stream's own positions (`Curve`). `log`: a list that receives
    B lists of interventions (one per stream, in order). `replay`: B lists of recorded
    interventions to apply at their positions; detection is off below `replay_until` (the
    recorded length) and on after it. `guarded`: which streams the guard watches (default all;
    the others run plain, e.g. to compare in one batch). Without interventions the samples equal
    `graph.stream`'s (and so `sample.stream`'s) with the same arguments.
    """
    device = next(model.parameters()).device
    b, lb, period = len(seeds), model.lookback, model.lookback
    levels = model.cfg.levels
    if history is None:
        history = torch.full((b, lb), levels // 2, dtype=torch.long, device=device)
    if state is None:
        state = model.start(b)
    if replay is not None and len(replay) != b:
        raise ValueError(f"replay has {len(replay)} streams' interventions, expected {b}")
    w = config.window(period, sample_rate)
    span_frames = max(1, math.ceil(config.span_s * sample_rate / FRAME))
    span = math.ceil(config.span_s * sample_rate)
    back = span + round(config.rewind_s * sample_rate)  # from a collapse's window end to where to go back
    horizon = back + span + 2 * w  # no rewind ever reaches further back than this from a stream's position
    runner = PeriodStepper(model, history, state, graph=graph, stepper=stepper, min_p=min_p is not None,
                           top_p=top_p is not None)
    noise = StreamNoise(seeds, device)
    table = dequantize(torch.arange(levels, device=device), kind=quantization, levels=levels).float()
    streams = [_Stream(span_frames, None if replay is None else replay[i]) for i in range(b)]
    for s, on in zip(streams, guarded or [True] * b, strict=True):
        s.off = not on
    if log is not None:
        log[:] = [[] for _ in range(b)]
    # Kept states: (window index, snapshot, positions at its start); a rewind of stream i to
    # position p made at window e invalidates, for i, the kept states of windows < e after p.
    kept: deque = deque(maxlen=horizon // w + 3)
    rewinds: list[list[tuple[int, int]]] = [[] for _ in range(b)]  # (window index, to) per stream
    # A shorter regeneration still replays every recorded intervention (one made past its new end
    # may have rewound into it): run as far as the last one, hand out n_samples.
    n_run = max([n_samples] + [e["at"] for r in (replay or []) for e in r])
    committed = 0
    step = 0
    while min(s.pos for s in streams) < n_run:
        kept.append((step, runner.snapshot(), np.array([s.pos for s in streams])))
        starts = np.array([s.pos for s in streams], dtype=np.int64)
        temps = temperature(starts, w)  # (B, W)
        eased = [(i, s) for i, s in enumerate(streams) if s.release_to > s.pos and s.ease < 1.0]
        if eased:
            temps = temps.clone()
            for i, s in eased:
                _ease(temps[i], s, s.pos)
        controls = [temps.t().contiguous()]
        controls += [None if f is None else f(starts, w).t().contiguous() for f in (min_p, top_p)]
        out = torch.empty((b, w), dtype=torch.long, device=device)
        for p in range(0, w, period):
            t, mp, tp = (None if c is None else c[p : p + period] for c in controls)
            out[:, p : p + period] = runner.run(t, _uniforms(noise, period), min_p=mp, top_p=tp)
        flat = frame_flatness(table[out]).cpu().numpy()  # (B, W / FRAME)
        samples = out.to(torch.int32).cpu().numpy()  # the one host synchronisation of the window
        step += 1
        for i, s in enumerate(streams):
            s.pending.append(samples[i])
            s.pos += w
            s.flat.extend(flat[i].tolist())
            event = _decide(s, config, n_samples, replay_until, span_frames, span, back, w, sample_rate)
            if event is None:
                continue
            if log is not None:
                log[i].append(event)
            if event.get("gave_up"):
                continue
            snap_pos = _rewind(runner, kept, rewinds[i], i, event["to"], device)
            if snap_pos != event["to"]:
                raise RuntimeError(f"guard: no kept state at sample {event['to']} of stream {i} (have {snap_pos})")
            rewinds[i].append((step, event["to"]))
            _cut(s, committed, event["to"])
            s.pos = event["to"]
            s.flat.clear()
            s.ease, s.ease_from = event["ease"], event["to"]
            s.hold_to, s.release_to = _held(event)
        ready = min(n_samples, min(s.pos for s in streams) - horizon)
        if min(s.pos for s in streams) >= n_run:
            ready = n_samples
        if ready > committed:
            yield torch.from_numpy(np.stack([_take(s, ready - committed) for s in streams]).astype(np.int64))
            committed = ready


def _decide(s: _Stream, config: GuardConfig, n_samples: int, replay_until: int, span_frames: int, span: int,
            back: int, w: int, sample_rate: int) -> dict | None:
    """The intervention for stream `s` at the end of a window, or None. Recorded ones first
    (replay); no detection in a window that starts at or after the clip's end or before
    `replay_until`, nor before the stream has a whole span since its last rewind."""
    at = s.pos
    if s.replay and s.replay[0]["at"] == at:
        event = s.replay.pop(0)
        s.off = s.off or bool(event.get("gave_up"))
        s.redrawn += event["at"] - event["to"] if "to" in event else 0
        return event
    if s.off or at - w >= n_samples or at - w < replay_until or len(s.flat) < span_frames:
        return None
    level = float(np.median(np.fromiter(s.flat, dtype=np.float64)))
    if level <= config.flatness:
        return None
    if s.spot_at >= 0 and at <= s.spot_at + span:  # not clearly past the last place: a retry there
        s.retries += 1
    else:
        s.spot_at, s.retries = at, 1
        s.spot_to = max(0, (at - back) // w * w)
    if s.retries > config.retries or s.redrawn + (at - s.spot_to) > config.budget * n_samples:
        s.off = True
        return {"at": at, "gave_up": True, "flatness": round(level, 4)}
    s.redrawn += at - s.spot_to
    base = float(_factors(s, s.spot_to, at - s.spot_to).min())  # the lowest factor over the redrawn stretch
    ease = 1.0 if s.retries == 1 and base >= 1.0 else round(base * config.ease, 6)  # first fall: another draw
    if ease >= 1.0:
        return {"at": at, "to": s.spot_to, "ease": 1.0, "flatness": round(level, 4)}
    hold_to = at + round(config.hold_s * sample_rate)
    return {"at": at, "to": s.spot_to, "ease": ease, "flatness": round(level, 4),
            "hold_to": hold_to, "release_to": hold_to + round(config.release_s * sample_rate)}


def _held(event: dict) -> tuple[int, int]:
    """An eased event's (hold_to, release_to): an event recorded before the release existed (or a
    redraw without easing) holds up to where it fell and is not released."""
    hold_to = event.get("hold_to", event["at"])
    return hold_to, event.get("release_to", hold_to)


def _factors(s: _Stream, start: int, n: int) -> np.ndarray:
    """Stream s's temperature factors at positions start .. start + n - 1 (float64)."""
    p = np.arange(start, start + n)
    rise = s.ease + (1.0 - s.ease) * (p - s.hold_to) / max(1, s.release_to - s.hold_to)
    f = np.where(p < s.hold_to, s.ease, np.where(p < s.release_to, rise, 1.0))
    return np.where(p < s.ease_from, 1.0, f)


def _ease(temps: Tensor, s: _Stream, start: int) -> None:
    """Multiply one stream's window of temperatures (W,) from position `start` by its factors, in
    place: the held part by the Python float `ease` (as recorded, so clips made before the release
    existed replay bit for bit), the releasing part by the factors."""
    w = temps.shape[0]
    a, b = max(0, s.ease_from - start), min(w, s.hold_to - start)
    if b > a:
        temps[a:b] *= s.ease
    c, d = max(0, s.hold_to - start), min(w, s.release_to - start)
    if d > c:
        temps[c:d] *= torch.from_numpy(_factors(s, start + c, d - c)).to(temps)


def _rewind(runner: PeriodStepper, kept: deque, rewinds: list[tuple[int, int]], i: int, to: int, device) -> int:
    """Restore stream i to its kept state at position `to`; return the position restored (-1: none)."""
    for index, snap, positions in reversed(kept):
        p = int(positions[i])
        # Valid for stream i if no later rewind of i went back before p (that timeline was dropped).
        if p == to and all(t >= p for e, t in rewinds if e > index):
            runner.restore(torch.tensor([i], device=device), snap)
            return p
    return -1


def _cut(s: _Stream, committed: int, to: int) -> None:
    """Drop stream s's pending samples from position `to` on."""
    keep = to - committed
    if keep < 0:
        raise RuntimeError("guard: a rewind reached behind samples already handed out")
    joined = np.concatenate(s.pending) if s.pending else np.zeros(0, np.int32)
    s.pending = [joined[:keep]]


def _take(s: _Stream, n: int) -> np.ndarray:
    joined = np.concatenate(s.pending)
    s.pending = [joined[n:]]
    return joined[:n]


def check_replay(recorded: object) -> list[dict]:
    """A sidecar's recorded interventions of one clip, checked (UserInputError if malformed)."""
    if not isinstance(recorded, list):
        raise UserInputError("guard interventions: expected a list")
    out = []
    for e in recorded:
        if not (isinstance(e, dict) and isinstance(e.get("at"), int)):
            raise UserInputError(f"guard intervention {e!r}: expected an object with an integer 'at'")
        if not e.get("gave_up") and not (isinstance(e.get("to"), int) and 0 <= e["to"] < e["at"]
                                         and isinstance(e.get("ease"), (int, float)) and 0 < e["ease"] <= 1):
            raise UserInputError(f"guard intervention {e!r}: expected 0 <= 'to' < 'at' and 0 < 'ease' <= 1")
        hold, release = _held(e)
        if not e.get("gave_up") and not (isinstance(hold, int) and isinstance(release, int)
                                         and e["at"] <= hold <= release):
            raise UserInputError(f"guard intervention {e!r}: expected 'at' <= 'hold_to' <= 'release_to'")
        out.append(e)
    return out
