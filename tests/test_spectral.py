"""The shared STFT: framing (centred or not), a sine lands in its bin, power is |X|^2."""

import numpy as np
import pytest

from inspire.audio import spectral


@pytest.mark.parametrize("n", [0, 1, 255, 256, 257, 1000, 4096])
def test_frame_counts(n):
    x = np.ones(n, np.float32)
    assert spectral.stft(x, n_fft=256, hop=64).shape == (n // 64 + 1, 129)
    assert spectral.stft(x, n_fft=256, hop=64, center=False).shape == (max(0, (n - 256) // 64) + 1, 129)


def test_a_sine_peaks_in_its_bin_and_centred_frames_sit_on_the_hop():
    sr, n_fft, hop = 8000, 512, 128
    t = np.arange(sr) / sr
    x = np.sin(2 * np.pi * (40 * sr / n_fft) * t)  # exactly bin 40
    spec = spectral.stft(x, n_fft=n_fft, hop=hop)
    assert spec.dtype == np.complex64
    assert (np.abs(spec[2:-2]).argmax(axis=1) == 40).all()
    np.testing.assert_allclose(spectral.power(spec), np.abs(spec) ** 2, rtol=1e-5)
    click = np.zeros(4096, np.float32)
    click[10 * hop] = 1.0
    energy = spectral.power(spectral.stft(click, n_fft=n_fft, hop=hop)).sum(axis=1)
    assert energy.argmax() == 10  # frame k is centred on sample k * hop
