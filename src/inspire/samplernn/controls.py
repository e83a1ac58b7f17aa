"""Controls of a performance: what a knob, a key, a MIDI controller or an OSC message asks for,
and the timeline that records where each request landed, so a take can be rendered again.

A request is a `Control`:
    temperature V   set the temperature to V (> 0)
    nudge D         move the temperature by D
    pad N           re-prime the stream from pad N's moment (pad 0: silence, the reset)
    reset           back to silence and the learned initial state (= pad 0)
    quit            stop playing

Front ends turn their input into controls with the pure functions here (`keyboard`, `MidiMap`,
`osc`); they are tested with fake messages, no device needed. The `Timeline` holds a take's
temperature automation lane (a `inspire.schedule` spec) and the control events at the sample
positions where they took effect. Temperature follows the lane until the first knob change,
then the knob (a DAW's "latch" automation mode): the knob always wins, and the lane never
snaps back under the player's hand.

No torch here (the command line's --help stays fast).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from inspire import schedule as sched
from inspire.errors import UserInputError

MIN_TEMPERATURE, MAX_TEMPERATURE = 0.05, 5.0  # what a knob can reach; a spec may go anywhere > 0
NUDGE = 0.05  # one key press
OSC_PREFIX = "/inspire"
KINDS = ("temperature", "nudge", "pad", "reset", "label", "quit")


@dataclass(frozen=True)
class Control:
    kind: str  # one of KINDS
    value: float = 0.0  # the temperature, the nudge, the pad number, or the label's row (0: no label)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown control {self.kind!r}; one of {', '.join(KINDS)}")
        if not math.isfinite(self.value):
            raise ValueError(f"control {self.kind} needs a finite value, got {self.value}")
        if self.kind == "temperature" and self.value <= 0:
            raise ValueError(f"temperature must be > 0, got {self.value}")
        if self.kind == "label" and (self.value < 0 or self.value != int(self.value)):
            raise ValueError(f"a label is a row number >= 0 (0: no label), got {self.value}")


def clamp_temperature(v: float) -> float:
    return min(MAX_TEMPERATURE, max(MIN_TEMPERATURE, float(v)))


# ----------------------------------------------------------------------------------------------
# Front ends: keyboard, MIDI, OSC

KEY_HELP = "up/+ hotter  down/- cooler  1-9 pads  0 silence  q quit"


def keyboard(key: str) -> Control | None:
    """A key press (one character, or an arrow's escape sequence) -> a control, or None."""
    if key in ("\x1b[A", "+", "="):
        return Control("nudge", NUDGE)
    if key in ("\x1b[B", "-", "_"):
        return Control("nudge", -NUDGE)
    if key in ("0", "r"):
        return Control("reset")
    if len(key) == 1 and key.isdigit():
        return Control("pad", int(key))
    if key in ("q", "Q", "\x1b", "\x03", "\x04"):  # q, Esc, Ctrl-C, Ctrl-D
        return Control("quit")
    return None


def split_keys(text: str) -> list[str]:
    """What one read from a terminal holds, as keys: characters, arrow escape sequences whole."""
    keys, i = [], 0
    while i < len(text):
        if text.startswith("\x1b[", i) and i + 2 < len(text):
            keys.append(text[i : i + 3])
            i += 3
        else:
            keys.append(text[i])
            i += 1
    return keys


@dataclass(frozen=True)
class MidiMap:
    """Which MIDI messages do what: a control change `cc` sweeps the temperature over lo..hi;
    notes from `pad_note` up trigger pads 0 (silence), 1, 2, ... `channel`: 1-16, or None for any."""

    cc: int | None = 1  # the mod wheel by default
    lo: float = 0.5
    hi: float = 1.5
    pad_note: int | None = 36  # C1: the first pad of most drum-pad controllers
    channel: int | None = None

    def __post_init__(self) -> None:
        if self.cc is not None and not 0 <= self.cc <= 127:
            raise UserInputError(f"--midi-cc must be between 0 and 127, got {self.cc}")
        if self.pad_note is not None and not 0 <= self.pad_note <= 127:
            raise UserInputError(f"--midi-pad-note must be between 0 and 127, got {self.pad_note}")
        if self.channel is not None and not 1 <= self.channel <= 16:
            raise UserInputError(f"--midi-channel must be between 1 and 16, got {self.channel}")
        if not (0 < self.lo < self.hi and math.isfinite(self.hi)):
            raise UserInputError(f"--midi-range must be LO:HI with 0 < LO < HI, got {self.lo}:{self.hi}")

    def parse(self, msg) -> Control | None:
        """A mido-style message (attributes type, channel 0-15, control/value or note/velocity)."""
        kind = getattr(msg, "type", None)
        if self.channel is not None and getattr(msg, "channel", None) != self.channel - 1:
            return None
        if kind == "control_change" and self.cc is not None and msg.control == self.cc:
            return Control("temperature", self.lo + (self.hi - self.lo) * min(max(msg.value, 0), 127) / 127.0)
        if kind == "note_on" and msg.velocity > 0 and self.pad_note is not None and msg.note >= self.pad_note:
            pad = msg.note - self.pad_note
            return Control("reset") if pad == 0 else Control("pad", pad)
        return None


def parse_midi_range(text: str) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in str(text).split(":"))
    except ValueError:
        raise UserInputError(f"--midi-range {text!r}: expected LO:HI temperatures, e.g. 0.5:1.5") from None
    MidiMap(lo=lo, hi=hi)  # validates
    return lo, hi


