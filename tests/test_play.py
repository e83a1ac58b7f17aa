"""Playing: controls parsed from keys, MIDI and OSC (fake messages, no device), the timeline of a
take, a live session whose controls land at recorded sample positions and render again exactly,
pads that re-prime, the headless `inspire play` whose take `generate --again` reproduces, and
one-line errors for every bad input."""

import json
import signal
import subprocess
import sys
import time
import types
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from conftest import make_labelled_run, save_checkpoint
from inspire.config import ModelConfig
from inspire.errors import UserInputError
from inspire.samplernn import controls
from inspire.samplernn.controls import Control, MidiMap, Timeline

SR = 16000
TINY = ModelConfig(frame_sizes=(4, 2), dim=16, levels=64)


@pytest.fixture
def run(tmp_path):
    """A run with two prepared tracks and a random-init tiny checkpoint made for them."""
    from inspire.audio.dataset import PrepareSettings, prepare
    from inspire.samplernn.model import SampleRNN

    rng = np.random.default_rng(0)
    for i in range(2):
        t = np.arange(int(2.0 * SR)) / SR
        tone = 0.4 * np.sin(2 * np.pi * (220 + 110 * i) * t) + 0.05 * rng.standard_normal(t.size)
        sf.write(str(tmp_path / f"song{i}.wav"), tone, SR)
    run_dir = tmp_path / "run"
    songs = [tmp_path / "song0.wav", tmp_path / "song1.wav"]
    prepare(songs, run_dir, PrepareSettings(levels=TINY.levels), progress=False)
    torch.manual_seed(0)
    save_checkpoint(run_dir, SampleRNN(TINY), step=3, sample_rate=SR)
    return run_dir


def _tracks(run_dir):
    return [t["id"] for t in json.loads((run_dir / "data" / "manifest.json").read_text())["tracks"]]


def _cli(argv):
    from inspire import cli

    return cli.main(argv)


# ---------------------------------------------------------------------------------------------
# Controls (no torch, no devices)


def test_keyboard_keys():
    assert controls.split_keys("+\x1b[A1q\x1b[B") == ["+", "\x1b[A", "1", "q", "\x1b[B"]
    assert controls.keyboard("\x1b[A") == Control("nudge", controls.NUDGE)
    assert controls.keyboard("-") == Control("nudge", -controls.NUDGE)
    assert controls.keyboard("3") == Control("pad", 3)
    assert controls.keyboard("0") == Control("reset")
    assert controls.keyboard("q") == Control("quit")
    assert controls.keyboard("x") is None


def test_midi_messages():
    m = MidiMap(cc=74, lo=0.5, hi=1.5, pad_note=36)
    cc = types.SimpleNamespace
    assert m.parse(cc(type="control_change", channel=0, control=74, value=0)) == Control("temperature", 0.5)
    assert m.parse(cc(type="control_change", channel=3, control=74, value=127)) == Control("temperature", 1.5)
    assert m.parse(cc(type="control_change", channel=0, control=7, value=64)) is None  # another knob
    assert m.parse(cc(type="note_on", channel=9, note=38, velocity=100)) == Control("pad", 2)
    assert m.parse(cc(type="note_on", channel=9, note=36, velocity=100)) == Control("reset")
    assert m.parse(cc(type="note_on", channel=9, note=38, velocity=0)) is None  # a note-off in disguise
    assert m.parse(cc(type="note_on", channel=9, note=30, velocity=90)) is None
    assert m.parse(cc(type="clock")) is None
    ch = MidiMap(cc=74, channel=2)
    assert ch.parse(cc(type="control_change", channel=0, control=74, value=5)) is None
    assert ch.parse(cc(type="control_change", channel=1, control=74, value=127)).value == pytest.approx(1.5)
    with pytest.raises(UserInputError):
        MidiMap(cc=200)
    with pytest.raises(UserInputError):
        controls.parse_midi_range("1.5:0.5")
    mido = pytest.importorskip("mido")  # the real message class, when the extra is installed
    assert m.parse(mido.Message("control_change", control=74, value=127)) == Control("temperature", 1.5)


