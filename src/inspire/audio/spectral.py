"""The short-time Fourier transform every analysis shares (curation features, lineage
fingerprints, the arranger's cut points and join shapes).

numpy's FFT over a strided view of Hann-windowed frames: a few lines, no copy of the signal per
frame. (scipy.signal.stft and librosa normalise and pad in their own ways; these callers need
exactly this framing, and librosa is a dependency none of them should carry.)
"""

from __future__ import annotations

import numpy as np


def stft(x: np.ndarray, *, n_fft: int, hop: int, center: bool = True) -> np.ndarray:
    """Complex spectra of Hann-windowed frames of `n_fft` samples every `hop` samples.
    (frames, n_fft // 2 + 1)

    center=True: frame k is centred on sample k * hop (the signal is zero-padded by n_fft // 2
    at both ends), len(x) // hop + 1 frames. center=False: frame k starts at sample k * hop,
    (len(x) - n_fft) // hop + 1 frames (one, zero-padded, when x is shorter than a frame).
    Computed in float32 (complex64 spectra)."""
    x = np.asarray(x, dtype=np.float32)
    if center:
        x = np.pad(x, (n_fft // 2, n_fft // 2))
    if x.size < n_fft:
        x = np.pad(x, (0, n_fft - x.size))
    frames = np.lib.stride_tricks.sliding_window_view(x, n_fft)[::hop]  # (frames, n_fft), a view
    return np.fft.rfft(frames * np.hanning(n_fft).astype(np.float32), axis=1)


def power(spectra: np.ndarray) -> np.ndarray:
    """|X|^2 of complex spectra, float32."""
    return (spectra.real**2 + spectra.imag**2).astype(np.float32)
