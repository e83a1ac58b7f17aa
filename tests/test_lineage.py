"""Lineage: a copied excerpt survives 8-bit mu-law, -6 dB and a few ms of shift and is found
at the right track and times; the same instrument playing other notes is not; the run index
is cached and rebuilt when the tracks change."""

from __future__ import annotations

import json
import os
import re

import numpy as np
import pytest
import soundfile as sf

from conftest import melody
from inspire.audio.quantize import dequantize, quantize
from inspire.cli import main
from inspire.curate import lineage

SR = 16000


def mu_law_8bit(x: np.ndarray) -> np.ndarray:
    return dequantize(quantize(x, kind="mu-law", levels=256), kind="mu-law", levels=256)


TRACKS = {f"song{i}": melody(20.0, 100 + i) for i in range(3)}


@pytest.fixture(scope="module")
def index():
    return lineage.build_index(TRACKS, SR)


def embedded_excerpt(shift_ms: float = 0.0) -> np.ndarray:
    """4 s of unrelated audio, then song1 from 5.0 s (+shift) for 3 s, mu-law 8-bit and 6 dB
    quieter, then 4 s more unrelated audio: the copy sits at 4.0-7.0 s of the clip."""
    start = int((5.0 + shift_ms / 1000) * SR)
    excerpt = mu_law_8bit(0.5 * TRACKS["song1"][start : start + 3 * SR])
    return np.concatenate([melody(4.0, 900), excerpt, melody(4.0, 901)])


def test_excerpt_found_with_track_and_offsets(index):
    matches = lineage.search(index, embedded_excerpt(), SR)
    assert len(matches) == 1, matches
    m = matches[0]
    assert m.track == "song1"
    assert m.clip_start_s == pytest.approx(4.0, abs=0.05)
    assert m.source_start_s == pytest.approx(5.0, abs=0.05)
    assert m.clip_end_s == pytest.approx(7.0, abs=0.1)
    assert m.similarity > 0.7
    assert lineage.lineage_fraction(matches, 11.0) == pytest.approx(3.0 / 11.0, abs=0.02)


@pytest.mark.parametrize("shift_ms", [3.0, 7.0])
def test_excerpt_shifted_by_a_few_ms_still_matches(index, shift_ms):
    matches = lineage.search(index, embedded_excerpt(shift_ms), SR)
    assert [m.track for m in matches] == ["song1"]
    m = matches[0]
    assert m.clip_start_s == pytest.approx(4.0, abs=0.1)
    assert m.source_start_s - m.clip_start_s == pytest.approx(1.0 + shift_ms / 1000, abs=0.02)


@pytest.mark.parametrize("seed", [500, 501, 502])
def test_same_timbre_other_notes_does_not_match(index, seed):
    assert lineage.search(index, mu_law_8bit(melody(12.0, seed)), SR) == []


def test_index_round_trips_through_a_file(index, tmp_path):
    lineage.save_index(index, tmp_path / "index.npz")
    loaded = lineage.load_index(tmp_path / "index.npz")
    assert loaded.names == index.names and np.array_equal(loaded.hashes, index.hashes)
    assert lineage.search(loaded, embedded_excerpt(), SR)[0].track == "song1"
    (tmp_path / "bad.npz").write_bytes(b"junk")
    assert lineage.load_index(tmp_path / "bad.npz") is None


def test_run_index_is_cached_and_rebuilt_when_tracks_change(tmp_path, capsys):
    from inspire.audio.dataset import PrepareSettings, prepare

    sources = tmp_path / "sources"
    sources.mkdir()
    for name in ("song0", "song1"):
        sf.write(sources / f"{name}.wav", TRACKS[name], SR, subtype="PCM_16")
    run = tmp_path / "run"
    prepare([sources], run, PrepareSettings(sample_rate=SR), progress=False)
    first = lineage.run_index(run)
    cache = run / "lineage" / "index.npz"
    stamp = cache.stat().st_mtime_ns
    assert sorted(first.names) == ["song0", "song1"]
    assert lineage.run_index(run).key == first.key and cache.stat().st_mtime_ns == stamp  # reused

    sf.write(sources / "song2.wav", TRACKS["song2"], SR, subtype="PCM_16")
    prepare([sources], run, PrepareSettings(sample_rate=SR), progress=False)
    assert sorted(lineage.run_index(run).names) == ["song0", "song1", "song2"]  # rebuilt

    clips = tmp_path / "clips"
    clips.mkdir()
    sf.write(clips / "copy.wav", embedded_excerpt(), SR, subtype="PCM_16")
    sf.write(clips / "fresh.wav", mu_law_8bit(melody(8.0, 777)), SR, subtype="PCM_16")
    assert main(["curate", str(clips), "--run", str(run), "--quiet"]) == 0
    data = json.loads((clips / "curation.json").read_text())
    by_id = {c["id"]: c for c in data["clips"]}
    assert by_id["fresh"]["lineage"] == {"fraction": 0.0, "matches": []}
    (m,) = by_id["copy"]["lineage"]["matches"]
    assert m["track"] == "song1" and m["source_start_s"] == pytest.approx(5.0, abs=0.05)
    page = (clips / "report.html").read_text()
    assert "song1 0:05.0-0:08.0" in page  # the hover title of the lineage bar
    capsys.readouterr()

    assert main(["lineage", str(clips / "copy.wav"), "--run", str(run)]) == 0
    out = capsys.readouterr().out
    assert re.search(r"0:0(3\.9\d|4\.0\d)-0:0(6\.9\d|7\.0\d)  song1 @ 0:0(4\.9\d|5\.0\d)", out), out
    assert main(["lineage", str(clips / "copy.wav"), "--run", str(tmp_path / "nowhere")]) == 2
    assert main(["lineage", str(tmp_path / "missing.wav"), "--run", str(run)]) == 2
    assert os.path.exists(cache)


def test_very_short_clips_fingerprint_without_error():
    # A clip of a few hundred samples can hold a single spectral peak, which pairs with nothing.
    rng = np.random.default_rng(0)
    for n in (0, 10, 500, 1023, 1024, 1025):
        for sr in (8000, 16000, 22050):
            fp = lineage.fingerprint(0.3 * rng.standard_normal(n), sr)
            assert fp.hashes.size == fp.anchors.size and fp.bands.shape == (round(n * 8000 / sr) // lineage.HOP + 1, 33)