def test_osc_messages():
    assert controls.osc("/inspire/temperature", 0.95) == Control("temperature", 0.95)
    assert controls.osc("/inspire/nudge", -0.1) == Control("nudge", -0.1)
    assert controls.osc("/inspire/pad", 2) == Control("pad", 2)
    assert controls.osc("/inspire/pad", 0) == Control("reset")
    assert controls.osc("/inspire/reset") == Control("reset")
    assert controls.osc("/inspire/quit") == Control("quit")
    assert controls.osc("/inspire/temperature", -1.0) is None  # not a temperature
    assert controls.osc("/inspire/temperature", "hot") is None
    assert controls.osc("/other/temperature", 1.0) is None
    assert controls.osc("/inspire/temperature") is None


def test_pad_specs():
    assert controls.parse_pad("song0@12.5") == ("song0", 12.5)
    assert controls.parse_pad("song0@1:05") == ("song0", 65.0)
    assert controls.parse_pad("my@file.wav@3") == ("my@file.wav", 3.0)
    assert controls.parse_pad("loop.wav") == ("loop.wav", None)
    for bad in ("song@soon", "@3", "song@-1"):
        with pytest.raises(UserInputError):
            controls.parse_pad(bad)


def test_timeline_lane_then_knob_latches():
    tl = Timeline("0.9:1.2", sample_rate=SR, span=1001)
    lane = tl.temperatures(0, 1001)
    assert lane[0] == pytest.approx(0.9) and lane[-1] == pytest.approx(1.2)
    tl.add(400, temperature=1.0)
    tl.add(400, temperature=1.05)  # two turns in one block: the last wins
    tl.add(600, pad=2)
    tl.add(700, temperature=0.8)
    got = tl.temperatures(0, 1001)
    assert np.array_equal(got[:400], lane[:400])  # the lane until the knob
    assert np.all(got[400:700] == np.float32(1.05)) and np.all(got[700:] == np.float32(0.8))
    assert np.array_equal(np.concatenate([tl.temperatures(0, 333), tl.temperatures(333, 668)]), got)  # any block split
    assert [e["at"] for e in tl.events] == [400, 600, 700]
    with pytest.raises(ValueError):
        tl.add(500, reset=True)  # events come in order
    back = Timeline.from_json(json.loads(json.dumps(tl.to_json())), sample_rate=SR)
    assert np.array_equal(back.temperatures(0, 1001), got) and back.events == tl.events
    curve = tl.curve(1001)  # as played: interpolation between its points gives every sample
    assert np.allclose(np.interp(np.arange(1001) / SR, curve["times_s"], curve["values"]), got, atol=1e-5)
    tl.add(900, temperature=1.5)
    tl.add(900, reset=True)
    tl.add(900, temperature=1.6)  # a knob, a reset, a knob in one block: both knob events stay, the last holds
    assert [e["at"] for e in tl.events] == [400, 600, 700, 900, 900, 900]
    assert tl.temperature_at(950) == pytest.approx(1.6)
    curve = tl.curve(1001)
    played = np.interp(np.arange(1001) / SR, curve["times_s"], curve["values"])
    assert np.allclose(played, tl.temperatures(0, 1001), atol=1e-5)
    for start in (0, 350, 650, 900, 950):  # a take punched in at `start`: its own time 0 is the session's `start`
        part = tl.curve(1001 - start, start=start)
        assert part["times_s"][0] == 0.0
        played = np.interp(np.arange(1001 - start) / SR, part["times_s"], part["values"])
        assert np.allclose(played, tl.temperatures(start, 1001 - start), atol=1e-5)
    with pytest.raises(UserInputError, match="--seconds"):
        Timeline("0.9:1.2", sample_rate=SR)  # a ramp needs the take's length
    assert Timeline("0s:0.9,1s:1.1", sample_rate=SR).temperatures(SR, 1)[0] == pytest.approx(1.1)


def test_controls_import_no_torch():
    code = ("import sys, inspire.samplernn.controls, inspire.cli.play\n"
            "from inspire import cli\n"
            "cli.build_parser().parse_args(['play', 'R', '--audio-device', 'none'])\n"
            "assert 'torch' not in sys.modules and 'numba' not in sys.modules, 'imported'\n")
    subprocess.run([sys.executable, "-c", code], check=True)
    out = subprocess.run([sys.executable, "-m", "inspire", "play", "--help"], capture_output=True, text=True,
                         check=True)
    assert "--audio-device" in out.stdout and "--record" in out.stdout


# ---------------------------------------------------------------------------------------------
# The live session


