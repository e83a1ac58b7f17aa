"""The live panel's server side: the real-time engine of `inspire play` playing in the page.

The engine, its session, pads and takes are `inspire.samplernn.play` and `.engine` (imported
when a performance starts: the studio starts without torch); this module only carries them over
a WebSocket. The server generates, the browser plays (an AudioWorklet), so the engine can run on
another machine than the loudspeakers.

    GET /api/live      the runs the panel can play: checkpoints, the chosen one, prepared tracks
                       (the pads' sources), defaults, whether a performance is on
    WS  /api/live/ws   one connection, any number of performances one after another

The protocol. The page sends JSON text frames:

    {"type": "start", "run": KEY, "checkpoint": "best"|"last"|"step-00000500"|null (the chosen one),
     "temperature": "1.0" (a lane in generate's grammar: 0s:0.9,30s:1.2), "seed": INT|null,
     "pads": ["TRACK@SECONDS", ...], "pad_seconds": 2.0, "precision": "auto"|"fp32"|"int8",
     "allow_slow": false, "buffer": 0.3 (seconds the server keeps queued ahead of the page),
     "record": false (record from the first sample), "device_rate": 48000 (the page's audio rate),
     "steer": LABEL|null (a model trained with labels: the label it starts with, `inspire play --steer`)}
    {"type": "set", "control": "temperature"|"nudge"|"pad"|"reset"|"label", "value": V}
                                             (label: its row, 1 = the first of GET /api/live's labels; 0: none)
    {"type": "record", "on": true|false}     punch in / out: a take begins or ends at the next block
    {"type": "ack", "played": SAMPLES, "underruns": N}   what the page's worklet has played so far
    {"type": "stop"}

and gets JSON text frames {"type": "loading"|"ready"|"stats"|"take"|"stopped"|"error", ...}
and binary audio frames: a 16-byte little-endian header (uint32 sequence number, uint32 sample
count, float64 position of the first sample in the stream) then that many float32 samples at the
model's sample rate. Generation is paced by the page: the server sends only while fewer than
`buffer` seconds are queued beyond what the page says it played, and the engine runs at most
`inspire play`'s --ahead (80 ms) beyond that. Controls go through `Session.set`, exactly as
`inspire play`'s keys, MIDI and OSC do: they land at the next block and are recorded at that
sample, so a take (RUN/clips/takes/<id>.wav + sidecar, the files `inspire play --record` makes)
renders again exactly with `inspire generate RUN --again ID`.

One performance plays at a time per studio (a second page is told so): a CPU engine shares its
cores with nothing else that must keep time. The loaded instrument is kept for the next start.
Security: the studio's `_Guard` checks the WebSocket handshake (token in ?token= or a Bearer
header, never the cookie alone; Host and Origin).
"""

from __future__ import annotations

import asyncio
import json
import math
import queue
import re
import secrets
import struct
import threading
import time
from pathlib import Path

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from inspire.errors import InspireError, UserInputError
from inspire.studio import runs

TAKES = "takes"  # RUN/clips/takes, where `inspire play --record` puts takes too
HEADER = struct.Struct("<IId")  # sequence, samples, position of the first sample
DEFAULT_BUFFER = 0.3  # seconds queued for the page beyond what it played
MIN_BUFFER, MAX_BUFFER = 0.05, 5.0
MAX_FRAME = 4096  # samples per binary frame
MAX_MESSAGE = 64 * 1024  # bytes of one text frame from the page
MAX_PADS = 9  # keys 1-9, as `inspire play`'s keyboard
STATS_EVERY = 0.25  # seconds between stats messages
POLL = 0.005  # seconds the pump waits when it has nothing to send
_CHECKPOINT = re.compile(r"^(?:best|last|step-(\d{1,12})|(\d{1,12}))$")
_START_KEYS = {"type", "run", "checkpoint", "temperature", "seed", "pads", "pad_seconds", "precision", "allow_slow",
               "buffer", "record", "device_rate", "steer"}


