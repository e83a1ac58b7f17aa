"""Progress on stderr that suits where stderr goes: a live bar on a terminal, plain lines in a log.

On a terminal `Progress` is a tqdm bar. Written to a file or a pipe (a job's log, `2> log.txt`,
`| tee`), a bar's thousands of carriage-return frames make the log unreadable, so it prints one
ordinary line every few seconds instead, and a last line when it closes:

    preparing: 1250/10800 s of audio (12%), 0:35 elapsed, about 4:27 left, album.flac

For a program reading the progress (the studio runs `inspire generate --progress-json`), it
prints one JSON object per line instead, every second and whenever the status changes, and a
last one with "final": true:

    {"progress": "generating", "done": 12.5, "total": 240.0, "unit": "s of audio", "elapsed_s": 3.1,
     "eta_s": 56.4, "final": false, ...the fields given to set_postfix}

Every stage uses it the same way:

    with Progress(total=n, desc="preparing", unit="file") as bar:
        for f in files:
            ...
            bar.update(1)
"""

from __future__ import annotations

import json
import sys
import time
from typing import Callable, TextIO

from inspire.timefmt import clock

PLAIN_EVERY_S = 5.0  # seconds between lines when stderr is not a terminal
JSON_EVERY_S = 1.0  # seconds between JSON lines (a program draws a bar from them)


class Progress:
    """A tqdm bar on a terminal, a line every `every` seconds elsewhere, nothing when disabled;
    with `json_lines`, a JSON object per line (see above) wherever stderr goes."""

    def __init__(
        self,
        total: float | None = None,
        *,
        desc: str,
        unit: str = "it",
        file: TextIO | None = None,
        enabled: bool = True,
        every: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        json_lines: bool = False,
    ) -> None:
        self.total = total
        self.desc = desc
        self.unit = unit
        self.n = 0.0
        self.postfix = ""
        self.fields: dict = {}
        self.file = file if file is not None else sys.stderr
        self.every = every if every is not None else JSON_EVERY_S if json_lines else PLAIN_EVERY_S
        self._clock = clock
        self._start = self._last = clock()
        self._bar = None
        self._plain = False
        self._json = False
        self._closed = False
        if not enabled:
            return
        if json_lines:
            self._json = True
            return
        isatty = getattr(self.file, "isatty", None)
        if isatty is not None and isatty():
            from tqdm import tqdm

            self._bar = tqdm(total=total, desc=desc, unit=unit, file=self.file, dynamic_ncols=True, leave=False)
        else:
            self._plain = True

    @property
    def mode(self) -> str:
        """"bar" (a terminal), "lines" (a file or pipe), "json" or "off"."""
        return "bar" if self._bar is not None else "lines" if self._plain else "json" if self._json else "off"

    def update(self, n: float = 1) -> None:
        self.n += n
        if self._bar is not None:
            self._bar.update(n)
        elif self._plain and self._clock() - self._last >= self.every:
            self._line()
        elif self._json and self._clock() - self._last >= self.every:
            self._json_line()

    def set_postfix(self, text: str, **fields) -> None:
        """A short status shown after the counts (current file, loss...); `fields` say the same
        to a program (JSON lines carry them, and one goes out at once)."""
        self.postfix = text
        self.fields.update(fields)
        if self._bar is not None:
            self._bar.set_postfix_str(text, refresh=False)
        elif self._json:
            self._json_line()

    def write(self, message: str) -> None:
        """Print a line on the progress stream without breaking the bar."""
        if self._bar is not None:
            self._bar.write(message, file=self.file)
        elif not self._json:  # JSON lines stay JSON
            print(message, file=self.file, flush=True)

    def close(self, *, done: bool = True) -> None:
        """End the bar; in a log, a last line saying how long it took (unless it did not finish)."""
        if self._closed:
            return
        self._closed = True
        if self._bar is not None:
            self._bar.close()
        elif self._plain and done and self.n > 0:
            self._line(final=True)
        elif self._json:
            self._json_line(final=True, ok=done)

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close(done=exc_type is None)  # an error's own line is the last word

    def _line(self, *, final: bool = False) -> None:
        now = self._clock()
        self._last = now
        elapsed = now - self._start
        count = f"{_num(self.n)}"
        if self.total:
            count += f"/{_num(self.total)} {self.unit} ({100 * min(self.n / self.total, 1.0):.0f}%)"
        else:
            count += f" {self.unit}"
        parts = [f"{self.desc}: {count}", f"{clock(elapsed)} elapsed"]
        if final:
            parts[-1] = f"done in {clock(elapsed)}"
        elif self.total and 0 < self.n < self.total:
            parts.append(f"about {clock(elapsed * (self.total - self.n) / self.n)} left")
        if self.postfix and not final:
            parts.append(self.postfix)
        print(", ".join(parts), file=self.file, flush=True)


    def _json_line(self, *, final: bool = False, ok: bool = True) -> None:
        now = self._clock()
        self._last = now
        elapsed = now - self._start
        eta = None
        if self.total and 0 < self.n < self.total:
            eta = round(elapsed * (self.total - self.n) / self.n, 1)
        elif self.total is not None and self.n >= self.total:
            eta = 0.0
        line = {"progress": self.desc, "done": round(self.n, 3), "total": self.total, "unit": self.unit,
                "elapsed_s": round(elapsed, 1), "eta_s": eta, "final": final, **self.fields}
        if final:
            line["ok"] = ok
        print(json.dumps(line), file=self.file, flush=True)


def _num(x: float) -> str:
    return f"{x:.0f}" if abs(x - round(x)) < 1e-9 or abs(x) >= 10 else f"{x:.1f}"