def _instrument(run_dir, **kw):
    from inspire.samplernn import play

    return play.load(run_dir, log=lambda m: None, **kw)


def _drain(session, *, controls_at=(), read=320):
    """Consume a session as fast as it makes audio; controls_at: (samples read, kind, value)."""
    pending = list(controls_at)
    got = 0
    session.start()
    session.wait_ready()
    while not session.done:
        while pending and got >= pending[0][0]:
            _, kind, value = pending.pop(0)
            session.set(kind, value)
        if len(session.fifo) >= read or session.finished.is_set():
            got += read
            session.read(read)
        else:
            time.sleep(0.001)
    session.stop()


def test_session_controls_land_where_recorded_and_render_again(run):
    from inspire.samplernn import engine as eng
    from inspire.samplernn import generate

    tracks = _tracks(run)
    inst = _instrument(run, pads=[f"{tracks[0]}@1.5", f"{tracks[1]}@0.5"])
    made = []
    tl = Timeline("0.9:1.2", sample_rate=SR, span=24000)
    s = inst.session(seed=7, timeline=tl, n_samples=24000, on_block=lambda pos, c, a: made.append((pos, c.copy())))
    _drain(s, controls_at=[(3000, "temperature", 1.3), (8000, "pad", 2), (12000, "nudge", -0.2), (16000, "reset", 0),
                           (19000, "pad", 1)])
    live = np.concatenate([c for _, c in made])
    assert live.size == 24000 and s.position == 24000
    assert [p for p, _ in made] == list(range(0, 24000, 320))  # blocks in order
    kinds = [next(k for k in e if k != "at") for e in tl.events]
    assert kinds == ["temperature", "pad", "temperature", "reset", "pad"]
    ahead = s.ahead + s.block
    for ev, asked in zip(tl.events, (3000, 8000, 12000, 16000, 19000), strict=True):
        assert ev["at"] % s.block == 0  # at a block boundary the engine reached
        assert asked <= ev["at"] <= asked + ahead + s.block  # no later than the FIFO ahead of the reader
    assert tl.events[2]["temperature"] == pytest.approx(1.1)  # the nudge, resolved against the knob's 1.3
    # The take renders again, sample for sample, from the seed and the events.
    engine = eng.Engine(inst.ctx.model, precision=inst.engine.precision, backend=inst.engine.backend)
    pads = eng.prime_pads(engine, {n: np.asarray(generate._prime_classes(inst.ctx, p)) for n, p in inst.pads.items()})
    seed = generate.stream_seed(7, 0)
    again = np.concatenate(list(eng.render(engine, seed=seed, timeline=tl, pads=pads, n_samples=24000, block=999)))
    assert np.array_equal(again, live)
    # Without the events the take differs, and only from the first event on.
    plain = Timeline("0.9:1.2", sample_rate=SR, span=24000)
    engine.reset()
    other = np.concatenate(list(eng.render(engine, seed=seed, timeline=plain, pads=pads, n_samples=24000)))
    first = tl.events[0]["at"]
    assert np.array_equal(other[:first], live[:first]) and not np.array_equal(other[first:], live[first:])


def test_session_resamples_to_the_device_rate(run):
    inst = _instrument(run)
    made = []
    s = inst.session(seed=1, timeline=Timeline("1.0", sample_rate=SR), out_rate=44100, n_samples=6400,
                     on_block=lambda pos, c, a: made.append(a))
    s.start()
    s.wait_ready()
    out = []
    while not s.done:
        if len(s.fifo) >= 441 or s.finished.is_set():
            out.append(s.read(441))  # only what is there: no gaps
        else:
            time.sleep(0.001)
    s.stop()
    heard = np.concatenate(out)
    model_rate = np.concatenate(made)
    assert model_rate.size == 6400  # the take keeps the model's rate
    expected = 6400 * 44100 // SR
    assert np.count_nonzero(heard) > 0.9 * expected
    # soxr's streaming resampler: the same signal at the device's rate (compare after resampling back)
    import soxr

    back = soxr.resample(heard[: np.flatnonzero(heard)[-1] + 1], 44100, SR)
    n = min(back.size, model_rate.size) - 200
    assert n > 5000 and np.corrcoef(back[100:n], model_rate[100:n])[0, 1] > 0.9