class _Room:
    """What one studio shares between live connections: who plays, and the last instrument."""

    def __init__(self):
        self.lock = threading.Lock()
        self.owner: object | None = None  # the connection playing now
        self.cached: tuple[tuple, object] | None = None  # (key, Instrument)

    def claim(self, conn) -> bool:
        with self.lock:
            if self.owner is not None and self.owner is not conn:
                return False
            self.owner = conn
            return True

    def release(self, conn) -> None:
        with self.lock:
            if self.owner is conn:
                self.owner = None


_ROOM_LOCK = threading.Lock()


def _room(app) -> _Room:
    """The app's room, made on first use (the studio's server knows nothing of it)."""
    state = app.state
    with _ROOM_LOCK:
        if not hasattr(state, "live_room"):
            state.live_room = _Room()
    return state.live_room


# ---- what the panel can play ---------------------------------------------------------------


def run_options(studio, key: str) -> dict:
    """A run as the live panel offers it: checkpoints with a file, the chosen one, the prepared
    tracks (id, name, seconds) that pads can start from."""
    from inspire.audio.dataset import load_prepared

    path = studio.run(key)
    info = runs.summary(path)
    tracks, error, sr = [], None, None
    try:
        data = load_prepared(path)
        sr = int(data.settings.sample_rate)
        tracks = [{"id": t.id, "name": t.name, "seconds": round(t.samples / sr, 3)} for t in data.tracks]
    except InspireError as exc:
        error = str(exc)
    cdir = path / "checkpoints"
    try:  # a model trained with labels can be steered live (config.json: plain JSON, no torch)
        labels = [str(x) for x in json.loads((path / "config.json").read_text())["model"].get("labels", [])]
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        labels = []
    return {
        "key": key,
        "name": path.name,
        "path": str(path),
        "checkpoints": [{k: c[k] for k in ("name", "step", "best", "last")} for c in info["checkpoints"] if c["file"]],
        "best": (cdir / "best.pt").is_file() or (cdir / "last.pt").is_file(),
        "chosen": info["chosen"],
        "sample_rate": sr,  # the page opens its audio at the model's rate (None: known when it plays)
        "tracks": tracks,
        "tracks_error": error,
        "labels": labels,  # steering labels (row i + 1), none for a model trained without
    }


async def api_live(request: Request) -> Response:
    from inspire.samplernn.controls import MAX_TEMPERATURE, MIN_TEMPERATURE, MidiMap

    studio = request.app.state.studio
    room = _room(request.app)
    result = await run_in_threadpool(lambda: [run_options(studio, r.key) for r in studio.roots.runs])
    midi = MidiMap()
    return JSONResponse({
        "runs": result,
        "playing": room.owner is not None,
        "defaults": {"temperature": "1.0", "pad_seconds": 2.0, "buffer": DEFAULT_BUFFER, "max_pads": MAX_PADS,
                     "knob": [midi.lo, midi.hi], "temperature_range": [MIN_TEMPERATURE, MAX_TEMPERATURE],
                     "midi_pad_note": midi.pad_note},
    }, headers={"Cache-Control": "no-store"})


# ---- checking a start message ----------------------------------------------------------------


def _checkpoint(path: Path, value) -> str:
    """"best", "last", "step-N" or N from the page -> what `play.load` takes (never a path: the
    page may only load the run's own checkpoints). None: the one chosen in the runs view."""
    if value is None:
        chosen = runs.choice(path)
        value = chosen if chosen and (path / "checkpoints" / f"{chosen}.pt").is_file() else "best"
    m = _CHECKPOINT.match(str(value)) if isinstance(value, str) else None
    if m is None:
        raise UserInputError(f"checkpoint: expected best, last or a name like step-00000500, got {value!r}")
    step = m.group(1) or m.group(2)
    return str(int(step)) if step else str(value)


