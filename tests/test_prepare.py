import builtins
import errno
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from conftest import melody, sine, write
from inspire.audio import dataset, synth
from inspire.audio import io as audio
from inspire.audio.dataset import PrepareSettings, condition, load_prepared, prepare
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


# ----------------------------------------------------------------------------- hardening

REPO = Path(__file__).resolve().parents[1]


def _cli(*args, timeout=120, **kw):
    """`inspire ARGS` in a fresh process: what a person at a terminal would see."""
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    return subprocess.run([sys.executable, "-m", "inspire", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env=env, **kw)


def _one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def _settings_cases():
    return [PrepareSettings(), PrepareSettings(quantization="linear", levels=1024), PrepareSettings(normalize="none")]


@pytest.mark.parametrize("settings", _settings_cases(), ids=["mu-law", "linear-1024", "no-normalize"])
def test_streamed_prepare_equals_in_memory_conditioning(tmp_path, monkeypatch, settings):
    # 44.1 kHz stereo with DC and a lone click: resampling, channel mix, DC removal and the robust
    # peak all matter. Small scratch blocks so every pass crosses many block boundaries.
    monkeypatch.setattr(dataset, "SCRATCH_BLOCK", 4099)
    x = np.stack([melody(6.0, 1, sr=44100), melody(6.0, 2, sr=44100)], axis=1) + 0.02
    x[1000, 0] = 0.99
    src = write(tmp_path / "m.flac", x, 44100, subtype="PCM_24")
    prepare([src], tmp_path / "run", settings, progress=False)
    prep = load_prepared(tmp_path / "run")
    (track,) = prep.tracks
    audio_in_memory, _ = audio.read_audio(src, sample_rate=settings.sample_rate)
    expected = condition(audio_in_memory, settings)
    streamed = np.asarray(prep.array(track))
    assert streamed.dtype == expected.dtype and streamed.shape == expected.shape == (track.samples,)
    # Equal to the last bit here; allow a class of rounding on a few samples, as promised.
    differ = np.abs(streamed.astype(np.int64) - expected.astype(np.int64))
    assert differ.max() <= 1 and (differ > 0).mean() < 1e-4
    buf = io.BytesIO()
    np.save(buf, streamed)
    assert (tmp_path / "run/data" / track.file).read_bytes() == buf.getvalue()  # a plain .npy file


@pytest.mark.parametrize("case", ["noise", "square", "silence", "one", "two", "ties"])
def test_robust_peak_is_numpys_quantile_exactly(tmp_path, monkeypatch, case):
    monkeypatch.setattr(dataset, "SCRATCH_BLOCK", 1000)
    rng = np.random.default_rng(0)
    x = {
        "noise": rng.standard_normal(12345).astype(np.float32) * 0.3 + 0.01,
        "square": np.where(np.arange(10000) % 50 < 25, 0.5, -0.5).astype(np.float32),
        "silence": np.zeros(5000, np.float32),
        "one": np.array([0.25], np.float32),
        "two": np.array([0.1, -0.7], np.float32),
        "ties": rng.choice(np.float32([0.0, 0.125, -0.5, 0.75]), 7777).astype(np.float32),
    }[case]
    dc = np.float32(x.mean(dtype=np.float64))
    with dataset._scratch(tmp_path) as f:
        f.write(x.data)
        got = dataset._robust_peak(f, x.size, dc)
    want = float(np.quantile(np.abs(x - dc), audio.PEAK_QUANTILE))
    assert got == pytest.approx(want, rel=1e-12, abs=0)


def test_memory_stays_flat_with_length(tmp_path, monkeypatch):
    # Python's allocation tracer sees numpy's buffers: the peak while preparing an 8x longer file
    # must not grow with it (the whole-track path needed several bytes per sample). Blocks smaller
    # than both files, so both are past the point where blocks bound the memory.
    import tracemalloc

    monkeypatch.setattr(dataset, "SCRATCH_BLOCK", 1 << 16)

    peaks = {}
    for minutes in (0.5, 4.0):
        path = tmp_path / f"long-{minutes}.flac"
        with sf.SoundFile(str(path), "w", 44100, 2, subtype="PCM_16") as f:
            for i in range(int(minutes * 60 / 10)):
                f.write(np.stack([melody(10.0, i, sr=44100)] * 2, axis=1) * 0.8)
        tracemalloc.start()
        prepare([path], tmp_path / f"run-{minutes}", PrepareSettings(), progress=False)
        peaks[minutes] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    samples_4min = 4 * 60 * 16000
    assert peaks[4.0] < 1.2 * peaks[0.5], peaks
    assert peaks[4.0] < samples_4min, peaks  # under one byte per output sample: nothing whole in memory


def test_two_prepares_of_one_run_second_is_refused(album, tmp_path):
    run = tmp_path / "run"
    more = tmp_path / "more"
    write(more / "other.wav", sine(550, 2.0, 16000), 16000)
    holder = (
        "import sys\n"
        "import inspire.audio.dataset as d\n"
        "original = d._prepare_one\n"
        "def held(*a, **k):\n"
        "    print('holding', flush=True)\n"
        "    sys.stdin.readline()\n"
        "    return original(*a, **k)\n"
        "d._prepare_one = held\n"
        "from inspire.cli import main\n"
        "sys.exit(main(['prepare', sys.argv[1], '--run', sys.argv[2], '--quiet']))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    first = subprocess.Popen([sys.executable, "-c", holder, str(album), str(run)], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert first.stdout.readline().strip() == "holding"  # the first job is inside prepare, lock held
        second = _cli("prepare", more, "--run", run, "--quiet")
        assert second.returncode == 2
        assert f"{run} is being prepared by pid {first.pid}" in _one_line(second.stderr)
        out, err = first.communicate("\n" * 10, timeout=120)
    finally:
        first.kill()
    assert first.returncode == 0, err
    assert _cli("prepare", more, "--run", run, "--quiet").returncode == 0  # after it: welcome
    prep = load_prepared(run)
    assert sorted(t.name for t in prep.tracks) == ["other", "track0", "track1", "track2"]
    on_disk = sorted(p.name for p in (run / "data/tracks").iterdir())
    assert on_disk == sorted(Path(t.file).name for t in prep.tracks)  # no orphaned track files


def test_run_folder_in_the_way_is_one_line(album, tmp_path):
    (tmp_path / "afile").write_text("not a folder")
    for run in (tmp_path / "afile", tmp_path / "afile/run"):
        r = _cli("prepare", album, "--run", run)
        assert r.returncode == 2 and "afile" in _one_line(r.stderr)
    (tmp_path / "run").mkdir()
    (tmp_path / "run/data").write_text("not a folder")
    r = _cli("prepare", album, "--run", tmp_path / "run")
    assert r.returncode == 2 and "run/data: a file is in the way" in _one_line(r.stderr)
    assert (tmp_path / "run/data").read_text() == "not a folder"


def _read_only(monkeypatch, root: Path) -> None:
    """Writes under `root` fail as on a read-only mount (tests run as root, where chmod stops nothing)."""
    real_open, real_mkdir = os.open, os.mkdir

    def inside(path) -> bool:
        return str(os.path.abspath(path)).startswith(str(root))

    def ro_open(path, flags, *a, **k):
        if inside(path) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
            raise OSError(errno.EROFS, "Read-only file system", str(path))
        return real_open(path, flags, *a, **k)

    def ro_mkdir(path, *a, **k):
        if inside(path) and not os.path.exists(path):
            raise OSError(errno.EROFS, "Read-only file system", str(path))
        return real_mkdir(path, *a, **k)

    monkeypatch.setattr(os, "open", ro_open)
    monkeypatch.setattr(os, "mkdir", ro_mkdir)


def test_read_only_filesystem_is_one_line(album, tmp_path, monkeypatch, capsys):
    run = tmp_path / "run"
    prepare([album], run, PrepareSettings(), progress=False)
    before = (run / "data/manifest.json").read_text()
    write(album / "new.wav", sine(660, 2.0, 16000), 16000)
    capsys.readouterr()
    with monkeypatch.context() as m:  # a new run on a read-only disk
        _read_only(m, tmp_path / "ro")
        assert main(["prepare", str(album), "--run", str(tmp_path / "ro/run")]) == 2
    assert "read-only filesystem" in _one_line(capsys.readouterr().err)
    with monkeypatch.context() as m:  # the whole run read-only: the lock cannot be taken
        _read_only(m, run)
        assert main(["prepare", str(album), "--run", str(run)]) == 2
    assert "cannot write here (Read-only file system)" in _one_line(capsys.readouterr().err)
    with monkeypatch.context() as m:  # only the tracks folder: fails while writing a track
        _read_only(m, run / "data/tracks")
        assert main(["prepare", str(album), "--run", str(run)]) == 2
    assert "read-only filesystem" in _one_line(capsys.readouterr().err)
    assert (run / "data/manifest.json").read_text() == before


def test_disk_full_during_prepare_is_one_line_and_leaves_nothing(album, tmp_path, monkeypatch, capsys):
    run = tmp_path / "run"
    prepare([album], run, PrepareSettings(), progress=False)
    before = (run / "data/manifest.json").read_text()
    files_before = sorted(os.listdir(run / "data/tracks"))
    write(album / "new1.wav", sine(660, 2.0, 16000), 16000)
    write(album / "new2.wav", sine(770, 2.0, 16000), 16000)
    capsys.readouterr()
    written = [0]

    class FillingDisk:
        """A file whose writes fail with ENOSPC once 200 kB have gone to disk (about one track)."""

        def __init__(self, f):
            self.f = f

        def write(self, data):
            written[0] += len(memoryview(data).cast("B"))
            if written[0] > 200_000:
                raise OSError(errno.ENOSPC, "No space left on device")
            return self.f.write(data)

        def __getattr__(self, name):
            return getattr(self.f, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

    monkeypatch.setattr(dataset, "open", lambda *a, **k: FillingDisk(builtins.open(*a, **k)), raising=False)
    assert main(["prepare", str(album), "--run", str(run)]) == 2
    assert "disk full" in _one_line(capsys.readouterr().err)
    assert written[0] > 200_000  # it did fail part-way through the second new track
    assert (run / "data/manifest.json").read_text() == before
    assert sorted(os.listdir(run / "data/tracks")) == files_before  # the first new track removed too
    monkeypatch.undo()
    assert len(prepare([album], run, PrepareSettings(), progress=False)["tracks"]) == 5  # room again: works


def test_fifo_is_skipped_not_read(album, tmp_path):
    fifo = tmp_path / "pipe.wav"
    os.mkfifo(fifo)
    r = _cli("prepare", fifo, "--run", tmp_path / "run", timeout=60)  # used to hang here
    assert r.returncode == 2 and "pipe.wav: not a regular file (a FIFO)" in _one_line(r.stderr)
    r = _cli("prepare", fifo, album / "track0.wav", "--run", tmp_path / "run", "--quiet", timeout=60)
    assert r.returncode == 0, r.stderr
    m = json.loads((tmp_path / "run/data/manifest.json").read_text())
    assert [t["name"] for t in m["tracks"]] == ["track0"]
    skipped = [(Path(s["source"]).name, s["reason"]) for s in m["skipped"]]
    assert skipped == [("pipe.wav", "not a regular file (a FIFO)")]


def test_run_and_clips_folders_inside_sources_are_skipped(album, tmp_path, capsys):
    run = album / "run"  # the run lives inside the folder being prepared
    prepare([album], run, PrepareSettings(), progress=False)
    write(run / "previews/step-00000010/temperature-1.00.wav", sine(300, 2.0, 16000), 16000)
    write(run / "clips/demo/clip-1.wav", sine(310, 2.0, 16000), 16000)
    other_run = album / "old-run"
    (other_run / "checkpoints").mkdir(parents=True)
    write(other_run / "previews/p.wav", sine(320, 2.0, 16000), 16000)
    clips = album / "generated"
    write(clips / "c1.wav", sine(330, 2.0, 16000), 16000)
    (clips / "manifest.json").write_text(json.dumps({"format_version": 2, "clips": []}))
    write(album / "live/real.wav", sine(340, 2.0, 16000), 16000)  # an ordinary sub-folder is still read
    capsys.readouterr()
    m = prepare([album], run, PrepareSettings(), progress=False)
    assert sorted(t["name"] for t in m["tracks"]) == ["real", "track0", "track1", "track2"]
    err = capsys.readouterr().err
    assert "skipped folder" in err and str(run) in err and "old-run" in err and "generated" in err
    assert "inside the run folder" in _cli("prepare", run / "clips", "--run", run).stderr


def test_silent_tracks_are_warned_about(album, tmp_path, capsys):
    write(album / "silence.wav", np.zeros(32000, np.float32), 16000)
    hiss = (np.random.default_rng(0).standard_normal(32000) * 1e-5).astype(np.float32)
    write(album / "hiss.wav", hiss, 16000, subtype="FLOAT")
    capsys.readouterr()
    assert main(["prepare", str(album), "--run", str(tmp_path / "run"), "--quiet"]) == 0
    captured = capsys.readouterr()
    warned = [line for line in captured.err.splitlines() if "(near) silent" in line]
    assert len(warned) == 2 and any("silence.wav" in w and "digital silence" in w for w in warned)
    rows = {line.split()[0]: line for line in captured.out.splitlines()}
    assert "(near) silent" in rows["silence"] and "(near) silent" in rows["hiss"]
    assert "(near) silent" not in rows["track0"]
    assert "warning: 2 of 5 tracks are (near) silent" in captured.out
    levels = {t.name: t.peak_dbfs for t in load_prepared(tmp_path / "run").tracks}
    assert levels["silence"] == -200.0 and -100 < levels["hiss"] < -80 and levels["track0"] > -10


def test_progress_lines_when_not_a_terminal():
    from inspire.progress import Progress

    now = [0.0]
    out = io.StringIO()
    with Progress(100, desc="preparing", unit="s of audio", file=out, clock=lambda: now[0]) as bar:
        assert bar.mode == "lines"
        for _ in range(100):
            now[0] += 0.25  # 25 s in all: a line every 5 s
            bar.set_postfix("a.wav")
            bar.update(1)
    text = out.getvalue()
    assert "\r" not in text
    lines = text.splitlines()
    assert len(lines) == 6 and lines[0] == "preparing: 20/100 s of audio (20%), 0:05 elapsed, about 0:20 left, a.wav"
    assert lines[-1] == "preparing: 100/100 s of audio (100%), done in 0:25"


def test_progress_bar_on_a_terminal_and_nothing_when_off():
    from inspire.progress import Progress

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    tty = Terminal()
    with Progress(10, desc="preparing", unit="file", file=tty) as bar:
        assert bar.mode == "bar"
        for _ in range(10):
            bar.update(1)
    assert "\r" in tty.getvalue() and "preparing" in tty.getvalue()
    off = io.StringIO()
    with Progress(10, desc="preparing", file=off, enabled=False) as bar:
        bar.update(10)
    assert bar.mode == "off" and off.getvalue() == ""


def test_prepare_progress_to_a_log_has_no_carriage_returns(album, tmp_path):
    r = _cli("prepare", album, "--run", tmp_path / "run")  # stderr is a pipe here
    assert r.returncode == 0, r.stderr
    assert "\r" not in r.stderr and "preparing: " in r.stderr and "done in" in r.stderr


def test_demo_refuses_bad_minutes_and_a_file_as_out(tmp_path, capsys):
    for bad in ("nan", "inf", "0", "-1"):
        assert main(["demo", "--train-minutes", bad, "--out", str(tmp_path / "d")]) == 2
        assert "--train-minutes must be a positive number" in _one_line(capsys.readouterr().err)
    assert not (tmp_path / "d").exists()
    (tmp_path / "afile").write_text("x")
    r = _cli("demo", "--out", tmp_path / "afile")
    assert r.returncode == 2 and "afile: a file is in the way" in _one_line(r.stderr)


@pytest.mark.slow
def test_ctrl_c_stops_the_whole_demo(tmp_path):
    out = tmp_path / "demo"
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "OMP_NUM_THREADS": "1"}  # one thread: kind to a busy machine
    p = subprocess.Popen([sys.executable, "-m", "inspire", "demo", "--out", str(out), "--train-minutes", "10"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        metrics = out / "run/metrics.jsonl"
        for _ in range(1200):  # the training loop (which catches Ctrl-C) has logged its first steps
            if metrics.exists() and metrics.stat().st_size > 0:
                break
            time.sleep(0.1)
        p.send_signal(signal.SIGINT)
        stdout, stderr = p.communicate(timeout=600)  # it saves and validates first; a busy machine is slow
    finally:
        p.kill()
    assert p.returncode == 130, stderr
    assert "stopped at step" in stderr and "demo stopped by Ctrl-C during training" in stderr
    assert (out / "run/checkpoints/last.pt").exists()  # training saved its work
    assert not (out / "run/clips").exists() and not (out / "piece").exists()  # and nothing after it ran


@pytest.mark.slow
def test_demo_without_a_keeper_ends_cleanly_and_says_why(tmp_path, monkeypatch, capsys):
    """On a machine too busy to train the demo model, no clip passes curation: the demo still
    finishes (exit 0), says there is no piece and why, instead of failing at its last stage."""
    from inspire.curate import curate

    real = curate.curate_folder

    def everything_discarded(*args, **kw):
        result = real(*args, **kw)
        for c in result["clips"]:
            c["verdict"] = "discard"
        return result

    monkeypatch.setattr(curate, "curate_folder", everything_discarded)
    assert main(["demo", "--out", str(tmp_path / "d"), "--train-minutes", "0.01"]) == 0
    captured = capsys.readouterr()
    assert "no clip passed curation, so there is no piece" in captured.err
    assert "(0 of 8 kept)" in captured.out and "piece " not in captured.out
    assert not (tmp_path / "d" / "piece" / "piece.wav").exists()
    # the guarded clips are there, with the guard's settings and interventions in their sidecars
    from inspire import clips

    guarded = clips.scan(tmp_path / "d" / "run" / "clips" / "demo-guarded")
    assert len(guarded) == 2 and all(r.guard and "settings" in r.guard for r in guarded)
    assert all(r.auto_verdict in ("keep", "discard") for r in guarded)  # curated, as the studio shows them
    redraws = sum(not e.get("gave_up") for r in guarded for e in r.guard["interventions"])
    assert f"the guard redrew {redraws} stretch" in captured.out