def test_pads_reprime_the_stream(run):
    from inspire.samplernn import engine as eng
    from inspire.samplernn import generate

    tracks = _tracks(run)
    inst = _instrument(run, pads=[f"{tracks[1]}@1.25"], pad_seconds=0.5)
    prime = inst.pads[1]
    assert prime["source"] == "corpus" and prime["track"] == tracks[1]
    assert prime["start_s"] == pytest.approx(0.75) and prime["seconds"] == pytest.approx(0.5)
    tl = Timeline("1.0", sample_rate=SR)
    tl.add(3200, pad=1)
    e = inst.engine
    got = np.concatenate(list(eng.render(e, seed=5, timeline=tl, pads=inst.snapshots, n_samples=6400)))
    # From the pad on: what an engine primed on those samples of the track makes, with the same noise.
    fresh = eng.Engine(inst.ctx.model, precision=e.precision, backend=e.backend)
    classes = np.asarray(generate._prime_classes(inst.ctx, prime))
    manifest = json.loads((run / "data" / "manifest.json").read_text())
    data = np.load(run / "data" / next(t["file"] for t in manifest["tracks"] if t["id"] == tracks[1]))
    assert np.array_equal(classes, data[round(0.75 * SR) : round(1.25 * SR)])
    fresh.prime(classes)
    u = eng.Uniforms([5])
    u.next(3200)
    assert np.array_equal(fresh.generate(np.ones((3200, 1), np.float32), u.next(3200))[0], got[3200:])
    assert not np.array_equal(got[3200:4800], got[:1600])


def test_pad_from_a_file(run, tmp_path):
    loop = tmp_path / "loop.wav"
    t = np.arange(int(1.5 * 22050)) / 22050
    sf.write(str(loop), np.stack([0.3 * np.sin(2 * np.pi * 330 * t)] * 2, 1), 22050)  # another rate, stereo
    inst = _instrument(run, pads=[str(loop), f"{loop}@0.5"], pad_seconds=0.25)
    end, at = inst.pads[1], inst.pads[2]
    assert end["source"] == str(loop.resolve()) and len(end["sha256"]) == 64
    assert end["start_s"] == pytest.approx(1.25) and end["seconds"] == pytest.approx(0.25)  # the file's last 0.25 s
    assert at["start_s"] == pytest.approx(0.25) and at["seconds"] == pytest.approx(0.25)
    assert set(inst.snapshots) == {1, 2}
    with pytest.raises(UserInputError, match="outside"):
        _instrument(run, pads=[f"{loop}@9"])


# ---------------------------------------------------------------------------------------------
# The command


@pytest.mark.slow
def test_headless_take_renders_again_exactly_and_curates(run, tmp_path, capsys):
    from inspire.curate.curate import curate_folder

    takes = run / "clips" / "takes"  # where --record puts takes by default
    code = _cli(["play", str(run), "--audio-device", "none", "--temperature", "0.9:1.2", "--seconds", "8",
                 "--seed", "11", "--record", "--pad", f"{_tracks(run)[0]}@1", "--quiet"])
    assert code == 0
    path = capsys.readouterr().out.strip()
    wav = takes / path.rsplit("/", 1)[-1]
    side = json.loads(wav.with_suffix(".json").read_text())
    assert side["seed"] == 11 and side["samples"] == 8 * SR and side["seconds"] == 8.0
    perf = side["performance"]
    assert perf["timeline"]["lane"] == "0.9:1.2" and perf["timeline"]["span"] == 8 * SR
    assert perf["engine"] == side["engine"] and perf["precision"] in ("fp32", "int8") and perf["underruns"] >= 0
    assert perf["pads"]["1"]["track"] == _tracks(run)[0]
    curve = side["temperature"]["values"]
    assert curve[0] == pytest.approx(0.9) and curve[-1] == pytest.approx(1.2)
    assert _cli(["generate", str(run), "--again", side["id"], "--quiet"]) == 0
    again = run / "clips" / f"again-{side['id']}-8s" / wav.name
    a, b = sf.read(str(wav), dtype="int16")[0], sf.read(str(again), dtype="int16")[0]
    assert a.size == 8 * SR and np.array_equal(a, b)
    # An ordinary clip: curate scores it and notes it in its sidecar.
    curate_folder(takes)
    assert "curation" in json.loads(wav.with_suffix(".json").read_text())