def _number(body: dict, name: str, default: float, lo: float, hi: float) -> float:
    value = body.get(name, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or not lo <= value <= hi:
        raise UserInputError(f"{name}: expected a number from {lo:g} to {hi:g}, got {value!r}")
    return float(value)


def check_start(studio, body: dict) -> dict:
    """The start message, checked with the command line's own checks where it has them; returns
    the arguments of a performance. UserInputError (or the studio's ApiError) says what is wrong."""
    from inspire import schedule
    from inspire.samplernn import controls

    unknown = sorted(set(body) - _START_KEYS)
    if unknown:
        raise UserInputError(f"start: unknown field(s) {', '.join(unknown)}")
    key = body.get("run")
    if not isinstance(key, str):
        raise UserInputError('start: say which run to play ("run": a key from GET /api/live)')
    path = studio.run(key)
    checkpoint = _checkpoint(path, body.get("checkpoint"))
    lane = body.get("temperature", "1.0")
    if not isinstance(lane, str) or not lane.strip():
        raise UserInputError(f"temperature: expected a value or a lane such as 0s:0.9,30s:1.2, got {lane!r}")
    parsed = schedule.parse(lane)
    if parsed.unit == "fraction" and len(parsed.positions) > 1:
        raise UserInputError(f"temperature {lane}: a live take has no planned length to ramp over; give the "
                             "breakpoints in seconds (e.g. 0s:0.9,30s:1.2)")
    seed = body.get("seed")
    if seed is None:
        seed = secrets.randbits(31)
    elif isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**63:
        raise UserInputError(f"seed: expected a whole number from 0 to 2^63 - 1, got {seed!r}")
    pads = body.get("pads") or []
    if not isinstance(pads, list) or len(pads) > MAX_PADS or not all(isinstance(p, str) for p in pads):
        raise UserInputError(f"pads: expected up to {MAX_PADS} pads like \"TRACK@SECONDS\", got {pads!r}")
    tracks = None
    for n, spec in enumerate(pads, 1):
        name, at = controls.parse_pad(spec)  # the command line's own check (its message says --pad)
        if tracks is None:
            tracks = {t["id"] for t in run_options(studio, key)["tracks"]}
        if name not in tracks:
            raise UserInputError(f"pad {n} ({spec}): no track {name!r} in {path.name}'s prepared data; the studio's "
                                 "pads start from the run's tracks (inspire play --pad FILE takes a file)")
        if at is None:
            raise UserInputError(f"pad {n} ({spec}): say where in the track, e.g. {name}@12.5 (seconds)")
    steer = body.get("steer")
    if steer is not None and (not isinstance(steer, str) or not steer.strip()):
        raise UserInputError(f"steer: expected a label name or null, got {steer!r}")
    precision = body.get("precision", "auto")
    if precision not in ("auto", "fp32", "int8"):
        raise UserInputError(f"precision: must be auto, fp32 or int8, got {precision!r}")
    for flag in ("allow_slow", "record"):
        if not isinstance(body.get(flag, False), bool):
            raise UserInputError(f"{flag}: expected true or false, got {body.get(flag)!r}")
    device_rate = body.get("device_rate")
    if device_rate is not None and (isinstance(device_rate, bool) or not isinstance(device_rate, int)
                                    or not 1000 <= device_rate <= 768000):
        raise UserInputError(f"device_rate: expected the page's audio rate in Hz, got {device_rate!r}")
    return {
        "run": path, "key": key, "checkpoint": checkpoint, "lane": lane.strip(), "seed": int(seed), "pads": pads,
        "pad_seconds": _number(body, "pad_seconds", 2.0, 0.001, 600.0), "precision": precision,
        "allow_slow": bool(body.get("allow_slow", False)), "record": bool(body.get("record", False)),
        "buffer": _number(body, "buffer", DEFAULT_BUFFER, MIN_BUFFER, MAX_BUFFER), "device_rate": device_rate,
        "steer": steer,
    }


# ---- one performance -----------------------------------------------------------------------


class _Recorder:
    """Punch-in and punch-out, between the page (the event loop) and the engine's thread:
    the page arms a take (its file already open) or ends it; the engine's thread, in
    `on_block`, starts and ends it at block boundaries, so its first sample is a known
    position of the session."""

    def __init__(self):
        self.lock = threading.Lock()
        self.want = False
        self.pending = None  # a Take the next block starts
        self.take = None  # the Take being written
        self.finished: queue.SimpleQueue = queue.SimpleQueue()  # (take, timeline json) to commit

    def on_block(self, session, pos: int, classes, audio) -> None:
        with self.lock:
            if self.take is not None and (not self.want or self.pending is not None):  # out, or out and in again
                self.finished.put((self.take, session.timeline.to_json()))
                self.take = None
            if self.take is None and self.want and self.pending is not None:
                self.take, self.pending = self.pending, None
            take = self.take
        if take is not None:
            take.write(pos, classes, audio)


class Performance:
    """A session of an instrument plus what the page needs: the pacing counters, the recorder,
    the speed of recent blocks."""

    def __init__(self, inst, args: dict):
        from inspire.samplernn import controls

        self.inst, self.args = inst, args
        self.sr = inst.sample_rate
        self.timeline = controls.Timeline(args["lane"], sample_rate=self.sr)
        self.recorder = _Recorder()
        self.temperature = self.timeline.temperature_at(0)
        self.session = inst.session(seed=args["seed"], timeline=self.timeline, on_block=self._on_block)
        self.folder = Path(args["run"]) / "clips" / TAKES
        self.sent = self.played = 0
        self.seq = 0
        self.underruns = 0  # the page's worklet: reads that found its buffer short
        self.take_underruns = 0
        self.target = max(self.session.block, round(args["buffer"] * self.sr))

    def _on_block(self, pos, classes, audio) -> None:  # the engine's thread
        self.temperature = self.timeline.temperature_at(pos)
        self.recorder.on_block(self.session, pos, classes, audio)

    def speed(self, blocks: int = 50) -> float | None:
        """x real time of the engine over its last `blocks` blocks (about a second)."""
        recent = self.session.block_seconds[-blocks:]
        wall = sum(recent)
        return None if not recent or wall <= 0 else len(recent) * self.session.block / self.sr / wall

    def arm(self) -> None:
        """Record from the next block (opens the take's file: call off the event loop)."""
        from inspire.samplernn import play

        with self.recorder.lock:
            if self.recorder.want:
                return
        take = play.Take(self.inst, self.folder, seed=self.args["seed"])
        with self.recorder.lock:
            self.recorder.pending, self.recorder.want = take, True
        self.take_underruns = self.underruns

    def disarm(self) -> None:
        with self.recorder.lock:
            self.recorder.want = False
            pending, self.recorder.pending = self.recorder.pending, None
        if pending is not None:
            pending.abort()  # pressed and released before a block was made

    @property
    def recording(self) -> bool:
        return self.recorder.want

    def finish_take(self, take, timeline_json: dict) -> dict:
        """Commit a take and write its sidecar (in a worker thread); what the page shows."""
        from inspire.samplernn import controls

        timeline = controls.Timeline.from_json(timeline_json, sample_rate=self.sr)
        path = take.finish(timeline, underruns=self.underruns - self.take_underruns, audio_device="browser",
                           device_rate=self.args["device_rate"])
        run = self.args["run"]
        return {"type": "take", "id": take.id, "path": str(path), "folder": str(path.parent),
                "seconds": round(take.samples / self.sr, 3), "start_s": round(take.start / self.sr, 3),
                "again": f"inspire generate {run} --again {take.id}"}

    def stop(self) -> list[tuple]:
        """Stop the engine; the takes left to commit (the one recording ends where the engine stopped)."""
        error = None
        try:
            self.session.stop()
        except Exception as exc:  # noqa: BLE001 - reported to the page, the take is still kept
            error = exc
        with self.recorder.lock:
            self.recorder.want = False
            pending, self.recorder.pending = self.recorder.pending, None
            if self.recorder.take is not None:
                self.recorder.finished.put((self.recorder.take, self.timeline.to_json()))
                self.recorder.take = None
        if pending is not None:
            pending.abort()
        out = []
        while True:
            try:
                out.append(self.recorder.finished.get_nowait())
            except queue.Empty:
                break
        if error is not None:
            raise error
        return out


def _load(room: _Room, args: dict, log) -> object:
    """The instrument for these arguments: the cached one when nothing changed (same checkpoint
    file, pads, precision), else `play.load` (measures speed, compiles on the first run)."""
    from inspire.samplernn import play
    from inspire.samplernn.checkpoint import resolve

    ckpt = resolve(args["run"], args["checkpoint"])
    st = ckpt.stat()
    key = (str(args["run"]), str(ckpt.resolve()), st.st_mtime_ns, st.st_size, args["precision"], tuple(args["pads"]),
           args["pad_seconds"], args["allow_slow"])
    with room.lock:
        cached = room.cached
    if cached is not None and cached[0] == key:
        return _steered(cached[1], args)
    with room.lock:
        room.cached = None  # let the old model go before loading the next
    inst = play.load(args["run"], checkpoint=args["checkpoint"], precision=args["precision"], pads=args["pads"],
                     pad_seconds=args["pad_seconds"], allow_slow=args["allow_slow"], log=log)
    with room.lock:
        room.cached = (key, inst)
    return _steered(inst, args)


def _steered(inst, args: dict):
    """The instrument starting from the label the page asked for (`inspire play --steer`)."""
    from inspire.samplernn import play

    inst.label = play.label_row(inst.ctx, args["steer"], "steer") if args.get("steer") else 0
    return inst


class Connection:
    """One WebSocket: reads the page's messages, runs performances, pumps their audio."""

    def __init__(self, ws: WebSocket):
        self.ws = ws
        self.studio = ws.app.state.studio
        self.room = _room(ws.app)
        self.perf: Performance | None = None
        self.pump: asyncio.Task | None = None
        self.send_lock = asyncio.Lock()
        self.tasks: set[asyncio.Task] = set()  # messages on their way from other threads
        self.committing: list[threading.Thread] = []  # takes punched out, being committed
        self.closed = False

    async def send_json(self, data: dict) -> None:
        if self.closed:
            return
        async with self.send_lock:
            try:
                await self.ws.send_text(json.dumps(data))
            except (WebSocketDisconnect, RuntimeError, OSError):
                self.closed = True

    async def send_audio(self, frame: bytes) -> None:
        if self.closed:
            return
        async with self.send_lock:
            try:
                await self.ws.send_bytes(frame)
            except (WebSocketDisconnect, RuntimeError, OSError):
                self.closed = True

    async def error(self, message: str) -> None:
        await self.send_json({"type": "error", "error": message})

    # the page's messages -------------------------------------------------------------------

    async def serve(self) -> None:
        try:
            while not self.closed:
                message = await self.ws.receive()
                if message["type"] == "websocket.disconnect":
                    break
                text = message.get("text")
                if text is None:
                    await self.error("expected JSON text messages")
                    continue
                if len(text) > MAX_MESSAGE:
                    await self.error(f"message too large (at most {MAX_MESSAGE} bytes)")
                    continue
                try:
                    body = json.loads(text)
                except ValueError as exc:
                    await self.error(f"message is not valid JSON ({exc})")
                    continue
                if not isinstance(body, dict) or not isinstance(body.get("type"), str):
                    await self.error('expected an object with a "type" (start, set, record, ack, stop)')
                    continue
                await self.handle(body)
        finally:
            self.closed = True
            self.abandon()

    async def handle(self, body: dict) -> None:
        from inspire.studio.server import ApiError

        kind = body["type"]
        try:
            if kind == "ack":
                self.on_ack(body)
            elif kind == "set":
                self.on_set(body)
            elif kind == "start":
                await self.start(body)
            elif kind == "record":
                await self.on_record(body)
            elif kind == "stop":
                await self.stop(notify=True)
            else:
                raise UserInputError(f"unknown message type {kind!r} (start, set, record, ack, stop)")
        except ApiError as exc:
            await self.error(exc.message)
        except (InspireError, ValueError) as exc:
            await self.error(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)

    def on_ack(self, body: dict) -> None:
        perf = self.perf
        played, under = body.get("played"), body.get("underruns", 0)
        for name, v in (("played", played), ("underruns", under)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise UserInputError(f"ack: {name} must be a whole number >= 0, got {v!r}")
        if perf is None:
            return
        perf.played = min(max(perf.played, played), perf.sent)
        perf.underruns = max(perf.underruns, under)

    def on_set(self, body: dict) -> None:
        from inspire.samplernn.controls import clamp_temperature

        if self.perf is None:
            raise UserInputError("set: nothing is playing (send start first)")
        control, value = body.get("control"), body.get("value", 0.0)
        if control not in ("temperature", "nudge", "pad", "reset", "label"):
            raise UserInputError(f"set: control must be temperature, nudge, pad, reset or label, got {control!r}")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise UserInputError(f"set {control}: expected a number, got {value!r}")
        if control == "temperature":
            if value <= 0:
                raise UserInputError(f"temperature must be > 0, got {value}")
            value = clamp_temperature(value)  # as inspire play does for a knob
        if control == "pad" and (value != int(value) or not 0 <= value <= MAX_PADS):
            raise UserInputError(f"set pad: expected a pad number from 0 to {MAX_PADS}, got {value!r}")
        if control == "label":
            names = self.perf.inst.labels
            if not names:
                raise UserInputError("set label: this model was trained without labels (train with --label-by track)")
            if value != int(value) or not 0 <= value <= len(names):
                raise UserInputError(f"set label: expected 0 (no label) to {len(names)}, got {value!r}")
        self.perf.session.set(control, value)

    async def on_record(self, body: dict) -> None:
        on = body.get("on")
        if not isinstance(on, bool):
            raise UserInputError(f"record: \"on\" must be true or false, got {on!r}")
        perf = self.perf
        if perf is None:
            raise UserInputError("record: nothing is playing (start with \"record\": true to record from the start)")
        if on:
            await run_in_threadpool(perf.arm)
        else:
            perf.disarm()
        await self.send_json({"type": "recording", "on": perf.recording})

    async def start(self, body: dict) -> None:
        if self.perf is not None:
            raise UserInputError("start: already playing (send stop first)")
        args = await run_in_threadpool(check_start, self.studio, body)
        if not self.room.claim(self):
            raise UserInputError("another page of this studio is playing live; stop it there first")
        notes: list[str] = []
        try:
            await self.send_json({"type": "loading", "run": args["key"], "checkpoint": args["checkpoint"]})
            inst = await run_in_threadpool(_load, self.room, args, notes.append)
            perf = await run_in_threadpool(Performance, inst, args)
            if args["record"]:
                await run_in_threadpool(perf.arm)
            if self.closed:
                raise UserInputError("the page went away while the model loaded")
            perf.session.start()
        except BaseException:
            self.room.release(self)
            raise
        self.perf = perf
        ckpt = inst.ctx.checkpoint
        await self.send_json({
            "type": "ready", "run": args["key"], "sample_rate": perf.sr, "seed": args["seed"],
            "engine": inst.engine.name, "measured_speed": inst.measured, "checkpoint": ckpt,
            "temperature": perf.temperature, "lane": perf.timeline.lane, "buffer": perf.target / perf.sr,
            "pads": {str(n): p["pad"] for n, p in inst.pads.items()}, "recording": perf.recording,
            "labels": list(inst.labels), "label": inst.label,
            "block": perf.session.block, "notes": notes,
        })
        self.pump = asyncio.create_task(self.run_pump(perf))

    async def stop(self, *, notify: bool) -> None:
        """Stop the performance (the page asked, or the engine ended): takes committed and
        reported before "stopped"."""
        perf, self.perf = self.perf, None
        if perf is None:
            if notify:
                await self.send_json({"type": "stopped", "seconds": 0.0})
            return
        if self.pump is not None and self.pump is not asyncio.current_task():
            self.pump.cancel()
            try:
                await self.pump
            except (asyncio.CancelledError, Exception):  # noqa: BLE001 - the pump reports its own errors
                pass
        self.pump = None
        try:
            left, error = await run_in_threadpool(self._stop_engine, perf)
        finally:
            self.room.release(self)
        for message in await run_in_threadpool(self._commit_all, perf, left):
            await self.send_json(message)
        if error is not None:
            await self.error(f"the engine stopped: {error}")
        if notify:
            await self.send_json({"type": "stopped", "seconds": round(perf.session.position / perf.sr, 3),
                                  "underruns": perf.underruns})

    def abandon(self) -> None:
        """The page went away: stop and commit here and now, without awaiting anything (a
        server shutting down, or a test client, may cancel what is awaited). Takes are kept."""
        perf, self.perf = self.perf, None
        if self.pump is not None:
            self.pump.cancel()
            self.pump = None
        if perf is None:
            for thread in self.committing:
                thread.join()
            return
        try:
            left, _ = self._stop_engine(perf)
        finally:
            self.room.release(self)
        self._commit_all(perf, left)

    @staticmethod
    def _stop_engine(perf: Performance) -> tuple[list, BaseException | None]:
        try:
            return perf.stop(), None
        except Exception as exc:  # noqa: BLE001 - the takes are still kept, the page is told
            left = []
            while not perf.recorder.finished.empty():
                left.append(perf.recorder.finished.get_nowait())
            return left, exc

    def _commit_all(self, perf: Performance, left: list) -> list[dict]:
        """Wait for takes already being committed, then commit `left`; the messages for the page."""
        for thread in self.committing:
            thread.join()
        self.committing.clear()
        return [self._commit(perf, take, timeline) for take, timeline in left]

    @staticmethod
    def _commit(perf: Performance, take, timeline: dict) -> dict:
        try:
            return perf.finish_take(take, timeline)
        except InspireError as exc:
            return {"type": "error", "error": str(exc)}

    def _commit_soon(self, perf: Performance, take, timeline: dict) -> None:
        """Commit a take punched out while playing, in a thread of its own (the pump keeps
        sending); the page hears of it when it is done."""
        loop = asyncio.get_running_loop()

        def work() -> None:
            message = self._commit(perf, take, timeline)
            try:
                loop.call_soon_threadsafe(self._spawn, self.send_json(message))
            except RuntimeError:  # the loop is gone: the take is committed all the same
                pass

        thread = threading.Thread(target=work, name="inspire-take", daemon=False)
        self.committing = [t for t in self.committing if t.is_alive()] + [thread]
        thread.start()

    # the audio pump ------------------------------------------------------------------------

    async def run_pump(self, perf: Performance) -> None:
        """Send audio while the page has room for it; stats every STATS_EVERY; commit takes
        that ended; report an engine that failed."""
        session = perf.session
        last_stats = 0.0
        while not self.closed:
            while not perf.recorder.finished.empty():
                take, timeline = perf.recorder.finished.get_nowait()
                self._commit_soon(perf, take, timeline)
            have = len(session.fifo)
            now = time.monotonic()
            if now - last_stats >= STATS_EVERY:
                last_stats = now
                await self.send_json({
                    "type": "stats", "position": session.position, "sent": perf.sent, "played": perf.played,
                    "queued": perf.sent - perf.played, "engine_ahead": have, "temperature": perf.temperature,
                    "speed": perf.speed(), "recording": perf.recording, "underruns": perf.underruns,
                })
            n = min(perf.target - (perf.sent - perf.played), have, MAX_FRAME)
            if n >= session.block or (n > 0 and n == have and session.finished.is_set()):
                audio = session.read(n)
                await self.send_audio(HEADER.pack(perf.seq & 0xFFFFFFFF, n, float(perf.sent)) + audio.tobytes())
                perf.seq += 1
                perf.sent += n
                continue
            if session.error is not None or (session.finished.is_set() and have == 0):
                if session.error is not None:
                    await self.error(f"the engine stopped: {session.error}")
                self._spawn(self.stop(notify=True))
                return
            await asyncio.sleep(POLL)

    def _spawn(self, coro) -> None:
        task = asyncio.create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)


async def live_socket(ws: WebSocket) -> None:
    await ws.accept()
    await Connection(ws).serve()


ROUTES = [
    Route("/api/live", api_live),
    WebSocketRoute("/api/live/ws", live_socket),
]
