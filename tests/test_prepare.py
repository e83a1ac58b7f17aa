import json
import os

import numpy as np
import pytest

from conftest import sine, write
from inspire.audio import io as audio
from inspire.audio import synth
from inspire.audio.dataset import PrepareSettings, load_prepared, prepare
from inspire.audio.quantize import dequantize, max_error, quantize
from inspire.cli import main
from inspire.errors import DatasetError


def _dominant_hz(x, sr):
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return np.argmax(spec) * sr / len(x)


FORMATS = [
    ("wav", {"subtype": "PCM_16"}),
    ("wav", {"subtype": "PCM_24"}),
    ("wav", {"subtype": "FLOAT"}),
    ("flac", {"subtype": "PCM_16"}),
    ("ogg", {"format": "OGG", "subtype": "VORBIS"}),
    ("mp3", {"format": "MP3"}),
    ("aiff", {"format": "AIFF", "subtype": "PCM_16"}),
]


@pytest.mark.parametrize("ext,kw", FORMATS)
@pytest.mark.parametrize("sr,channels", [(44100, 2), (22050, 1), (48000, 6), (8000, 1)])
def test_every_format_rate_and_channel_count_round_trips(tmp_path, ext, kw, sr, channels):
    secs = 1.5
    if ext == "mp3":
        channels = min(channels, 2)  # MP3 holds at most two channels
        sr = sr if sr in (8000, 22050, 44100, 48000) else 44100
    x = sine(440.0, secs, sr)
    data = np.stack([x] * channels, axis=1) if channels > 1 else x
    src = write(tmp_path / f"tone.{ext}", data, sr, **kw)
    manifest = prepare([src], tmp_path / "run", PrepareSettings(), progress=False)
    (t,) = manifest["tracks"]
    assert t["original_sample_rate"] == sr and t["channels"] == channels
    prep = load_prepared(tmp_path / "run")
    y = prep.audio(prep.tracks[0])
    # Lossy codecs pad a little at the start/end; PCM is exact to +-1 sample per resampled second.
    tol = 1 + secs if ext in ("wav", "flac", "aiff") else 0.08 * 16000
    assert abs(len(y) - secs * 16000) <= tol
    assert abs(_dominant_hz(y[2000:-2000], 16000) - 440.0) < 2.0  # pitch survives resampling


def test_quantize_round_trip_bounds():
    x = np.linspace(-1, 1, 100001)
    for kind in ("mu-law", "linear"):
        for levels in (16, 256, 1024):
            y = dequantize(quantize(x, kind=kind, levels=levels), kind=kind, levels=levels)
            assert np.abs(y - x).max() <= max_error(kind=kind, levels=levels) + 1e-6
    # mu-law is finer than linear near zero, where quiet music lives.
    small = np.linspace(-0.01, 0.01, 1001)
    err = {k: np.abs(dequantize(quantize(small, kind=k), kind=k) - small).max() for k in ("mu-law", "linear")}
    assert err["mu-law"] < err["linear"] / 4


def test_split_by_track_no_overlap(album, tmp_path):
    manifest = prepare([album], tmp_path / "run", PrepareSettings(val_fraction=0.34), progress=False)
    splits = [t["split"] for t in manifest["tracks"]]
    assert splits.count("val") == 1 and splits.count("train") == 2
    for t in manifest["tracks"]:
        assert [s["split"] for s in t["segments"]] == [t["split"]]


def test_single_track_gets_a_held_out_stretch_with_a_gap(tmp_path):
    src = write(tmp_path / "one.flac", sine(330, 20.0, 16000), 16000)
    manifest = prepare([src], tmp_path / "run", PrepareSettings(val_fraction=0.1), progress=False)
    (t,) = manifest["tracks"]
    assert t["split"] == "mixed"
    tr, va = t["segments"]
    assert (tr["split"], va["split"]) == ("train", "val")
    assert tr["start"] == 0 and va["end"] == t["samples"]
    assert va["start"] - tr["end"] >= 16000  # a one-second gap: no training window reaches validation
    assert abs((va["end"] - va["start"]) - 0.1 * t["samples"]) <= 1


def test_manifest_records_source_and_settings(album, tmp_path):
    prepare([album], tmp_path / "run", PrepareSettings(), progress=False)
    m = json.loads((tmp_path / "run/data/manifest.json").read_text())
    assert m["settings"]["sample_rate"] == 16000 and m["settings"]["quantization"] == "mu-law"
    t = m["tracks"][0]
    for key in ("source", "sha256", "format", "original_sample_rate", "channels", "seconds", "split"):
        assert key in t
    assert t["sha256"] == audio.sha256_of(t["source"])
    arr = np.load(tmp_path / "run/data" / t["file"], mmap_mode="r")
    assert isinstance(arr, np.memmap) and arr.dtype == np.uint8


