"""Times as musicians read them: minutes and seconds ("3:07", "0:42.5", "12:03.25")."""

from __future__ import annotations


def clock(seconds: float, *, decimals: int = 0) -> str:
    """m:ss with `decimals` digits of seconds; negative times read 0:00. Rounded once, so 59.97 s
    reads 1:00.0 rather than 0:60.0."""
    total = float(f"{max(0.0, float(seconds)):.{decimals}f}")
    minutes, rest = divmod(total, 60.0)
    width = 3 + decimals if decimals else 2
    return f"{int(minutes)}:{rest:0{width}.{decimals}f}"