def _as_in_a_terminal() -> None:
    """The child as a terminal starts it: Ctrl-C delivered and at its default. A child inherits
    an ignored or blocked SIGINT from its parent (here the test process, after whatever earlier
    tests and their libraries did), and would then play on through the Ctrl-C."""
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.slow
def test_ctrl_c_keeps_the_take_whole(run, tmp_path):
    takes = tmp_path / "takes"
    proc = subprocess.Popen([sys.executable, "-m", "inspire", "play", str(run), "--audio-device", "none", "--seed", "2",
                             "--temperature", "0s:1.0,2s:0.8", "--record", str(takes), "--quiet"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=_as_in_a_terminal)
    # Ctrl-C once a second is on disk: the take's file exists before the engine's first block,
    # and on a fresh checkout the engine first compiles its kernels (tens of seconds on a busy CI).
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and not any(p.stat().st_size > 2 * SR for p in takes.glob(".*.partial.wav")):
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    wav = takes / out.strip().rsplit("/", 1)[-1]
    side = json.loads(wav.with_suffix(".json").read_text())
    audio = sf.read(str(wav), dtype="int16")[0]
    assert audio.size == side["samples"] > SR // 2
    assert not list(takes.glob(".*.partial.wav"))
    again = ["generate", str(run), "--again", str(wav.with_suffix(".json")), "--quiet", "--out", str(tmp_path / "ag")]
    assert _cli(again) == 0
    assert np.array_equal(sf.read(str(tmp_path / "ag" / wav.name), dtype="int16")[0], audio)


def _one_line_error(capsys, words):
    err = capsys.readouterr().err.strip().splitlines()
    assert err and words in err[-1] and not any("Traceback" in line for line in err), err
    return err[-1]


def test_bad_input_is_one_line_exit_2(run, tmp_path, capsys, monkeypatch):
    base = ["play", str(run), "--audio-device", "none", "--seconds", "0.1", "--quiet"]
    assert _cli(base + ["--pad", "nosuchtrack@1"]) == 2
    _one_line_error(capsys, "no track 'nosuchtrack'")
    assert _cli(base + ["--pad", f"{_tracks(run)[0]}@99"]) == 2
    _one_line_error(capsys, "outside track")
    junk = tmp_path / "junk.pt"
    junk.write_text("not a model")
    assert _cli(base + ["--checkpoint", str(junk)]) == 2
    _one_line_error(capsys, "junk.pt")
    assert _cli(base + ["--temperature", "0"]) == 2
    _one_line_error(capsys, "temperature")
    assert _cli(["play", str(run), "--audio-device", "none", "--temperature", "0.8:1.1"]) == 2
    _one_line_error(capsys, "--seconds")


def test_too_slow_says_so_before_playing(run, capsys, monkeypatch):
    from inspire.samplernn import play

    monkeypatch.setattr(play, "measure_speed", lambda engine, **kw: 0.4)
    assert _cli(["play", str(run), "--audio-device", "none", "--seconds", "0.1"]) == 2
    line = _one_line_error(capsys, "0.40x real time")
    assert "int8" in line and "live" in line


def test_auto_precision_falls_back_to_int8(run, monkeypatch):
    from inspire.samplernn import play

    monkeypatch.setattr(play, "measure_speed", lambda engine, **kw: 0.8 if engine.precision == "fp32" else 2.5)
    said = []
    inst = play.load(run, log=said.append)
    assert inst.engine.name.endswith("int8") and "0.80x" in said[-1] and "int8" in said[-1]
    assert play.load(run, precision="int8", log=said.append).engine.precision == "int8"
    with pytest.raises(UserInputError, match="0.80x"):
        play.load(run, precision="fp32", log=said.append)


def test_devices_missing_or_unknown(run, capsys, monkeypatch):
    class PortAudioError(Exception):
        pass

    def fake_sd(devices):
        def query_devices(device=None, kind=None):
            if kind is None:
                return devices
            match = [d for d in devices if device is None or d["name"] == device]
            if not match:
                raise ValueError(f"No output device matching {device!r}")
            return match[0]
        return types.SimpleNamespace(PortAudioError=PortAudioError, query_devices=query_devices)

    base = ["play", str(run), "--seconds", "0.1"]
    monkeypatch.setitem(sys.modules, "sounddevice", None)  # not installed
    assert _cli(base) == 2
    assert "pip install" in _one_line_error(capsys, "play extra")
    monkeypatch.setitem(sys.modules, "sounddevice", fake_sd([]))
    assert _cli(base) == 2
    _one_line_error(capsys, "no audio output device")
    monkeypatch.setitem(sys.modules, "sounddevice", fake_sd([{"name": "Speakers", "index": 0, "max_output_channels": 2,
                                                             "default_samplerate": 48000.0}]))
    assert _cli(base + ["--audio-device", "Headphones"]) == 2
    assert "Speakers" in _one_line_error(capsys, "no such output device")
    fake_mido = types.SimpleNamespace(get_input_names=lambda: ["nanoKONTROL2 MIDI 1"], open_input=None)
    monkeypatch.setitem(sys.modules, "mido", fake_mido)
    assert _cli(["play", str(run), "--audio-device", "none", "--midi", "Launchpad"]) == 2
    assert "nanoKONTROL2" in _one_line_error(capsys, "no such MIDI input")


def test_osc_port_in_use(run, capsys):
    pytest.importorskip("pythonosc")
    import socket

    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    try:
        port = sock.getsockname()[1]
        assert _cli(["play", str(run), "--audio-device", "none", "--osc", str(port)]) == 2
        _one_line_error(capsys, f"--osc {port}")
    finally:
        sock.close()


def test_osc_controls_reach_a_playing_session(run, tmp_path, capsys):
    """A real UDP message to a headless take lands in its sidecar."""
    pytest.importorskip("pythonosc")
    import socket
    import threading

    from pythonosc.udp_client import SimpleUDPClient

    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()

    def send():
        time.sleep(4.0)  # well into the take (model loading included)
        client = SimpleUDPClient("127.0.0.1", port)
        client.send_message("/inspire/temperature", 1.25)
        time.sleep(0.5)
        client.send_message("/inspire/quit", [])

    threading.Thread(target=send, daemon=True).start()
    code = _cli(["play", str(run), "--audio-device", "none", "--osc", str(port), "--record", str(tmp_path / "t"),
                 "--seed", "1", "--quiet"])
    assert code == 0
    take = tmp_path / "t" / capsys.readouterr().out.strip().rsplit("/", 1)[-1]
    side = json.loads(take.with_suffix(".json").read_text())
    events = side["performance"]["timeline"]["events"]
    assert [e["temperature"] for e in events] == [1.25]


def test_generate_uses_the_engine_for_small_batches(run, tmp_path):
    from inspire.samplernn import generate

    small = generate.run_job(run, n=2, seconds=0.02, temperatures=["1.0"], out=tmp_path / "small")
    big = generate.run_job(run, n=12, seconds=0.02, temperatures=["1.0"], out=tmp_path / "big")
    def side(out):
        return [json.loads(p.read_text()) for p in out.glob("0*.json")]

    assert {s["engine"] for s in side(small)} == {"numba-fp32"}
    assert {s["engine"] for s in side(big)} == {"torch-fp32"}
    # The same clips either way (same function, same random numbers), and --again keeps the engine.
    for s in side(small):
        name = f"{s['id']}.wav"
        assert np.array_equal(sf.read(str(small / name))[0], sf.read(str(big / name))[0])
        again = generate.again(run, str(small / f"{s['id']}.json"), out=tmp_path / f"again-{s['id']}")
        assert json.loads((again / f"{s['id']}.json").read_text())["engine"] == "numba-fp32"


# ---------------------------------------------------------------------------------------------
# Labels: a model trained with labels is steered live (--steer, label pads, /inspire/label)


@pytest.fixture
def labelled(tmp_path):
    """A run whose tiny checkpoint knows two labels, with label tables that are not zero."""
    return make_labelled_run(tmp_path / "l", labels=("lsong0", "lsong1"))


def test_label_pads_and_the_label_control_steer_and_render_again(labelled):
    from inspire.samplernn import engine as eng
    from inspire.samplernn import generate

    inst = _instrument(labelled, pads=["label:lsong1", f"{_tracks(labelled)[0]}@1.5"], steer="lsong0")
    assert inst.labels == ("lsong0", "lsong1") and inst.label == 1 and inst.label_pads == {1: 2}
    made = []
    tl = Timeline("1.0", sample_rate=SR)
    s = inst.session(seed=3, timeline=tl, n_samples=16000, on_block=lambda pos, c, a: made.append(c.copy()))
    _drain(s, controls_at=[(4000, "pad", 1), (8000, "pad", 2), (12000, "label", 0)])
    live = np.concatenate(made)
    assert [{k: v for k, v in e.items() if k != "at"} for e in tl.events] == [{"label": 1}, {"label": 2}, {"pad": 2},
                                                                            {"label": 0}]
    assert tl.events[0]["at"] == 0
    engine = eng.Engine(inst.ctx.model, precision=inst.engine.precision, backend=inst.engine.backend)
    primes = {n: np.asarray(generate._prime_classes(inst.ctx, p)) for n, p in inst.pads.items() if "label" not in p}
    seed = generate.stream_seed(3, 0)
    again = np.concatenate(list(eng.render(engine, seed=seed, timeline=tl, pads=eng.prime_pads(engine, primes),
                                           n_samples=16000, block=777)))
    assert np.array_equal(again, live)
    # Steering is heard: the same seed unsteered parts from the take at once.
    engine.set_labels(None)
    engine.reset()
    plain = np.concatenate(list(eng.render(engine, seed=seed, timeline=Timeline("1.0", sample_rate=SR), pads={},
                                           n_samples=4000)))
    assert not np.array_equal(plain, live[:4000])
    with pytest.raises(ValueError, match=r"no label 3: the model has labels 1-2 \(0: no label\)"):
        s.set("label", 3)


def test_a_steered_take_renders_again_from_the_command_line(labelled, capsys):
    code = _cli(["play", str(labelled), "--audio-device", "none", "--seconds", "2", "--seed", "5", "--record",
                 "--steer", "LSONG1", "--pad", "label:none", "--quiet"])
    assert code == 0
    wav = Path(capsys.readouterr().out.strip())
    side = json.loads(wav.with_suffix(".json").read_text())
    assert side["performance"]["timeline"]["events"][0] == {"at": 0, "label": 2}
    assert side["performance"]["pads"]["1"] == {"label": "none", "row": 0, "pad": "label:none"}
    assert _cli(["generate", str(labelled), "--again", side["id"], "--quiet"]) == 0
    again = labelled / "clips" / f"again-{side['id']}-2s" / wav.name
    assert np.array_equal(sf.read(str(wav), dtype="int16")[0], sf.read(str(again), dtype="int16")[0])


def test_steering_what_cannot_be_steered_is_one_line(run, labelled, capsys):
    assert _cli(["play", str(run), "--audio-device", "none", "--seconds", "1", "--steer", "lsong0"]) == 2
    assert "was trained without labels" in capsys.readouterr().err
    assert _cli(["play", str(labelled), "--audio-device", "none", "--seconds", "1", "--pad", "label:drums"]) == 2
    err = capsys.readouterr().err.strip()
    assert "unknown label 'drums'; the model knows: lsong0, lsong1 (and none)" in err and "\n" not in err
    assert controls.osc("/inspire/label", 2) == controls.Control("label", 2)


def test_truncation_lanes_play_are_recorded_and_render_again(run, capsys):
    code = _cli(["play", str(run), "--audio-device", "none", "--seconds", "2", "--seed", "4", "--record",
                 "--temperature", "1.5", "--min-p", "0.1", "--top-p", "0:1,1:0.8", "--quiet"])
    assert code == 0
    wav = Path(capsys.readouterr().out.strip())
    side = json.loads(wav.with_suffix(".json").read_text())
    assert side["min_p"]["spec"] == "0.1" and side["top_p"]["values"][-1] == pytest.approx(0.8)
    assert side["performance"]["timeline"]["min_p"] == "0.1"
    assert _cli(["generate", str(run), "--again", side["id"], "--quiet"]) == 0
    again = run / "clips" / f"again-{side['id']}-2s" / wav.name
    a = sf.read(str(wav), dtype="int16")[0]
    assert np.array_equal(a, sf.read(str(again), dtype="int16")[0])
    capsys.readouterr()
    assert _cli(["play", str(run), "--audio-device", "none", "--seconds", "2", "--seed", "4", "--record",
                 "--temperature", "1.5", "--quiet"]) == 0
    plain = Path(capsys.readouterr().out.strip())
    assert not np.array_equal(a, sf.read(str(plain), dtype="int16")[0])
    assert _cli(["play", str(run), "--audio-device", "none", "--seconds", "1", "--min-p", "1.5"]) == 2
    assert "min-p must be a number in [0, 1), got 1.5" in capsys.readouterr().err
