"""`inspire play`: a trained run as an instrument, through the sound card, in real time.

The engine and the take live in inspire.samplernn (engine, play; imported when it runs); this
module wires the front ends: the sound card (python-sounddevice/PortAudio, resampled on the fly
by the session), the terminal keyboard, a MIDI controller (mido + python-rtmidi) and OSC
(python-osc). Those are the optional `play` extra; `--audio-device none` needs none of them.
No torch at import time (help stays fast).
"""

from __future__ import annotations

import math
import os
import secrets
import sys
import threading
import time

from inspire.errors import UserInputError
from inspire.samplernn import controls

EXTRA = "pip install 'inspire-samplernn[play]'"


def add(sub, formatter) -> None:
    p = sub.add_parser(
        "play",
        formatter_class=formatter,
        help="play a trained model live through the sound card, with knobs, pads and MIDI/OSC",
        description=(
            "Play RUN_DIR's model as an instrument: one stream generated in real time, the temperature\n"
            "under your hands while it plays.\n\n"
            f"Keys (in this terminal): {controls.KEY_HELP}.\n"
            "MIDI (--midi PORT): a control change sweeps the temperature (--midi-cc, --midi-range);\n"
            "notes from --midi-pad-note up trigger pad 0 (silence), 1, 2...\n"
            "OSC (--osc PORT): /inspire/temperature 0.95, /inspire/nudge -0.05, /inspire/pad 2,\n"
            "/inspire/label 1 (0: no label), /inspire/reset, /inspire/quit (e.g. from TouchOSC, Max or Pure Data).\n"
            "Pads (--pad, repeatable, numbered from 1) re-prime the stream from a moment of a training\n"
            "track (TRACK@SECONDS, or TRACK@M:SS) or of an audio file (FILE[@SECONDS]); with a model\n"
            "trained with labels, a pad label:NAME steers the stream towards that label (--steer: the\n"
            "label it starts with).\n\n"
            "--record keeps the take as an ordinary clip with a sidecar (seed, checkpoint, engine, every\n"
            "control change at its sample); `inspire generate RUN_DIR --again ID` renders it again exactly.\n\n"
            "Example: inspire play runs/album --temperature 0s:0.9,60s:1.1 --midi 'nanoKONTROL2' --record\n"
            f"Sound card, MIDI and OSC need the play extra: {EXTRA}"
        ),
    )
    p.add_argument("run_dir", metavar="RUN_DIR", help="the run folder (made by inspire prepare / train)")
    p.add_argument("--checkpoint", default="best", help="best, last, a step number or a path")
    p.add_argument("--temperature", "-t", default="1.0", metavar="SPEC",
                   help="the starting temperature, or an automation lane in generate's grammar (0.9:1.2 ramps over "
                        "--seconds; 0s:0.9,30s:1.2 in seconds); a knob takes over from the lane when touched")
    p.add_argument("--min-p", default=None, metavar="SPEC",
                   help="truncation as `inspire generate --min-p` takes it (a constant or a lane; default off)")
    p.add_argument("--top-p", default=None, metavar="SPEC",
                   help="truncation as `inspire generate --top-p` takes it (a constant or a lane; default off)")
    p.add_argument("--seed", type=int, default=None, help="random seed (default: a fresh one, printed and recorded)")
    p.add_argument("--seconds", type=float, default=None,
                   help="stop after this much audio (default: play until q or Ctrl-C)")
    p.add_argument("--audio-device", default=None, metavar="NAME",
                   help="output device by name or number (default: the system's); none: no sound card, the engine "
                        "paced in real time (headless machines, tests)")
    p.add_argument("--precision", choices=["auto", "fp32", "int8"], default="auto",
                   help="auto: fp32 when this machine plays it with headroom, else int8 (measured at the start)")
    p.add_argument("--record", nargs="?", const="", default=None, metavar="DIR",
                   help="record the take as a clip into DIR (default DIR: RUN_DIR/clips/takes)")
    p.add_argument("--pad", action="append", default=[], metavar="SPEC",
                   help="a pad (repeat; numbered from 1): TRACK@SECONDS of the run's prepared data, FILE[@SECONDS], "
                        "or label:NAME (steers a model trained with labels)")
    p.add_argument("--steer", default=None, metavar="LABEL",
                   help="the label a model trained with labels plays from the start (default: none, unsteered)")
    p.add_argument("--pad-seconds", type=float, default=2.0,
                   help="how much audio before a pad's moment primes the stream")
    p.add_argument("--midi", metavar="PORT", default=None, help="MIDI input port (name or part of it)")
    p.add_argument("--midi-cc", type=int, default=1, help="control change number that sweeps the temperature")
    p.add_argument("--midi-range", default="0.5:1.5", metavar="LO:HI", help="temperatures at CC value 0 and 127")
    p.add_argument("--midi-pad-note", type=int, default=36,
                   help="MIDI note of pad 0 (silence); the next notes are pads 1, 2...")
    p.add_argument("--midi-channel", type=int, default=None, help="listen on this channel only (1-16; default: all)")
    p.add_argument("--osc", type=int, default=None, metavar="PORT", help="listen for OSC on this UDP port")
    p.add_argument("--osc-host", default="127.0.0.1", help="address to listen for OSC on (0.0.0.0: the whole network)")
    p.add_argument("--ahead", type=float, default=0.08,
                   help="seconds generated ahead of the sound card: absorbs a slow block; knob to sound is about this "
                        "+ 20 ms + the device's latency")
    p.add_argument("--allow-slow", action="store_true", help="play even when this machine is measured too slow (gaps)")
    p.add_argument("--quiet", action="store_true", help="no status line")
    p.set_defaults(func=run)


