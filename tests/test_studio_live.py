"""The studio's live panel in-process (Starlette's TestClient WebSocket): the handshake refused
without the token or from another origin, audio frames in order, controls landing where the
take records them, punch-in/punch-out takes that `inspire generate --again` renders again
exactly, one-line errors for bad messages, one performance at a time."""

from __future__ import annotations

import json
import struct
import warnings

import numpy as np
import pytest
import soundfile as sf
import torch

pytest.importorskip("httpx")
with warnings.catch_warnings():  # newer Starlette prefers httpx2 and says so; httpx works with every version
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient  # noqa: E402
from starlette.websockets import WebSocketDisconnect  # noqa: E402

from conftest import make_labelled_run, save_checkpoint  # noqa: E402
from inspire import clips  # noqa: E402
from inspire.config import ModelConfig  # noqa: E402
from inspire.studio import live  # noqa: E402
from inspire.studio.server import create_app  # noqa: E402

SR = 16000
TINY = ModelConfig(frame_sizes=(4, 2), dim=16, levels=64)
TOKEN = "live-test-token"
BARE = "ws://127.0.0.1:8737/api/live/ws"  # TestClient's websockets ignore its base_url
WS = f"{BARE}?token={TOKEN}"


def make_live_run(root):
    """A run with two prepared tracks and a random-init tiny checkpoint made for them."""
    from inspire.audio.dataset import PrepareSettings, prepare
    from inspire.samplernn.model import SampleRNN

    rng = np.random.default_rng(0)
    root.mkdir(parents=True, exist_ok=True)
    songs = []
    for i in range(2):
        t = np.arange(int(2.0 * SR)) / SR
        songs.append(root / f"song{i}.wav")
        sf.write(str(songs[-1]), 0.4 * np.sin(2 * np.pi * (220 + 110 * i) * t) + 0.05 * rng.standard_normal(t.size), SR)
    run = root / "run"
    prepare(songs, run, PrepareSettings(levels=TINY.levels), progress=False)
    torch.manual_seed(0)
    save_checkpoint(run, SampleRNN(TINY), step=3, sample_rate=SR)
    return run


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return make_live_run(tmp_path_factory.mktemp("live"))


@pytest.fixture
def client(run, tmp_path):
    app = create_app([run], token=TOKEN, cache_folder=None)
    with TestClient(app, base_url="http://127.0.0.1:8737") as c:
        yield c


class Page:
    """What the page does with a live WebSocket, without a sound card: plays every frame at
    once (acks it), keeps the audio, collects the JSON messages."""

    def __init__(self, ws):
        self.ws = ws
        self.audio: list[np.ndarray] = []
        self.frames: list[tuple[int, int, float]] = []
        self.messages: list[dict] = []
        self.played = 0

    @property
    def heard(self) -> np.ndarray:
        return np.concatenate(self.audio) if self.audio else np.zeros(0, np.float32)

    def send(self, **body) -> None:
        self.ws.send_text(json.dumps(body))

    def until(self, kind: str | None = None, *, samples: int | None = None) -> dict | None:
        """Receive until a message of `kind` arrives (returned), or until `samples` were played."""
        while True:
            if samples is not None and self.played >= samples:
                return None
            message = self.ws.receive()
            assert message["type"] == "websocket.send", message
            if message.get("bytes") is not None:
                data = message["bytes"]
                seq, n, pos = live.HEADER.unpack_from(data)
                assert len(data) == live.HEADER.size + 4 * n
                self.frames.append((seq, n, pos))
                self.audio.append(np.frombuffer(data, np.float32, n, live.HEADER.size))
                self.played += n
                self.send(type="ack", played=self.played, underruns=0)
                continue
            body = json.loads(message["text"])
            self.messages.append(body)
            if kind is not None and body["type"] in (kind, "error"):
                assert body["type"] == kind, body
                return body


def _ws_refused(client, url, **kw) -> WebSocketDisconnect:
    with pytest.raises(WebSocketDisconnect) as info:
        with client.websocket_connect(url, **kw):
            pass
    assert info.value.code == 1008
    return info.value


def _read(path) -> np.ndarray:
    return sf.read(str(path), dtype="int16")[0]


# ---- the handshake ---------------------------------------------------------------------------


