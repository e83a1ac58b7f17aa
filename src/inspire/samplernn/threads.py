"""CPU threads chosen by measuring the real work, and chosen again while it runs.

On an idle CPU torch's default (one thread per core) is fastest. On a CPU shared with other work
(a DAW, another training, a browser) every OpenMP barrier waits for whichever thread was
descheduled, and one thread can be several times faster than all of them: measured on 2 cores
beside a busy 2-thread process, training fell from ~30,000 to 2,500-4,000 samples/s at the
default count and ran at ~17,000 with one thread. So the count is measured, not guessed.

`fastest` times one piece of work at each candidate count (a job that measures once at its start:
generate). `Tuner` keeps choosing for work that repeats (training steps, validation windows,
preview blocks): it probes the candidates, runs the fastest, and probes again on a timer (load
may have gone away) or at once when the chosen count slows down (load has arrived: a DAW
started mid-run). Probes are real work, never thrown away. OpenMP has no notion of "adapt to
load" of its own (dynamic threads only cap the team size), so this is written by hand.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable
from typing import TypeVar

import torch

T = TypeVar("T")


def candidates(most: int | None = None) -> list[int]:
    """Thread counts worth trying, most first: all, then halving down to one (16 -> 16, 8, 4, 2, 1)."""
    n = max(1, most or torch.get_num_threads())
    out = [n]
    while n > 1:
        n //= 2
        out.append(n)
    return out


def fastest(work: Callable[[], object], counts: list[int]) -> int:
    """Run `work` once at each count (after a warm-up run at the first), set torch to the fastest
    count and return it."""
    if len(counts) == 1:
        torch.set_num_threads(counts[0])
        return counts[0]
    timings = {}
    for n in [counts[0], *counts]:  # the first run warms caches and the thread pool for the others
        torch.set_num_threads(n)
        start = time.perf_counter()
        work()
        timings[n] = time.perf_counter() - start
    best = min(timings, key=timings.get)
    torch.set_num_threads(best)
    return best


class Tuner:
    """Chooses the thread count for a piece of work that repeats, and keeps choosing.

    `run(fn, units)` calls fn at the current count and records its time per unit (units: e.g.
    samples in the call, when calls differ in size). Probing runs `probe` calls at each candidate,
    fewest threads first, and keeps the one with the lowest median; a candidate whose first call
    is over `give_up` times the best so far is dropped at once (on 2 busy cores, two threads were
    measured 100x slower than one: not worth three calls). Probes repeat every `every_s` seconds
    (doubling up to `max_every_s` while the choice
    stays the same) and immediately when the current count's recent median grows past `slack`
    times what it measured.
    """

    def __init__(self, counts: list[int] | None = None, *, probe: int = 3, every_s: float = 30.0,
                 max_every_s: float = 480.0, slack: float = 1.6, give_up: float = 2.5,
                 clock: Callable[[], float] = time.perf_counter):
        self.counts = counts or candidates()
        self.probe, self.slack, self.give_up, self.clock = probe, slack, give_up, clock
        self.base_every_s, self.max_every_s, self.every_s = every_s, max_every_s, every_s
        self.current = self.counts[0]  # the count calls run at now
        self.choice: int | None = None  # the count the last probe settled on
        self.measured: dict[int, float] = {}  # count -> median seconds per unit, this probe round
        self.changes = 0  # how often a probe moved the choice
        # Counts left to probe, fewest threads first: under load the most threads can be 100x slower,
        # and a count whose first call is `give_up` times the best so far is dropped after that call.
        self._queue: list[int] = sorted(self.counts) if len(self.counts) > 1 else []
        self._samples: list[float] = []  # seconds per unit of the calls at `current` since it was set
        self._next_probe = math.inf

    @property
    def probing(self) -> bool:
        return bool(self._queue)

    def run(self, fn: Callable[[], T], units: float = 1.0) -> T:
        """fn() at the chosen count (or the count being probed), timed."""
        if self._queue and self.current != self._queue[0]:
            self._switch(self._queue[0])
        if torch.get_num_threads() != self.current:
            torch.set_num_threads(self.current)  # another tuner (validation, previews) ran in between
        start = self.clock()
        out = fn()
        self._record((self.clock() - start) / max(units, 1e-12))
        return out

    def _switch(self, n: int) -> None:
        self.current, self._samples = n, []
        torch.set_num_threads(n)

    def _record(self, per_unit: float) -> None:
        self._samples.append(per_unit)
        if self._queue:
            best = min(self.measured.values(), default=math.inf)
            hopeless = len(self._samples) == 1 and per_unit > self.give_up * best
            if len(self._samples) >= self.probe or hopeless:
                self.measured[self.current] = statistics.median(self._samples)
                self._queue.pop(0)
                if not self._queue:
                    self._settle()
            return
        if self.choice is None:
            return  # one count only: nothing to choose
        recent = self._samples[-self.probe :]
        slowed = len(recent) == self.probe and statistics.median(recent) > self.slack * self.measured[self.current]
        if slowed or self.clock() >= self._next_probe:
            if slowed:
                self.every_s = self.base_every_s
            # The current count goes first: its fresh figure is what the others are held against.
            self._queue = [self.current] + [n for n in sorted(self.counts) if n != self.current]
            self.measured = {}
            self._samples = []

    def _settle(self) -> None:
        best = min(self.measured, key=self.measured.get)
        if self.choice is not None:
            if best != self.choice:
                self.changes += 1
                self.every_s = self.base_every_s
            else:
                self.every_s = min(2 * self.every_s, self.max_every_s)
        self.choice = best
        self._switch(best)
        self._next_probe = self.clock() + self.every_s
