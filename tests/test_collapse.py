"""Curation names a collapse into noise with its time and temperature and keeps the clean stretch
before it; noise from the start stays "white noise"; "monotonous drone" is kept for real drones."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import melody, write
from inspire.audio.quantize import dequantize, quantize
from inspire.curate import scores
from inspire.curate.curate import curate_folder

SR = 16000
RAMP = {"spec": "0.875:1.15", "times_s": [0.0, 10.0], "values": [0.875, 1.15]}


def _mulaw(x: np.ndarray) -> np.ndarray:
    """As generated clips are: 8-bit mu-law (its quantisation noise included)."""
    return dequantize(quantize(x, kind="mu-law", levels=256), kind="mu-law", levels=256)


def _collapsing(seconds: float, onset: float, seed: int = 0) -> np.ndarray:
    """Music that turns abruptly into white noise at `onset` and never comes back."""
    x = melody(seconds, seed)
    rng = np.random.default_rng(seed + 100)
    k = round(onset * SR)
    x[k:] = np.clip(0.25 * rng.standard_normal(x.size - k), -1, 1)
    return _mulaw(x)


def _tone(f0: float, seconds: float, partials: int = 6) -> np.ndarray:
    t = np.arange(round(seconds * SR)) / SR
    return sum(0.5**h * np.sin(2 * np.pi * f0 * (h + 1) * t) for h in range(partials))


def _drone(seconds: float = 10.0) -> np.ndarray:
    """One sustained tone with its harmonics."""
    return _mulaw(0.4 * _tone(110.0, seconds) / 2)


def _pad(seconds: float = 10.0) -> np.ndarray:
    """A sustained chord (A major, four partials a note), swelling very slowly."""
    t = np.arange(round(seconds * SR)) / SR
    voices = sum(_tone(f, seconds, 4) for f in (220.0, 275.0, 330.0))  # just intonation: no beating
    swell = 0.85 + 0.15 * np.sin(2 * np.pi * t / seconds)
    return _mulaw(0.15 * voices * swell)


@pytest.mark.parametrize("onset", [6.1, 3.7])
def test_music_turning_into_noise_is_a_collapse_at_its_onset(onset):
    result = scores.analyze(_collapsing(10.0, onset), SR, temperature=RAMP)
    f = result.features
    assert f["collapse_s"] == pytest.approx(onset, abs=0.25)
    t = 0.875 + (1.15 - 0.875) * onset / 10.0
    assert f["collapse_temperature"] == pytest.approx(t, abs=0.01)
    assert f["clean_s"] == pytest.approx(onset - 0.25, abs=0.25)
    said = [r for r in result.reasons if r.startswith("collapsed into noise at")]
    assert said == [r for r in said if f"(T {f['collapse_temperature']:.2f})" in r] and len(said) == 1
    assert not any("drone" in r or "white noise" in r for r in result.reasons)
    assert result.verdict == "keep"  # its clean stretch is music worth keeping
    assert f["spectral_flatness"] < 0.3  # features describe the clean stretch


def test_an_early_collapse_is_a_discard_named_as_such():
    result = scores.analyze(_collapsing(10.0, 1.5), SR, temperature=RAMP)
    assert result.verdict == "discard"
    assert result.reasons[0].startswith("collapsed into noise at 1.") and "(T 0.9" in result.reasons[0]


def test_noise_from_the_start_stays_white_noise():
    rng = np.random.default_rng(3)
    result = scores.analyze(_mulaw(0.25 * rng.standard_normal(10 * SR)), SR, temperature=RAMP)
    assert result.features["collapse_s"] is None
    assert result.verdict == "discard" and result.reasons[0] == "white noise"
    assert not any("collapsed" in r or "drone" in r for r in result.reasons)


@pytest.mark.parametrize("make", [_drone, _pad], ids=["drone", "pad"])
def test_real_drones_are_drones(make):
    result = scores.analyze(make(), SR)
    assert result.features["collapse_s"] is None
    assert result.verdict == "discard" and "monotonous drone" in result.reasons
    assert not any("noise" in r for r in result.reasons)


def test_music_alone_has_no_collapse():
    result = scores.analyze(_mulaw(melody(10.0, 4)), SR)
    assert result.features["collapse_s"] is None and result.verdict == "keep"


def test_curation_records_the_keeper_region_and_the_temperature(tmp_path):
    folder = tmp_path / "clips"
    write(folder / "0000-aaaa.wav", _collapsing(10.0, 6.1), SR)
    write(folder / "0001-bbbb.wav", _mulaw(melody(10.0, 5)), SR)
    side = {"format_version": 2, "id": "0000-aaaa", "file": "0000-aaaa.wav", "temperature": RAMP, "seconds": 10.0,
            "sample_rate": SR}
    (folder / "0000-aaaa.json").write_text(json.dumps(side))
    cur = curate_folder(folder)
    entry = next(e for e in cur["clips"] if e["id"] == "0000-aaaa")
    assert entry["verdict"] == "keep"
    assert any(r.startswith("collapsed into noise at 6.") and "(T 1.04)" in r for r in entry["reasons"])
    (a, b), = entry["regions"]
    assert a == 0.0 and b == pytest.approx(5.85, abs=0.25)
    assert json.loads((folder / "0000-aaaa.json").read_text())["curation"]["regions"] == entry["regions"]
    other = next(e for e in cur["clips"] if e["id"] == "0001-bbbb")
    assert other["regions"] is None
    assert "collapse_s" in (folder / "curation.csv").read_text().splitlines()[0]


def test_compose_auto_uses_only_the_clean_stretch_of_a_collapsed_clip(tmp_path):
    from inspire.compose import compose

    folder = tmp_path / "clips"
    write(folder / "collapsed.wav", _collapsing(12.0, 6.1, seed=1), SR)
    for k in range(2):
        write(folder / f"clean-{k}.wav", _mulaw(melody(8.0, 10 + k)), SR)
    cur = curate_folder(folder)
    (b_clean,) = [e["regions"][0][1] for e in cur["clips"] if e["id"] == "collapsed"]
    piece = compose.auto_compose(folder, minutes=1.0, out=tmp_path / "piece.wav", noise_reduction="off")
    mine = [p for p in piece["parts"] if p["clip"] == "collapsed"]
    assert mine, "the collapsed clip's clean stretch was not used"
    assert all(p["out_s"] <= b_clean + 1e-6 for p in mine)