def test_the_websocket_needs_the_token_and_the_page_origin(client):
    assert "token" in _ws_refused(client, BARE).reason
    _ws_refused(client, f"{BARE}?token=wrong")
    _ws_refused(client, BARE, headers={"cookie": f"inspire-studio-8737={TOKEN}"})  # a cookie is not enough
    assert "Origin" in _ws_refused(client, WS, headers={"origin": "http://evil.example"}).reason
    _ws_refused(client, WS, headers={"origin": "http://127.0.0.1:9999"})  # another port: another site
    _ws_refused(client, WS, headers={"origin": "null"})
    assert "localhost" in _ws_refused(client, WS, headers={"host": "evil.example"}).reason  # DNS rebinding
    with client.websocket_connect(WS, headers={"origin": "http://127.0.0.1:8737"}) as ws:
        page = Page(ws)
        page.send(type="stop")
        assert page.until("stopped")["seconds"] == 0.0
    with client.websocket_connect(BARE, headers={"authorization": f"Bearer {TOKEN}"}) as ws:
        Page(ws).send(type="stop")  # a script's header works too


def test_the_real_server_refuses_a_websocket_without_the_token(run):
    """uvicorn with its WebSocket implementation, over a socket: the guard sees the handshake."""
    import threading
    import time

    import uvicorn
    from websockets.exceptions import InvalidStatus
    from websockets.sync.client import connect

    from inspire.studio.server import bind

    sock = bind("127.0.0.1", 0)
    server = uvicorn.Server(uvicorn.Config(create_app([run], token=TOKEN, cache_folder=None), log_level="warning",
                                           lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        while not server.started:
            assert thread.is_alive(), "the studio did not start"
            time.sleep(0.02)
        url = f"ws://127.0.0.1:{sock.getsockname()[1]}/api/live/ws"
        for bad, headers in ((url, {}), (f"{url}?token=wrong", {}), (f"{url}?token={TOKEN}", {"Origin": "http://evil.example"})):
            with pytest.raises(InvalidStatus) as info:
                connect(bad, additional_headers=headers, open_timeout=10).close()
            assert info.value.response.status_code == 403
        with connect(f"{url}?token={TOKEN}", open_timeout=10) as ws:
            ws.send(json.dumps({"type": "stop"}))
            assert json.loads(ws.recv(timeout=10))["type"] == "stopped"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def test_live_options_list_the_run_its_checkpoints_and_tracks(client, run):
    data = client.get("/api/live").json()
    (r,) = data["runs"]
    assert r["key"] == "r0" and r["path"] == str(run.resolve()) and r["best"] is True
    assert [t["seconds"] for t in r["tracks"]] == [2.0, 2.0]
    assert data["playing"] is False and data["defaults"]["knob"] == [0.5, 1.5]
    assert r["sample_rate"] == SR
    assert "/api/live/ws" in client.get("/api/docs").text  # the WebSocket is documented beside the routes


# ---- a performance ---------------------------------------------------------------------------


def test_a_recorded_take_keeps_the_controls_and_renders_again_exactly(client, run, capsys):
    from inspire import cli

    track = client.get("/api/live").json()["runs"][0]["tracks"][1]["id"]
    with client.websocket_connect(WS) as ws:
        page = Page(ws)
        page.send(type="start", run="r0", seed=21, temperature="0s:0.9,1s:1.1", record=True, buffer=0.2,
                  pads=[f"{track}@1.5"], pad_seconds=0.5, device_rate=48000)
        assert page.until("loading")["run"] == "r0"
        ready = page.until("ready")
        assert ready["sample_rate"] == SR and ready["seed"] == 21 and ready["recording"] is True
        assert ready["pads"] == {"1": f"{track}@1.5"} and ready["engine"].endswith(("fp32", "int8"))
        page.until(samples=4000)
        page.send(type="set", control="temperature", value=1.3)
        page.until(samples=9000)
        page.send(type="set", control="pad", value=1)
        page.until(samples=14000)
        page.send(type="set", control="nudge", value=-0.2)
        page.until(samples=19000)  # more than buffer + ahead later: the nudge has landed
        page.send(type="set", control="temperature", value=99)  # a knob is clamped to the range, as in play
        page.until(samples=24000)
        page.send(type="stop")
        take = page.until("take")
        stopped = page.until("stopped")
    assert stopped["seconds"] >= 24000 / SR
    # Frames in order, without gaps, at the model's rate.
    seqs = [f[0] for f in page.frames]
    assert seqs == list(range(len(seqs)))
    assert [f[2] for f in page.frames] == list(np.cumsum([0] + [f[1] for f in page.frames])[:-1])
    stats = [m for m in page.messages if m["type"] == "stats"]  # one at least, at the start
    assert stats and all(m["speed"] is None or m["speed"] > 0 for m in stats)
    # The take: what the page heard, from the first sample, with the controls where they landed.
    wav = run / "clips" / "takes" / f"{take['id']}.wav"
    assert take["path"] == str(wav) and take["start_s"] == 0.0 and take["again"].endswith(f"--again {take['id']}")
    side = json.loads(wav.with_suffix(".json").read_text())
    recorded = _read(wav)
    heard = page.heard
    assert recorded.size == side["samples"] >= heard.size
    assert np.abs(recorded[: heard.size] / 32767.0 - np.clip(heard, -1, 1)).max() < 2e-4
    perf = side["performance"]
    assert perf["start"] == 0 and perf["audio_device"] == "browser" and perf["device_rate"] == 48000
    assert perf["pads"]["1"]["track"] == track
    events = perf["timeline"]["events"]
    kinds = [next(k for k in e if k != "at") for e in events]
    assert kinds == ["temperature", "pad", "temperature", "temperature"]
    assert [e.get("temperature") for e in events] == [1.3, None, pytest.approx(1.1), 5.0]
    block = ready["block"]
    for ev, asked in zip(events, (4000, 9000, 14000, 19000), strict=True):
        assert ev["at"] % block == 0 and asked <= ev["at"]  # at a block boundary, after the page asked
    assert side["temperature"]["values"][0] == pytest.approx(0.9)
    # generate --again renders the take again, sample for sample.
    assert cli.main(["generate", str(run), "--again", take["id"], "--quiet"]) == 0
    again = run / "clips" / f"again-{take['id']}-{side['samples'] / SR:g}s" / wav.name
    assert np.array_equal(_read(again), recorded)
    # And it is an ordinary clip of the run: the clips view lists it.
    listed = client.get("/api/clips").json()["clips"]
    assert take["id"] in {c["id"] for c in listed}
    assert clips.read(wav.with_suffix(".json")).seed == 21


def test_punch_in_and_out_while_playing(client, run, tmp_path):
    from inspire import cli

    with client.websocket_connect(WS) as ws:
        page = Page(ws)
        page.send(type="start", run="r0", seed=5, temperature="1.0", buffer=0.1)
        page.until("ready")
        page.until(samples=3000)
        page.send(type="set", control="temperature", value=0.8)  # before the take: still part of its render
        page.until(samples=6000)
        page.send(type="record", on=True)
        assert page.until("recording")["on"] is True
        page.until(samples=10000)
        page.send(type="set", control="reset")
        page.until(samples=14000)
        page.send(type="record", on=False)
        assert page.until("recording")["on"] is False
        first = page.until("take")
        page.send(type="record", on=True)  # a second take in the same performance
        page.until("recording")
        page.until(samples=page.played + 8000)  # well past the engine's lead over the page
        page.send(type="stop")
        second = page.until("take")
        page.until("stopped")
    heard = page.heard
    for take in (first, second):
        wav = run / "clips" / "takes" / f"{take['id']}.wav"
        side = json.loads(wav.with_suffix(".json").read_text())
        start = side["performance"]["start"]
        assert start == round(take["start_s"] * SR) and start >= 6000 and start % 320 == 0
        recorded = _read(wav)
        n = min(recorded.size, heard.size - start)
        assert n > 1000 and np.abs(recorded[:n] / 32767.0 - np.clip(heard[start : start + n], -1, 1)).max() < 2e-4
        assert all(e["at"] < start + side["samples"] for e in side["performance"]["timeline"]["events"])
        out = tmp_path / take["id"]
        assert cli.main(["generate", str(run), "--again", take["id"], "--out", str(out), "--quiet"]) == 0
        assert np.array_equal(_read(out / wav.name), recorded)
    assert second["start_s"] * SR >= first["start_s"] * SR + first["seconds"] * SR
    # The first take's temperature curve starts at the knob's 0.8, at the take's own time 0.
    curve = json.loads((run / "clips" / "takes" / f"{first['id']}.json").read_text())["temperature"]
    assert curve["times_s"][0] == 0.0 and curve["values"][0] == pytest.approx(0.8)


def test_bad_messages_get_one_line_errors_and_the_socket_stays(client, run):
    with client.websocket_connect(WS) as ws:
        page = Page(ws)

        def refused(words, **body):
            page.send(**body)
            message = page.until("error")
            assert words in message["error"] and "\n" not in message["error"], message

        ws.send_text("not json")
        assert "JSON" in json.loads(ws.receive_text())["error"]
        refused("unknown message type", type="dance")
        refused("nothing is playing", type="set", control="temperature", value=1.0)
        refused("no run 'r9'", type="start", run="r9")
        refused("temperature must be a number > 0", type="start", run="r0", temperature="0")
        refused("breakpoints in seconds", type="start", run="r0", temperature="0.9:1.2")
        refused("checkpoint: expected best", type="start", run="r0", checkpoint="/etc/passwd")
        refused("no checkpoint at step 7", type="start", run="r0", checkpoint="step-00000007")
        refused("no track 'nosuch'", type="start", run="r0", pads=["nosuch@1"])
        refused("no track 'song.wav'", type="start", run="r0", pads=["song.wav"])  # never a file from the page
        refused("seed", type="start", run="r0", seed=-1)
        refused("unknown field", type="start", run="r0", volume=11)
        page.send(type="start", run="r0", seed=1)
        page.until("ready")
        refused("already playing", type="start", run="r0")
        refused("temperature must be > 0", type="set", control="temperature", value=-1)
        refused("no pad 3", type="set", control="pad", value=3)
        refused("control must be", type="set", control="quit")
        refused("ack: played", type="ack", played="lots")
        # A second page cannot start while this one plays.
        with client.websocket_connect(WS) as other:
            other.send_text(json.dumps({"type": "start", "run": "r0"}))
            got = json.loads(other.receive_text())
            assert got["type"] == "error" and "another page" in got["error"]
            assert client.get("/api/live").json()["playing"] is True
        page.send(type="stop")
        page.until("stopped")
    assert client.get("/api/live").json()["playing"] is False


def test_a_page_that_goes_away_keeps_its_take(client, run):
    with client.websocket_connect(WS) as ws:
        page = Page(ws)
        page.send(type="start", run="r0", seed=3, record=True)
        page.until("ready")
        page.until(samples=5000)
    # The tab closed while recording: the take is committed with its sidecar, the room is free.
    takes = run / "clips" / "takes"
    sides = [json.loads(p.read_text()) for p in takes.glob("take-*.json")]
    assert any(s["seed"] == 3 and s["samples"] >= 5000 for s in sides)
    assert not list(takes.glob(".*.partial.wav"))
    assert client.get("/api/live").json()["playing"] is False


def test_header_layout():
    frame = live.HEADER.pack(7, 3, 640.0) + np.arange(3, dtype=np.float32).tobytes()
    assert struct.unpack("<IId", frame[:16]) == (7, 3, 640.0) and live.HEADER.size == 16


def test_a_labelled_model_is_steered_live_and_the_take_renders_again(tmp_path):
    """GET /api/live lists a labelled run's labels; start with "steer" and set "label": both are
    recorded in the take at their samples, and `generate --again` renders it exactly."""
    from inspire import cli

    run = make_labelled_run(tmp_path, labels=("tune0", "tune1"), seed=1)
    app = create_app([run], token=TOKEN, cache_folder=None)
    with TestClient(app, base_url="http://127.0.0.1:8737") as client:
        assert client.get("/api/live").json()["runs"][0]["labels"] == ["tune0", "tune1"]
        with client.websocket_connect(WS) as ws:
            page = Page(ws)
            page.send(type="start", run="r0", seed=5, record=True, buffer=0.2, steer="TUNE1")
            ready = page.until("ready")
            assert ready["labels"] == ["tune0", "tune1"] and ready["label"] == 2
            page.until(samples=4000)
            page.send(type="set", control="label", value=1)
            page.send(type="set", control="label", value=7)
            assert "expected 0 (no label) to 2, got 7" in page.until("error")["error"]
            page.until(samples=9000)
            page.send(type="stop")
            take = page.until("take")
            page.until("stopped")
    wav = run / "clips" / "takes" / f"{take['id']}.wav"
    events = json.loads(wav.with_suffix(".json").read_text())["performance"]["timeline"]["events"]
    assert [e.get("label") for e in events] == [2, 1] and events[0]["at"] == 0 and events[1]["at"] >= 4000
    assert cli.main(["generate", str(run), "--again", take["id"], "--quiet"]) == 0
    again = next((run / "clips").glob(f"again-{take['id']}-*")) / wav.name
    assert np.array_equal(_read(again), _read(wav))