def osc(address: str, *args) -> Control | None:
    """An OSC message -> a control, or None: /inspire/temperature F, /inspire/nudge F,
    /inspire/pad N (0: silence), /inspire/label N (a labelled model's label by number, 1 = the
    first label the run lists; 0: no label), /inspire/reset, /inspire/quit."""
    if not address.startswith(OSC_PREFIX + "/"):
        return None
    name = address[len(OSC_PREFIX) + 1 :]
    try:
        if name == "temperature" and args:
            return Control("temperature", float(args[0]))
        if name == "nudge" and args:
            return Control("nudge", float(args[0]))
        if name == "pad" and args:
            pad = int(args[0])
            return Control("reset") if pad == 0 else Control("pad", pad)
        if name == "label" and args:
            return Control("label", int(args[0]))
        if name in ("reset", "quit"):
            return Control(name)
    except (TypeError, ValueError):
        return None
    return None


# ----------------------------------------------------------------------------------------------
# The timeline of a take


class Timeline:
    """A take's temperature lane and control events, at sample positions from its start.

    `lane`: a schedule spec; `span`: the samples a fraction schedule spreads over (the planned
    length of the take; None when not known, then only constants and seconds breakpoints are
    possible). Events are dicts with "at" (sample) and one of: "temperature" (the knob's value
    from there on), "pad" (N, re-primed there), "reset", "label" (a labelled model steered to that
    row from there on; 0: no label). They are added in order of position.
    """

    def __init__(self, lane: str, *, sample_rate: int, span: int | None = None, min_p: str | None = None,
                 top_p: str | None = None):
        self.schedule = sched.parse(lane)
        # Truncation lanes (sample.sample_logits): None when off; they play as written (no knob).
        self.truncation = {name: None if spec is None else sched.parse(spec, control=control)
                           for name, spec, control in (("min_p", min_p, "min-p"), ("top_p", top_p, "top-p"))}
        self.truncation = {k: v for k, v in self.truncation.items() if v is not None and not v.neutral}
        for name, schedule in (("temperature", self.schedule), *self.truncation.items()):
            if schedule.unit == "fraction" and len(schedule.positions) > 1 and not span:
                raise UserInputError(
                    f"{name.replace('_', '-')} {schedule.spec!r}: a ramp over the take needs its length (--seconds), "
                    "or breakpoints in seconds (e.g. 0s:0.9,30s:1.2)"
                )
        self.sample_rate, self.span = int(sample_rate), span
        self.events: list[dict] = []
        self._set_at: list[int] = []
        self._set_value: list[float] = []

    @property
    def lane(self) -> str:
        return self.schedule.spec

    def add(self, at: int, **event) -> dict:
        if self.events and at < self.events[-1]["at"]:
            raise ValueError(f"event at sample {at} comes before the last one ({self.events[-1]['at']})")
        ev = {"at": int(at), **event}
        if "temperature" in ev:
            v = float(ev["temperature"])
            last = self.events[-1] if self.events else {}
            if last.get("at") == at and "temperature" in last:  # several turns of the knob in one block: the last wins
                self._set_value[-1] = v
                self.events[-1]["temperature"] = v
                return self.events[-1]
            self._set_at.append(int(at))
            self._set_value.append(v)
        self.events.append(ev)
        return ev

    def lane_values(self, start: int, n: int) -> np.ndarray:
        last_s = (self.span - 1) / self.sample_rate if self.span else 0.0
        t = (start + np.arange(n, dtype=np.float64)) / self.sample_rate
        return self.schedule.at(t, last_s).astype(np.float32)

    def temperatures(self, start: int, n: int) -> np.ndarray:
        """(n,) float32: the temperature of samples start..start+n, as played."""
        out = self.lane_values(start, n)
        if self._set_at:
            pos = start + np.arange(n)
            idx = np.searchsorted(np.asarray(self._set_at), pos, side="right") - 1
            knob = np.asarray(self._set_value, dtype=np.float32)
            out = np.where(idx >= 0, knob[np.maximum(idx, 0)], out).astype(np.float32)
        return out

    def temperature_at(self, pos: int) -> float:
        return float(self.temperatures(pos, 1)[0])

    def truncations(self, start: int, n: int) -> dict[str, np.ndarray]:
        """{"min_p": (n,), "top_p": (n,)} float32 of samples start..start+n, for the lanes in use."""
        last_s = (self.span - 1) / self.sample_rate if self.span else 0.0
        t = (start + np.arange(n, dtype=np.float64)) / self.sample_rate
        return {k: s.at(t, last_s).astype(np.float32) for k, s in self.truncation.items()}

    def to_json(self) -> dict:
        out = {"lane": self.lane, "span": self.span, "events": [dict(e) for e in self.events]}
        out.update({k: s.spec for k, s in self.truncation.items()})
        return out

    @classmethod
    def from_json(cls, d: dict, *, sample_rate: int) -> Timeline:
        tl = cls(d["lane"], sample_rate=sample_rate, span=d.get("span"), min_p=d.get("min_p"), top_p=d.get("top_p"))
        for ev in d.get("events", []):
            tl.add(**ev)
        return tl

    def curve(self, n_samples: int, *, start: int = 0, max_points: int = 2000) -> dict:
        """The temperature as played over samples start..start+n_samples, as {"spec", "times_s",
        "values"} with times from `start` (linear interpolation between the points gives every
        sample, up to max_points). `start` > 0: a take punched in after the session began."""
        sr, first, last = self.sample_rate, int(start), int(start) + max(n_samples - 1, 0)
        end = first + n_samples
        first_set = self._set_at[0] if self._set_at else end
        points: list[tuple[int, float]] = []
        lane_end = min(first_set, end) - 1
        if lane_end >= first:
            span = self.span or end
            inner = [round(p * (span - 1)) if self.schedule.unit == "fraction" else round(p * sr)
                     for p in self.schedule.positions]
            for s in sorted({first, lane_end, *(p for p in inner if first < p < lane_end)}):
                points.append((s, float(self.lane_values(s, 1)[0])))
        for i, (at, v) in enumerate(zip(self._set_at, self._set_value, strict=True)):
            if at > last:
                break
            if i + 1 < len(self._set_at) and self._set_at[i + 1] == at:
                continue  # overruled in the same block
            stop = min(self._set_at[i + 1] - 1 if i + 1 < len(self._set_at) else last, last)
            if stop < first:
                continue  # over before the take began
            points.append((max(at, first), v))
            if stop > max(at, first):
                points.append((stop, v))
        if len(points) > max_points:
            keep = np.linspace(0, len(points) - 1, max_points).round().astype(int)
            points = [points[i] for i in keep]
        return {"spec": self.lane, "times_s": [round((s - first) / sr, 9) for s, _ in points],  # steps: one sample
                "values": [round(v, 6) for _, v in points]}


# ----------------------------------------------------------------------------------------------
# Pads


def parse_pad(text: str) -> tuple[str, float | None]:
    """'TRACK@SECONDS', 'FILE@SECONDS' or 'FILE' -> (name, seconds or None); seconds may be M:SS.

    The pad's moment is where the stream continues from: the prime is the stretch just before it."""
    name, sep, when = str(text).rpartition("@")
    if not sep:
        return str(text), None
    if not name:
        raise UserInputError(f"--pad {text!r}: expected TRACK@SECONDS or FILE[@SECONDS]")
    try:
        parts = [float(p) for p in when.split(":")]
        if len(parts) > 2 or any(not math.isfinite(p) or p < 0 for p in parts):
            raise ValueError(when)
        seconds = parts[0] * 60 + parts[1] if len(parts) == 2 else parts[0]
    except ValueError:
        raise UserInputError(f"--pad {text!r}: {when!r} is not a time (seconds, or M:SS)") from None
    return name, seconds
