"""Control curves: one small grammar for temperature (and truncation) as expressive controls in a clip.

    1.0                      constant
    0.875:1.15               linear ramp from the first sample of the clip to the last
    0:0.75,0.5:1.1,1:0.75    breakpoints at fractions of the clip (0..1), linearly interpolated
    0s:0.9,20s:1.1,45s:0.8   breakpoints in seconds from the start of the clip

Before the first breakpoint and after the last the curve holds its value, so a schedule in
seconds fits a clip of any length (a longer clip continues at the last value). `parse` raises
`UserInputError` naming the spec and what is wrong.

The same grammar drives three controls (`CONTROLS`), each with its own range of values:

    temperature   > 0         divides the logits (1 = the model's own distribution)
    min-p         [0, 1)      drop classes less likely than min-p x the most likely one (0 = off)
    top-p         (0, 1]      keep the most likely classes holding top-p of the mass (1 = off)

Every curve is applied at every sample (`inspire.samplernn.sample.sample_logits`). Its resolved
form, written into each clip's sidecar, is the exact piecewise-linear curve as a few points:
`{"spec", "times_s", "values"}` (linear interpolation between points reproduces every sample).

Steering curves (`parse_steer`, `Steer`) use the same grammar over label names instead of
numbers (`nebula`, `nebula:through-space`, `0s:nebula,20s:through-space,45s:none`); see below.

No torch here: parsing a spec (and `inspire generate --help`) stays fast.
"""

from __future__ import annotations

import itertools
import math
import re
from dataclasses import dataclass

import numpy as np

from inspire.errors import UserInputError

MAX_POINTS = 200  # most points a resolved curve keeps (a schedule has far fewer breakpoints)

_NUMBER = r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?"
_POINT = re.compile(rf"^\s*({_NUMBER})\s*(s?)\s*:\s*({_NUMBER})\s*$")


@dataclass(frozen=True)
class Control:
    """One control the grammar can drive: its name (as on the command line), its range and the
    value at which it does nothing (None for temperature, which always acts)."""

    name: str
    low: float
    high: float
    low_open: bool
    high_open: bool
    neutral: float | None
    example: str

    def allows(self, v: float) -> bool:
        above = v > self.low if self.low_open else v >= self.low
        below = v < self.high if self.high_open else v <= self.high
        return math.isfinite(v) and above and below

    @property
    def range_text(self) -> str:
        if self.high == math.inf:
            return f"> {self.low:g}" if self.low_open else f">= {self.low:g}"
        return f"in {'(' if self.low_open else '['}{self.low:g}, {self.high:g}{')' if self.high_open else ']'}"


CONTROLS: dict[str, Control] = {
    "temperature": Control("temperature", 0.0, math.inf, True, True, None, "1.0, 0.875:1.15 or 0:0.75,0.5:1.1,1:0.75"),
    "min-p": Control("min-p", 0.0, 1.0, False, True, 0.0, "0.02 or 0s:0,30s:0.05"),
    "top-p": Control("top-p", 0.0, 1.0, True, False, 1.0, "0.95 or 0:1,1:0.9"),
}