def run(args) -> int:
    """Check everything the user gave, open the devices, load the model, play until done."""
    from inspire import schedule

    if args.seconds is not None and not (args.seconds > 0 and math.isfinite(args.seconds)):
        raise UserInputError(f"--seconds must be > 0, got {args.seconds}")
    if not 0.005 <= args.ahead <= 2.0:
        raise UserInputError(f"--ahead must be between 0.005 and 2 seconds, got {args.ahead}")
    lane = schedule.parse(args.temperature)
    if lane.unit == "fraction" and len(lane.positions) > 1 and args.seconds is None:
        raise UserInputError(f"--temperature {args.temperature}: a ramp over the take needs --seconds, or breakpoints "
                             "in seconds (e.g. 0s:0.9,30s:1.2)")
    lo, hi = controls.parse_midi_range(args.midi_range)
    midi_map = controls.MidiMap(cc=args.midi_cc, lo=lo, hi=hi, pad_note=args.midi_pad_note, channel=args.midi_channel)
    if args.osc is not None and not 1 <= args.osc <= 65535:
        raise UserInputError(f"--osc must be a UDP port between 1 and 65535, got {args.osc}")
    seed = args.seed if args.seed is not None else secrets.randbits(31)

    quit_event = threading.Event()
    holder: dict = {}
    status = _Status(enabled=not args.quiet)

    def on_control(c: controls.Control | None) -> None:
        if c is None:
            return
        if c.kind == "quit":
            quit_event.set()
            return
        session = holder.get("session")
        if session is None:
            return
        try:
            if c.kind == "temperature":
                c = controls.Control("temperature", controls.clamp_temperature(c.value))
            session.set(c.kind, c.value)
        except ValueError as exc:
            status.note(f"play: {exc}")

    # Devices first: a wrong port or a missing extra fails before the model loads.
    headless = args.audio_device is not None and args.audio_device.lower() == "none"
    audio = None if headless else _Audio(args.audio_device)
    closers = []
    try:
        if args.midi is not None:
            closers.append(_open_midi(args.midi, midi_map, on_control))
        if args.osc is not None:
            closers.append(_open_osc(args.osc_host, args.osc, on_control))
        return _play(args, seed=seed, audio=audio, holder=holder, quit_event=quit_event, status=status,
                     on_control=on_control)
    finally:
        for close in closers:
            close()


