"""Quantization of audio in [-1, 1] to `levels` integer classes and back.

`mu-law` (ITU-T G.711 companding, mu = levels - 1) spends more levels on quiet passages, where
ears are most sensitive; `linear` spaces them evenly. Both work on numpy arrays and, since only
elementwise arithmetic is used, on torch tensors too (used when generation decodes on device).
"""

from __future__ import annotations

import numpy as np

KINDS = ("mu-law", "linear")


def quantize(x: np.ndarray, *, kind: str = "mu-law", levels: int = 256) -> np.ndarray:
    """Map float audio (clipped to [-1, 1]) to integers 0..levels-1 (uint8 for <= 256 levels)."""
    _check(kind, levels)
    x = np.clip(np.asarray(x, dtype=np.float64), -1.0, 1.0)
    if kind == "mu-law":
        mu = levels - 1
        x = np.sign(x) * np.log1p(mu * np.abs(x)) / np.log1p(mu)
    # [-1, 1] -> bins of equal width; the top edge joins the last bin.
    q = np.floor((x + 1.0) / 2.0 * levels)
    q = np.clip(q, 0, levels - 1)
    return q.astype(np.uint8 if levels <= 256 else np.uint16)


def dequantize(q, *, kind: str = "mu-law", levels: int = 256):
    """Map integer classes to the float value at the centre of each bin (numpy or torch)."""
    _check(kind, levels)
    y = (q * 1.0 + 0.5) / levels * 2.0 - 1.0
    if kind == "mu-law":
        mu = levels - 1
        sign = (y > 0) * 2.0 - 1.0
        y = sign * ((1.0 + mu) ** abs(y) - 1.0) / mu
    if isinstance(y, np.ndarray):
        return y.astype(np.float32)
    return y


def max_error(*, kind: str, levels: int, amplitude: float = 1.0) -> float:
    """Worst-case |x - dequantize(quantize(x))| for |x| <= amplitude.

    Linear: half a bin. Mu-law: bins are centred in the companded domain, so the error is the
    outer part of the widest (outermost) bin reached: from its centre to its top edge."""
    _check(kind, levels)
    if kind == "linear":
        return 1.0 / levels
    mu = levels - 1
    top = np.log1p(mu * amplitude) / np.log1p(mu)
    centre = max(top - 1.0 / levels, 0.0)
    inv = lambda y: ((1 + mu) ** y - 1) / mu  # noqa: E731  (inverse companding, y >= 0)
    return float(inv(top) - inv(centre) + 1e-7)


def silence_level(*, kind: str = "mu-law", levels: int = 256) -> int:
    """The class that holds 0.0 (digital silence): the middle one, levels // 2, for both kinds
    (generation starts from it and pads primes with it; training warns when data is all of it)."""
    return int(quantize(np.zeros(1), kind=kind, levels=levels)[0])


def _check(kind: str, levels: int) -> None:
    if kind not in KINDS:
        raise ValueError(f"quantization must be one of {', '.join(KINDS)}, got {kind!r}")
    if not 2 <= levels <= 65536:
        raise ValueError(f"levels must be between 2 and 65536, got {levels}")