def test_rerun_adds_new_files_and_skips_unchanged(album, tmp_path):
    run = tmp_path / "run"
    m1 = prepare([album], run, PrepareSettings(), progress=False)
    before = {t["id"]: t["split"] for t in m1["tracks"]}
    m2 = prepare([album], run, PrepareSettings(), progress=False)
    assert m2["tracks"] == m1["tracks"]
    write(album / "more" / "new.wav", sine(550, 2.0, 16000), 16000)
    m3 = prepare([album], run, PrepareSettings(), progress=False)
    assert len(m3["tracks"]) == 4
    assert {t["id"]: t["split"] for t in m3["tracks"][:3]} == before  # old splits never move


def test_refuses_to_mix_settings(album, tmp_path):
    prepare([album], tmp_path / "run", PrepareSettings(), progress=False)
    with pytest.raises(DatasetError, match="sample_rate 16000 \\(asked 22050\\)"):
        prepare([album], tmp_path / "run", PrepareSettings(sample_rate=22050), progress=False)
    with pytest.raises(DatasetError, match="quantization"):
        prepare([album], tmp_path / "run", PrepareSettings(quantization="linear"), progress=False)


def test_bad_files_are_skipped_and_listed(album, tmp_path, capsys):
    (album / "empty.wav").write_bytes(b"")
    (album / "notes.wav").write_text("this is a text file, not audio")
    good = (album / "track0.wav").read_bytes()
    (album / "truncated.wav").write_bytes(good[:30])
    write(album / "short.wav", sine(440, 0.5, 16000), 16000)
    nan = sine(440, 2.0, 16000)
    nan[100] = np.nan
    write(album / "nan.wav", nan, 16000, subtype="FLOAT")
    m = prepare([album], tmp_path / "run", PrepareSettings(), progress=False)
    assert len(m["tracks"]) == 3
    reasons = {os.path.basename(s["source"]): s["reason"] for s in m["skipped"]}
    assert set(reasons) == {"empty.wav", "notes.wav", "truncated.wav", "short.wav", "nan.wav"}
    assert "empty" in reasons["empty.wav"]
    assert "too short" in reasons["short.wav"]
    assert "NaN" in reasons["nan.wav"]
    err = capsys.readouterr().err
    assert err.count("warning: skipped") == 5


def test_nothing_usable_is_a_user_error(tmp_path, capsys):
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad/a.wav").write_text("nope")
    assert main(["prepare", str(tmp_path / "bad"), "--run", str(tmp_path / "run")]) == 2
    assert "no usable audio" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["prepare", str(tmp_path / "empty"), "--run", str(tmp_path / "run")]) == 2
    assert "no audio files found" in capsys.readouterr().err
    assert main(["prepare", str(tmp_path / "missing"), "--run", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "missing: no such file or folder" in err[0]
    assert main(["prepare", str(tmp_path / "bad"), "--run", str(tmp_path / "run"), "--val-fraction", "1.5"]) == 2


def test_interrupted_prepare_leaves_previous_dataset_usable(album, tmp_path, monkeypatch):
    run = tmp_path / "run"
    prepare([album], run, PrepareSettings(), progress=False)
    before = (run / "data/manifest.json").read_text()
    write(album / "new.wav", sine(660, 2.0, 16000), 16000)
    import inspire.audio.dataset as data

    def boom(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(data, "write_json", boom)
    with pytest.raises(KeyboardInterrupt):
        prepare([album], run, PrepareSettings(), progress=False)
    assert (run / "data/manifest.json").read_text() == before
    prep = load_prepared(run)
    assert all(prep.array(t).size == t.samples for t in prep.tracks)
    assert not [p for p in (run / "data").rglob("*.tmp*")]


def test_demo_album_is_deterministic():
    a = synth.render_track(0)
    b = synth.render_track(0)
    assert np.array_equal(a, b) and 0.5 < np.abs(a).max() <= 0.8 + 1e-6
    assert not np.array_equal(a[:16000], synth.render_track(1)[:16000])


def test_cli_round_trip_prints_table(album, tmp_path, capsys):
    assert main(["prepare", str(album), "--run", str(tmp_path / "run"), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "track0" in out and "3 tracks" in out


def test_normalize_none_keeps_each_tracks_level(tmp_path):
    write(tmp_path / "src/loud.wav", sine(440, 2.0, 16000, amp=0.8), 16000)
    write(tmp_path / "src/quiet.wav", sine(440, 2.0, 16000, amp=0.1), 16000)
    peaks = {}
    for mode in ("peak", "none"):
        prepare([tmp_path / "src"], tmp_path / mode, PrepareSettings(normalize=mode), progress=False)
        prep = load_prepared(tmp_path / mode)
        peaks[mode] = {t.name: float(np.abs(prep.audio(t)).max()) for t in prep.tracks}
    assert peaks["peak"]["loud"] == pytest.approx(peaks["peak"]["quiet"], rel=0.05)  # both brought up
    assert peaks["none"]["quiet"] == pytest.approx(0.1, rel=0.05)
    assert peaks["none"]["loud"] == pytest.approx(0.8, rel=0.05)
    with pytest.raises(DatasetError, match="normalize none \\(asked peak\\)"):
        prepare([tmp_path / "src"], tmp_path / "none", PrepareSettings(), progress=False)