def _play(args, *, seed, audio, holder, quit_event, status, on_control) -> int:
    from pathlib import Path

    from inspire.samplernn import play

    inst = play.load(args.run_dir, checkpoint=args.checkpoint, precision=args.precision, pads=args.pad,
                     pad_seconds=args.pad_seconds, allow_slow=args.allow_slow, steer=args.steer)
    sr = inst.sample_rate
    n_samples = None if args.seconds is None else max(1, round(args.seconds * sr))
    timeline = controls.Timeline(args.temperature, sample_rate=sr, span=n_samples, min_p=args.min_p, top_p=args.top_p)
    take = None
    if args.record is not None:
        folder = Path(args.record) if args.record else Path(args.run_dir) / "clips" / "takes"
        take = play.Take(inst, folder, seed=seed)
    out_rate = audio.rate if audio is not None else sr
    session = inst.session(seed=seed, timeline=timeline, out_rate=out_rate, n_samples=n_samples,
                           on_block=take.write if take else None, ahead=args.ahead)
    holder["session"] = session
    device = "none" if audio is None else audio.name
    pads = ", ".join(f"{n}={p['pad']}" for n, p in inst.pads.items()) or "none"
    print(f"play: seed {seed}, {inst.engine.name}, {sr} Hz -> {device}"
          + (f" at {out_rate} Hz" if out_rate != sr else "")
          + f", {args.ahead * 1000:.0f} ms ahead; pads: {pads}", file=sys.stderr)
    interrupted = False
    try:
        session.start()
        with _Keyboard(on_control, enabled=sys.stdin.isatty()):
            if audio is not None:
                audio.play(session, quit_event, status)
            else:
                _pace(session, quit_event, status, rate=out_rate)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        holder.pop("session", None)
        try:
            session.stop()
        except BaseException:
            if take is not None:
                take.abort()
            raise
        status.clear()
    played = session.position / sr
    underruns = session.underruns + (audio.underflows if audio is not None else 0)
    print(f"play: {played:.2f} s played{' (interrupted)' if interrupted else ''}, underruns: {underruns}",
          file=sys.stderr)
    if take is not None:
        if audio is not None:
            session.underruns = underruns
        path = take.finish(session.timeline, underruns=session.underruns, audio_device=device,
                           device_rate=out_rate)
        print(f"play: take {take.id} recorded; render it again with: inspire generate {args.run_dir} --again {take.id}",
              file=sys.stderr)
        print(path)
    return 0


def _pace(session, quit_event, status, *, rate: int) -> None:
    """No sound card: read the session in 20 ms blocks on a real-time clock, as a card would."""
    block = max(1, round(0.02 * rate))
    period = block / rate
    next_t = time.monotonic()
    session.wait_ready()
    while not (session.done or quit_event.is_set()):
        session.read(block)
        status.show(session)
        next_t += period
        delay = next_t - time.monotonic()
        if delay > 0:
            time.sleep(delay)


class _Status:
    """One status line on stderr (a terminal only), redrawn a few times a second."""

    def __init__(self, *, enabled: bool):
        self.enabled = enabled and sys.stderr.isatty()
        self.last = 0.0

    def show(self, session) -> None:
        now = time.monotonic()
        if not self.enabled or now - self.last < 0.2:
            return
        self.last = now
        sys.stderr.write(f"\r  T {session.temperature():.3f}  {session.position / session.sample_rate:7.1f} s  "
                         f"underruns {session.underruns}   [{controls.KEY_HELP}] ")
        sys.stderr.flush()

    def note(self, text: str) -> None:
        self.clear()
        print(text, file=sys.stderr)

    def clear(self) -> None:
        if self.enabled:
            sys.stderr.write("\r\033[K")
            sys.stderr.flush()


class _Keyboard:
    """Keys from the terminal (cbreak mode: one key at a time, Ctrl-C still interrupts)."""

    def __init__(self, on_control, *, enabled: bool):
        self.on_control, self.enabled = on_control, enabled and os.name == "posix"
        self.stop = threading.Event()
        self.saved = None

    def __enter__(self):
        if self.enabled:
            import termios
            import tty

            fd = sys.stdin.fileno()
            self.saved = termios.tcgetattr(fd)
            tty.setcbreak(fd)
            threading.Thread(target=self._loop, args=(fd,), name="inspire-keys", daemon=True).start()
        return self

    def _loop(self, fd: int) -> None:
        import select

        while not self.stop.is_set():
            ready, _, _ = select.select([fd], [], [], 0.1)
            if ready:
                for key in controls.split_keys(os.read(fd, 32).decode(errors="ignore")):
                    self.on_control(controls.keyboard(key))

    def __exit__(self, *exc):
        self.stop.set()
        if self.saved is not None:
            import termios

            termios.tcsetattr(sys.stdin.fileno(), termios.TCSADRAIN, self.saved)
        return False