@dataclass(frozen=True)
class Schedule:
    """A parsed control curve (a temperature schedule unless `control` says otherwise).

    `unit` is "fraction" (positions are fractions of the clip, 0..1) or "seconds"; `positions`
    are strictly increasing, `values` the control's values there (inside its range).
    """

    spec: str
    unit: str
    positions: tuple[float, ...]
    values: tuple[float, ...]
    control: str = "temperature"

    @property
    def neutral(self) -> bool:
        """Whether the curve does nothing anywhere (min-p 0 or top-p 1 throughout)."""
        off = CONTROLS[self.control].neutral
        return off is not None and all(v == off for v in self.values)

    def at(self, t_s: np.ndarray, clip_s: float) -> np.ndarray:
        """Values at times `t_s` (seconds from the start of a clip of `clip_s` seconds)."""
        t = np.asarray(t_s, dtype=np.float64)
        x = t / clip_s if self.unit == "fraction" and clip_s > 0 else t
        if len(self.positions) == 1:
            return np.full(t.shape, self.values[0])
        return np.interp(x, self.positions, self.values)

    def curve(self, n_samples: int, sample_rate: int) -> np.ndarray:
        """(n_samples,) float32: the value at every sample of a clip of that length.

        Sample i sits at i / sample_rate seconds; fractions run from the first sample (0) to the
        last (1), so a ramp ends exactly on its end value.
        """
        if n_samples <= 0:
            return np.zeros(0, dtype=np.float32)
        t = np.arange(n_samples, dtype=np.float64) / sample_rate
        last = (n_samples - 1) / sample_rate
        return self.at(t, last).astype(np.float32)

    def resolved(self, n_samples: int, sample_rate: int, *, offset_s: float = 0.0) -> dict:
        """The curve for a clip of `n_samples` as JSON: {"spec", "times_s", "values"}.

        The points are the clip's ends plus every breakpoint inside it, so linear interpolation
        between them gives the curve at every sample exactly. `offset_s` shifts the times (e.g.
        by an included prime, so times are seconds into the written file).
        """
        last = max(n_samples - 1, 0) / sample_rate
        inner = [p * last if self.unit == "fraction" else p for p in self.positions]
        times = sorted({0.0, last, *(t for t in inner if 0.0 < t < last)})
        if len(times) > MAX_POINTS:  # never for a hand-written spec; kept bounded all the same
            times = list(np.linspace(0.0, last, MAX_POINTS))
        values = self.at(np.asarray(times), last)
        return {
            "spec": self.spec,
            "times_s": [round(t + offset_s, 6) for t in times],
            "values": [round(float(v), 6) for v in values],
        }


def parse(spec: str, *, control: str = "temperature") -> Schedule:
    """Parse one spec for `control` (see the module docstring); UserInputError if it is malformed
    or a value is outside the control's range."""
    ctl = CONTROLS[control]
    name = ctl.name
    text = str(spec).strip()
    if not text:
        raise UserInputError(f"{name}: empty spec (try {ctl.example})")
    if "," not in text and not re.search(r"s\s*:", text):
        parts = text.split(":")
        if len(parts) == 1:
            return Schedule(text, "fraction", (0.0,), (_value(ctl, text, parts[0]),), control)
        if len(parts) == 2:
            values = (_value(ctl, text, parts[0]), _value(ctl, text, parts[1]))
            return Schedule(text, "fraction", (0.0, 1.0), values, control)
        raise UserInputError(
            f"{name} {text!r}: a ramp is START:END (e.g. 0.875:1.15); for more points use "
            "POSITION:VALUE pairs separated by commas (e.g. 0:0.75,0.5:1.1,1:0.75)"
        )
    positions, values, units = [], [], set()
    for item in text.split(","):
        m = _POINT.match(item)
        if not m:
            raise UserInputError(
                f"{name} {text!r}: cannot read breakpoint {item.strip()!r} "
                "(expected FRACTION:VALUE like 0.5:1.1, or SECONDS s:VALUE like 20s:1.1)"
            )
        pos, unit = _position(name, text, m)
        units.add(unit)
        positions.append(pos)
        values.append(_value(ctl, text, m.group(3)))
    if len(units) > 1:
        raise UserInputError(f"{name} {text!r}: mixes fractions and seconds; use one kind of position")
    if any(b <= a for a, b in zip(positions, positions[1:], strict=False)):
        raise UserInputError(f"{name} {text!r}: breakpoint positions must increase from left to right")
    return Schedule(text, units.pop(), tuple(positions), tuple(values), control)


def parse_many(specs: list[str] | tuple[str, ...], *, control: str = "temperature") -> list[Schedule]:
    """Parse several specs (a sweep); at least one."""
    if not specs:
        raise UserInputError(f"{control}: give at least one schedule")
    return [parse(s, control=control) for s in specs]


def for_clip(schedules: list, index: int):
    """The schedule (or setting) of clip `index` in a sweep: clips take them in turn, so every
    one gets an even share of any number of clips and adding clips never reassigns one."""
    return schedules[index % len(schedules)]


def sweep(*settings: list) -> list[tuple]:
    """Every combination of several sweeps (e.g. temperatures x min-p values), the first varying
    fastest: clip i takes settings[0][i % n0], settings[1][(i // n0) % n1], ... when clips take
    them in turn (`for_clip`), so each combination gets an even share and a sweep of the first
    alone assigns clips as it always did."""
    return [tuple(reversed(combo)) for combo in itertools.product(*reversed(settings))]