class _Audio:
    """The sound card through python-sounddevice; the callback only copies from the session."""

    def __init__(self, name: str | None):
        try:
            import sounddevice as sd
        except ImportError:
            raise UserInputError(f"playing through a sound card needs the play extra: {EXTRA} "
                                 "(or --audio-device none to run without one)") from None
        except OSError as exc:  # the module is there, the PortAudio library is not
            raise UserInputError(f"PortAudio is missing ({exc}); on Linux: sudo apt install libportaudio2 "
                                 "(or --audio-device none)") from None
        self.sd = sd
        device = int(name) if name is not None and str(name).isdigit() else name
        try:
            info = sd.query_devices(device, "output")
        except (ValueError, sd.PortAudioError) as exc:
            try:
                outs = [d["name"] for d in sd.query_devices() if d["max_output_channels"] > 0]
            except sd.PortAudioError:
                outs = []
            if name is None:
                raise UserInputError(f"no audio output device ({str(exc).splitlines()[0]}); use --audio-device none "
                                     "to play without a sound card") from None
            raise UserInputError(f"--audio-device {name}: no such output device (outputs: "
                                 f"{', '.join(outs) or 'none'})") from None
        self.device, self.name = info["index"], info["name"]
        self.rate = int(info["default_samplerate"])
        self.underflows = 0

    def play(self, session, quit_event, status) -> None:
        def callback(outdata, frames, time_info, flags):
            if flags.output_underflow:
                self.underflows += 1
            outdata[:, 0] = session.read(frames)

        session.wait_ready()
        try:
            stream = self.sd.OutputStream(device=self.device, samplerate=self.rate, channels=1, dtype="float32",
                                          callback=callback, latency="low")
        except self.sd.PortAudioError as exc:
            raise UserInputError(f"audio device {self.name}: cannot open it ({str(exc).splitlines()[0]})") from None
        with stream:
            while not (session.done or quit_event.is_set()):
                status.show(session)
                time.sleep(0.02)
            if session.done:
                time.sleep(stream.latency)  # let the card play out its last buffer


def _open_midi(port: str, mapping: controls.MidiMap, on_control):
    try:
        import mido
    except ImportError:
        raise UserInputError(f"--midi needs the play extra: {EXTRA}") from None
    try:
        names = mido.get_input_names()
    except (ImportError, OSError, RuntimeError) as exc:
        first = str(exc).splitlines()[0]
        raise UserInputError(f"--midi: no MIDI backend ({first}); {EXTRA} installs python-rtmidi") from None
    match = [n for n in names if n == port] or [n for n in names if port.lower() in n.lower()]
    if len(match) != 1:
        what = "no such MIDI input" if not match else "several MIDI inputs match"
        raise UserInputError(f"--midi {port}: {what} (inputs: {', '.join(names) or 'none'})")
    try:
        inport = mido.open_input(match[0], callback=lambda msg: on_control(mapping.parse(msg)))
    except (OSError, RuntimeError) as exc:
        raise UserInputError(f"--midi {match[0]}: cannot open it ({exc})") from None
    print(f"play: MIDI from {match[0]} (CC {mapping.cc} -> temperature {mapping.lo:g}..{mapping.hi:g}, "
          f"pads from note {mapping.pad_note})", file=sys.stderr)
    return inport.close


def _open_osc(host: str, port: int, on_control):
    try:
        from pythonosc.dispatcher import Dispatcher
        from pythonosc.osc_server import ThreadingOSCUDPServer
    except ImportError:
        raise UserInputError(f"--osc needs the play extra: {EXTRA}") from None
    dispatcher = Dispatcher()
    dispatcher.set_default_handler(lambda address, *args: on_control(controls.osc(address, *args)))
    try:
        server = ThreadingOSCUDPServer((host, port), dispatcher)
    except OSError as exc:
        raise UserInputError(f"--osc {port}: cannot listen on {host}:{port} ({exc.strerror or exc}); "
                             "is another program using the port?") from None
    serve = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, name="inspire-osc",
                             daemon=True)
    serve.start()
    print(f"play: OSC on {host}:{port} ({controls.OSC_PREFIX}/temperature, /pad, /reset...)", file=sys.stderr)

    def close() -> None:
        server.shutdown()
        server.server_close()

    return close