def _position(name: str, text: str, m: re.Match) -> tuple[float, str]:
    """A breakpoint's position and unit ("fraction" of the clip, or "seconds"), checked."""
    pos, unit = float(m.group(1)), "seconds" if m.group(2) else "fraction"
    if not math.isfinite(pos) or pos < 0:
        raise UserInputError(f"{name} {text!r}: breakpoint position {m.group(1)} must be >= 0")
    if unit == "fraction" and pos > 1:
        raise UserInputError(
            f"{name} {text!r}: position {m.group(1)} is beyond the clip's end (fractions run 0..1; "
            f"write {m.group(1)}s for seconds)"
        )
    return pos, unit


def _value(ctl: Control, spec: str, text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise UserInputError(f"{ctl.name} {spec!r}: {text.strip()!r} is not a number") from None
    if not ctl.allows(v):
        raise UserInputError(f"{ctl.name} {spec!r}: {ctl.name} must be a number {ctl.range_text}, got {text.strip()}")
    return v


# ----------------------------------------------------------------------------------------------
# Steering curves: the same grammar over the labels of a model trained with labels
#
#     nebula                                 one label for the whole clip
#     nebula:through-space                   a morph from the first sample to the last
#     0:nebula,0.5:through-space,1:none      breakpoints at fractions of the clip
#     0s:nebula,20s:through-space,45s:none   breakpoints in seconds
#
# Between breakpoints the label embeddings are interpolated linearly (a morph); before the
# first and after the last the label holds. `none` is "no label" (the model's unsteered voice).
# A label holding a comma or a colon is written in double quotes ("live, take 2":nebula).

STEER_NONE = "none"
_POSITION = re.compile(rf"^\s*({_NUMBER})\s*(s?)\s*$")
_SECONDS = re.compile(rf"^\s*{_NUMBER}\s*s\s*$")


@dataclass(frozen=True)
class Steer:
    """A parsed steering curve: `labels[i]` holds at `positions[i]` (fractions or seconds, as
    `unit` says, strictly increasing); names as written until `bind` checks them."""

    spec: str
    unit: str
    positions: tuple[float, ...]
    labels: tuple[str, ...]

    def bind(self, names: list[str] | tuple[str, ...]) -> "Steer":
        """The same curve with every label checked against a model's label names and written as
        the model writes it (matched exactly, else ignoring case); UserInputError otherwise."""
        if not names:
            raise UserInputError(
                f"steer {self.spec!r}: the model was trained without labels (train with --label-by track)")
        out = []
        for lab in self.labels:
            if lab.lower() == STEER_NONE:
                out.append(STEER_NONE)
                continue
            hit = [n for n in names if n == lab] or [n for n in names if n.lower() == lab.lower()]
            if len(hit) != 1:
                raise UserInputError(
                    f"steer {self.spec!r}: unknown label {lab!r}; the model knows: {', '.join(names)} (and none)"
                )
            out.append(hit[0])
        return Steer(self.spec, self.unit, self.positions, tuple(out))

    def rows(self, names: list[str] | tuple[str, ...]) -> tuple[int, ...]:
        """Each breakpoint's row in the model's label tables (0: none, i + 1: names[i])."""
        bound = self.bind(names)
        return tuple(0 if lab == STEER_NONE else 1 + list(names).index(lab) for lab in bound.labels)

    def weights(self, t_s: np.ndarray, clip_s: float, rows: tuple[int, ...], n_rows: int) -> np.ndarray:
        """(len(t_s), n_rows) float32 mixing weights at times `t_s` (seconds from the start of a
        clip of `clip_s` seconds): two neighbouring breakpoints' rows, linearly interpolated."""
        t = np.asarray(t_s, dtype=np.float64).reshape(-1)
        x = t / clip_s if self.unit == "fraction" and clip_s > 0 else t
        out = np.zeros((t.size, n_rows), dtype=np.float32)
        if len(self.positions) == 1:
            out[:, rows[0]] = 1.0
            return out
        pos, idx = np.asarray(self.positions), np.asarray(rows)
        seg = np.clip(np.searchsorted(pos, x, side="right") - 1, 0, len(pos) - 2)
        alpha = np.clip((x - pos[seg]) / (pos[seg + 1] - pos[seg]), 0.0, 1.0)
        where = np.arange(t.size)
        np.add.at(out, (where, idx[seg]), (1.0 - alpha).astype(np.float32))
        np.add.at(out, (where, idx[seg + 1]), alpha.astype(np.float32))
        return out

    def resolved(self, n_samples: int, sample_rate: int, *, offset_s: float = 0.0) -> dict:
        """The curve for a clip of `n_samples` as JSON: {"spec", "times_s", "mixes"}, each mix a
        {label: weight} dict; mixes interpolated linearly between the points give every sample's.
        `offset_s` shifts the times (e.g. by an included prime)."""
        last = max(n_samples - 1, 0) / sample_rate
        inner = [p * last if self.unit == "fraction" else p for p in self.positions]
        times = sorted({0.0, last, *(t for t in inner if 0.0 < t < last)})
        names = sorted({lab for lab in self.labels}, key=self.labels.index)
        rows = tuple(names.index(lab) for lab in self.labels)
        w = self.weights(np.asarray(times), last, rows, len(names))
        mixes = [{names[j]: round(float(v), 6) for j, v in enumerate(row) if v > 0} for row in w]
        return {"spec": self.spec, "times_s": [round(t + offset_s, 6) for t in times], "mixes": mixes}


def parse_steer(spec: str) -> Steer:
    """Parse one steering spec (see above); UserInputError if it is malformed."""
    text = str(spec).strip()
    if not text:
        raise UserInputError(
            "steer: empty spec (try nebula, nebula:through-space or 0s:nebula,20s:through-space,45s:none)")
    items = _split_unquoted(text, ",", spec=text)
    if len(items) == 1:
        parts = _split_unquoted(items[0], ":", spec=text)
        if len(parts) == 1:
            return Steer(text, "fraction", (0.0,), (_label(text, parts[0]),))
        if len(parts) == 2 and not _SECONDS.match(parts[0]):
            return Steer(text, "fraction", (0.0, 1.0), (_label(text, parts[0]), _label(text, parts[1])))
        if len(parts) > 2:
            raise UserInputError(
                f"steer {text!r}: a morph is FROM:TO (e.g. nebula:through-space); for more labels use "
                "POSITION:LABEL pairs separated by commas (e.g. 0s:nebula,20s:through-space,45s:none)"
            )
    positions, labels, units = [], [], set()
    for item in items:
        parts = _split_unquoted(item, ":", spec=text)
        m = _POSITION.match(parts[0]) if len(parts) == 2 else None
        if not m:
            raise UserInputError(
                f"steer {text!r}: cannot read breakpoint {item.strip()!r} "
                "(expected FRACTION:LABEL like 0.5:nebula, or SECONDS s:LABEL like 20s:nebula)"
            )
        pos, unit = _position("steer", text, m)
        units.add(unit)
        positions.append(pos)
        labels.append(_label(text, parts[1]))
    if len(units) > 1:
        raise UserInputError(f"steer {text!r}: mixes fractions and seconds; use one kind of position")
    if any(b <= a for a, b in zip(positions, positions[1:], strict=False)):
        raise UserInputError(f"steer {text!r}: breakpoint positions must increase from left to right")
    return Steer(text, units.pop(), tuple(positions), tuple(labels))


def parse_steers(specs: list[str] | tuple[str, ...]) -> list[Steer]:
    """Parse several steering specs (a sweep); at least one."""
    if not specs:
        raise UserInputError("steer: give at least one steering spec")
    return [parse_steer(s) for s in specs]


def _split_unquoted(text: str, sep: str, *, spec: str) -> list[str]:
    """Split on `sep` outside double quotes (quotes kept; `_label` removes them)."""
    parts, cur, quoted = [], [], False
    for ch in text:
        if ch == '"':
            quoted = not quoted
        if ch == sep and not quoted:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    if quoted:
        raise UserInputError(f"steer {spec!r}: a double quote is not closed")
    return parts + ["".join(cur)]


def _label(spec: str, text: str) -> str:
    lab = text.strip()
    if len(lab) >= 2 and lab[0] == lab[-1] == '"':
        lab = lab[1:-1].strip()
    if not lab or '"' in lab:
        raise UserInputError(f"steer {spec!r}: {text.strip() or 'an empty part'!r} is not a label name")
    return lab
